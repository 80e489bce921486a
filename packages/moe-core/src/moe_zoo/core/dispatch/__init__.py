"""Expert dispatch backends, chosen by name and checked for availability.

=============  ==========================================================================
``eager``      per-expert loop with masks and autograd: the reference
``grouped``    sort by expert + ``torch._grouped_mm`` per projection (no Python loop)
``segmented``  sort once, fused gather/GEMM/scatter per expert segment, hand-written
               backward: the fastest on CPU at thousands of tokens
``padded``     rows padded to the largest expert count, two ``torch.bmm`` calls: for small
               batches (pays ``E * max count`` rows)
``triton``     Triton gather-GEMM / GEMM-scatter / grouped weight-gradient kernels (GPU,
               or CPU under ``TRITON_INTERPRET=1`` for testing)
``auto``       ``triton`` on CUDA when Triton imports, else ``segmented``
=============  ==========================================================================
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

import torch
from torch import Tensor

from moe_zoo.core.dispatch.eager import eager_expert_ffn
from moe_zoo.core.dispatch.grouped import grouped_available, grouped_expert_ffn
from moe_zoo.core.dispatch.padded import padded_expert_ffn
from moe_zoo.core.dispatch.plan import DispatchPlan, make_plan
from moe_zoo.core.dispatch.segmented import segmented_expert_ffn
from moe_zoo.core.errors import InputError
from moe_zoo.core.experts import ExpertBank

BACKENDS = ("eager", "grouped", "segmented", "padded", "triton")
ExpertFFN = Callable[[Tensor, ExpertBank, DispatchPlan], Tensor]


def _triton_reason(device: torch.device) -> str | None:
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed"
    if device.type == "cuda":
        return None
    if os.environ.get("TRITON_INTERPRET") == "1":
        return None
    return "triton needs a CUDA device (or TRITON_INTERPRET=1 to run its kernels on CPU for testing)"


def check_backend_name(name: str) -> None:
    """An :class:`InputError` unless ``name`` is a dispatch backend or ``"auto"``."""
    if name != "auto" and name not in BACKENDS:
        raise _unknown_backend(name)


def _unknown_backend(name: str) -> InputError:
    return InputError(f"unknown dispatch backend {name!r}; choose from {(*BACKENDS, 'auto')}")


def backend_unavailable(name: str, bank: ExpertBank, device: torch.device, dtype: torch.dtype) -> str | None:
    """None when backend ``name`` can run here, else the reason."""
    if name in ("eager", "segmented", "padded"):
        return None
    if name == "grouped":
        return grouped_available(bank, dtype)
    if name == "triton":
        return _triton_reason(device)
    raise _unknown_backend(name)


def available_backends(bank: ExpertBank, device: torch.device | str = "cpu",
                       dtype: torch.dtype = torch.float32) -> list[str]:
    device = torch.device(device)
    return [b for b in BACKENDS if backend_unavailable(b, bank, device, dtype) is None]


def resolve_backend(name: str, bank: ExpertBank, device: torch.device, dtype: torch.dtype) -> str:
    if name == "auto":
        return "triton" if device.type == "cuda" and _triton_reason(device) is None else "segmented"
    reason = backend_unavailable(name, bank, device, dtype)
    if reason is not None:
        raise InputError(f"dispatch backend {name!r} is unavailable: {reason}")
    return name


def get_expert_ffn(name: str) -> ExpertFFN:
    if name == "eager":
        return eager_expert_ffn
    if name == "grouped":
        return grouped_expert_ffn
    if name == "segmented":
        return segmented_expert_ffn
    if name == "padded":
        return padded_expert_ffn
    if name == "triton":
        from moe_zoo.core.dispatch.triton_backend import triton_expert_ffn

        return triton_expert_ffn
    raise _unknown_backend(name)


def expert_ffn(x: Tensor, bank: ExpertBank, plan: DispatchPlan, backend: str = "auto") -> Tensor:
    """``y_t = sum_{(t, e, w) in plan} w * FFN_e(x_t)`` with the chosen backend."""
    name = resolve_backend(backend, bank, x.device, x.dtype)
    return get_expert_ffn(name)(x, bank, plan)


__all__ = ["BACKENDS", "DispatchPlan", "available_backends", "expert_ffn", "get_expert_ffn", "make_plan",
           "resolve_backend"]
