"""Built-in offline data (real recorded prompts, espeak-ng / flite speech, music21 scores rendered
with fluidsynth) and readers for the formats users have (LJSpeech, LibriTTS, MusicCaps-style).

Everything becomes a list of :class:`Clip`: mono 16 kHz audio plus its conditioning tokens.
Built-in data is generated once into ``$MOE_ZOO_CACHE/audio`` (default ``~/.cache/moe-zoo/audio``)
as wav files and a JSON manifest.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import random
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from moe_zoo.audio import text as tx
from moe_zoo.audio.audio_io import SAMPLE_RATE, read_audio, write_audio
from moe_zoo.core import InputError
from moe_zoo.core.runtime import get_logger

_log = get_logger(__name__)
MAX_SECONDS = 3.0
ASTERISK_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
# one cache folder per task, versioned separately (speech v3: 1000 training sentences instead of 200)
BUILTIN_VERSIONS = {"speech": "v3", "music": "v2"}
N_SENTENCES, N_HELDOUT_SENTENCES = 1000, 20


@dataclass
class Clip:
    """One training / evaluation example. ``notes``: ``(onset s, offset s, midi pitch)`` of the
    conditioning score (music); ``text``: the words (speech)."""

    task: str
    audio: np.ndarray
    cond: list[int]
    text: str = ""
    notes: list[tuple[float, float, int]] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def cache_dir() -> Path:
    root = Path(os.environ.get("MOE_ZOO_CACHE", Path.home() / ".cache" / "moe-zoo")).expanduser()
    return root / "audio"


# ---------------------------------------------------------------- speech: known sentences
_WORDS = {
    "det": ["the", "a", "one", "every"],
    "adj": ["red", "green", "blue", "small", "big", "old", "new", "happy"],
    "noun": ["cat", "dog", "bird", "car", "boat", "house", "tree", "man", "girl", "frog"],
    "verb": ["sees", "likes", "finds", "pushes", "follows", "calls"],
    "num": ["two", "three", "four", "five", "six", "seven", "eight", "nine"],
}


def sentences(n: int, seed: int) -> list[str]:
    """``n`` distinct template sentences ("the red cat sees four dogs") from a small vocabulary."""
    rng, out, seen = random.Random(seed), [], set()
    while len(out) < n:
        w = {k: rng.choice(v) for k, v in _WORDS.items()}
        obj = rng.choice(_WORDS["noun"])
        s = f"{w['det']} {w['adj']} {w['noun']} {w['verb']} {w['num']} {obj}s"
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def sentence_vocabulary() -> tuple[str, ...]:
    """Every word the template sentences can use (plural nouns included)."""
    words = {w for group in _WORDS.values() for w in group}
    return tuple(sorted(words | {f"{n}s" for n in _WORDS["noun"]}))


def train_and_heldout_sentences(n_train: int = N_SENTENCES, n_heldout: int = N_HELDOUT_SENTENCES, seed: int = 0) -> tuple[list[str], list[str]]:
    every = sentences(n_train + n_heldout, seed)
    return every[:n_train], every[n_train:]


def _tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise InputError(f"{name} is not installed (see packages/audio/apt.txt)")
    return exe


def synthesize(text: str, voice: str) -> np.ndarray:
    """Speech of ``text`` by espeak-ng (``voice="espeak"``) or flite (``"flite"``), 16 kHz."""
    clean = tx.normalise_text(text)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.wav"
        if voice == "espeak":
            cmd = [_tool("espeak-ng"), "-v", "en-us", "-s", "165", "-w", str(out), clean]
        elif voice == "flite":
            cmd = [_tool("flite"), "-voice", "kal", "-t", clean, "-o", str(out)]
        else:
            raise InputError(f"synthesize: voice must be 'espeak' or 'flite', got {voice!r}")
        subprocess.run(cmd, check=True, capture_output=True)
        return trim_silence(read_audio(out))


def trim_silence(audio: np.ndarray, threshold: float = 0.01, pad: int = 800) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > threshold * max(float(np.abs(audio).max()), 1e-8))
    if loud.size == 0:
        return audio
    return audio[max(loud[0] - pad, 0): loud[-1] + pad]


def asterisk_prompts(max_seconds: float = MAX_SECONDS) -> list[tuple[Path, str]]:
    """Real recorded prompts whose file name spells their words (``all-circuits-busy-now.wav``);
    the words are read from the name (approximate: some names abbreviate)."""
    if not ASTERISK_DIR.is_dir():
        return []
    out = []
    for path in sorted(ASTERISK_DIR.glob("*.wav")):
        words = path.stem.split("-")
        if all(w.isalpha() for w in words):
            out.append((path, " ".join(words)))
    return out


# ---------------------------------------------------------------- music: music21 + fluidsynth
def score_notes(score, max_notes: int = 10) -> list[tuple[int | None, float]]:
    """The first notes of a music21 score's top part as ``(midi or None, quarters)``."""
    part = score.parts[0] if hasattr(score, "parts") and len(score.parts) else score
    out = []
    for element in part.flatten().notesAndRests:
        dur = float(element.quarterLength)
        if dur <= 0:
            continue
        if element.isRest:
            if out:
                out.append((None, dur))
        elif element.isChord:
            out.append((int(max(p.midi for p in element.pitches)), dur))
        else:
            out.append((int(element.pitch.midi), dur))
        if len(out) >= max_notes:
            break
    return out


def fit_notes(notes: list[tuple[int | None, float]], bpm: float, max_seconds: float) -> list[tuple[int | None, float]]:
    """Notes quantised to the conditioning grid, cut to ``max_seconds`` at ``bpm``."""
    kept, total = [], 0.0
    for pitch, dur in notes:
        q = tx.quantise_duration(dur)
        if (total + q) * 60.0 / bpm > max_seconds:
            break
        if pitch is not None and pitch not in tx.PITCHES:
            continue
        kept.append((pitch, q))
        total += q
    while kept and kept[-1][0] is None:
        kept.pop()
    return kept


def note_times(notes: list[tuple[int | None, float]], bpm: float) -> list[tuple[float, float, int]]:
    """``(onset s, offset s, pitch)`` of the sounding notes, starting at 0."""
    out, t = [], 0.0
    for pitch, dur in notes:
        seconds = dur * 60.0 / bpm
        if pitch is not None:
            out.append((t, t + seconds, pitch))
        t += seconds
    return out


def render_notes(notes: list[tuple[int | None, float]], *, instrument: str = "piano", bpm: float = 120.0,
                 tail: float = 0.3) -> np.ndarray:
    """Render a monophonic note list with fluidsynth and the GM soundfont, 16 kHz mono."""
    from music21 import instrument as m21_instrument
    from music21 import note, stream, tempo

    if instrument not in tx.INSTRUMENTS:
        raise InputError(f"instrument must be one of {sorted(tx.INSTRUMENTS)}, got {instrument!r}")
    s = stream.Stream()
    inst = m21_instrument.Instrument()
    inst.midiProgram = tx.INSTRUMENTS[instrument]
    s.append(inst)
    s.append(tempo.MetronomeMark(number=bpm))
    for pitch, dur in notes:
        s.append(note.Rest(quarterLength=dur) if pitch is None else note.Note(pitch, quarterLength=dur))
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "m.mid", Path(tmp) / "m.wav"
        s.write("midi", fp=str(mid))
        subprocess.run([_tool("fluidsynth"), "-ni", "-g", "0.8", "-F", str(wav), "-r", str(SAMPLE_RATE),
                        str(SOUNDFONT), str(mid)], check=True, capture_output=True)
        audio = read_audio(wav)
    total = sum(d for _, d in notes) * 60.0 / bpm
    return audio[: int((total + tail) * SAMPLE_RATE)]


def music_pieces(per_composer: dict[str, int]) -> list[tuple[str, str]]:
    """``(composer, corpus path)`` of scores in music21's corpus, evenly spaced over the sorted list."""
    from music21 import corpus

    out = []
    for composer, n in per_composer.items():
        paths = sorted(str(p) for p in corpus.getComposer(composer))
        step = max(1, len(paths) // n)
        out += [(composer, p) for p in paths[::step][:n]]
    return out


# ---------------------------------------------------------------- built-in set
def _speech_items(n_train: int = N_SENTENCES, n_heldout: int = N_HELDOUT_SENTENCES) -> list[dict]:
    train, held = train_and_heldout_sentences(n_train, n_heldout)
    items = [{"task": "speech", "text": s, "voice": v, "split": split}
             for split, group in (("train", train), ("heldout", held)) for s in group for v in ("espeak", "flite")]
    prompts = asterisk_prompts()
    items += [{"task": "speech", "text": t, "voice": "allison", "source": str(p),
               "split": "heldout" if i % 10 == 9 else "train"} for i, (p, t) in enumerate(prompts)]
    return items


def _music_items(per_composer: dict[str, int] | None = None, renders: int = 2, seed: int = 0) -> list[dict]:
    """Each piece rendered ``renders`` times (random instrument and tempo); every 10th piece held out
    (all of its renderings)."""
    per_composer = per_composer or {"bach": 200, "palestrina": 40}
    rng = random.Random(seed)
    items = []
    for i, (composer, path) in enumerate(music_pieces(per_composer)):
        for _ in range(renders):
            items.append({"task": "music", "composer": composer, "source": path,
                          "instrument": rng.choice(sorted(tx.INSTRUMENTS)), "bpm": rng.choice([80.0, 110.0, 140.0]),
                          "split": "heldout" if i % 10 == 9 else "train"})
    return items


@functools.lru_cache(maxsize=8)
def _corpus_notes(path: str) -> tuple[tuple[int | None, float], ...]:
    from music21 import corpus

    return tuple(score_notes(corpus.parse(path), max_notes=16))


def _build_item(item: dict) -> dict | None:
    if item["task"] == "speech":
        if item["voice"] == "allison":
            audio = trim_silence(read_audio(item["source"]))
        else:
            audio = synthesize(item["text"], item["voice"])
        if len(audio) > MAX_SECONDS * SAMPLE_RATE:
            return None
        return {**item, "audio": audio}
    notes = fit_notes(_corpus_notes(item["source"]), item["bpm"], MAX_SECONDS - 0.3)
    if sum(p is not None for p, _ in notes) < 3:
        return None
    audio = render_notes(notes, instrument=item["instrument"], bpm=item["bpm"])
    return {**item, "score": [[p, d] for p, d in notes], "audio": audio}


def builtin_root(task: str) -> Path:
    return cache_dir() / f"builtin-{task}-{BUILTIN_VERSIONS[task]}"


def build_builtin(task: str, root: Path | None = None) -> Path:
    """Generate the built-in clips of ``task`` into ``root`` (wav files + ``manifest.json``; default
    :func:`builtin_root`); returns the folder."""
    if task not in BUILTIN_VERSIONS:
        raise InputError(f"task must be one of {sorted(BUILTIN_VERSIONS)}, got {task!r}")
    root = Path(root) if root else builtin_root(task)
    if (root / "manifest.json").is_file():
        return root
    items = _speech_items() if task == "speech" else _music_items()
    rows = []
    for i, item in enumerate(tqdm(items, desc=f"building built-in {task} audio", leave=False)):
        built = _build_item(item)
        if built is None:
            continue
        name = f"{built['task']}/{i:05d}.wav"
        write_audio(root / name, built.pop("audio"))
        rows.append({**built, "wav": name})
    tmp = root / "manifest.json.tmp"
    tmp.write_text(json.dumps(rows, indent=1))
    tmp.replace(root / "manifest.json")
    _log.info("built-in audio: %d clips in %s", len(rows), root)
    return root


def _clip_from_row(row: dict, root: Path) -> Clip:
    audio = read_audio(root / row["wav"])
    meta = {k: v for k, v in row.items() if k not in ("wav", "score", "text")}
    if row["task"] == "speech":
        return Clip("speech", audio, tx.speech_tokens(row["text"], row["voice"]), text=row["text"], meta=meta)
    notes = [(p, d) for p, d in row["score"]]
    cond = tx.music_tokens(notes, composer=row["composer"], instrument=row["instrument"], bpm=row["bpm"])
    return Clip("music", audio, cond, notes=note_times(notes, row["bpm"]), meta={**meta, "score": notes})


def load_builtin(split: str = "train", task: str | None = None) -> list[Clip]:
    """Built-in clips of ``split`` ("train" | "heldout"), optionally one ``task`` (speech first)."""
    if split not in ("train", "heldout"):
        raise InputError(f"split must be 'train' or 'heldout', got {split!r}")
    clips = []
    for t in BUILTIN_VERSIONS if task is None else (task,):
        root = build_builtin(t)
        rows = json.loads((root / "manifest.json").read_text())
        clips += [_clip_from_row(r, root) for r in rows if r["split"] == split and r["task"] == t]
    return clips


# ---------------------------------------------------------------- user formats
def _check_dir(root: str | Path, what: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{what} folder not found: {root}")
    return root


def _speech_clip(wav: Path, text: str, max_seconds: float) -> Clip | None:
    audio = read_audio(wav)
    if len(audio) > max_seconds * SAMPLE_RATE:
        return None
    return Clip("speech", audio, tx.speech_tokens(text, "user"), text=tx.normalise_text(text), meta={"source": str(wav)})


def read_ljspeech(root: str | Path, max_seconds: float = MAX_SECONDS) -> list[Clip]:
    """LJSpeech layout: ``metadata.csv`` (``id|text|normalized text``) and ``wavs/<id>.wav``.
    Clips longer than ``max_seconds`` are skipped; a missing or corrupt wav is an InputError."""
    root = _check_dir(root, "LJSpeech")
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise InputError(f"LJSpeech folder {root} has no metadata.csv")
    clips = []
    for n, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("|")
        if len(parts) < 2:
            raise InputError(f"{meta}:{n}: expected 'id|text|normalized text', got {line!r}")
        clip = _speech_clip(root / "wavs" / f"{parts[0]}.wav", parts[-1] or parts[1], max_seconds)
        if clip:
            clips.append(clip)
    return clips


def read_libritts(root: str | Path, max_seconds: float = MAX_SECONDS) -> list[Clip]:
    """LibriTTS layout: ``<speaker>/<chapter>/<id>.wav`` beside ``<id>.normalized.txt``."""
    root = _check_dir(root, "LibriTTS")
    clips = []
    for wav in sorted(root.rglob("*.wav")):
        txt = wav.with_suffix(".normalized.txt")
        if not txt.is_file():
            raise InputError(f"LibriTTS: {wav} has no transcript {txt.name}")
        clip = _speech_clip(wav, txt.read_text(encoding="utf-8").strip(), max_seconds)
        if clip:
            clips.append(clip)
    if not clips:
        raise InputError(f"LibriTTS folder {root} holds no usable wav + .normalized.txt pairs")
    return clips


def caption_tags(caption: str) -> dict:
    """Tags read from a free-text caption: instrument and tempo words (others default)."""
    words = caption.lower()
    instrument = next((i for i in tx.INSTRUMENTS if i in words), "piano")
    bpm = 80.0 if any(w in words for w in ("slow", "calm", "mellow")) else 140.0 if any(
        w in words for w in ("fast", "upbeat", "energetic")) else 110.0
    return {"instrument": instrument, "bpm": bpm, "composer": "other"}


def read_musiccaps(csv_path: str | Path, audio_dir: str | Path, max_seconds: float = MAX_SECONDS) -> list[Clip]:
    """MusicCaps-style: a CSV with ``ytid``, ``start_s``, ``end_s``, ``caption`` and audio files
    ``<audio_dir>/<ytid>.wav`` (the clip, or the whole track cut at start_s..end_s). Conditioning:
    tags read from the caption; no score (MusicCaps has none)."""
    csv_path, audio_dir = Path(csv_path), _check_dir(audio_dir, "MusicCaps audio")
    if not csv_path.is_file():
        raise InputError(f"MusicCaps CSV not found: {csv_path}")
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"ytid", "caption"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"{csv_path}: missing column(s) {sorted(missing)}; has {reader.fieldnames}")
        rows = list(reader)
    clips = []
    for row in rows:
        wav = audio_dir / f"{row['ytid']}.wav"
        if not wav.is_file():
            continue
        audio = read_audio(wav)
        start = float(row.get("start_s") or 0.0)
        if len(audio) > (start + max_seconds) * SAMPLE_RATE:
            audio = audio[int(start * SAMPLE_RATE): int((start + max_seconds) * SAMPLE_RATE)]
        tags = caption_tags(row["caption"])
        cond = tx.music_tokens(None, **tags)
        clips.append(Clip("music", audio[: int(max_seconds * SAMPLE_RATE)], cond, meta={**tags, "caption": row["caption"],
                                                                                        "source": str(wav)}))
    if not clips:
        raise InputError(f"no MusicCaps audio found in {audio_dir} for the ids in {csv_path}")
    return clips


def clip_summary(clips: list[Clip]) -> dict:
    tasks = {t: sum(c.task == t for c in clips) for t in ("speech", "music")}
    return {**tasks, "seconds": round(sum(c.seconds for c in clips), 1)}


def clip_dict(clip: Clip) -> dict:
    d = asdict(clip)
    d.pop("audio")
    return d
