"""Expert activations with explicit derivatives (the fused backends write their own backward).

GLU variants act on a fused ``[gate | up]`` projection of width ``2f``:
``swiglu(h) = silu(g) * u``, ``geglu(h) = gelu(g) * u``. Plain ones act elementwise.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from moe_zoo.core.errors import InputError

GLU = {"swiglu": "silu", "geglu": "gelu"}
PLAIN = ("gelu", "relu", "silu")
ACTIVATIONS = (*GLU, *PLAIN)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def check_activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise InputError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
    return name


def is_glu(name: str) -> bool:
    return name in GLU


def _base(x: Tensor, name: str) -> Tensor:
    if name == "silu":
        return F.silu(x)
    if name == "gelu":
        return F.gelu(x)
    return F.relu(x)


def _base_grad(x: Tensor, name: str) -> Tensor:
    """d/dx of the base activation: silu' = s(1 + x(1 - s)); gelu' = Phi(x) + x phi(x); relu' = [x > 0]."""
    if name == "silu":
        s = torch.sigmoid(x)
        return s * (1.0 + x * (1.0 - s))
    if name == "gelu":
        cdf = 0.5 * (1.0 + torch.erf(x * (1.0 / math.sqrt(2.0))))
        return cdf + x * torch.exp(-0.5 * x * x) * _INV_SQRT_2PI
    return (x > 0).to(x.dtype)


def activate(h: Tensor, name: str) -> Tensor:
    """``a = act(h)``; for GLU ``h = [g | u]`` (width 2f) and ``a = base(g) * u`` (width f)."""
    if name in GLU:
        gate, up = h.chunk(2, dim=-1)
        return _base(gate, GLU[name]) * up
    return _base(h, name)


def activate_backward(h: Tensor, grad_a: Tensor, name: str) -> Tensor:
    """``dL/dh`` from ``dL/da``: GLU gives ``[grad_a * u * base'(g) | grad_a * base(g)]``."""
    if name in GLU:
        gate, up = h.chunk(2, dim=-1)
        base = GLU[name]
        return torch.cat([grad_a * up * _base_grad(gate, base), grad_a * _base(gate, base)], dim=-1)
    return grad_a * _base_grad(h, name)
