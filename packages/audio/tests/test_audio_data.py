import numpy as np
import pytest
from audio_helpers import tone

from moe_zoo.audio import text as tx
from moe_zoo.audio.audio_io import read_audio, write_audio
from moe_zoo.audio.data import (
    fit_notes,
    note_times,
    read_libritts,
    read_ljspeech,
    read_musiccaps,
    sentence_vocabulary,
    train_and_heldout_sentences,
)
from moe_zoo.core import InputError


def test_ljspeech_reader(tmp_path):
    write_audio(tmp_path / "wavs" / "LJ001-0001.wav", tone(200, 0.5))
    write_audio(tmp_path / "wavs" / "LJ001-0002.wav", tone(200, 4.0))  # too long: skipped
    (tmp_path / "metadata.csv").write_text("LJ001-0001|Hello, World!|hello, world!\nLJ001-0002|long|long\n")
    clips = read_ljspeech(tmp_path)
    assert len(clips) == 1 and clips[0].text == "hello, world!" and clips[0].task == "speech"
    assert clips[0].cond[:2] == [tx.SPEECH, tx.INDEX["voice:user"]]


def test_ljspeech_reader_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_ljspeech(tmp_path / "nope")
    with pytest.raises(InputError, match=r"metadata\.csv"):
        read_ljspeech(tmp_path)
    (tmp_path / "wavs").mkdir()
    (tmp_path / "wavs" / "a.wav").write_bytes(b"RIFF garbage")
    (tmp_path / "metadata.csv").write_text("a|text|text\n")
    with pytest.raises(InputError, match="corrupt"):
        read_ljspeech(tmp_path)


def test_libritts_reader(tmp_path):
    folder = tmp_path / "19" / "198"
    write_audio(folder / "19_198_000000_000000.wav", tone(300, 0.4, 24_000), sr=24_000)
    (folder / "19_198_000000_000000.normalized.txt").write_text("Two dogs.")
    clips = read_libritts(tmp_path)
    assert len(clips) == 1 and clips[0].text == "two dogs." and abs(clips[0].seconds - 0.4) < 0.01
    (folder / "19_198_000000_000001.wav").write_bytes(write_audio(tmp_path / "x.wav", tone(1, 0.1)).read_bytes())
    with pytest.raises(InputError, match="no transcript"):
        read_libritts(tmp_path)


def test_musiccaps_reader(tmp_path):
    write_audio(tmp_path / "audio" / "abc.wav", tone(440, 5.0))
    (tmp_path / "caps.csv").write_text('ytid,start_s,end_s,caption\nabc,1,11,"A slow flute melody"\nmissing,0,10,x\n')
    clips = read_musiccaps(tmp_path / "caps.csv", tmp_path / "audio")
    assert len(clips) == 1 and clips[0].task == "music" and clips[0].seconds == pytest.approx(3.0)
    assert clips[0].meta["instrument"] == "flute" and clips[0].meta["bpm"] == 80.0
    (tmp_path / "bad.csv").write_text("id,text\n1,x\n")
    with pytest.raises(InputError, match="missing column"):
        read_musiccaps(tmp_path / "bad.csv", tmp_path / "audio")


def test_read_audio_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_audio(tmp_path / "none.wav")
    write_audio(tmp_path / "empty.wav", np.zeros(0, np.float32))
    with pytest.raises(InputError, match="empty"):
        read_audio(tmp_path / "empty.wav")


def test_text_normalisation_and_errors():
    assert tx.normalise_text("  Hello   World ") == "hello world"
    for bad, match in (("", "empty"), ("   ", "empty"), ("héllo", "unsupported"), ("a@b", "unsupported"), ("...", "no letters")):
        with pytest.raises(InputError, match=match):
            tx.normalise_text(bad)


def test_phonemes_and_music_tokens():
    tokens = tx.speech_tokens("the cat", "espeak")
    assert tokens[0] == tx.SPEECH and tokens[-1] == tx.SEP and len(tokens) > 5
    m = tx.music_tokens([(60, 1.0), (None, 0.5), (64, 2.0)], composer="bach", instrument="flute", bpm=140)
    assert m[:4] == [tx.MUSIC, tx.INDEX["composer:bach"], tx.INDEX["instrument:flute"], tx.INDEX["tempo:fast"]]
    assert len(m) == 4 + 6 + 1
    with pytest.raises(InputError, match="no notes"):
        tx.music_tokens([])
    with pytest.raises(InputError, match="no notes"):
        tx.music_tokens([(None, 1.0)])
    with pytest.raises(InputError, match=r"21\.\.108"):
        tx.music_tokens([(5, 1.0)])


def test_note_timing_and_sentence_split():
    notes = fit_notes([(60, 1.0), (62, 1.0), (None, 1.0), (64, 8.0)], bpm=120, max_seconds=2.0)
    assert notes == [(60, 1.0), (62, 1.0)]
    assert note_times([(60, 1.0), (None, 0.5), (62, 1.0)], 120) == [(0.0, 0.5, 60), (0.75, 1.25, 62)]
    train, held = train_and_heldout_sentences(50, 10)
    assert not set(train) & set(held) and len(held) == 10
    assert set(" ".join(held).split()) <= set(sentence_vocabulary())
