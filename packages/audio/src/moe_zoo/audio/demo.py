"""``moe-zoo audio demo``: the shipped model speaks a held-out sentence and plays a held-out
Bach melody; each output is checked by the offline ASR / VAD, in plain words."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from moe_zoo.audio import metrics as M
from moe_zoo.audio.audio_io import SAMPLE_RATE, write_audio
from moe_zoo.audio.data import sentence_vocabulary, train_and_heldout_sentences
from moe_zoo.audio.predict import load, music, tts


def run_demo(out_dir: str | Path | None = None) -> str:
    began = time.perf_counter()
    out = Path(out_dir or tempfile.mkdtemp(prefix="moe-zoo-audio-demo-"))
    model = load()
    sentence = train_and_heldout_sentences()[1][0]
    t0 = time.perf_counter()
    speech = tts(sentence, model=model, voice="flite", seed=0, max_seconds=3.5)
    speech_time = time.perf_counter() - t0
    notes = [(67, 1.0), (69, 1.0), (71, 1.0), (72, 1.0), (74, 2.0)]
    t0 = time.perf_counter()
    song = music({"composer": "bach", "instrument": "flute", "bpm": 110, "notes": notes}, model=model, seed=0,
                 max_seconds=3.0)
    music_time = time.perf_counter() - t0
    heard = M.transcribe(speech, sentence_vocabulary())
    c = model.config
    lines = [
        f"UniMoE-Audio (tiny): {c.n_layers} layers, top-p {c.top_p} over {c.n_routed} routed + {c.n_null} null experts, "
        f"{c.n_shared} shared; {c.n_codebooks} codebooks x {c.codebook_size} (mel-RVQ codec + Griffin-Lim)",
        f"speech for the held-out sentence {sentence!r}: {len(speech) / SAMPLE_RATE:.1f} s in {speech_time:.1f} s "
        f"-> {write_audio(out / 'speech.wav', speech)}",
        f"  pocketsphinx hears: {heard!r} (WER {M.wer([sentence], [heard]):.2f}); "
        f"silero-vad speech fraction {M.speech_probability(speech):.2f}",
        f"music for a flute melody G A B C D at 110 bpm: {len(song) / SAMPLE_RATE:.1f} s in {music_time:.1f} s "
        f"-> {write_audio(out / 'music.wav', song)}",
        f"  silero-vad speech fraction {M.speech_probability(song):.2f} (music should be low)",
        "  (a tiny model trained for minutes on CPU: expect rough, barely intelligible audio; see BENCHMARKS.md)",
        f"({time.perf_counter() - began:.1f} s on CPU)",
    ]
    return "\n".join(lines)
