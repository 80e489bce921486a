"""DriftMoE's online router: moe-core's :class:`SoftGate` fed with standardised features, trained
with Adam on mini-batches of correctness masks, evaluated per instance in NumPy.

Paper rules (DriftMoE, Sec. 3; reference code ``RouterMLP`` / ``train_joint_data``):

- gate ``g(x) = softmax(MLP(x) / T)``, ``MLP = Linear(d, 256)-ReLU-Dropout(0.2)-Linear(256, 128)
  -ReLU-Linear(128, E)`` (``SoftGate(d, E, hidden=(256, 128), dropout=0.2, temperature=0.8)``),
  Xavier-uniform weights and zero biases;
- Adam with learning rate ``2e-3`` on :func:`~moe_zoo.streams.losses.router_loss`, one step per
  ``batch_size = 256`` instances over the masks gathered since the last step.

Speed: routing one instance with torch costs ~0.3-0.7 ms of dispatch overhead (measured, 2 busy
cores), more than the trees' own work; so the router routes with a NumPy copy of the gate
(:class:`moe_zoo.core.gate_snapshot.GateSnapshot`, eval-mode rule, refreshed after every Adam
step; the gate's weights only change at those steps, so the copy is exact) and torch only runs
the mini-batch forward/backward every ``batch_size`` instances.

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
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from moe_zoo.core import InputError, SoftGate
from moe_zoo.core.gate_snapshot import GateSnapshot
from moe_zoo.streams.losses import router_loss

_Z_CLIP = 8.0  # a first outlier on a barely-seen feature must not saturate the MLP


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch ops on one intra-op thread, then restore the previous setting.

    The router's batch step multiplies 256 rows by small matrices: with several OpenMP threads the
    synchronisation dominates on a busy 2-core machine (measured: a forward pass of one row took
    16 ms with 2 threads against 0.1 ms with 1).
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
    categories and NaN are ``nan`` (the standardiser maps them to the running mean). Features
    that first appear later are seen by the trees, not by the router (its input size is fixed).
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

    def encode(self, x: dict, *, learn: bool = False) -> tuple[np.ndarray, bool]:
        """``(vector, complete)``: the ``[d]`` float vector of ``x`` and whether encoding it with
        ``learn=True`` (which registers unseen categories) would give the same vector."""
        if self.features:
            try:
                values = [x[name] for name in self.features]
            except KeyError:
                values = None
            if values is not None and not any(isinstance(v, str) for v in values):
                try:
                    out = np.array(values, dtype=np.float64)
                except (TypeError, ValueError):
                    out = None
                if out is not None and out.ndim == 1:
                    if np.isinf(out).any():
                        self._raise_inf(x)
                    return out, True
        return self._encode_slow(x, learn)

    def _raise_inf(self, x: dict) -> None:
        for name in self.features:
            value = x.get(name)
            if not isinstance(value, str) and isinstance(value, (int, float, np.number)) and math.isinf(value):
                raise InputError(f"x[{name!r}] is {value!r}: expected a finite number")

    def _encode_slow(self, x: dict, learn: bool) -> tuple[np.ndarray, bool]:
        out = np.full(max(len(self.features), 1), np.nan)
        complete = True
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
                        self._raise_inf(x)
                    out[i] = number
                    continue
            codes = self.categories.get(name)
            if codes is None and learn:
                codes = self.categories[name] = {}
            code = None if codes is None else codes.get(value)
            if code is None:
                complete = False
                if learn:
                    code = codes[value] = len(codes)
            if code is not None:
                out[i] = code
        return out, complete or learn


class RunningStandardizer:
    """Per-feature running mean and variance (Welford): ``z = clip((x - mu) / sigma, -8, 8)``.

    ``mu_n = mu_{n-1} + (x_n - mu_{n-1}) / n``, ``M2_n = M2_{n-1} + (x_n - mu_{n-1})(x_n - mu_n)``,
    ``sigma = sqrt(M2 / n)`` where that is at least 1e-6, else 1; missing values
    (``nan``) give ``z = 0`` and do not update the statistics.
    """

    def __init__(self, dim: int) -> None:
        self.count = np.zeros(dim)
        self.mean = np.zeros(dim)
        self.m2 = np.zeros(dim)
        self.std = np.ones(dim)

    def update(self, x: np.ndarray) -> None:
        seen = x == x  # not nan
        if seen.all():
            self.count += 1.0
            delta = x - self.mean
            self.mean += delta / self.count
            self.m2 += delta * (x - self.mean)
        else:
            self.count[seen] += 1.0
            delta = np.where(seen, x - self.mean, 0.0)
            self.mean += np.divide(delta, self.count, out=np.zeros_like(delta), where=seen)
            self.m2 += np.where(seen, delta * (x - self.mean), 0.0)
        std = np.sqrt(self.m2 / np.maximum(self.count, 1.0))
        std[std < 1e-6] = 1.0
        self.std = std

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.std
        missing = np.isnan(z)
        if missing.any():
            z[missing] = 0.0
        np.minimum(z, _Z_CLIP, out=z)
        np.maximum(z, -_Z_CLIP, out=z)
        return z.astype(np.float32)


class OnlineRouter:
    """SoftGate + running standardisation + Adam over mini-batches of correctness masks.

    :meth:`encode` gives ``(raw, z)`` for one instance; :meth:`route` the gate weights of ``z``
    (NumPy, eval mode); :meth:`observe` stores ``z`` and the instance's mask, updates the running
    statistics with ``raw``, and takes one Adam step on :func:`router_loss` every ``batch_size``
    instances. ``n_active`` (MoE-Task) restricts the gate to the experts that exist so far:
    their weights are the softmax over their logits only, and the loss ignores the others.
    ``seconds`` accumulates the wall time spent inside the router (encoding, routing, buffering
    and batch steps), so a benchmark can report the router's share of the total.
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
        self.snapshot = GateSnapshot(self.gate)
        self.optimizer = torch.optim.Adam(self.gate.parameters(), lr=lr)
        self._inputs = np.zeros((batch_size, d_in), dtype=np.float32)
        self._masks = np.zeros((batch_size, n_experts), dtype=np.float32)
        self._n_active = np.zeros(batch_size, dtype=np.int64)
        self._filled = 0
        self.steps = 0
        self.last_loss = math.nan
        self.seconds = 0.0

    def encode(self, x: dict, *, learn: bool = False) -> tuple[np.ndarray, np.ndarray, bool]:
        """``(raw, z, complete)``: the encoded vector of ``x``, its standardised form, and whether
        ``raw`` is what ``learn=True`` would give (see :meth:`FeatureEncoder.encode`)."""
        began = time.perf_counter()
        raw, complete = self.encoder.encode(x, learn=learn)
        z = self.scaler.transform(raw)
        self.seconds += time.perf_counter() - began
        return raw, z, complete

    def route(self, z: np.ndarray, n_active: int | None = None) -> np.ndarray:
        """Gate weights ``g(x) = softmax(MLP(z) / T)`` over the (active) experts, ``[E]`` float64."""
        began = time.perf_counter()
        if n_active is None or n_active >= self.n_experts:
            weights = self.snapshot.weights(z).astype(np.float64)
        else:  # softmax over the active experts' logits = full softmax renormalised over them
            scores = self.snapshot.logits(z)[:n_active].astype(np.float64) / self.snapshot.temperature
            weights = np.exp(scores - scores.max())
            weights /= weights.sum()
        self.seconds += time.perf_counter() - began
        return weights

    def observe(self, raw: np.ndarray, z: np.ndarray, mask: np.ndarray, n_active: int | None = None) -> None:
        """Buffer one instance's ``z`` and mask; learn the running statistics; step when the batch is full."""
        began = time.perf_counter()
        self.scaler.update(raw)
        row = self._filled
        n = self.n_experts if n_active is None else n_active
        self._inputs[row] = z
        self._masks[row, :n] = mask
        self._masks[row, n:] = 0.0
        self._n_active[row] = n
        self._filled += 1
        self.seconds += time.perf_counter() - began
        if self._filled == self.batch_size:
            self.step()

    def step(self) -> float:
        """One Adam step on the buffered mini-batch (train mode: dropout on); clears the buffer."""
        n = self._filled
        if n == 0:
            return math.nan
        began = time.perf_counter()
        inputs = torch.from_numpy(self._inputs[:n]).to(self.device)
        masks = torch.from_numpy(self._masks[:n]).to(self.device)
        counts = self._n_active[:n]
        active = None
        if counts.min() < self.n_experts:  # MoE-Task: entries of experts that did not exist yet
            active = torch.from_numpy((np.arange(self.n_experts) < counts[:, None]).astype(np.float32)).to(self.device)
        with one_thread(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._rng.getrandbits(63))
            self.gate.train()
            loss = router_loss(self.gate(inputs).logits, masks, active)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.gate.eval()
        self.snapshot.refresh()
        self._filled = 0
        self.steps += 1
        self.last_loss = float(loss.detach())
        self.seconds += time.perf_counter() - began
        return self.last_loss

    def tensor_bytes(self) -> int:
        """Bytes held in the gate's parameters and Adam's moment buffers."""
        tensors = list(self.gate.parameters())
        tensors += [t for state in self.optimizer.state.values() for t in state.values() if torch.is_tensor(t)]
        return sum(t.numel() * t.element_size() for t in tensors)
