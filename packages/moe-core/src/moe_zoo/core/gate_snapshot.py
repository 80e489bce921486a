"""A NumPy inference snapshot of a :class:`~moe_zoo.core.routing.SoftGate`.

Online learners route one instance at a time (DriftMoE routes every instance of a data stream
through a small MLP). A torch forward pass of a ``[1, d]`` row costs tens of microseconds of
dispatch overhead per layer, which can dominate the work of the experts; the same MLP in NumPy
costs a few microseconds. :class:`GateSnapshot` copies a gate's weights out of torch (after each
optimiser step, say) and evaluates the gate's eval-mode rule on NumPy arrays:

``g(x) = softmax(MLP(s ⊙ (x - c)) / T)``, with the MLP's ``Linear`` and ``ReLU`` layers applied in
order and ``Dropout`` as the identity (eval mode), exactly as ``SoftGate.forward`` in ``eval()``.
The optional input standardisation (shift ``c``, scale ``s``, e.g. running means and inverse
standard deviations) is folded into the first linear layer, ``W' = diag(s) W``,
``b' = b - (s ⊙ c) W``, so it costs nothing per call.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from moe_zoo.core.errors import InputError
from moe_zoo.core.routing import SoftGate


class GateSnapshot:
    """Eval-mode copy of a :class:`SoftGate` evaluated with NumPy (``float32`` by default).

    ``logits(x)`` and ``weights(x)`` take ``[d]`` or ``[B, d]`` arrays and return ``[E]`` or
    ``[B, E]``. :meth:`refresh` copies the gate's current parameters (and an optional input
    standardisation) into the same buffers, so a learner can call it after every optimiser step.
    """

    def __init__(self, gate: SoftGate, dtype: np.dtype | type = np.float32) -> None:
        if not isinstance(gate, SoftGate):
            raise InputError(f"GateSnapshot needs a SoftGate, got {type(gate).__name__}")
        self.gate = gate
        self.dtype = np.dtype(dtype)
        self.temperature = float(gate.temperature)
        modules = list(gate.proj) if isinstance(gate.proj, nn.Sequential) else [gate.proj]
        self._plan: list[str] = []
        self._linears: list[nn.Linear] = []
        for module in modules:
            if isinstance(module, nn.Linear):
                self._plan.append("linear")
                self._linears.append(module)
            elif isinstance(module, nn.ReLU):
                self._plan.append("relu")
            elif isinstance(module, nn.Dropout):
                continue  # identity in eval mode
            else:
                raise InputError(f"GateSnapshot: unsupported layer {type(module).__name__} in the gate's MLP")
        if self._plan[0] != "linear":
            raise InputError("GateSnapshot: the gate's MLP must start with a Linear layer")
        self._weights: list[np.ndarray] = []
        self._biases: list[np.ndarray | None] = []
        self.refresh()

    def refresh(self, shift: np.ndarray | None = None, scale: np.ndarray | None = None) -> None:
        """Copy the gate's current parameters (``W^T`` and ``b`` of every linear layer); with
        ``shift``/``scale`` (``[d]`` each) the snapshot evaluates the gate on ``scale * (x - shift)``."""
        with torch.no_grad():
            arrays = [(lin.weight.detach().cpu().double().numpy().T,
                       None if lin.bias is None else lin.bias.detach().cpu().double().numpy())
                      for lin in self._linears]
        d = self.gate.d_in
        if shift is not None or scale is not None:
            shift = np.zeros(d) if shift is None else np.asarray(shift, dtype=np.float64)
            scale = np.ones(d) if scale is None else np.asarray(scale, dtype=np.float64)
            if shift.shape != (d,) or scale.shape != (d,):
                raise InputError(f"GateSnapshot.refresh: shift and scale must have shape [{d}], "
                                 f"got {shift.shape} and {scale.shape}")
            w, b = arrays[0]
            w = scale[:, None] * w
            b = (np.zeros(w.shape[1]) if b is None else b) - (shift * scale) @ arrays[0][0]
            arrays[0] = (w, b)
        self._weights = [np.ascontiguousarray(w, dtype=self.dtype) for w, _ in arrays]
        self._biases = [None if b is None else b.astype(self.dtype) for _, b in arrays]

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``MLP(x)`` in eval mode: ``[d] -> [E]`` or ``[B, d] -> [B, E]``."""
        h = np.asarray(x, dtype=self.dtype)
        if h.ndim not in (1, 2) or h.shape[-1] != self.gate.d_in:
            raise InputError(f"GateSnapshot: expected x of shape [{self.gate.d_in}] or [B, {self.gate.d_in}], "
                             f"got {h.shape}")
        layer = 0
        for op in self._plan:
            if op == "linear":
                h = h @ self._weights[layer]
                if self._biases[layer] is not None:
                    h += self._biases[layer]
                layer += 1
            else:
                np.maximum(h, 0.0, out=h)
        return h

    def weights(self, x: np.ndarray) -> np.ndarray:
        """``g(x) = softmax(MLP(x) / T)`` over the last axis."""
        return self.weights_from_logits(self.logits(x))

    def weights_from_logits(self, logits: np.ndarray) -> np.ndarray:
        """``softmax(logits / T)`` over the last axis (e.g. over a subset of the experts' logits)."""
        scores = logits / self.temperature
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True), out=scores)
        return scores / scores.sum(axis=-1, keepdims=True)


__all__ = ["GateSnapshot"]
