"""Expert activations with explicit derivatives (the fused backends write their own backward).

GLU variants act on a fused ``[gate | up]`` projection of width ``2f``:
``swiglu(h) = silu(g) * u``, ``geglu(h) = gelu(g) * u``. Plain ones act elementwise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from moe_zoo.core.errors import InputError

GLU = {"swiglu": "silu", "geglu": "gelu"}
PLAIN = ("gelu", "relu", "silu")
ACTIVATIONS = (*GLU, *PLAIN)


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


def activate(h: Tensor, name: str) -> Tensor:
    """``a = act(h)``; for GLU ``h = [g | u]`` (width 2f) and ``a = base(g) * u`` (width f)."""
    if name in GLU:
        gate, up = h.chunk(2, dim=-1)
        return _base(gate, GLU[name]) * up
    return _base(h, name)


def activate_(h: Tensor, name: str) -> Tensor:
    """In-place :func:`activate` for inference: overwrites ``h`` and returns a view of it."""
    if name in GLU:
        gate, up = h.chunk(2, dim=-1)
        if GLU[name] == "silu":
            F.silu(gate, inplace=True)
        else:
            gate.copy_(F.gelu(gate))
        return gate.mul_(up)
    if name == "silu":
        return F.silu(h, inplace=True)
    if name == "relu":
        return h.relu_()
    return h.copy_(F.gelu(h))


def activation_grads(h: Tensor, grad_a: Tensor, name: str, scale: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(dL/dh, a)`` for ``a = act(h)``, given ``grad_a = dL/d(a * scale)``.

    Uses ATen's fused ``silu_backward`` / ``gelu_backward`` kernels and writes both GLU halves
    straight into one ``[n, 2f]`` buffer: ``dL/du = g_s * base(g)``, ``dL/dg = base'(g) * g_s * u``
    with ``g_s = grad_a * scale``. ``a`` is returned for the combine-weight gradient.
    """
    grad_scaled = grad_a if scale is None else grad_a * scale
    if name in GLU:
        gate, up = h.chunk(2, dim=-1)
        base = GLU[name]
        act = _base(gate, base)
        grad_h = torch.empty_like(h)
        grad_gate, grad_up = grad_h.chunk(2, dim=-1)
        torch.mul(grad_scaled, act, out=grad_up)
        _base_backward(grad_scaled * up, gate, base, out=grad_gate)
        return grad_h, act.mul_(up)
    return _base_backward(grad_scaled, h, name), _base(h, name)


def _base_backward(grad: Tensor, x: Tensor, name: str, out: Tensor | None = None) -> Tensor:
    """``grad * base'(x)`` with ATen's fused backward kernels."""
    if out is None:
        out = torch.empty_like(x)
    if name == "silu":
        return torch.ops.aten.silu_backward.grad_input(grad, x, grad_input=out)
    if name == "gelu":
        return torch.ops.aten.gelu_backward.grad_input(grad, x, grad_input=out)
    return torch.mul(grad, x > 0, out=out)
