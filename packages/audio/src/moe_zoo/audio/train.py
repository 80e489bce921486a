"""Training: the three-stage curriculum of UniMoE-Audio and the naive joint baseline.

0. (CPU stand-in for the paper's pretrained backbone) one dense model trained on the balanced
   mix for ``backbone_steps``; every specialist starts from it.
1. Dense specialists, one per task (speech, music), from that common starting point, each on its
   own data.
2. Each specialist's FFN is split along its hidden units into routed experts (speech -> experts
   0..3, music -> 4..7); attention, norms, embeddings and head are averaged; the router and the
   shared experts are warmed up on a balanced mix with everything else frozen. Optionally
   (``TrainConfig.split_rescale``) the routed experts' outputs are scaled by the number of parts
   each FFN was split into (the paper is silent on this; see :func:`merge_specialists`).
3. Joint training of all parameters on the balanced mix with the annealed balance loss.

Loss: ``L = sum_k CE_k + w(s) * sum_layers N_dyn sum_i f_i P_i`` with
``w(s)`` linear 0.025 -> 0.001 (moe-core's :class:`LinearAnneal`).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from moe_zoo.audio.batching import IGNORE, Batch, Example, collate, sample_batch
from moe_zoo.audio.model import UniMoEAudio, UniMoEAudioConfig
from moe_zoo.core import Config, InputError
from moe_zoo.core.checks import check_ints, check_reals
from moe_zoo.core.dynamic_balance import LinearAnneal
from moe_zoo.core.runtime import get_logger, seed_everything

_log = get_logger(__name__)
TASKS = ("speech", "music")


@dataclass(frozen=True)
class TrainConfig(Config):
    """Steps per stage; ``recipe="curriculum"`` or ``"joint"`` (one model from scratch on the mix for
    the curriculum's total step count ``backbone + 2 * specialist + warmup + joint``).
    ``split_rescale``: in stage 2's merge, scale each routed expert's output by the number of parts
    its dense FFN was split into (see :func:`merge_specialists`).

    The default allocation of the 1000 steps (100 backbone, 2 x 100 specialists, 50 warm-up, 650
    joint at the backbone's learning rate) was chosen on held-out loss with a development seed
    that is not a benchmark seed (``benchmarks/stage_allocation.py``); the paper gives no step
    counts or learning rates at this scale."""

    recipe: str = "curriculum"
    backbone_steps: int = 100
    specialist_steps: int = 100
    warmup_steps: int = 50
    joint_steps: int = 650
    batch_size: int = 8
    lr: float = 3e-3
    warmup_lr: float = 1e-3
    joint_lr: float = 3e-3
    aux_start: float = 0.025
    aux_end: float = 0.001
    split_rescale: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.recipe not in ("curriculum", "joint"):
            raise InputError(f"TrainConfig.recipe must be 'curriculum' or 'joint', got {self.recipe!r}")
        if not isinstance(self.split_rescale, bool):
            raise InputError(f"TrainConfig.split_rescale must be a bool, got {self.split_rescale!r}")
        check_ints("TrainConfig", self, {"backbone_steps": 0, "specialist_steps": 1, "warmup_steps": 1, "joint_steps": 1, "batch_size": 1,
                                         "seed": 0})
        check_reals("TrainConfig", self, positive=("lr", "warmup_lr", "joint_lr"), non_negative=("aux_start", "aux_end"))

    @property
    def total_steps(self) -> int:
        return self.backbone_steps + len(TASKS) * self.specialist_steps + self.warmup_steps + self.joint_steps


def codec_loss(logits: Tensor, target: Tensor) -> Tensor:
    """``sum_k mean_t CE(logits[t, k], target[t, k])`` over the positions with a target."""
    k, v = logits.shape[-2:]
    ce = F.cross_entropy(logits.reshape(-1, v), target.reshape(-1), ignore_index=IGNORE, reduction="none").view(-1, k)
    valid = (target.reshape(-1, k) != IGNORE).float()
    return ((ce * valid).sum(0) / valid.sum(0).clamp_min(1)).sum()


def step_loss(model: UniMoEAudio, batch: Batch, aux_weight: float) -> tuple[Tensor, Tensor]:
    out = model(batch.cond, batch.audio)
    ce = codec_loss(out.logits, batch.target)
    aux = model.aux_loss(out.routings) if out.routings else ce.new_zeros(())
    return ce + aux_weight * aux, ce


def run_steps(model: UniMoEAudio, pools: dict[str, list[Example]], steps: int, lr: float, *, batch_size: int,
              seed: int, params: Iterable[Tensor] | None = None, aux: Callable[[int], float] = lambda s: 0.0,
              weight_decay: float = 0.01, desc: str = "train", seen: dict | None = None) -> list[float]:
    """``steps`` AdamW steps on balanced batches from ``pools``; returns the CE per step. ``seen``
    (optional) accumulates the examples and audio frames trained on, per task."""
    rng = random.Random(seed)
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, steps))
    model.train()
    history = []
    for step in tqdm(range(steps), desc=desc, leave=False):
        examples = sample_batch(pools, batch_size, rng)
        if seen is not None:
            count_seen(seen, examples)
        batch = collate(examples, model.config.codebook_size)
        loss, ce = step_loss(model, batch, aux(step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        history.append(ce.item())
    return history


def count_seen(seen: dict, examples: list[Example]) -> None:
    """Add the examples and audio frames (delayed-grid columns) of ``examples`` to ``seen[task]``."""
    for e in examples:
        entry = seen.setdefault(e.task, {"examples": 0, "frames": 0})
        entry["examples"] += 1
        entry["frames"] += e.grid.shape[1]


def lr_factor(step: int, steps: int, warmup: int = 20, floor: float = 0.1) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``floor * lr`` at the last step:
    ``floor + (1 - floor) * (1 + cos(pi * (s - warmup) / (steps - warmup))) / 2``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(steps - warmup, 1)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def split_ffn(proj_in: Tensor, proj_out: Tensor, parts: int) -> tuple[Tensor, Tensor]:
    """Split a dense SwiGLU FFN (``proj_in [2H, d]`` = gate rows then up rows, ``proj_out [d, H]``)
    along its hidden units into ``parts`` experts of width ``h = H / parts`` in the bank layout
    (``w_in [parts, d, 2h]`` gate first, ``w_out [parts, h, d]``): the sum of the experts' outputs
    equals the dense FFN's output."""
    hidden = proj_out.shape[1]
    if hidden % parts:
        raise InputError(f"cannot split an FFN of width {hidden} into {parts} experts")
    h = hidden // parts
    gate, up = proj_in[:hidden].view(parts, h, -1), proj_in[hidden:].view(parts, h, -1)
    w_in = torch.cat([gate, up], dim=1).transpose(1, 2)  # [parts, d, 2h]
    w_out = proj_out.T.reshape(parts, h, -1)  # [parts, h, d]
    return w_in.contiguous(), w_out.contiguous()


@torch.no_grad()
def merge_specialists(specialists: dict[str, UniMoEAudio], config: UniMoEAudioConfig, seed: int = 0,
                      rescale: bool = False) -> UniMoEAudio:
    """Stage 2's starting point: an MoE model whose routed experts are the specialists' split FFNs
    (in ``TASKS`` order) and whose other weights are the specialists' average; router and shared
    experts freshly initialised.

    The dense FFN is the plain sum of its ``P`` parts, ``FFN(x) = sum_j E_j(x)``, but the MoE layer
    weights each selected expert by a router probability ``g_j < 1`` (the weights over the selected
    and shared experts sum to 1), so a freshly merged layer outputs a shrunken FFN. With
    ``rescale`` each routed expert's output projection is multiplied by ``P``
    (``E'_j = P * E_j``), upcycling-style: when the router selects all ``P`` parts of one
    specialist with equal gates ``1 / P``, ``sum_j (1 / P) E'_j(x) = FFN(x)`` exactly."""
    seed_everything(seed)
    moe = UniMoEAudio(config)
    models = [specialists[t] for t in TASKS]
    parts = config.n_routed // len(models)
    if parts * len(models) != config.n_routed or models[0].config.dense_hidden != parts * config.expert_hidden:
        raise InputError(f"specialists of FFN width {models[0].config.dense_hidden} do not split into "
                         f"{config.n_routed} experts of width {config.expert_hidden}")
    states = [m.state_dict() for m in models]
    target = moe.state_dict()
    for name in target:
        if ".ffn." not in name and name in states[0]:
            target[name] = torch.stack([s[name].float() for s in states]).mean(0).to(target[name].dtype)
    moe.load_state_dict(target)
    for i, block in enumerate(moe.blocks):
        for j, specialist in enumerate(models):
            ffn = specialist.blocks[i].ffn
            w_in, w_out = split_ffn(ffn.proj_in.weight, ffn.proj_out.weight, parts)
            block.ffn.experts.w_in[j * parts:(j + 1) * parts] = w_in
            block.ffn.experts.w_out[j * parts:(j + 1) * parts] = w_out * parts if rescale else w_out
    return moe


def warmup_parameters(model: UniMoEAudio) -> tuple[list[Tensor], list]:
    """Stage 2's trainable set: routers and shared experts. Everything else is frozen
    (``requires_grad=False``); the shared experts live in the bank's rows ``n_routed..``, so the
    routed rows' gradients are zeroed by hooks (returned, to remove after the stage)."""
    n = model.config.n_routed
    for p in model.parameters():
        p.requires_grad_(False)
    params, hooks = [], []

    def keep_shared(grad: Tensor) -> Tensor:
        grad = grad.clone()
        grad[:n] = 0
        return grad

    for block in model.blocks:
        block.ffn.router.weight.requires_grad_(True)
        params.append(block.ffn.router.weight)
        for w in (block.ffn.experts.w_in, block.ffn.experts.w_out):
            w.requires_grad_(True)
            params.append(w)
            hooks.append(w.register_hook(keep_shared))
    return params, hooks


def train_curriculum(pools: dict[str, list[Example]], config: UniMoEAudioConfig, train: TrainConfig,
                     codec_state: dict | None = None,
                     on_stage: Callable[[str, UniMoEAudio], None] | None = None) -> tuple[UniMoEAudio, dict]:
    """The three stages; returns the MoE model and a log of losses per stage. ``on_stage(name, model)``
    (optional) is called after each stage (and after the merge) with the model it produced."""
    on_stage = on_stage or (lambda name, model: None)
    if config.ffn != "moe":
        raise InputError("the curriculum builds an MoE model: config.ffn must be 'moe'")
    log, seen = {}, {}
    dense = config.replace(ffn="dense", dense_hidden=config.expert_hidden * config.n_routed // len(TASKS))
    # every specialist starts from the same weights, as the paper's start from one pretrained
    # backbone: averaging their attention weights in stage 2 needs a common origin
    seed_everything(train.seed)
    backbone = _with_codec(UniMoEAudio(dense), codec_state)
    if train.backbone_steps:
        log["stage0_backbone"] = run_steps(backbone, pools, train.backbone_steps, train.lr, batch_size=train.batch_size,
                                           seed=train.seed + 30, desc="stage 0: dense backbone", seen=seen)
        on_stage("stage0_backbone", backbone)
    specialists = {}
    for i, task in enumerate(TASKS):
        specialists[task] = copy.deepcopy(backbone)
        log[f"stage1_{task}"] = run_steps(specialists[task], {task: pools[task]}, train.specialist_steps, train.lr,
                                          batch_size=train.batch_size, seed=train.seed + i, desc=f"stage 1: {task}",
                                          seen=seen)
        on_stage(f"stage1_{task}", specialists[task])
    model = merge_specialists(specialists, config, seed=train.seed, rescale=train.split_rescale)
    on_stage("merged", model)
    params, hooks = warmup_parameters(model)
    log["stage2"] = run_steps(model, pools, train.warmup_steps, train.warmup_lr, batch_size=train.batch_size,
                              seed=train.seed + 10, params=params, weight_decay=0.0,
                              aux=lambda s: train.aux_start, desc="stage 2: gates + shared", seen=seen)
    for h in hooks:
        h.remove()
    on_stage("stage2", model)
    for p in model.parameters():
        p.requires_grad_(True)
    anneal = LinearAnneal(train.aux_start, train.aux_end, train.joint_steps)
    log["stage3"] = run_steps(model, pools, train.joint_steps, train.joint_lr, batch_size=train.batch_size,
                              seed=train.seed + 20, aux=anneal, desc="stage 3: joint", seen=seen)
    on_stage("stage3", model)
    log["seen"] = seen
    return model, log


def train_joint(pools: dict[str, list[Example]], config: UniMoEAudioConfig, train: TrainConfig,
                codec_state: dict | None = None) -> tuple[UniMoEAudio, dict]:
    """Naive joint training from scratch on the balanced mix (no curriculum), same step count."""
    seed_everything(train.seed)
    model = _with_codec(UniMoEAudio(config), codec_state)
    anneal = LinearAnneal(train.aux_start, train.aux_end, train.total_steps)
    seen = {}
    history = run_steps(model, pools, train.total_steps, train.lr, batch_size=train.batch_size, seed=train.seed,
                        aux=anneal, desc=f"joint ({config.ffn}/{config.router})", seen=seen)
    return model, {"joint": history, "seen": seen}


def _with_codec(model: UniMoEAudio, codec_state: dict | None) -> UniMoEAudio:
    if codec_state is not None:
        model.codec.load_state_dict(codec_state)
    return model


def fit(pools: dict[str, list[Example]], config: UniMoEAudioConfig, train: TrainConfig,
        codec_state: dict | None = None) -> tuple[UniMoEAudio, dict]:
    began = time.perf_counter()
    fn = train_curriculum if train.recipe == "curriculum" else train_joint
    model, log = fn(pools, config, train, codec_state)
    log["seconds"] = time.perf_counter() - began
    return model.eval(), log
