"""DriftMoE's online router: moe-core's :class:`SoftGate` fed with standardised features and
trained with Adam on mini-batches of correctness masks.

Paper rules (DriftMoE, Sec. 3; reference code ``RouterMLP``/``train_joint_*``):

- gate ``g(x) = softmax(MLP(x) / T)``, ``MLP = Linear(d, 256)-ReLU-Dropout(0.2)-Linear(256, 128)
  -ReLU-Linear(128, E)`` (``SoftGate(d, E, hidden=(256, 128), dropout=0.2, temperature=0.8)``),
  Xavier-uniform weights and zero biases;
- Adam with learning rate ``2e-3`` on :func:`~moe_zoo.streams.losses.router_loss`, one step per
  ``batch_size = 256`` instances over the masks gathered since the last step.

Choices where the paper is silent: inputs are standardised with running (Welford) means and
variances, because raw stream features span very different scales (Agrawal's salary is ~1e5,
SEA's features lie in [0, 10]); the buffered inputs are the standardised vectors the router saw
when it routed them (the reference keeps those forward passes for its batch step), and the batch
step runs the gate in train mode so its dropout acts (the reference computes the buffered logits
in eval mode, which leaves its dropout inactive).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from moe_zoo.core import InputError, SoftGate
from moe_zoo.streams.losses import router_loss

_Z_CLIP = 8.0  # a first outlier on a barely-seen feature must not saturate the MLP


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch ops on one intra-op thread, then restore the previous setting.

    The router multiplies a single row (or 256) by small matrices: with several OpenMP threads
    the synchronisation dominates, and on a busy 2-core machine one forward pass took 16 ms
    with 2 threads against 0.1 ms with 1 (measured).
    """
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class FeatureEncoder:
    """Turns river's feature dicts into fixed-order vectors for the router.

    The router's inputs are the features of the first instance it learns from, in a sorted
    order (so the order of keys in a dict never matters). Numbers (and bools) are used as they
    are; any other value (a nominal ``str``) becomes its per-feature category code in order of
    first appearance, like the nominal index a MOA instance carries. Missing features, unseen
    categories and NaN are ``nan`` (the standardiser maps them to the running mean).
    """

    def __init__(self, features: tuple) -> None:
        self.features = features
        self.categories: dict = {}

    @classmethod
    def from_example(cls, x: dict) -> FeatureEncoder:
        return cls(tuple(sorted(x, key=repr)))

    @property
    def dim(self) -> int:
        return len(self.features)

    def encode(self, x: dict, *, learn: bool = False) -> np.ndarray:
        out = np.full(len(self.features), np.nan)
        for i, name in enumerate(self.features):
            value = x.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    number = None
                if number is not None:
                    if math.isinf(number):
                        raise InputError(f"x[{name!r}] is {value!r}: expected a finite number")
                    out[i] = number
                    continue
            codes = self.categories.get(name)
            if codes is None:
                if not learn:
                    continue
                codes = self.categories[name] = {}
            code = codes.get(value)
            if code is None and learn:
                code = codes[value] = len(codes)
            if code is not None:
                out[i] = code
        return out


class RunningStandardizer:
    """Per-feature running mean and variance (Welford): ``z = clip((x - mu) / sigma, -8, 8)``.

    ``sigma = sqrt(var)`` once a feature has a non-zero variance, else 1; missing values
    (``nan``) give ``z = 0`` and do not update the statistics.
    """

    def __init__(self, dim: int) -> None:
        self.count = np.zeros(dim)
        self.mean = np.zeros(dim)
        self.m2 = np.zeros(dim)

    def update(self, x: np.ndarray) -> None:
        seen = ~np.isnan(x)
        self.count[seen] += 1.0
        delta = np.where(seen, x - self.mean, 0.0)
        self.mean += np.divide(delta, self.count, out=np.zeros_like(delta), where=seen)
        self.m2 += np.where(seen, delta * (x - self.mean), 0.0)

    def transform(self, x: np.ndarray) -> np.ndarray:
        var = np.divide(self.m2, self.count, out=np.zeros_like(self.m2), where=self.count > 0)
        std = np.where(var > 1e-12, np.sqrt(var), 1.0)
        z = np.clip((x - self.mean) / std, -_Z_CLIP, _Z_CLIP)
        return np.nan_to_num(z, nan=0.0)


class OnlineRouter:
    """SoftGate + running standardisation + Adam over mini-batches of correctness masks.

    :meth:`route` gives the gate weights for one instance (no gradient, eval mode);
    :meth:`observe` stores the instance's standardised input and mask, updates the running
    statistics, and takes one Adam step on :func:`router_loss` each ``batch_size`` instances.
    ``n_active`` (MoE-Task) restricts the gate to the experts that exist so far: their weights
    are ``result.weights`` renormalised over them (= a softmax over their logits only) and the
    loss ignores the others.
    """

    def __init__(self, encoder: FeatureEncoder, n_experts: int, *, hidden: tuple[int, ...], dropout: float,
                 temperature: float, lr: float, batch_size: int, seed: int, device: torch.device) -> None:
        self.encoder = encoder
        self.n_experts = n_experts
        self.batch_size = batch_size
        self.device = device
        d_in = max(encoder.dim, 1)  # an instance with no features still gets a (constant) input
        self.scaler = RunningStandardizer(d_in)
        self._rng = random.Random(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.gate = SoftGate(d_in, n_experts, hidden=tuple(hidden), dropout=dropout, temperature=temperature)
            for module in self.gate.modules():
                if isinstance(module, nn.Linear):  # Xavier init, as the paper's router
                    nn.init.xavier_uniform_(module.weight)
                    nn.init.zeros_(module.bias)
        self.gate.to(device).eval()
        self.optimizer = torch.optim.Adam(self.gate.parameters(), lr=lr)
        self._inputs = np.zeros((batch_size, d_in), dtype=np.float32)
        self._masks = np.zeros((batch_size, n_experts), dtype=np.float32)
        self._active = np.zeros((batch_size, n_experts), dtype=np.float32)
        self._filled = 0
        self.steps = 0
        self.last_loss = math.nan

    def standardize(self, x: dict) -> tuple[np.ndarray, np.ndarray]:
        """``(raw, z)`` for a feature dict: the encoded vector and its standardised form."""
        raw = self.encoder.encode(x)
        if raw.size == 0:
            raw = np.full(1, np.nan)
        return raw, self.scaler.transform(raw)

    @torch.inference_mode()
    def route(self, z: np.ndarray, n_active: int | None = None) -> np.ndarray:
        """Gate weights ``g(x) = softmax(MLP(z) / T)`` over the (active) experts, as numpy ``[E]``."""
        with one_thread():
            result = self.gate(torch.from_numpy(z.astype(np.float32)).to(self.device)[None])
        weights = result.weights[0].cpu().numpy().astype(np.float64)
        if n_active is not None and n_active < self.n_experts:
            weights = weights[:n_active] / weights[:n_active].sum()
        return weights

    def observe(self, x: dict, z: np.ndarray, mask: np.ndarray, n_active: int | None = None) -> None:
        """Buffer one instance's mask; learn the running statistics; step when the batch is full."""
        raw = self.encoder.encode(x, learn=True)
        if raw.size:
            self.scaler.update(raw)
        row = self._filled
        n = self.n_experts if n_active is None else n_active
        self._inputs[row] = z
        self._masks[row] = 0.0
        self._masks[row, :n] = mask
        self._active[row] = 0.0
        self._active[row, :n] = 1.0
        self._filled += 1
        if self._filled == self.batch_size:
            self.step()

    def step(self) -> float:
        """One Adam step on the buffered mini-batch (train mode: dropout on); clears the buffer."""
        n = self._filled
        if n == 0:
            return math.nan
        inputs = torch.from_numpy(self._inputs[:n]).to(self.device)
        masks = torch.from_numpy(self._masks[:n]).to(self.device)
        active = torch.from_numpy(self._active[:n]).to(self.device)
        all_active = bool(self._active[:n].all())
        with one_thread(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._rng.getrandbits(63))
            self.gate.train()
            logits = self.gate(inputs).logits
            loss = router_loss(logits, masks, None if all_active else active)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.gate.eval()
        self._filled = 0
        self.steps += 1
        self.last_loss = float(loss.detach())
        return self.last_loss

    def tensor_bytes(self) -> int:
        """Bytes held in the gate's parameters and Adam's moment buffers."""
        tensors = list(self.gate.parameters())
        tensors += [t for state in self.optimizer.state.values() for t in state.values() if torch.is_tensor(t)]
        return sum(t.numel() * t.element_size() for t in tensors)
