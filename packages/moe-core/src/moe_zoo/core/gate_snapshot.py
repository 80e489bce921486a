"""A NumPy inference snapshot of a :class:`~moe_zoo.core.routing.SoftGate`.

Online learners route one instance at a time (DriftMoE routes every instance of a data stream
through a small MLP). A torch forward pass of a ``[1, d]`` row costs tens of microseconds of
dispatch overhead per layer, which can dominate the work of the experts; the same MLP in NumPy
costs a few microseconds. :class:`GateSnapshot` copies a gate's weights out of torch (after each
optimiser step, say) and evaluates the gate's eval-mode rule on NumPy arrays:

``g(x) = softmax(MLP(x) / T)``, with the MLP's ``Linear`` and ``ReLU`` layers applied in order
and ``Dropout`` as the identity (eval mode), exactly as ``SoftGate.forward`` in ``eval()``.
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
    ``[B, E]``. :meth:`refresh` copies the gate's current parameters into the same buffers, so a
    learner can call it after every optimiser step without reallocating.
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
        self._weights: list[np.ndarray] = []
        self._biases: list[np.ndarray | None] = []
        self.refresh()

    def refresh(self) -> None:
        """Copy the gate's current parameters (``W^T`` and ``b`` of every linear layer)."""
        with torch.no_grad():
            arrays = [(lin.weight.detach().cpu().numpy().T.astype(self.dtype),
                       None if lin.bias is None else lin.bias.detach().cpu().numpy().astype(self.dtype))
                      for lin in self._linears]
        if not self._weights:
            self._weights = [np.ascontiguousarray(w) for w, _ in arrays]
            self._biases = [b for _, b in arrays]
            return
        for i, (w, b) in enumerate(arrays):
            self._weights[i][...] = w
            if b is not None:
                self._biases[i][...] = b

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
                    h = h + self._biases[layer]
                layer += 1
            else:
                h = np.maximum(h, 0.0)
        return h

    def weights(self, x: np.ndarray) -> np.ndarray:
        """``g(x) = softmax(MLP(x) / T)`` over the last axis."""
        scores = self.logits(x) / self.temperature
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        return scores / scores.sum(axis=-1, keepdims=True)


__all__ = ["GateSnapshot"]
