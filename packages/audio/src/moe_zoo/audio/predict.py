"""High-level API: ``load``, ``tts``, ``music`` (waveforms at 16 kHz)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from moe_zoo.audio import text as tx
from moe_zoo.audio.generate import TEMPERATURE, TOP_K, generate_codes
from moe_zoo.audio.model import UniMoEAudio
from moe_zoo.core import InputError, create_model, load_model
from moe_zoo.core.checks import is_finite_real

DEFAULT_MODEL = "unimoe-audio-tiny"


def load(name_or_path: str | Path = DEFAULT_MODEL, device: str | None = None) -> UniMoEAudio:
    """A registered model with its shipped weights, or a checkpoint file written by ``train``."""
    path = Path(name_or_path)
    model = load_model(path) if path.suffix == ".safetensors" or path.is_file() else create_model(
        str(name_or_path), pretrained=True)
    if not isinstance(model, UniMoEAudio):
        raise InputError(f"{name_or_path} is not a UniMoE-Audio model ({type(model).__name__})")
    return model.to(device or "cpu").eval()


def _model(model: UniMoEAudio | str | Path | None) -> UniMoEAudio:
    return model if isinstance(model, UniMoEAudio) else load(model or DEFAULT_MODEL)


def _check_seconds(max_seconds: float) -> None:
    if not (is_finite_real(max_seconds) and 0 < max_seconds <= 10):
        raise InputError(f"max_seconds must be in (0, 10], got {max_seconds!r}")


def synthesize_tokens(model: UniMoEAudio, cond: list[int], *, max_seconds: float, seed: int, temperature: float,
                      top_k: int) -> np.ndarray:
    _check_seconds(max_seconds)
    frames = int(max_seconds * model.codec.config.frame_rate)
    codes = generate_codes(model, cond, max_frames=frames, seed=seed, temperature=temperature, top_k=top_k)
    if codes.shape[1] == 0:
        return np.zeros(model.codec.config.hop, np.float32)
    return model.codec.decode(codes)


def tts(text: str, *, model: UniMoEAudio | str | Path | None = None, voice: str = "flite", seed: int = 0,
        temperature: float = TEMPERATURE, top_k: int = TOP_K, max_seconds: float = 5.0) -> np.ndarray:
    """Speech for ``text`` (letters, digits, basic punctuation) in one of the built-in voices
    (``espeak``, ``flite``, ``allison``): a float32 wave at 16 kHz."""
    cond = tx.speech_tokens(text, voice)  # bad text fails before any model loads
    return synthesize_tokens(_model(model), cond, max_seconds=max_seconds, seed=seed, temperature=temperature,
                             top_k=top_k)


def score_to_notes(score: Any) -> list[tuple[int | None, float]]:
    """Notes of a music21 score/stream, or a list of ``(midi or None, quarters)`` pairs, checked."""
    if hasattr(score, "flatten"):
        from moe_zoo.audio.data import score_notes

        notes = score_notes(score, max_notes=16)
    else:
        try:
            notes = [(None if p is None else int(p), float(d)) for p, d in score]
        except (TypeError, ValueError):
            raise InputError("a score must be a music21 stream or a list of (midi pitch or None, quarters) pairs") from None
    if not notes or all(p is None for p, _ in notes):
        raise InputError("the score has no notes: give at least one (pitch, duration) with a pitch")
    return notes


def music_condition(score_or_tags: Any) -> list[int]:
    """Conditioning tokens for a score (music21 stream or note list) or a tags dict
    (``composer``, ``instrument``, ``bpm``, optional ``notes``)."""
    if isinstance(score_or_tags, dict):
        tags = dict(score_or_tags)
        notes = tags.pop("notes", None)
        unknown = set(tags) - {"composer", "instrument", "bpm"}
        if unknown:
            raise InputError(f"unknown music tag(s) {sorted(unknown)}; use composer, instrument, bpm, notes")
        bpm = float(tags.pop("bpm", 110.0))
        if not (is_finite_real(bpm) and 20 <= bpm <= 300):
            raise InputError(f"bpm must be in [20, 300], got {bpm}")
        return tx.music_tokens(None if notes is None else score_to_notes(notes), bpm=bpm, **tags)
    return tx.music_tokens(score_to_notes(score_or_tags))


def music(score_or_tags: Any, *, model: UniMoEAudio | str | Path | None = None, seed: int = 0,
          temperature: float = TEMPERATURE, top_k: int = TOP_K, max_seconds: float = 5.0) -> np.ndarray:
    """Music for a score (music21 stream or ``[(midi, quarters), ...]``) or tags
    (``{"instrument": "flute", "bpm": 110, "notes": [...]}``): a float32 wave at 16 kHz."""
    cond = music_condition(score_or_tags)
    return synthesize_tokens(_model(model), cond, max_seconds=max_seconds, seed=seed, temperature=temperature,
                             top_k=top_k)
