"""``moe-zoo audio tts|music|train|eval|bench|demo``."""

from __future__ import annotations

import argparse
from pathlib import Path

from moe_zoo.core import InputError
from moe_zoo.core.argtypes import non_negative_int, positive_float, positive_int
from moe_zoo.core.runtime import set_threads


def _notes(text: str) -> list[tuple[int | None, float]]:
    """``60:1,62:0.5,r:1`` -> [(60, 1.0), (62, 0.5), (None, 1.0)]."""
    out = []
    for item in text.split(","):
        try:
            pitch, dur = item.strip().split(":")
            out.append((None if pitch.lower() in ("r", "rest") else int(pitch), float(dur)))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected notes like 60:1,62:0.5,r:1 (midi:quarters), got {item!r}") from None
    return out


def _tts(args: argparse.Namespace) -> int:
    from moe_zoo.audio import tts, write_audio

    set_threads(1)   # one thread: fastest for these small models on a shared CPU
    wave = tts(args.text, model=args.model, voice=args.voice, seed=args.seed, max_seconds=args.max_seconds)
    print(f"wrote {write_audio(args.out, wave)} ({len(wave) / 16000:.1f} s)")
    return 0


def _music(args: argparse.Namespace) -> int:
    from moe_zoo.audio import music, write_audio

    set_threads(1)
    if args.piece:
        from music21 import corpus

        try:
            score = corpus.parse(args.piece)
        except Exception as error:  # music21 raises many types for an unknown corpus path
            raise InputError(f"--piece {args.piece!r} is not a music21 corpus score: {error}") from None
        from moe_zoo.audio.data import score_notes

        notes = score_notes(score, max_notes=16)
    else:
        notes = args.notes
    tags = {"instrument": args.instrument, "bpm": args.bpm, "composer": args.composer}
    if notes is not None:
        tags["notes"] = notes
    wave = music(tags, model=args.model, seed=args.seed, max_seconds=args.max_seconds)
    print(f"wrote {write_audio(args.out, wave)} ({len(wave) / 16000:.1f} s)")
    return 0


def _load_data(specs: list[str]):
    from moe_zoo.audio import data

    clips = []
    for spec in specs:
        kind, _, rest = spec.partition(":")
        if kind == "builtin":
            clips += data.load_builtin("train")
        elif kind == "ljspeech":
            clips += data.read_ljspeech(rest)
        elif kind == "libritts":
            clips += data.read_libritts(rest)
        elif kind == "musiccaps":
            csv_path, _, audio_dir = rest.partition(":")
            clips += data.read_musiccaps(csv_path, audio_dir)
        else:
            raise InputError(f"--data {spec!r}: expected builtin, ljspeech:DIR, libritts:DIR or musiccaps:CSV:AUDIO_DIR")
    return clips


def _train(args: argparse.Namespace) -> int:
    from moe_zoo.audio.model import UniMoEAudioConfig
    from moe_zoo.audio.pipeline import train
    from moe_zoo.audio.train import TrainConfig

    set_threads(1)
    clips = _load_data(args.data)
    config = UniMoEAudioConfig(**({"ffn": "dense"} if args.model == "dense" else {"router": "topk"}
                                  if args.model == "topk" else {}))
    recipe = "curriculum" if args.model == "topp" and not args.joint else "joint"
    steps = {k: getattr(args, k) for k in ("backbone_steps", "specialist_steps", "warmup_steps", "joint_steps")}
    tc = TrainConfig(recipe=recipe, batch_size=args.batch_size, seed=args.seed, split_rescale=args.split_rescale,
                     **{k: v for k, v in steps.items() if v is not None})
    train(clips, config=config, train_config=tc, out=args.out, metadata={"data_spec": args.data})
    print(f"saved {args.out} ({tc.total_steps} steps, recipe {recipe})")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from moe_zoo.audio import data, evaluate, load

    set_threads(1)
    model = load(args.model)
    result = evaluate(model, data.load_builtin("heldout"), n_speech=args.n_eval, n_music=args.n_eval, seed=args.seed)
    for key, value in result.metrics.items():
        print(f"{key:>22}: {value:.4f}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from moe_zoo.audio.benchmark import main

    return main([a for i, a in enumerate(args.rest) if not (i == 0 and a == "--")])


def _demo(args: argparse.Namespace) -> int:
    from moe_zoo.audio.demo import run_demo

    set_threads(1)
    print(run_demo(args.out))
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    model_help = "registered name or checkpoint path (default: the shipped unimoe-audio-tiny)"

    p = sub.add_parser("tts", help="speak a text into a wav file")
    p.add_argument("text")
    p.add_argument("--out", type=Path, default=Path("speech.wav"))
    p.add_argument("--voice", default="flite", choices=["espeak", "flite", "allison"])
    p.add_argument("--model", default=None, help=model_help)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--max-seconds", type=positive_float, default=5.0)
    p.set_defaults(func=_tts)

    p = sub.add_parser("music", help="play a score (notes or a music21 corpus piece) or tags into a wav file")
    p.add_argument("--notes", type=_notes, default=None, help="midi:quarters list, e.g. 67:1,69:1,71:2 (r = rest)")
    p.add_argument("--piece", default=None, help="music21 corpus path, e.g. bach/bwv66.6 (its top line)")
    p.add_argument("--instrument", default="piano", choices=["piano", "violin", "flute", "clarinet"])
    p.add_argument("--bpm", type=positive_float, default=110.0)
    p.add_argument("--composer", default="other", choices=["bach", "palestrina", "other"])
    p.add_argument("--out", type=Path, default=Path("music.wav"))
    p.add_argument("--model", default=None, help=model_help)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--max-seconds", type=positive_float, default=5.0)
    p.set_defaults(func=_music)

    p = sub.add_parser("train", help="train on built-in or user data (speech and music needed)")
    p.add_argument("--data", nargs="+", default=["builtin"],
                   help="builtin | ljspeech:DIR | libritts:DIR | musiccaps:CSV:AUDIO_DIR (several allowed)")
    p.add_argument("--model", default="topp", choices=["topp", "topk", "dense"])
    p.add_argument("--joint", action="store_true", help="naive joint training instead of the curriculum (top-p)")
    p.add_argument("--backbone-steps", type=non_negative_int, default=None, help="default: TrainConfig's")
    p.add_argument("--specialist-steps", type=positive_int, default=None, help="default: TrainConfig's")
    p.add_argument("--warmup-steps", type=positive_int, default=None, help="default: TrainConfig's")
    p.add_argument("--joint-steps", type=positive_int, default=None, help="default: TrainConfig's")
    p.add_argument("--split-rescale", action="store_true",
                   help="curriculum: scale the split experts' outputs by the parts per FFN at the merge (README)")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--out", type=Path, default=Path("unimoe-audio.safetensors"))
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="metrics of a model on the built-in held-out sentences and pieces")
    p.add_argument("--model", default="unimoe-audio-tiny", help=model_help)
    p.add_argument("--n-eval", type=positive_int, default=6)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.set_defaults(func=_eval)

    p = sub.add_parser("bench", help="the benchmark (curriculum vs baselines); options after --, see --help there")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_bench)

    p = sub.add_parser("demo", help="speak a held-out sentence and play a melody with the shipped weights")
    p.add_argument("--out", type=Path, default=None, help="folder for the wav files (default: a temp folder)")
    p.set_defaults(func=_demo)
