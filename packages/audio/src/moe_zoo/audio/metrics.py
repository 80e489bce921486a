"""Evaluation of generated audio with offline models: WER by pocketsphinx, mel-cepstral distortion,
note-level F1 by basic-pitch (its ONNX model, path given), chroma similarity, and a speech-vs-music
check by silero-vad's ONNX model."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch
import torchaudio
from scipy.optimize import linear_sum_assignment

from moe_zoo.audio.audio_io import SAMPLE_RATE, resample
from moe_zoo.core import InputError

# ---------------------------------------------------------------- speech


@functools.lru_cache(maxsize=4)
def _asr(vocabulary: tuple[str, ...] | None):
    from pocketsphinx import Decoder

    if vocabulary is None:
        return Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
    grammar = f"#JSGF V1.0;\ngrammar words;\npublic <s> = ( {' | '.join(vocabulary)} )* ;\n"
    decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", lm=None)
    decoder.set_jsgf_string("words", grammar)
    decoder.activate_search("words")
    return decoder


def transcribe(audio: np.ndarray, vocabulary: tuple[str, ...] | None = None) -> str:
    """Offline English ASR (pocketsphinx's bundled en-us model), lower-case words; with
    ``vocabulary``, decoding uses a word-loop grammar (any sequence of those words): faster and
    measures which words are heard, without a language model's guesses."""
    decoder = _asr(tuple(sorted(set(vocabulary))) if vocabulary else None)
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return "" if hyp is None else hyp.hypstr.lower()


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """``(edit distance in words, reference length)``; WER = sum of the first / sum of the second."""
    ref, hyp = _words(reference), _words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1], len(ref)


def wer(references: list[str], hypotheses: list[str]) -> float:
    errors = [word_errors(r, h) for r, h in zip(references, hypotheses, strict=True)]
    return sum(e for e, _ in errors) / max(sum(n for _, n in errors), 1)


@functools.lru_cache(maxsize=1)
def _mfcc():
    """Mel cepstra of the natural-log mel amplitude (orthonormal DCT), the scale MCD's 10/ln 10 assumes."""
    return torchaudio.transforms.MFCC(SAMPLE_RATE, n_mfcc=14, log_mels=True,
                                      melkwargs={"n_fft": 1024, "hop_length": 160, "n_mels": 40, "power": 1.0})


def dtw_path_cost(cost: np.ndarray) -> tuple[float, int]:
    """Total cost and length of the best monotonic alignment of a ``[N, M]`` cost matrix."""
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    steps = np.zeros((n + 1, m + 1))
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            options = (acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
            k = int(np.argmin(options))
            prev = ((i - 1, j - 1), (i - 1, j), (i, j - 1))[k]
            acc[i, j] = cost[i - 1, j - 1] + options[k]
            steps[i, j] = steps[prev] + 1
    return float(acc[n, m]), int(steps[n, m])


def mel_cepstral_distortion(generated: np.ndarray, reference: np.ndarray) -> float:
    """``MCD = (10 / ln 10) * sqrt(2 * sum_{d=1..13} (c_d - c'_d)^2)`` averaged over the DTW-aligned
    frames (c_0, the energy, left out), in dB."""
    a, b = (_mfcc()(torch.as_tensor(x, dtype=torch.float32)).T[:, 1:].numpy() for x in (generated, reference))
    if len(a) == 0 or len(b) == 0:
        raise InputError("mel_cepstral_distortion: empty audio")
    dist = np.sqrt(2.0 * ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)) * (10.0 / math.log(10.0))
    total, length = dtw_path_cost(dist)
    return total / length


# ---------------------------------------------------------------- music
BASIC_PITCH_SR, BASIC_PITCH_HOP, BASIC_PITCH_WINDOW, BASIC_PITCH_OVERLAP = 22050, 256, 43844, 30


def default_basic_pitch_model() -> Path | None:
    """basic-pitch's ONNX file when the basic-pitch wheel is installed (a benchmark-only tool)."""
    spec = find_spec("basic_pitch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "saved_models" / "icassp_2022" / "nmp.onnx"
    return path if path.is_file() else None


@functools.lru_cache(maxsize=2)
def _onnx(path: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def note_posteriors(audio: np.ndarray, model_path: str | Path) -> np.ndarray:
    """basic-pitch's note posteriorgram ``[frames, 88]`` (MIDI 21..108) at 22050/256 frames/s,
    windowed as basic-pitch's own inference does (30 overlapping frames)."""
    if not Path(model_path).is_file():
        raise InputError(f"basic-pitch ONNX model not found: {model_path}")
    x = resample(audio, SAMPLE_RATE, BASIC_PITCH_SR)
    overlap = BASIC_PITCH_OVERLAP * BASIC_PITCH_HOP
    hop = BASIC_PITCH_WINDOW - overlap
    x_padded = np.concatenate([np.zeros(overlap // 2, np.float32), x])
    windows = [np.pad(x_padded[i: i + BASIC_PITCH_WINDOW], (0, max(0, BASIC_PITCH_WINDOW - len(x_padded[i: i + BASIC_PITCH_WINDOW]))))
               for i in range(0, len(x_padded), hop)]
    session = _onnx(str(model_path))
    notes = session.run(["StatefulPartitionedCall:1"], {"serving_default_input_2:0": np.stack(windows)[..., None].astype(np.float32)})[0]
    n = BASIC_PITCH_OVERLAP // 2
    frames = notes[:, n:-n].reshape(-1, 88)
    return frames[: int(len(x) * BASIC_PITCH_SR / BASIC_PITCH_SR / BASIC_PITCH_HOP)]


def transcribe_notes(audio: np.ndarray, model_path: str | Path, threshold: float = 0.5,
                     min_frames: int = 5) -> list[tuple[float, float, int]]:
    """``(onset s, offset s, midi)`` from runs of the note posterior above ``threshold``."""
    post = note_posteriors(audio, model_path) > threshold
    fps = BASIC_PITCH_SR / BASIC_PITCH_HOP
    notes = []
    padded = np.pad(post, ((1, 1), (0, 0))).astype(np.int8)
    edges = np.diff(padded, axis=0)
    for pitch in range(88):
        starts, ends = np.flatnonzero(edges[:, pitch] == 1), np.flatnonzero(edges[:, pitch] == -1)
        notes += [(s / fps, e / fps, pitch + 21) for s, e in zip(starts, ends) if e - s >= min_frames]
    return sorted(notes)


def note_f1(estimated: list[tuple[float, float, int]], reference: list[tuple[float, float, int]],
            onset_tolerance: float = 0.05) -> float:
    """Onset-only note F1 (mir_eval's ``precision_recall_f1_overlap`` with ``offset_ratio=None``):
    a match needs the same pitch and onsets within ``onset_tolerance``; one-to-one maximum matching."""
    if not reference and not estimated:
        return 1.0
    if not reference or not estimated:
        return 0.0
    ok = np.array([[abs(e[0] - r[0]) <= onset_tolerance and e[2] == r[2] for r in reference] for e in estimated])
    rows, cols = linear_sum_assignment(-ok.astype(float))
    matched = int(ok[rows, cols].sum())
    precision, recall = matched / len(estimated), matched / len(reference)
    return 0.0 if matched == 0 else 2 * precision * recall / (precision + recall)


def chroma(audio: np.ndarray) -> np.ndarray:
    """Mean 12-bin chroma of the magnitude spectrum (bins 60 Hz-4 kHz folded to pitch classes)."""
    spec = torch.stft(torch.as_tensor(audio, dtype=torch.float32), 2048, 512, window=torch.hann_window(2048),
                      return_complex=True).abs().mean(-1).numpy()
    freqs = np.fft.rfftfreq(2048, 1.0 / SAMPLE_RATE)
    use = (freqs >= 60) & (freqs <= 4000)
    pcs = np.round(12 * np.log2(freqs[use] / 440.0) + 69).astype(int) % 12
    return np.bincount(pcs, weights=spec[use] ** 2, minlength=12)


def chroma_similarity(generated: np.ndarray, reference: np.ndarray) -> float:
    """Cosine similarity of the two clips' mean chroma vectors."""
    a, b = chroma(generated), chroma(reference)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


# ---------------------------------------------------------------- speech vs music


def default_vad_model() -> Path:
    spec = find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("silero-vad is not installed: the speech-vs-music check needs its ONNX model")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"


def speech_probability(audio: np.ndarray, model_path: str | Path | None = None) -> float:
    """Fraction of 32 ms windows silero-vad calls speech (probability > 0.5)."""
    session = _onnx(str(model_path or default_vad_model()))
    state = np.zeros((2, 1, 128), np.float32)
    context = np.zeros((1, 64), np.float32)
    probs = []
    for i in range(0, len(audio) - 511, 512):
        x = np.concatenate([context, audio[None, i: i + 512].astype(np.float32)], axis=1)
        out, state = session.run(None, {"input": x, "state": state, "sr": np.array(SAMPLE_RATE, dtype=np.int64)})
        context = x[:, -64:]
        probs.append(float(out[0, 0]))
    return float(np.mean(np.array(probs) > 0.5)) if probs else 0.0


@dataclass
class ClipScores:
    task: str
    wer_errors: int = 0
    wer_words: int = 0
    mcd: float = float("nan")
    note_f1: float = float("nan")
    chroma: float = float("nan")
    speech_fraction: float = float("nan")
    transcript: str = ""
