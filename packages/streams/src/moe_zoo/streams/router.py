"""DriftMoE's online router: moe-core's :class:`SoftGate` on the stream's features, trained with Adam
on mini-batches of correctness masks, evaluated per instance in NumPy.

Paper rules (DriftMoE, Sec. 3; reference code ``RouterMLP`` / ``train_joint_data``):

- gate ``g(x) = softmax(MLP(x) / T)``, ``MLP = Linear(d, 256)-ReLU-Dropout(0.2)-Linear(256, 128)
  -ReLU-Linear(128, E)`` (``SoftGate(d, E, hidden=(256, 128), dropout=0.2, temperature=0.8)``),
  Xavier-uniform weights and zero biases;
- Adam with learning rate ``2e-3`` on :func:`~moe_zoo.streams.losses.router_loss`, one step per
  ``batch_size`` instances over the masks gathered since the last step (reference: 256 instances
  in ``train_joint_data``, one instance in ``train_joint_task``).

Speed: routing one instance with torch costs ~0.3-0.7 ms of dispatch overhead (measured, 2 busy
cores), more than the trees' own work; so the router routes with a NumPy copy of the gate
(:class:`moe_zoo.core.gate_snapshot.GateSnapshot`, eval-mode rule, refreshed after every Adam
step; the gate's weights only change at those steps, so the copy is exact) and torch only runs
the mini-batch forward/backward every ``batch_size`` instances.

Input scaling (``scaling``): the reference feeds raw features to the MLP (``"none"``, the paper
variants' default). Raw stream features span very different scales (Agrawal's salary is ~1e5,
SEA's features lie in [0, 10]), so two opt-in alternatives standardise, ``z = (x - mu) / sigma``:
``"running"`` with running statistics over every instance learned so far, merged with each
mini-batch just before the Adam step (Chan et al.'s merge of Welford statistics), so the batch
the router learns from and the instances it routes until the next step see the same
standardisation (which the snapshot folds into its first layer); ``"frozen"`` with the statistics
of the first mini-batch only, so the router's input space never moves under it after a drift
(the ``plus`` variant's choice: running statistics shift the inputs the router has learned to
split whenever the stream drifts). ``uniform_start`` zeroes the output layer, so the gate starts
uniform instead of from Xavier's random preferences (the ``plus`` variant's warm start).
The batch step runs the gate in train mode so its dropout acts (the reference computes its
buffered logits in eval mode, which leaves its dropout inactive).
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
from moe_zoo.streams.readers import MAX_MAGNITUDE


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch ops on one intra-op thread, then restore the previous setting.

    The router's batch step multiplies 256 rows by small matrices: with several OpenMP threads the
    threads' synchronisation costs more than the arithmetic, most of all on a busy machine.
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
                    if (np.abs(out) > MAX_MAGNITUDE).any():
                        self._raise_too_large(x)
                    return out, True
        return self._encode_slow(x, learn)

    def _raise_too_large(self, x: dict) -> None:
        for name in self.features:
            value = x.get(name)
            if isinstance(value, (int, float, np.number)) and abs(value) > MAX_MAGNITUDE:
                raise InputError(f"x[{name!r}] is {value!r}: expected a finite number of magnitude <= "
                                 f"{MAX_MAGNITUDE:g} (the trees square feature values)")

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
                    if abs(number) > MAX_MAGNITUDE:
                        self._raise_too_large(x)
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
    """Per-feature running mean and standard deviation, updated a mini-batch at a time.

    Merging a batch ``B`` (``n_B`` values of a feature, mean ``m_B``, squared deviations ``M2_B``)
    into the statistics ``(n, mu, M2)`` so far (Chan, Golub and LeVeque, 1979):
    ``n' = n + n_B``, ``delta = m_B - mu``, ``mu' = mu + delta n_B / n'``,
    ``M2' = M2 + M2_B + delta^2 n n_B / n'``; ``sigma = sqrt(M2 / n)`` where that is at least 1e-6,
    else 1. Missing values (``nan``) are left out of the statistics and standardise to 0.
    """

    def __init__(self, dim: int) -> None:
        self.count = np.zeros(dim)
        self.mean = np.zeros(dim)
        self.m2 = np.zeros(dim)

    @property
    def std(self) -> np.ndarray:
        std = np.sqrt(np.divide(self.m2, self.count, out=np.zeros_like(self.m2), where=self.count > 0))
        std[std < 1e-6] = 1.0
        return std

    def update(self, batch: np.ndarray) -> None:
        """Merge the rows of ``batch`` (``[B, d]``, ``nan`` = missing) into the statistics."""
        seen = ~np.isnan(batch)
        n_b = seen.sum(axis=0).astype(np.float64)
        values = np.where(seen, batch, 0.0)
        mean_b = np.divide(values.sum(axis=0), n_b, out=np.zeros_like(n_b), where=n_b > 0)
        m2_b = np.where(seen, (batch - mean_b) ** 2, 0.0).sum(axis=0)
        total = self.count + n_b
        delta = mean_b - self.mean
        safe = np.where(total > 0, total, 1.0)
        self.mean = self.mean + delta * n_b / safe
        self.m2 = self.m2 + m2_b + delta ** 2 * self.count * n_b / safe
        self.count = total

    def transform(self, batch: np.ndarray) -> np.ndarray:
        """``z = (x - mu) / sigma`` (``nan`` -> 0), float32."""
        z = (batch - self.mean) / self.std
        return np.nan_to_num(z, nan=0.0).astype(np.float32)


def warm_up() -> None:
    """Load what torch's optimisers import lazily on first use (``torch._dynamo``: 1-20 s once
    per process, depending on the machine), so that a model's first ``learn_one`` is not timed
    with an import in it."""
    import torch._dynamo  # noqa: F401


class OnlineRouter:
    """SoftGate + input scaling (``"none"``, ``"running"``, ``"frozen"``) + Adam over mini-batches of
    correctness masks.

    :meth:`encode` gives ``(raw, complete)`` for one instance (see :meth:`FeatureEncoder.encode`);
    :meth:`route` the gate weights of ``raw`` (NumPy, eval mode, standardisation folded in);
    :meth:`observe` buffers ``raw`` and the instance's mask and, every ``batch_size`` instances,
    merges the buffered inputs into the statistics (``scaling``) and takes one Adam step on
    :func:`router_loss` over their standardised form. ``n_active`` (MoE-Task) restricts the gate
    to the experts that exist so far: their weights are the softmax over their logits only, and
    the loss ignores the others. ``seconds`` accumulates the wall time spent inside the router
    (encoding, routing, buffering and batch steps), so a benchmark can report its share.
    """

    def __init__(self, encoder: FeatureEncoder, n_experts: int, *, hidden: tuple[int, ...], dropout: float,
                 temperature: float, lr: float, batch_size: int, seed: int, device: torch.device,
                 scaling: str = "none", uniform_start: bool = False) -> None:
        self.encoder = encoder
        self.n_experts = n_experts
        self.batch_size = batch_size
        self.device = device
        self.scaling = scaling
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
            if uniform_start:  # zero output layer: g(x) = 1/E until the router learns
                nn.init.zeros_([m for m in self.gate.modules() if isinstance(m, nn.Linear)][-1].weight)
        self.gate.to(device).eval()
        self.snapshot = GateSnapshot(self.gate)
        self.optimizer = torch.optim.Adam(self.gate.parameters(), lr=lr)
        self._inputs = np.zeros((batch_size, d_in))
        self._masks = np.zeros((batch_size, n_experts), dtype=np.float32)
        self._n_active = np.zeros(batch_size, dtype=np.int64)
        self._filled = 0
        self.steps = 0
        self.last_loss = math.nan
        self.seconds = 0.0

    def encode(self, x: dict, *, learn: bool = False) -> tuple[np.ndarray, bool]:
        """``(raw, complete)``: the encoded vector of ``x`` (see :meth:`FeatureEncoder.encode`)."""
        began = time.perf_counter()
        raw, complete = self.encoder.encode(x, learn=learn)
        self.seconds += time.perf_counter() - began
        return raw, complete

    def route(self, raw: np.ndarray, n_active: int | None = None) -> np.ndarray:
        """Gate weights ``g(x) = softmax(MLP(z) / T)``, ``z = (x - mu) / sigma``, over the (active)
        experts: ``[E]`` float32."""
        began = time.perf_counter()
        total = raw.sum()
        if total != total:  # a nan: a missing feature standardises to 0, i.e. sits at its mean
            raw = np.where(np.isnan(raw), self.scaler.mean, raw)
        if n_active is None or n_active >= self.n_experts:
            weights = self.snapshot.weights(raw)
        else:  # softmax over the active experts' logits = full softmax renormalised over them
            weights = self.snapshot.weights_from_logits(self.snapshot.logits(raw)[:n_active])
        self.seconds += time.perf_counter() - began
        return weights

    def observe(self, raw: np.ndarray, mask: np.ndarray, n_active: int | None = None) -> None:
        """Buffer one instance's input and mask; step when the batch is full."""
        began = time.perf_counter()
        row = self._filled
        n = self.n_experts if n_active is None else n_active
        self._inputs[row] = raw
        self._masks[row, :n] = mask
        self._masks[row, n:] = 0.0
        self._n_active[row] = n
        self._filled += 1
        self.seconds += time.perf_counter() - began
        if self._filled == self.batch_size:
            self.step()

    def step(self) -> float:
        """Merge the buffered inputs into the statistics, then one Adam step on their standardised
        form (train mode: dropout on); refresh the NumPy snapshot; clear the buffer."""
        n = self._filled
        if n == 0:
            return math.nan
        began = time.perf_counter()
        if self.scaling == "running" or (self.scaling == "frozen" and self.steps == 0):
            self.scaler.update(self._inputs[:n])
        inputs = torch.from_numpy(self.scaler.transform(self._inputs[:n])).to(self.device)
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
        self.snapshot.refresh(self.scaler.mean, 1.0 / self.scaler.std)
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
