"""What stage 2's merge costs, isolated: a dense backbone is trained briefly, then "merged" with
itself (both specialists = the backbone, so averaging the attention changes nothing and the split
experts sum exactly to its FFN). Any held-out loss above the backbone's is the merge's own cost:
the fresh router weights the split experts by a softmax (weights summing to 1 over the selected
and shared experts) where the dense FFN gave each part weight 1, and the fresh shared experts add
noise. Variants: shared experts zeroed; and routed outputs scaled by the number of parts.

    uv run --locked --no-sync python packages/audio/benchmarks/merge_cost.py   # ~5 min on 2 busy cores

Writes records/merge_cost.json and prints a Markdown table.
"""

import copy
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from moe_zoo.audio import data
from moe_zoo.audio.batching import encode_clips
from moe_zoo.audio.evaluate import teacher_forced_loss
from moe_zoo.audio.model import UniMoEAudio, UniMoEAudioConfig
from moe_zoo.audio.pipeline import fit_codec, make_pools
from moe_zoo.audio.train import TASKS, merge_specialists, run_steps
from moe_zoo.core.reporting import markdown_table
from moe_zoo.core.runtime import seed_everything

STEPS = 200


def main() -> int:
    torch.set_num_threads(1)
    train, held = data.load_builtin("train"), data.load_builtin("heldout")
    config = UniMoEAudioConfig()
    codec = fit_codec(config, train, seed=0)
    pools = make_pools(config, train, codec)
    dense = config.replace(ffn="dense", dense_hidden=config.expert_hidden * config.n_routed // len(TASKS))
    seed_everything(0)
    backbone = UniMoEAudio(dense)
    backbone.codec.load_state_dict(codec.state_dict())
    run_steps(backbone, pools, STEPS, 3e-3, batch_size=8, seed=0, desc="backbone")
    examples = encode_clips(backbone, held)
    merged = merge_specialists({t: copy.deepcopy(backbone) for t in TASKS}, config, seed=0).eval()
    no_shared = copy.deepcopy(merged)
    scaled = copy.deepcopy(merged)
    parts = config.n_routed // len(TASKS)
    with torch.no_grad():
        for model in (no_shared, scaled):
            for block in model.blocks:
                block.ffn.experts.w_out[config.n_routed:] = 0
        for block in scaled.blocks:
            block.ffn.experts.w_out[: config.n_routed] *= parts
    rows = {name: teacher_forced_loss(m.eval(), examples) for name, m in (
        ("dense backbone", backbone), ("merged (as stage 2 starts)", merged),
        ("merged, shared experts zeroed", no_shared), (f"merged, shared zeroed, routed outputs x{parts}", scaled))}
    out = Path(__file__).resolve().parent / "records" / "merge_cost.json"
    out.write_text(json.dumps({"backbone_steps": STEPS, "heldout_ce": rows}, indent=1))
    print(markdown_table(["model", "held-out speech CE", "held-out music CE"],
                         [[k, f"{v['speech_ce']:.3f}", f"{v['music_ce']:.3f}"] for k, v in rows.items()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
