"""Names the CLI needs before torch is imported: training variants and the paper-scale presets.

``ucf-crime`` / ``xd-violence`` set what GS-MoE (and UR-DMU, its task encoder) use on the real
benchmarks' I3D features (PAPERS.md, UR-DMU's code): features 1024-d per crop, 16-frame
snippets, videos pooled to 200 segments, UR-DMU's encoder (d = 512, two self-attention layers,
4 heads, 60 memory slots, dropout 0.5 in its Transformer), Adam lr 1e-4 with weight decay 5e-5 for
3,000 iterations on batches of 64 normal + 64 abnormal videos, one expert per anomaly class, the
paper's expert MLP 512-256-128-64 and its fusion gate, and the TGS term on the task encoder after a
warm-up of half its iterations. Stage 2-3 step counts and the warm-up length are not given in the
paper; 1,000 each and half are our choices.
"""

from __future__ import annotations

VARIANTS = ("gsmoe", "gsmoe-attn", "gsmoe-fusion", "gsmoe-free-gate", "gsmoe-no-tgs", "single", "urdmu", "mil")

_PAPER_MODEL = {"d_model": 512, "encoder_layers": 2, "encoder_heads": 4, "memory_slots": 60, "dropout": 0.5,
                "expert_hidden": 512, "expert_mlp": (512, 256, 128, 64), "gate_dim": 512, "gate_hidden": 512,
                "gate_mlp": (256, 128, 64), "gate_fusion": True}
_PAPER_TRAIN = {"n_segments": 200, "batch_size": 64, "encoder_steps": 3000, "encoder_lr": 1e-4, "encoder_ema": 0.0,
                "expert_steps": 1000, "gate_steps": 1000, "head_lr": 1e-4, "weight_decay": 5e-5,
                "feature_dropout": 0.0, "encoder_tgs_from": 0.5}

PRESETS: dict[str, dict] = {
    "ucf-crime": {"dataset": "ucf", "snippet_len": 16, "fps": 30.0, "model": _PAPER_MODEL, "train": _PAPER_TRAIN},
    "xd-violence": {"dataset": "xd", "snippet_len": 16, "fps": 24.0, "model": _PAPER_MODEL, "train": _PAPER_TRAIN},
}
