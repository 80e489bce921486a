"""Where the curriculum loses against naive joint training: held-out CE after every stage, for
several step allocations and learning rates with the same 1000 optimizer steps in total, on a
development seed that is not a benchmark seed (default 10).

    uv run --locked --no-sync python packages/audio/benchmarks/stage_allocation.py   # ~4-6 min per setting on 2 busy cores
    uv run --locked --no-sync python packages/audio/benchmarks/stage_allocation.py --settings naive-joint "short-backbone, rescaled merge"

Writes records/stage_allocation.json after every setting (a rerun skips recorded ones) and prints a
Markdown table (held-out CE per codebook, nats: speech / music).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from moe_zoo.audio import data
from moe_zoo.audio.evaluate import teacher_forced_loss
from moe_zoo.audio.model import UniMoEAudioConfig
from moe_zoo.audio.pipeline import fit_codec, make_pools
from moe_zoo.audio.train import TrainConfig, train_curriculum, train_joint
from moe_zoo.core.argtypes import non_negative_int
from moe_zoo.core.reporting import markdown_table, write_text_atomic

# every setting: 1000 optimizer steps = backbone + 2 x specialist (100 each) + warm-up (50) + joint
SETTINGS = {
    "naive-joint": {"recipe": "joint"},
    "attempt-2 (400/100/50/350, joint lr 2e-3)": {"backbone_steps": 400, "joint_steps": 350, "joint_lr": 2e-3},
    "attempt-2, joint lr 3e-3": {"backbone_steps": 400, "joint_steps": 350, "joint_lr": 3e-3},
    "short-backbone (100/100/50/650, joint lr 3e-3)": {"backbone_steps": 100, "joint_steps": 650, "joint_lr": 3e-3},
    "short-backbone, rescaled merge": {"backbone_steps": 100, "joint_steps": 650, "joint_lr": 3e-3,
                                       "split_rescale": True},
}
OUT = Path(__file__).resolve().parent / "records" / "stage_allocation.json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=non_negative_int, default=10)
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    train, held = data.load_builtin("train"), data.load_builtin("heldout")
    config = UniMoEAudioConfig()
    codec = fit_codec(config, train, seed=0)
    pools = make_pools(config, train, codec)
    held_pools = make_pools(config, held, codec)
    examples = held_pools["speech"] + held_pools["music"]
    records = json.loads(OUT.read_text()) if OUT.is_file() else {}
    for name in args.settings:
        key = f"{name} | seed {args.seed}"
        if key in records:
            continue
        settings = TrainConfig(seed=args.seed).replace(**SETTINGS[name])
        stages = {}
        on_stage = _recorder(examples, stages)
        began = time.perf_counter()
        if settings.recipe == "joint":
            model, _ = train_joint(pools, config, settings, codec_state=codec.state_dict())
            on_stage("joint", model)
        else:
            train_curriculum(pools, config, settings, codec_state=codec.state_dict(), on_stage=on_stage)
        records[key] = {"train": settings.to_dict(), "heldout_ce": stages, "seconds": time.perf_counter() - began,
                        "load": os.getloadavg()}
        write_text_atomic(OUT, json.dumps(records, indent=1))
        print(key, json.dumps(stages), flush=True)
    rows = [[key, *[_pair(r["heldout_ce"].get(s, {})) for s in ("stage0_backbone", "merged", "stage2")],
             " / ".join(f"{r['heldout_ce'][s][f'{t}_ce']:.3f}" for s, t in (("stage1_speech", "speech"),
                                                                            ("stage1_music", "music"))
                        if s in r["heldout_ce"]) or "—",
             _pair(r["heldout_ce"].get("stage3", r["heldout_ce"].get("joint", {}))), f"{r['seconds']:.0f}"]
            for key, r in records.items()]
    print(markdown_table(["setting", "after stage 0", "after merge", "after stage 2", "specialists (own task)",
                          "final (after stage 3 / joint)", "train s"], rows))
    return 0


def _recorder(examples: list, stages: dict):
    """A stage callback writing the held-out CE into ``stages`` (a specialist: its own task only)."""
    def on_stage(stage, model):
        model.eval()
        stages[stage] = teacher_forced_loss(model, [e for e in examples if not stage.startswith("stage1_")
                                                    or e.task == stage.removeprefix("stage1_")])
    return on_stage


def _pair(ce: dict) -> str:
    return f"{ce['speech_ce']:.3f} / {ce['music_ce']:.3f}" if ce else "—"


if __name__ == "__main__":
    sys.exit(main())
