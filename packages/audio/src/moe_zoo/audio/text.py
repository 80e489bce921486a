"""Conditioning vocabulary: phonemes for speech (espeak-ng), notes and tags for music.

Speech text is normalised (lower case, allowed characters only) and turned into espeak-ng's
ASCII phoneme mnemonics (``espeak-ng -q -x``), one token per character. Music is conditioned on
tags (composer, instrument, tempo) and the score as (pitch, duration) tokens.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess

from moe_zoo.core import InputError

ALLOWED = re.compile(r"[a-z0-9 ,.'?!\-]")
SPECIALS = ("<pad>", "<sep>", "<speech>", "<music>")
VOICES = ("espeak", "flite", "allison", "user")
COMPOSERS = ("bach", "palestrina", "other")
INSTRUMENTS = {"piano": 0, "violin": 40, "flute": 73, "clarinet": 71}
TEMPI = ("slow", "moderate", "fast")
PITCHES = tuple(range(21, 109))
DURATIONS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
PHONEME_CHARS = tuple(chr(c) for c in range(32, 127))


def _build_vocab() -> tuple[str, ...]:
    tokens = list(SPECIALS)
    tokens += [f"ph:{c}" for c in PHONEME_CHARS]
    tokens += [f"voice:{v}" for v in VOICES]
    tokens += [f"composer:{c}" for c in COMPOSERS]
    tokens += [f"instrument:{i}" for i in INSTRUMENTS]
    tokens += [f"tempo:{t}" for t in TEMPI]
    tokens += ["rest"] + [f"pitch:{p}" for p in PITCHES]
    tokens += [f"dur:{d}" for d in DURATIONS]
    return tuple(tokens)


VOCAB = _build_vocab()
INDEX = {token: i for i, token in enumerate(VOCAB)}
PAD, SEP, SPEECH, MUSIC = (INDEX[s] for s in SPECIALS)


def normalise_text(text: str) -> str:
    """Lower case, collapsed spaces; an :class:`InputError` for empty text or characters outside
    ``a-z 0-9 , . ' ? ! -``."""
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}")
    clean = " ".join(text.lower().split())
    if not clean:
        raise InputError("text is empty: give at least one word to speak")
    bad = sorted({c for c in clean if not ALLOWED.fullmatch(c)})
    if bad:
        raise InputError(f"text has unsupported characters {''.join(bad)!r}; allowed: letters, digits, space and , . ' ? ! -")
    if not re.search(r"[a-z0-9]", clean):
        raise InputError(f"text {text!r} has no letters or digits to speak")
    return clean


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise InputError("espeak-ng is not installed (apt-get install espeak-ng): it turns text into phonemes")
    return exe


@functools.lru_cache(maxsize=4096)
def phonemize(text: str) -> str:
    """espeak-ng's ASCII phoneme string of normalised ``text`` (clauses joined by spaces)."""
    clean = normalise_text(text)
    out = subprocess.run([_espeak(), "-q", "-x", "-v", "en-us", clean], capture_output=True, text=True, check=True)
    return " ".join(out.stdout.split())


def speech_tokens(text: str, voice: str = "espeak") -> list[int]:
    """``<speech> voice:<v> <phoneme chars...> <sep>``."""
    if voice not in VOICES:
        raise InputError(f"voice must be one of {VOICES}, got {voice!r}")
    chars = [INDEX.get(f"ph:{c}", INDEX["ph: "]) for c in phonemize(text)]
    return [SPEECH, INDEX[f"voice:{voice}"], *chars, SEP]


def tempo_tag(bpm: float) -> str:
    return "slow" if bpm < 90 else "moderate" if bpm < 130 else "fast"


def quantise_duration(quarters: float) -> float:
    return min(DURATIONS, key=lambda d: abs(d - quarters))


def music_tokens(notes: list[tuple[int | None, float]] | None, *, composer: str = "other", instrument: str = "piano",
                 bpm: float = 120.0) -> list[int]:
    """``<music> composer instrument tempo (pitch|rest, dur)... <sep>`` for notes as
    ``(midi pitch or None for a rest, duration in quarters)``; ``notes=None``: tags only."""
    if notes is not None and (not notes or all(p is None for p, _ in notes)):
        raise InputError("the score has no notes: give at least one (pitch, duration) with a pitch")
    if composer not in COMPOSERS:
        composer = "other"
    if instrument not in INSTRUMENTS:
        raise InputError(f"instrument must be one of {sorted(INSTRUMENTS)}, got {instrument!r}")
    tokens = [MUSIC, INDEX[f"composer:{composer}"], INDEX[f"instrument:{instrument}"], INDEX[f"tempo:{tempo_tag(bpm)}"]]
    for pitch, dur in notes or ():
        if pitch is not None and pitch not in PITCHES:
            raise InputError(f"note pitch must be a MIDI number in 21..108 (piano range), got {pitch}")
        if not dur > 0:
            raise InputError(f"note duration must be > 0 quarters, got {dur}")
        tokens += [INDEX["rest" if pitch is None else f"pitch:{pitch}"], INDEX[f"dur:{quantise_duration(dur)}"]]
    return [*tokens, SEP]
