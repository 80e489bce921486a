"""Public API and CLI: bad inputs, train -> checkpoint -> tts/music on user-format data, demo, README."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
from audio_helpers import tone

from moe_zoo import audio
from moe_zoo.audio.audio_io import read_audio, write_audio
from moe_zoo.core import InputError, get_model_spec
from moe_zoo.core.checkpoint import read_checkpoint_metadata
from moe_zoo.core.cli import main

PACKAGE = Path(__file__).resolve().parents[1]
SHIPPED = get_model_spec("unimoe-audio-tiny").weights_path()


@pytest.mark.parametrize("argv", [
    ["audio", "tts", ""],
    ["audio", "tts", "naïve café"],
    ["audio", "music", "--notes", "r:1,r:2"],
    ["audio", "train", "--data", "ljspeech:/no/such/folder"],
])
def test_cli_errors_are_one_line(argv, capsys):
    assert main(["-q", *argv]) == 2
    assert "error:" in capsys.readouterr().err


def test_api_rejects_bad_scores_and_tags():
    with pytest.raises(InputError, match="no notes"):
        audio.music([])
    with pytest.raises(InputError, match="unknown music tag"):
        audio.music({"genre": "jazz"})
    with pytest.raises(InputError, match="bpm"):
        audio.music({"bpm": 1000})
    with pytest.raises(InputError, match="empty"):
        audio.tts("   ")


def test_cli_train_on_user_formats_then_generate(tmp_path, capsys):
    lj = tmp_path / "lj"
    for i, f in enumerate((180, 240, 300)):
        write_audio(lj / "wavs" / f"a{i}.wav", tone(f, 0.6))
    (lj / "metadata.csv").write_text("a0|one|one\na1|two dogs|two dogs\na2|three|three\n")
    write_audio(tmp_path / "mc" / "x1.wav", tone(440, 1.0))
    (tmp_path / "caps.csv").write_text("ytid,start_s,end_s,caption\nx1,0,10,a fast violin tune\n")
    ckpt = tmp_path / "m.safetensors"
    assert main(["-q", "audio", "train", "--data", f"ljspeech:{lj}", f"musiccaps:{tmp_path / 'caps.csv'}:{tmp_path / 'mc'}",
                 "--backbone-steps", "1", "--specialist-steps", "1", "--warmup-steps", "1", "--joint-steps", "1",
                 "--batch-size", "2", "--split-rescale",
                 "--out", str(ckpt)]) == 0
    assert read_checkpoint_metadata(ckpt)["metadata"]["train"]["split_rescale"] is True
    out = tmp_path / "s.wav"
    assert main(["-q", "audio", "tts", "two dogs", "--model", str(ckpt), "--out", str(out), "--max-seconds", "0.3"]) == 0
    assert len(read_audio(out)) > 0
    assert main(["-q", "audio", "music", "--notes", "60:1,62:1", "--model", str(ckpt), "--out", str(tmp_path / "m.wav"),
                 "--max-seconds", "0.3"]) == 0
    assert "wrote" in capsys.readouterr().out


def test_shipped_weights_demo_and_readme(capsys, tmp_path):
    assert SHIPPED.is_file(), "the shipped weights are missing"
    assert main(["-q", "audio", "demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for text in ("top-p 0.7", "pocketsphinx hears", "speech.wav", "music.wav"):
        assert text in out
    failures, attempted = doctest.testfile(str(PACKAGE / "README.md"), module_relative=False,
                                           optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0 and failures == 0


def test_benchmark_example_rows_match_exact_file_names(tmp_path):
    from moe_zoo.audio.benchmark import _example_names

    (tmp_path / "reference-speech.wav").touch()
    (tmp_path / "curriculum-topp-moe-rescaled-music.wav").touch()
    assert _example_names(tmp_path) == ["reference", "curriculum-topp-moe-rescaled"]
    assert _example_names(tmp_path / "missing") == []


def test_benchmark_verdict_pairs_seeds_by_seed_not_by_position():
    from moe_zoo.audio.benchmark import _verdict_one

    def job(seed, wer):
        return {"seed": seed, "metrics": {"wer": wer, "note_f1": 0.1, "speech_ce": 2.0, "music_ce": 1.0}}

    # curriculum has seeds 0 and 1, naive only seed 1: only seed 1 is a pair (curriculum better there)
    text = _verdict_one([job(0, 0.9), job(1, 0.5)], [job(1, 0.6)])
    assert "speech WER: curriculum 0.700 vs naive 0.600: curriculum not better (better on 1 of 1 seeds)" in text
