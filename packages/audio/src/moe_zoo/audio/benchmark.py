"""UniMoE-Audio benchmark (``benchmarks/run.py``, ``moe-zoo audio bench``): the curriculum MoE against a dense model of the same active width,
a top-2 MoE and naive joint training, on the built-in held-out sentences and pieces, 3 seeds.

    uv run --locked --no-sync python packages/audio/benchmarks/run.py            # make bench-audio
    uv run --locked --no-sync python packages/audio/benchmarks/run.py --report-only

Every (variant, seed) job saves a JSON record under ``records/`` (a rerun skips finished jobs);
the report (BENCHMARKS.md, figures/, examples/) is rendered from the records.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from moe_zoo.audio import data
from moe_zoo.audio import text as tx
from moe_zoo.audio.audio_io import SAMPLE_RATE, write_audio
from moe_zoo.audio.evaluate import evaluate, reference_scores
from moe_zoo.audio.generate import generate_codes
from moe_zoo.audio.model import UniMoEAudioConfig
from moe_zoo.audio.pipeline import fit_codec, make_pools
from moe_zoo.audio.train import TrainConfig, fit
from moe_zoo.core import save_checkpoint
from moe_zoo.core.argtypes import non_negative_int, positive_int
from moe_zoo.core.reporting import (
    format_mean_std,
    hardware_summary,
    markdown_table,
    replace_marked_block,
    save_figure,
    write_benchmarks_md,
    write_text_atomic,
)

VARIANTS = {
    # name: (model overrides, training overrides)
    "curriculum-topp-moe": ({}, {"recipe": "curriculum"}),
    "curriculum-topp-moe-rescaled": ({}, {"recipe": "curriculum", "split_rescale": True}),
    "joint-topp-moe": ({}, {"recipe": "joint"}),
    "joint-top2-moe": ({"router": "topk"}, {"recipe": "joint"}),
    "joint-dense": ({"ffn": "dense"}, {"recipe": "joint"}),
}
EARLIER = "attempt2"  # records of the previous benchmark run, rendered apart
CURRICULA = [v for v, (_, t) in VARIANTS.items() if t["recipe"] == "curriculum"]
LABELS = {
    "curriculum-topp-moe": "UniMoE-Audio: top-p MoE, 3-stage curriculum",
    "curriculum-topp-moe-rescaled": "same, split experts' outputs x4 at the merge",
    "joint-topp-moe": "top-p MoE, naive joint training",
    "joint-top2-moe": "top-2 MoE, joint training",
    "joint-dense": "dense, same active FFN width, joint",
}
METRICS = [("wer", "speech WER ↓", 1), ("mcd", "MCD dB ↓", 1), ("note_f1", "note F1 ↑", 1), ("chroma", "chroma sim ↑", 1),
           ("vad_accuracy", "speech/music VAD acc ↑", 1), ("speech_ce", "speech CE ↓", 1), ("music_ce", "music CE ↓", 1)]


def args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = TrainConfig()
    p.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0, 1, 2])
    p.add_argument("--backbone-steps", type=non_negative_int, default=defaults.backbone_steps)
    p.add_argument("--specialist-steps", type=positive_int, default=defaults.specialist_steps)
    p.add_argument("--warmup-steps", type=positive_int, default=defaults.warmup_steps)
    p.add_argument("--joint-steps", type=positive_int, default=defaults.joint_steps)
    p.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                   help="models to train (default: all; the report shows every recorded one)")
    p.add_argument("--n-eval", type=positive_int, default=40,
                   help="generated clips per task per job (the built-in held-out split has 40 of each)")
    p.add_argument("--out", type=Path, default=Path("audio-bench"), help="folder for records, figures, examples")
    p.add_argument("--report", type=Path, default=None, help="BENCHMARKS.md path (default: in --out)")
    p.add_argument("--readme", type=Path, default=None, help="README whose results block is re-rendered (default: none)")
    p.add_argument("--report-only", action="store_true")
    return p


def run_jobs(args: argparse.Namespace) -> None:
    records = args.out / "records"
    records.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    train_clips, held = data.load_builtin("train"), data.load_builtin("heldout")
    config = UniMoEAudioConfig()
    codec = fit_codec(config, train_clips, seed=0)
    pools = make_pools(config, train_clips, codec)
    ref_path = records / "reference.json"
    if not ref_path.is_file():
        ref = reference_scores(held, codec, n_speech=args.n_eval, n_music=args.n_eval)
        ref["data"] = {"train": data.clip_summary(train_clips), "heldout": data.clip_summary(held)}
        ref_path.write_text(json.dumps(ref, indent=1))
        _save_examples(args.out, "reference", held, [c.audio for c in held])
        _save_examples(args.out, "codec", held, [codec.decode(codec.encode(c.audio)) for c in held])
    train_settings = TrainConfig(backbone_steps=args.backbone_steps, specialist_steps=args.specialist_steps,
                                 warmup_steps=args.warmup_steps, joint_steps=args.joint_steps,
                                 batch_size=args.batch_size)
    for seed in args.seeds:
        for name in args.variants:
            overrides, train_overrides = VARIANTS[name]
            path = records / f"{name}-seed{seed}.json"
            if path.is_file():
                continue
            began = time.perf_counter()
            settings = train_settings.replace(**train_overrides, seed=seed)
            model, log = fit(pools, config.replace(**overrides), settings,
                             codec_state=codec.state_dict())
            result = evaluate(model, held, n_speech=args.n_eval, n_music=args.n_eval, seed=seed)
            record = {"variant": name, "seed": seed, "metrics": result.metrics, "usage": result.usage,
                      "train_seconds": log["seconds"], "job_seconds": time.perf_counter() - began,
                      "final_train_ce": {k: float(np.mean(v[-10:])) for k, v in log.items() if isinstance(v, list)},
                      "first_train_ce": {k: float(np.mean(v[:10])) for k, v in log.items() if isinstance(v, list)},
                      "steps": settings.total_steps, "train": settings.to_dict(), "seen": log["seen"],
                      "speed_5s": generation_speed(model, seed=seed),
                      "batch_size": args.batch_size, "n_eval": args.n_eval,
                      "load": os.getloadavg(),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
            path.write_text(json.dumps(record, indent=1))
            print(f"{name} seed {seed}: {json.dumps(result.metrics)}", flush=True)
            if seed == 0:  # seed 0 even when the seeds run in separate processes
                _save_examples(args.out, name, [c for c, _ in result.examples], [w for _, w in result.examples])
                if name in CURRICULA:
                    save_checkpoint(records / f"{name}-seed{seed}.safetensors", model,
                                    {"command": " ".join(sys.argv), "train": settings.to_dict(),
                                     "data": "built-in v2", "metrics": result.metrics},
                                    model_name="unimoe-audio-tiny", config=model.config)


def _save_examples(out: Path, name: str, clips, waves) -> None:
    """The first held-out speech and music clip of a job as wav files."""
    for task in ("speech", "music"):
        for clip, wave in zip(clips, waves):
            if clip.task == task and (task == "music" or clip.meta.get("voice") in ("espeak", "flite")):
                write_audio(out / "examples" / f"{name}-{task}.wav", wave)
                break


def report(args: argparse.Namespace) -> None:
    records = args.out / "records"
    ref = json.loads((records / "reference.json").read_text())
    jobs, by_variant = _load_jobs(records)
    seeds = sorted({j["seed"] for j in jobs})
    headers, rows = _results_table(by_variant)
    ref_rows = [[name, *[f"{ref[name][k]:.3f}" if k in ref[name] else "—" for k, _, _ in METRICS]]
                for name in ("recording", "codec")]
    sections = [
        ("Results (held-out sentences and pieces; mean ± std over seeds)", markdown_table(headers, rows)),
        ("Ceilings: the real recordings and their codec resynthesis", markdown_table(
            ["audio", *[h for _, h, _ in METRICS]], ref_rows)
         + "\n\nWER here is pocketsphinx with a word-loop grammar over the 46-word sentence vocabulary; "
           "a generator with this codec cannot beat the codec row."),
        ("Curriculum beats naive joint training?", _verdict(by_variant)),
        (f"Earlier runs, not rerun (`records/{EARLIER}/`)", _earlier(records / EARLIER)),
        ("Training budget per model (same for every model: optimizer steps, examples and audio frames per task)",
         _budget_table(by_variant)),
        ("Training loss through the curriculum's stages", _stage_table(by_variant)),
        ("Expert usage per task and layer (curriculum MoE)", _usage_table(by_variant["curriculum-topp-moe"])),
        ("Speed and memory", _speed(jobs)),
    ]
    report_path = args.report or args.out / "BENCHMARKS.md"
    rel = Path(os.path.relpath(args.out, report_path.parent))
    sections.append(("Figures and examples", (
        f"![spectrograms of held-out examples]({(rel / 'figures' / 'examples.png').as_posix()})\n\n"
        f"![expert usage per task and layer]({(rel / 'figures' / 'expert_usage.png').as_posix()})\n\n"
        f"Generated wav files (seed 0, first held-out sentence and piece): `{(rel / 'examples').as_posix()}/`.")))
    _plots(args.out, by_variant)
    first = jobs[0] if jobs else {}
    scale = (f"built-in data: train {ref['data']['train']}, held-out {ref['data']['heldout']}; "
             f"{first.get('steps', '?')} optimizer steps per model, batch {first.get('batch_size', args.batch_size)}; "
             f"{first.get('n_eval', args.n_eval)} generated clips per task per job")
    readme = args.readme
    if readme is not None and readme.is_file() and rows:
        replace_marked_block(readme, "<!-- results:start -->", "<!-- results:end -->", (
            f"From `benchmarks/run.py` ({scale}; seeds {seeds}; full tables and plots in [BENCHMARKS.md](BENCHMARKS.md)):\n\n"
            + markdown_table(headers, rows) + "\n\nCeilings: " + "; ".join(
                f"{name}: WER {ref[name]['wer']:.3f}, MCD {ref[name]['mcd']:.2f}, note F1 {ref[name]['note_f1']:.3f}, "
                f"chroma {ref[name]['chroma']:.3f}" for name in ("recording", "codec"))
            + "\n\nCurriculum vs naive joint training (the issue's test):\n\n" + _verdict(by_variant)))
    write_benchmarks_md(report_path, "UniMoE-Audio benchmark (moe_zoo.audio)",
                        command="uv run --locked --no-sync python packages/audio/benchmarks/run.py", sections=sections,
                        notes=scale + ". Timings were taken on a shared, oversubscribed 2-core machine (load averages "
                        "in the records).", seeds=seeds, hardware=hardware_summary())


def _load_jobs(records: Path) -> tuple[list, dict]:
    jobs = [json.loads(p.read_text()) for p in sorted(records.glob("*-seed*.json"))]
    return jobs, {v: [j for j in jobs if j["variant"] == v] for v in VARIANTS}


def _results_table(by_variant: dict) -> tuple[list[str], list[list]]:
    rows = []
    for v, js in by_variant.items():
        if not js:
            continue
        cells = [format_mean_std([j["metrics"][k] for j in js], 3) for k, _, _ in METRICS]
        experts = [j["metrics"]["ffn_experts_per_token"] for j in js]
        act = [j["metrics"]["active_params"] / 1e6 for j in js]
        rows.append([LABELS[v], len(js), *cells,
                     "—" if np.isnan(experts).all() else format_mean_std(experts, 2), format_mean_std(act, 3),
                     format_mean_std([j["train_seconds"] for j in js], 0)])
    headers = ["model", "seeds", *[h for _, h, _ in METRICS], "FFN experts / token", "active params (M)", "train s"]
    return headers, rows


def _earlier(records: Path) -> str:
    """The previous attempt's rows (other stage allocation, fewer evaluation clips): kept for the
    record, not comparable cell by cell with the table above."""
    jobs, by_variant = _load_jobs(records) if records.is_dir() else ([], {})
    if not jobs:
        return "none"
    headers, rows = _results_table(by_variant)
    j = jobs[0]
    stages = ", ".join(f"{k} {v}" for k, v in j["train"].items() if k.endswith("_steps"))
    return markdown_table(headers, rows) + (
        f"\n\nThe second attempt's benchmark: {j['steps']} optimizer steps, curriculum stages {stages}, joint lr "
        f"{j['train']['joint_lr']}; {j['n_eval']} generated clips per task per job (its own ceilings: "
        f"`records/{EARLIER}/reference.json`). The curriculum rows there used that allocation, not the current "
        "default.\n\n" + _verdict(by_variant))


def _verdict(by_variant: dict) -> str:
    return "\n\n".join(f"{LABELS[v]}:\n\n{_verdict_one(by_variant[v], by_variant['joint-topp-moe'])}"
                     for v in CURRICULA if by_variant[v])


def _verdict_one(cur: list, naive: list) -> str:
    if not cur or not naive:
        return "not run yet"
    lines = []
    naive_of = {j["seed"]: j for j in naive}
    pairs = [(j, naive_of[j["seed"]]) for j in sorted(cur, key=lambda j: j["seed"]) if j["seed"] in naive_of]
    for key, label, better in (("wer", "speech WER", -1), ("note_f1", "music note F1", 1),
                               ("speech_ce", "speech CE", -1), ("music_ce", "music CE", -1)):
        a, b = np.mean([j["metrics"][key] for j in cur]), np.mean([j["metrics"][key] for j in naive])
        wins = sum((x["metrics"][key] - y["metrics"][key]) * better > 0 for x, y in pairs)
        lines.append(f"- {label}: curriculum {a:.3f} vs naive {b:.3f}: "
                     f"{'curriculum better' if (a - b) * better > 0 else 'curriculum not better'} "
                     f"(better on {wins} of {len(pairs)} seeds)")
    return "\n".join(lines)


def _budget_table(by_variant: dict) -> str:
    rows = []
    for v, js in by_variant.items():
        if js and "seen" in js[0]:
            j = js[0]
            steps = ", ".join(f"{k} {n}" for k, n in j["train"].items() if k.endswith("_steps") and (
                v.startswith("curriculum") or k == "joint_steps"))
            rows.append([LABELS[v], j["steps"], steps if v.startswith("curriculum") else f"joint {j['steps']}",
                         *(j["seen"].get(t, {}).get(k, 0) for t in ("speech", "music") for k in ("examples", "frames"))])
    if not rows:
        return "not recorded"
    return markdown_table(["model", "optimizer steps", "stages", "speech examples", "speech frames", "music examples",
                           "music frames"], rows) + (
        "\n\nSeed 0's counts (the other seeds draw the same numbers of examples). Frames are delayed-grid columns "
        "(25 per second of audio, plus the delay and EOS columns). The curriculum's stage 1 steps each see one task "
        "(batch 8 of that task); every other step sees a balanced batch (4 + 4).")


def _stage_table(by_variant: dict) -> str:
    """Mean training CE (sum over codebooks, on training batches) at the start and end of each stage."""
    curricula = {v: [j for j in by_variant[v] if "first_train_ce" in j] for v in CURRICULA}
    curricula = {v: js for v, js in curricula.items() if js}
    naive = [j for j in by_variant["joint-topp-moe"] if "first_train_ce" in j]
    if not curricula:
        return "not recorded"
    rows = [[f"{stage} ({v})", format_mean_std([j["first_train_ce"][stage] for j in js], 2),
             format_mean_std([j["final_train_ce"][stage] for j in js], 2)]
            for v, js in curricula.items() for stage in js[0]["first_train_ce"]]
    if naive:
        rows.append([f"naive joint top-p MoE (all {naive[0]['steps']} steps)",
                     format_mean_std([j["first_train_ce"]["joint"] for j in naive], 2),
                     format_mean_std([j["final_train_ce"]["joint"] for j in naive], 2)])
    return markdown_table(["stage", "CE, first 10 steps", "CE, last 10 steps"], rows) + (
        f"\n\nSeeds with these records: {', '.join(f'{v} {len(js)}' for v, js in curricula.items())}. Stage 1 trains each specialist on its own task only; stage 2 "
        "starts from the merged MoE (split FFNs, averaged attention, fresh router and shared experts), so its first "
        "steps against the specialists' last ones are the cost of the merge.")


def _usage_table(jobs: list) -> str:
    if not jobs:
        return "not run yet"
    config = UniMoEAudioConfig()
    n = config.n_routed
    rows = []
    for layer in range(len(jobs[0]["usage"]["speech"])):
        cells = [f"layer {layer}"]
        for task in ("speech", "music"):
            u = np.mean([j["usage"][task][layer] for j in jobs], axis=0)
            cells += [f"{u[: n // 2].sum():.2f}", f"{u[n // 2: n].sum():.2f}", f"{u[n + config.n_shared:].sum():.2f}"]
        s, m = (np.mean([j["usage"][t][layer][:n] for j in jobs], axis=0) for t in ("speech", "music"))
        cells.append(f"{0.5 * np.abs(s / max(s.sum(), 1e-9) - m / max(m.sum(), 1e-9)).sum():.2f}")
        rows.append(cells)
    return markdown_table(["layer", "speech→speech-born (0-3)", "speech→music-born (4-7)", "speech→null",
                           "music→speech-born", "music→music-born", "music→null", "TV distance speech vs music"], rows) + (
        "\n\nEntries are routed-expert selections per token (summed shares; a token may pick several). "
        "Experts 0-3 come from the speech specialist's FFN, 4-7 from the music specialist's. "
        "TV distance 0 = the router treats both tasks alike, 1 = disjoint experts.")


def _speed(jobs: list) -> str:
    if not jobs:
        return "not run yet"
    rtf = [j["metrics"]["real_time_factor"] for j in jobs if j["variant"] == "curriculum-topp-moe"]
    five = [j["speed_5s"] for j in jobs if j["variant"] == "curriculum-topp-moe" and "speed_5s" in j]
    rss = max(j["peak_rss_mb"] for j in jobs)
    lines = [f"- generation real-time factor over the evaluation clips (seconds of compute per second of audio, "
             f"incl. Griffin-Lim, 1 thread): {format_mean_std(rtf, 2)}"]
    if five:
        lines.append(
            f"- 5 s of speech (forced to full length, curriculum model, 1 thread): tokens "
            f"{format_mean_std([f['token_seconds'] for f in five], 2)} s + Griffin-Lim "
            f"{format_mean_std([f['decode_seconds'] for f in five], 2)} s = real-time factor "
            f"{format_mean_std([f['rtf'] for f in five], 2)} (< 1 is faster than real time)")
    train_s = [j["train_seconds"] for j in jobs if j["variant"] == "curriculum-topp-moe"]
    lines.append(f"- training the curriculum model (all stages): {format_mean_std(train_s, 0)} s")
    return ("\n".join(lines) + f"\n- peak resident memory of the benchmark process: {rss:.0f} MB\n"
            f"- load averages during the jobs: {min(j['load'][0] for j in jobs):.1f}-{max(j['load'][0] for j in jobs):.1f}")


def generation_speed(model, seconds: float = 5.0, seed: int = 0) -> dict:
    """Wall time to generate ``seconds`` of speech (EOS suppressed until then) and to decode it."""
    cond = tx.speech_tokens(data.train_and_heldout_sentences()[1][0], "flite")
    frames = int(seconds * model.codec.config.frame_rate)
    began = time.perf_counter()
    codes = generate_codes(model, cond, max_frames=frames, min_frames=frames, seed=seed)
    middle = time.perf_counter()
    wave = model.codec.decode(codes)
    end = time.perf_counter()
    audio = len(wave) / SAMPLE_RATE
    return {"audio_seconds": audio, "token_seconds": middle - began, "decode_seconds": end - middle,
            "rtf": (end - began) / audio}


def _example_names(examples: Path) -> list[str]:
    """Rows of the examples figure: reference, codec and the variants with a saved example. Exact file
    names, not a prefix glob, which would give curriculum-topp-moe an empty row when only
    curriculum-topp-moe-rescaled's examples are there."""
    return [n for n in ("reference", "codec", *VARIANTS)
            if any((examples / f"{n}-{task}.wav").is_file() for task in ("speech", "music"))]


def _plots(out: Path, by_variant: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from moe_zoo.audio.audio_io import read_audio
    from moe_zoo.audio.codec import CodecConfig, MelRVQCodec

    codec = MelRVQCodec(CodecConfig())
    names = _example_names(out / "examples")
    fig, axes = plt.subplots(max(len(names), 1), 2, figsize=(10, 2 * max(len(names), 1)), squeeze=False)
    for r, name in enumerate(names):
        for c, task in enumerate(("speech", "music")):
            path = out / "examples" / f"{name}-{task}.wav"
            ax = axes[r, c]
            if path.is_file():
                ax.imshow(codec.log_mel(read_audio(path)).T.numpy(), origin="lower", aspect="auto", cmap="magma")
            ax.set_title(f"{name}: {task}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    save_figure(fig, out / "figures" / "examples.png")
    jobs = by_variant["curriculum-topp-moe"]
    if jobs:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3))
        for ax, task in zip(axes, ("speech", "music")):
            u = np.mean([j["usage"][task] for j in jobs], axis=0)
            ax.imshow(u, cmap="viridis", vmin=0, aspect="auto")
            ax.set_title(f"{task} tokens: share per expert", fontsize=9)
            ax.set_xlabel("expert (0-3 speech-born, 4-7 music-born, 8-9 shared, 10 null)")
            ax.set_ylabel("layer")
        save_figure(fig, out / "figures" / "expert_usage.png")


def main(argv: list[str] | None = None) -> int:
    args = args_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not args.report_only:
        run_jobs(args)
        write_text_atomic(args.out / "records" / "git.txt", subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout)
    report(args)
    return 0

