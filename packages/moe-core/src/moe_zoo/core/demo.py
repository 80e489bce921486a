"""A toy task an MoE can learn: a mixture of linear regimes.

Inputs come from ``n_regimes`` Gaussian clusters; each cluster has its own random linear map
``y = A_c x``. One linear model cannot fit them all; a top-k MoE learns to send each regime to
its own experts. :func:`run_demo` trains a small :class:`MoELayer` and reports the loss, the
per-expert load, and how purely each regime is routed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from moe_zoo.core.balance import load_imbalance
from moe_zoo.core.errors import InputError
from moe_zoo.core.layer import MoEConfig, MoELayer
from moe_zoo.core.runtime import get_logger, seed_everything

_log = get_logger(__name__)


@dataclass(frozen=True)
class DemoReport:
    losses: list[tuple[int, float]]
    loads: list[tuple[int, list[float]]]
    regime_purity: float
    baseline_loss: float


def make_regimes(n_regimes: int, d_model: int, seed: int) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_regimes, d_model, generator=generator) * 3.0
    maps = torch.randn(n_regimes, d_model, d_model, generator=generator) / d_model**0.5
    return centres, maps


def sample(centres: Tensor, maps: Tensor, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    regime = torch.randint(0, centres.shape[0], (n,), generator=generator)
    x = centres[regime] + torch.randn(n, centres.shape[1], generator=generator)
    y = torch.einsum("nd,nde->ne", x, maps[regime])
    return x, y, regime


def run_demo(*, steps: int = 300, n_experts: int = 8, top_k: int = 2, d_model: int = 32, batch: int = 512,
             seed: int = 0, backend: str = "auto", log_every: int = 50) -> DemoReport:
    """Train for ``steps`` (>= 1) steps and report; bad counts are an :class:`InputError`."""
    for name, value in (("steps", steps), ("n_experts", n_experts), ("batch", batch), ("log_every", log_every)):
        if not isinstance(value, int) or value < 1:
            raise InputError(f"run_demo: {name} must be an integer >= 1, got {value!r}")
    seed_everything(seed)
    centres, maps = make_regimes(n_experts, d_model, seed)
    config = MoEConfig(d_model=d_model, d_hidden=64, n_experts=n_experts, top_k=top_k, backend=backend)
    layer = MoELayer(config)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed + 1)
    losses, loads = [], []
    for step in range(1, steps + 1):
        x, y, _ = sample(centres, maps, batch, generator)
        out = layer(x)
        loss = torch.nn.functional.mse_loss(out.output, y)
        (loss + out.aux_loss(balance=0.01)).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % log_every == 0 or step == 1:
            counts = out.routing.expert_counts.float()
            load = (counts / counts.sum()).tolist()
            losses.append((step, loss.item()))
            loads.append((step, load))
            _log.info("step %d loss %.4f max/mean load %.2f", step, loss.item(), load_imbalance(counts))
    x, y, regime = sample(centres, maps, 4096, generator)
    with torch.no_grad():
        top1 = layer.route(x).indices[:, 0]
    joint = torch.zeros(n_experts, n_experts)
    joint.index_put_((regime, top1), torch.ones_like(top1, dtype=torch.float), accumulate=True)
    purity = float(joint.max(1).values.sum() / joint.sum())
    baseline = torch.linalg.lstsq(x, y).solution
    baseline_loss = float(torch.nn.functional.mse_loss(x @ baseline, y))
    return DemoReport(losses, loads, purity, baseline_loss)


def format_report(report: DemoReport) -> str:
    lines = ["step      loss   per-expert load (fraction of routed tokens)"]
    for (step, loss), (_, load) in zip(report.losses, report.loads):
        lines.append(f"{step:>4}  {loss:>8.4f}   " + " ".join(f"{v:.2f}" for v in load))
    lines.append(f"best single linear model (least squares) loss: {report.baseline_loss:.4f}")
    lines.append(f"regime purity of top-1 routing: {report.regime_purity:.2f} "
                 "(fraction of tokens whose regime's most-used expert is their top-1)")
    return "\n".join(lines)
