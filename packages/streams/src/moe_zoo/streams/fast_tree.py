"""A vectorised Hoeffding tree: river's ``HoeffdingTreeClassifier`` (numeric features, Gaussian
splitters, information gain, naive-Bayes-adaptive leaves) whose leaf statistics live in NumPy
arrays shared by a pool of trees, for DriftMoE+'s experts (the project's extension; the paper
variants keep river's trees).

**Leaf statistics.** A :class:`LeafTable` holds one row per leaf of every tree of a pool: class
weights ``[leaves, classes]`` and river's ``GaussianSplitter`` observers ``[leaves, classes,
features]`` (weight ``n``, mean ``mu``, ``M2``, range ``[lo, hi]``). Learning ``(x, y)`` with
weights ``w`` in the leaves of several trees updates class ``y``'s observers of all those leaves
in one vector operation per statistic (river's weighted Welford update, same arithmetic and
order, so the statistics are bit-identical to river's, tested):

    n' = n + w,   mu' = mu + (w / n') (x - mu),   M2' = M2 + w (x - mu)(x - mu'),
    lo' = min(lo, x),   hi' = max(hi, x).

**Naive Bayes** (river's ``do_naive_bayes_prediction``) for the leaves of all trees at once:

    log p(c | x) = log(N_c / N) + sum_f log N(x_f; mu_cf, M2_cf / (n_cf - 1))   (softmax over c),

skipping (adding 0 for) observers without variance (``n <= 1`` or ``M2 = 0``) as river does; a
class of weight 0 votes 0 before the softmax, as in river. ``-1 / (2 var)`` and
``-log(2 pi var) / 2`` are refreshed when an observer changes, so a prediction is a few array
operations for the whole pool. Naive-Bayes-adaptive leaves predict with naive Bayes while its
weight of correct answers is at least the majority class's (ties between classes: the class the
leaf saw first, as river's ``max`` over its dict).

**Split search** (when a leaf's weight has grown by ``grace_period`` since its last attempt; never
for a pure leaf): every feature and every one of river's ``n_splits = 10`` candidates
``s_i = lo + i (hi - lo) / 11`` (``lo``, ``hi``: the feature's range over the leaf's classes) in
one evaluation over ``[classes, features, candidates]``: left weight ``l_k(s) = 0`` if ``s < lo_k``,
``n_k`` if ``s >= hi_k``, else ``n_k Phi((s - mu_k) / sigma_k)``; merit
``H(pre) - (L H(l) + R H(r)) / (L + R)`` with ``H(d) = (D log2 D - sum_k d_k log2 d_k) / D``,
``-inf`` unless both branches hold more than ``min_branch_fraction`` of the weight; per feature the
first best candidate. Then river's rule: the null split (merit ``-inf``) and the features' best
splits are sorted stably by merit; the leaf splits on the best when ``merit_1 - merit_2 > eps`` or
``eps < tau``, with the Hoeffding bound ``eps = sqrt(R^2 ln(1 / delta) / (2 N))``,
``R = log2(max(classes, 2))``. When the winner has no feature (no valid split), or the majority
class holds more than ``max_share_to_split``, river deactivates the leaf and its memory manager
(``_enforce_size_limit``, called right after) reactivates it with empty splitters while the tree
is under ``max_size``: the net effect, reproduced here, is that the leaf forgets its observers.

Deviations from river, by design: numeric features only (a string value raises
:class:`~moe_zoo.core.InputError`; river's tree handles nominal features, and DriftMoE+ falls back
to it for streams that have them); the info-gain criterion only; no memory limit (``max_size``);
an instance of weight 0 is skipped; the naive-Bayes log-density is computed as
``d^2 (-1 / (2 var)) + (-log(2 pi var) / 2)`` and the Gaussian CDF with SciPy's ``erf`` (river:
``d^2 / (-2 var) - ...`` and ``math.erf``), so probabilities and merits agree with river's to
~1e-12, not bitwise. Optional ARF-style feature subspaces: ``max_features`` features drawn per
leaf when it first learns (the naive-Bayes term and the split search use only those).
"""

from __future__ import annotations

import math
import numbers
import random
from collections.abc import Sequence

import numpy as np
from river import base
from scipy.special import erf

from moe_zoo.core import InputError

_HALF_LOG_TAU = 0.5 * math.log(math.tau)
_SQRT2 = math.sqrt(2.0)
LEAF_PREDICTIONS = ("mc", "nb", "nba")
GRACE_UNITS = ("weight", "instances")
_CUBES = {"n": 0.0, "mean": 0.0, "m2": 0.0, "lo": math.inf, "hi": -math.inf, "a": 0.0, "b": 0.0}
_MATRICES = {"stats": 0.0, "rank": math.inf, "seen": math.inf, "ordered": 0}
_VECTORS = {"mc": 0.0, "nb": 0.0, "last": 0.0, "n_ranked": 0.0, "n_seen": 0.0}


class FeatureSpace:
    """Feature and class registries shared by a pool of trees, and the encoding of the last
    instance: ``encode(x)`` gives ``(vector, values, missing)`` (NumPy vector over the registered
    features, NaN where missing; the same as a list; whether any is missing)."""

    def __init__(self) -> None:
        self.features: list = []
        self.feature_index: dict = {}
        self.classes: list = []
        self.class_index: dict = {}
        self._last_x: dict | None = None
        self._last: tuple | None = None

    def class_id(self, y: object) -> int:
        """The index of class ``y`` (registered on first sight)."""
        index = self.class_index.get(y)
        if index is None:
            index = self.class_index[y] = len(self.classes)
            self.classes.append(y)
        return index

    def encode(self, x: dict) -> tuple[np.ndarray, list, bool]:
        if self._last_x is not None and x == self._last_x:
            return self._last
        features = self.features
        try:
            if len(x) != len(features):
                raise KeyError
            values = [x[f] for f in features]
            vector = np.array(values, dtype=np.float64)
            missing = False
        except (KeyError, TypeError, ValueError):
            vector, values, missing = self._encode_slow(x)
        self._last_x, self._last = dict(x), (vector, values, missing)
        return self._last

    def _encode_slow(self, x: dict) -> tuple[np.ndarray, list, bool]:
        for f, v in x.items():
            if v is not None and (not isinstance(v, numbers.Number) or isinstance(v, complex)):
                raise InputError(f"FastHoeffdingTreeClassifier: feature {f!r} has the non-numeric value {v!r}; "
                                 "this tree handles numeric features only (use river's HoeffdingTreeClassifier)")
            if f not in self.feature_index:
                self.feature_index[f] = len(self.features)
                self.features.append(f)
        values = [math.nan if x.get(f) is None else float(x[f]) for f in self.features]
        vector = np.array(values, dtype=np.float64)
        return vector, values, bool(np.isnan(vector).any())


class LeafTable:
    """The statistics of the leaves of a pool of trees (one row per leaf; see the module
    docstring), and the vectorised naive-Bayes prediction and learning over several leaves.

    ``rank[r, c]``: the order in which leaf ``r``'s class weights list class ``c`` (river's
    ``stats`` dict order; ``inf``: absent); ``seen[r, c]``: the order in which its splitters first
    saw ``c`` (the order of the children's class weights after a split)."""

    def __init__(self, leaf_prediction: str = "nba", nb_threshold: float = 0.0) -> None:
        self.space = FeatureSpace()
        self.leaf_prediction = leaf_prediction
        self.nb_threshold = nb_threshold
        self.subspaces = False
        self.version = 0  # changes whenever a leaf's statistics do (naive-Bayes memo)
        self._memo: tuple | None = None
        self._free: list[int] = []
        self._top = 0
        self._shape = (0, 0, 0)
        self._resize(8, 1, 1)

    def _resize(self, rows: int, classes: int, features: int) -> None:
        self._memo = None
        old = self._shape
        for name, fill in (_CUBES | _MATRICES | _VECTORS | {"active": True, "sub": True}).items():
            shape = {**dict.fromkeys(_CUBES, (rows, classes, features)), **dict.fromkeys(_MATRICES, (rows, classes)),
                     **dict.fromkeys(_VECTORS, (rows,)), "active": (rows,), "sub": (rows, features)}[name]
            dtype = bool if name in ("active", "sub") else np.intp if name == "ordered" else np.float64
            new = np.full(shape, fill, dtype=dtype)
            if old[0]:
                current = getattr(self, name)
                new[tuple(slice(0, s) for s in current.shape)] = current
            setattr(self, name, new)
        self._shape = (rows, classes, features)
        self._views()

    def _views(self) -> None:
        """``[leaves * classes, features]`` views of the observers (the learning step's rows)."""
        rows, classes, features = self._shape
        self._flat = {name: getattr(self, name).reshape(rows * classes, features) for name in _CUBES}

    def __getstate__(self) -> dict:  # copies and pickles must not split the views from their arrays
        state = self.__dict__.copy()
        del state["_flat"]
        state["_memo"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._views()

    def fit(self) -> None:
        """Widen the arrays to the space's classes and features (registered since)."""
        rows, classes, features = self._shape
        c, f = max(len(self.space.classes), 1), max(len(self.space.features), 1)
        if c > classes or f > features:
            self._resize(rows, max(c, classes), max(f, features))

    def new_row(self, classes: Sequence[int] = (), weights: Sequence[float] = ()) -> int:
        """A fresh leaf starting from the class weights ``weights`` (classes in that order)."""
        self.version += 1
        if self._free:
            r = self._free.pop()
        else:
            if self._top == self._shape[0]:
                self._resize(2 * self._shape[0], self._shape[1], self._shape[2])
            r, self._top = self._top, self._top + 1
        for name, fill in (_CUBES | _MATRICES | _VECTORS).items():
            getattr(self, name)[r] = fill
        self.active[r] = True
        self.sub[r] = True
        for i, (c, w) in enumerate(zip(classes, weights)):
            self.stats[r, c], self.rank[r, c], self.ordered[r, i] = w, i, c
        self.n_ranked[r] = len(classes)
        self.last[r] = sum(weights)  # river: the weight at creation counts as the last split attempt
        return r

    def free_row(self, r: int) -> None:
        self._free.append(r)

    def reset_observers(self, r: int) -> None:
        """Forget leaf ``r``'s observers, keep its class weights (see the module docstring)."""
        self.version += 1
        for name, fill in _CUBES.items():
            getattr(self, name)[r] = fill
        self.seen[r] = math.inf
        self.n_seen[r] = 0

    def total(self, r: int) -> float:
        """Leaf ``r``'s weight, summed in river's order (its ``sum(stats.values())``: the split
        attempts' timing depends on the last bit)."""
        return sum(self.stats[r, self.ordered[r, : int(self.n_ranked[r])]].tolist())

    # -- vectorised over leaves ------------------------------------------------------------------
    def naive_bayes(self, rows: np.ndarray, x: np.ndarray, missing: bool) -> tuple[np.ndarray, np.ndarray]:
        """``([L, C] naive-Bayes distributions, [L] valid)`` of the leaves ``rows`` for ``x``
        (invalid: a leaf without weight, river's ``{}``)."""
        stats = self.stats[rows]
        total = np.add.reduce(stats, axis=1)
        delta = x - self.mean[rows]
        terms = delta * delta * self.a[rows] + self.b[rows]
        if missing:
            terms = np.where(np.isnan(x), 0.0, terms)
        if self.subspaces:
            terms = terms * self.sub[rows][:, None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            votes = np.log(stats / total[:, None]) + np.add.reduce(terms, axis=2)
            votes = np.where(stats > 0, votes, np.where(self.rank[rows] < math.inf, 0.0, -math.inf))
            votes = np.exp(votes - np.maximum.reduce(votes, axis=1, keepdims=True))
            proba = votes / np.add.reduce(votes, axis=1, keepdims=True)
        return proba, total > 0

    def naive_bayes_memo(self, rows: np.ndarray, x: np.ndarray, missing: bool) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`naive_bayes`, reusing the last evaluation when it covered these leaves for the same
        instance and no leaf has changed since (a pool predicts, then learns, an instance)."""
        memo = self._memo
        if memo is not None and memo[0] is x and memo[1] == self.version:
            index = [memo[2].get(r) for r in rows.tolist()]
            if None not in index:
                return memo[3][index], memo[4][index]
        nb, valid = self.naive_bayes(rows, x, missing)
        self._memo = (x, self.version, {r: i for i, r in enumerate(rows.tolist())}, nb, valid)
        return nb, valid

    def predict(self, rows: np.ndarray, x: np.ndarray, missing: bool) -> np.ndarray:
        """``[L, C]`` leaf predictions (river's ``leaf.prediction``; zeros: no answer)."""
        stats = self.stats[rows]
        total = np.add.reduce(stats, axis=1)
        majority = stats / np.where(total > 0, total, 1.0)[:, None]
        if self.leaf_prediction == "mc":
            return majority
        nb, valid = self.naive_bayes_memo(rows, x, missing)
        use = self.active[rows] & ((self.nb[rows] >= self.mc[rows]) if self.leaf_prediction == "nba"
                                   else (total >= self.nb_threshold))
        return np.where(use[:, None], np.where(valid[:, None], nb, 0.0), majority)

    def _first_best(self, values: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """Per row, the class of the highest value, ties to the lowest ``rank``."""
        return np.where(values == np.maximum.reduce(values, axis=1, keepdims=True), rank, math.inf).argmin(axis=1)

    def learn(self, rows: np.ndarray, x: np.ndarray, missing: bool, c: int, w: np.ndarray) -> None:
        """Leaves ``rows`` (distinct) learn ``(x, c)`` with weights ``w``: naive-Bayes-adaptive
        scoring, class weights and (active leaves) observers."""
        active = self.active[rows]
        if self.leaf_prediction == "nba" and np.logical_or.reduce(active):
            rank = self.rank[rows]
            majority_ok = (self.n_ranked[rows] == 0) | (self._first_best(self.stats[rows], rank) == c)
            nb, valid = self.naive_bayes_memo(rows, x, missing)
            nb_ok = valid & (self._first_best(nb, rank) == c)
            self.mc[rows] += np.where(active & majority_ok, w, 0.0)
            self.nb[rows] += np.where(active & nb_ok, w, 0.0)
        self.version += 1
        new = self.rank[rows, c] == math.inf
        if np.logical_or.reduce(new):
            fresh = rows[new]
            self.rank[fresh, c] = self.n_ranked[fresh]
            self.ordered[fresh, self.n_ranked[fresh].astype(np.intp)] = c
            self.n_ranked[fresh] += 1
        self.stats[rows, c] += w
        if not np.logical_and.reduce(active):
            rows, w = rows[active], w[active]
        if not len(rows):
            return
        new = self.seen[rows, c] == math.inf
        if np.logical_or.reduce(new):
            fresh = rows[new]
            self.seen[fresh, c] = self.n_seen[fresh]
            self.n_seen[fresh] += 1
        self._observe(rows, x, missing, c, w[:, None])

    def _observe(self, rows: np.ndarray, x: np.ndarray, missing: bool, c: int, w: np.ndarray) -> None:
        """Class ``c``'s observers of leaves ``rows`` learn ``x`` with weights ``w`` ``[L, 1]``
        (river's weighted Welford update; rows of the ``[leaves * classes, features]`` views)."""
        flat = self._flat
        k = rows * self._shape[1] + c
        n_old, mean_old = flat["n"][k], flat["mean"][k]
        if missing:
            observed = ~np.isnan(x)
            x = np.where(observed, x, mean_old)
            w = np.where(observed, w, 0.0)
            n_new = n_old + w
            step = np.divide(w, n_new, out=np.zeros_like(n_new), where=n_new > 0)
            low, high = np.where(observed, x, math.inf), np.where(observed, x, -math.inf)
        else:
            n_new = n_old + w
            step = w / n_new
            low = high = x
        delta = x - mean_old
        mean_new = mean_old + step * delta
        m2 = flat["m2"][k] + w * delta * (x - mean_new)
        flat["n"][k], flat["mean"][k], flat["m2"][k] = n_new, mean_new, m2
        flat["lo"][k] = np.minimum(flat["lo"][k], low)
        flat["hi"][k] = np.maximum(flat["hi"][k], high)
        variance = m2 / np.maximum(n_new - 1.0, 1e-300)
        valid = (n_new > 1.0) & (variance > 0.0)
        safe = np.where(valid, variance, 1.0)
        flat["a"][k] = np.where(valid, -0.5 / safe, 0.0)
        flat["b"][k] = np.where(valid, -_HALF_LOG_TAU - 0.5 * np.log(safe), 0.0)


class _Leaf:
    __slots__ = ("depth", "drawn", "row", "since", "table")

    def __init__(self, row: int, depth: int, table: LeafTable) -> None:
        self.row, self.depth, self.table, self.drawn = row, depth, table, False
        self.since = 0  # instances learned since the last split attempt (grace_unit="instances")

    @property
    def total_weight(self) -> float:
        return self.table.total(self.row)


class _Branch:
    """``x[feature] <= threshold`` goes left. ``weight``: the split leaf's weight (river's
    branch ``stats``), used to pick the most common path when the feature is missing."""

    __slots__ = ("feature", "left", "right", "threshold", "total_weight")

    def __init__(self, feature: int, threshold: float, left, right, weight: float) -> None:
        self.feature, self.threshold, self.left, self.right, self.total_weight = feature, threshold, left, right, weight

    def most_common(self):
        """river's ``NumericBinaryBranch.most_common_path``: the heavier child (ties: left)."""
        return self.right if self.left.total_weight < self.right.total_weight else self.left


class FastHoeffdingTreeClassifier(base.Classifier):
    """river's Hoeffding tree with vectorised leaves (see the module docstring).

    Parameters (river's names and defaults)
    ----------
    grace_period
        Weight a leaf learns between split attempts.
    max_depth
        Leaves at this depth stop growing (``None``: unbounded).
    delta
        Split confidence (the Hoeffding bound's ``delta``).
    tau
        Tie threshold: split on the best candidate when the bound falls below it.
    leaf_prediction
        ``"mc"`` (majority class), ``"nb"`` (naive Bayes) or ``"nba"`` (naive Bayes adaptive).
    nb_threshold
        Weight a leaf must have seen before naive Bayes is used (``"nb"``).
    min_branch_fraction
        Minimum weight fraction a split's branches must each hold.
    max_share_to_split
        A leaf whose majority class holds more than this share forgets its observers instead of
        splitting (river's deactivate-then-reactivate).
    n_splits
        Candidate split points per feature.
    max_features
        ``None``: every feature; a count: ARF-style random subspace of that many features per leaf.
    seed
        Seed of the subspace draws.
    grace_unit
        ``"weight"`` (river: a leaf tries to split when its weight has grown by ``grace_period``;
        with Poisson(6) instance weights, every ~8 instances) or ``"instances"`` (when it has
        learned ``grace_period`` instances, whatever their weights: fewer split attempts; not
        river's tree).
    table
        A :class:`LeafTable` shared with the other trees of a pool (default: the tree's own); its
        ``leaf_prediction`` and ``nb_threshold`` must be this tree's.
    """

    def __init__(self, grace_period: int = 200, max_depth: int | None = None, delta: float = 1e-7, tau: float = 0.05,
                 leaf_prediction: str = "nba", nb_threshold: int = 0, min_branch_fraction: float = 0.01,
                 max_share_to_split: float = 0.99, n_splits: int = 10, max_features: int | None = None,
                 seed: int | None = None, table: LeafTable | None = None, grace_unit: str = "weight") -> None:
        self.grace_period = grace_period
        self.max_depth = max_depth
        self.delta = delta
        self.tau = tau
        self.leaf_prediction = leaf_prediction
        self.nb_threshold = nb_threshold
        self.min_branch_fraction = min_branch_fraction
        self.max_share_to_split = max_share_to_split
        self.n_splits = n_splits
        self.max_features = max_features
        self.seed = seed
        self.table = table
        self.grace_unit = grace_unit
        checks = [(grace_unit in GRACE_UNITS, f"grace_unit must be one of {GRACE_UNITS}, got {grace_unit!r}"),
                  (grace_period > 0, "grace_period must be > 0"), (0 < delta < 1, "delta must be in (0, 1)"),
                  (tau >= 0, "tau must be >= 0"), (leaf_prediction in LEAF_PREDICTIONS,
                                                    f"leaf_prediction must be one of {LEAF_PREDICTIONS}"),
                  (0 <= min_branch_fraction < 0.5, "min_branch_fraction must be in [0, 0.5)"),
                  (0 < max_share_to_split <= 1, "max_share_to_split must be in (0, 1]"),
                  (n_splits >= 1, "n_splits must be >= 1"),
                  (max_features is None or max_features >= 1, "max_features must be None or >= 1"),
                  (table is None or (table.leaf_prediction, table.nb_threshold) == (leaf_prediction, nb_threshold),
                   "a shared table must have the tree's leaf_prediction and nb_threshold")]
        for ok, message in checks:
            if not ok:
                raise InputError(f"FastHoeffdingTreeClassifier: {message}")
        self._table = table if table is not None else LeafTable(leaf_prediction, nb_threshold)
        self._table.subspaces |= max_features is not None
        self._rng = random.Random(seed)
        self._root: _Leaf | _Branch | None = None
        self._routed: tuple | None = None  # (values, route) of the last prediction (learn reuses it)
        self._seen: set[int] = set()
        self._train_weight_seen_by_model = 0.0  # river's name
        self._depth_limit = math.inf if max_depth is None else max_depth
        self._log_inv_delta = math.log(1.0 / delta)

    # -- river API ----------------------------------------------------------------------------
    def learn_one(self, x: dict, y: base.typing.ClfTarget, *, w: float = 1.0) -> None:
        if y is None:
            raise InputError("FastHoeffdingTreeClassifier.learn_one: y is None, expected a class label")
        space = self._table.space
        encoded = space.encode(x)
        learn_together([self], encoded, space.class_id(y), [w])

    def predict_proba_one(self, x: dict) -> dict[base.typing.ClfTarget, float]:
        space = self._table.space
        proba = predict_together([self], space.encode(x))[0]
        if proba is None:
            return {}
        return {space.classes[c]: float(proba[c]) for c in sorted(self._seen, key=lambda c: space.classes[c])}

    @property
    def _multiclass(self) -> bool:
        return True

    @property
    def n_nodes(self) -> int:
        def count(node) -> int:
            return 1 + count(node.left) + count(node.right) if isinstance(node, _Branch) else 1
        return 0 if self._root is None else count(self._root)

    def release(self) -> None:
        """Give the tree's leaf rows back to the shared table (the tree is being discarded)."""
        def free(node) -> None:
            if isinstance(node, _Branch):
                free(node.left)
                free(node.right)
            else:
                self._table.free_row(node.row)
        if self._root is not None:
            free(self._root)
            self._root = None
        self._routed = None

    # -- internals ----------------------------------------------------------------------------
    def _route_memo(self, values: list) -> tuple[_Leaf, _Branch | None, bool]:
        """:meth:`_route`, remembered for ``values`` (the same list object: the space's encoding of
        one instance) until the tree changes, so a pool that predicts, then learns, an instance
        walks each tree once."""
        memo = self._routed
        if memo is not None and memo[0] is values:
            return memo[1]
        route = self._route(values)
        self._routed = (values, route)
        return route

    def _route(self, values: list) -> tuple[_Leaf, _Branch | None, bool]:
        """``(leaf, parent, routed)`` for ``values``; a missing split feature takes the most
        common path (``routed`` False: river then learns without a split attempt)."""
        parent, node, routed = None, self._root, True
        while isinstance(node, _Branch):
            value = values[node.feature]
            if value != value:
                routed = False
                node = node.most_common()
            else:
                parent, node = node, (node.left if value <= node.threshold else node.right)
        return node, parent, routed

    def _prepare(self, values: list, missing: bool, c: int, w: float) -> tuple[_Leaf, _Branch | None, bool]:
        self._seen.add(c)
        self._train_weight_seen_by_model += w
        if self._root is None:
            self._root = _Leaf(self._table.new_row(), 0, self._table)
            self._routed = None
        leaf, parent, routed = self._route_memo(values)
        if self.max_features is not None and not leaf.drawn and self._table.active[leaf.row]:
            present = [f for f, v in enumerate(values) if v == v] if missing else range(len(values))
            chosen = self._rng.sample(list(present), self.max_features) if len(present) >= self.max_features \
                else list(present)
            self._table.sub[leaf.row] = False
            self._table.sub[leaf.row, chosen] = True
            self._table.version += 1
            leaf.drawn = True
        return leaf, parent, routed

    def _due(self, leaf: _Leaf, routed: bool, gap: float = math.inf) -> float | None:
        """After learning: river's depth check, then the leaf's weight if a split attempt is due
        (``None`` if not). ``gap``: the leaf's weight since its last attempt as NumPy sums it;
        far enough below the grace period, the exact sum in river's order
        (:meth:`LeafTable.total`) need not be taken."""
        table, r = self._table, leaf.row
        if not (routed and table.active[r]):
            return None
        if leaf.depth >= self._depth_limit:
            table.active[r] = False
            return None
        if self.grace_unit == "instances":
            leaf.since += 1
            if leaf.since < self.grace_period:
                return None
            leaf.since = 0
            return table.total(r)
        if gap < self.grace_period * (1.0 - 1e-9):
            return None
        weight = table.total(r)
        return weight if weight - table.last[r] >= self.grace_period else None

    def _splittable(self, leaf: _Leaf, total: float) -> bool:
        """river's checks before the split search: at least two classes, and (else the leaf
        forgets its observers) no class above ``max_share_to_split``."""
        table, r = self._table, leaf.row
        stats = table.stats[r]
        if np.count_nonzero(stats) < 2:
            return False
        top = float(stats.max())
        if top and top / total > self.max_share_to_split:
            table.reset_observers(r)
            return False
        return True

    def _decide(self, leaf: _Leaf, parent: _Branch | None, total: float, merits: np.ndarray,
                thresholds: np.ndarray) -> None:
        """river's ``_attempt_to_split`` after the split search (see the module docstring)."""
        table, r = self._table, leaf.row
        observed = table.n[r].sum(axis=0) > 0
        features = np.flatnonzero(observed & table.sub[r] if self.max_features is not None else observed)
        ranked = np.concatenate([[-math.inf], merits[features]])
        order = np.argsort(ranked, kind="stable")
        best = int(order[-1])
        if len(order) > 1:
            n_classes = int(np.count_nonzero(table.rank[r] < math.inf))
            bound = math.sqrt(math.log2(max(n_classes, 2)) ** 2 * self._log_inv_delta / (2.0 * total))
            if not (float(ranked[best]) - float(ranked[int(order[-2])]) > bound or bound < self.tau):
                return
        if best == 0 or ranked[best] == -math.inf:  # no valid split wins
            table.reset_observers(r)
            return
        f = int(features[best - 1])
        split = self._assemble(leaf, f, float(thresholds[f]), total)
        self._routed = None
        if parent is None:
            self._root = split
        elif parent.left is leaf:
            parent.left = split
        else:
            parent.right = split
        table.free_row(r)

    def _assemble(self, leaf: _Leaf, f: int, threshold: float, weight: float) -> _Branch:
        """A branch on ``x[f] <= threshold`` whose leaves start from the split's class weights,
        computed as river's ``_class_dists_from_binary_split`` does, in Python floats and with
        ``math.erf`` (a child's weight decides when it next tries to split, to the last bit), the
        classes in the order the leaf's splitters first saw them (river's dict order)."""
        table, r = self._table, leaf.row
        n, mean, m2 = table.n[r, :, f].tolist(), table.mean[r, :, f].tolist(), table.m2[r, :, f].tolist()
        lo, hi = table.lo[r, :, f].tolist(), table.hi[r, :, f].tolist()
        left: dict[int, float] = {}
        right: dict[int, float] = {}
        for c in np.argsort(table.seen[r], kind="stable").tolist():
            if not n[c] > 0:
                continue
            if threshold < lo[c]:
                right[c] = n[c]
            elif threshold >= hi[c]:
                left[c] = n[c]
            else:
                sigma = max(m2[c] / (n[c] - 1.0) if n[c] > 1.0 else 0.0, 0.0) ** 0.5
                cdf = 0.5 * (1.0 + math.erf((threshold - mean[c]) / sigma / _SQRT2)) if sigma > 0 else 0.0
                left[c] = cdf * n[c]
                right[c] = n[c] - left[c]
        sides = [_Leaf(table.new_row(list(d), list(d.values())), leaf.depth + 1, table) for d in (left, right)]
        return _Branch(f, threshold, sides[0], sides[1], weight)


def predict_together(trees: Sequence[FastHoeffdingTreeClassifier], encoded: tuple, *,
                     matrix: bool = False) -> list[np.ndarray | None] | tuple[np.ndarray, np.ndarray]:
    """river's ``predict_proba_one`` of trees sharing one table, in one vectorised evaluation:
    per tree the ``[C]`` class probabilities over the space's classes (``None`` before it has
    learned anything; zeros for a leaf without an answer). ``matrix``: instead, ``([T, C]
    probabilities, [T] answered)`` (rows of trees that have not learned: zeros)."""
    vector, values, missing = encoded
    table = trees[0]._table
    table.fit()
    n_classes = len(table.space.classes)
    leaves = [-1 if t._root is None else t._route_memo(values)[0].row for t in trees]
    if -1 in leaves:
        answered = np.array([r >= 0 for r in leaves])
        rows = np.array([r for r in leaves if r >= 0], dtype=np.intp)
    else:
        answered, rows = None, np.array(leaves, dtype=np.intp)
    proba = table.predict(rows, *_pad(vector, missing, table))[:, :n_classes] if len(rows) else None
    if answered is not None:
        full = np.zeros((len(trees), n_classes))
        if proba is not None:
            full[answered] = proba
        proba = full
    else:
        answered = np.ones(len(trees), dtype=bool)
    if matrix:
        return proba, answered
    return [p if a else None for p, a in zip(proba, answered.tolist())]


def learn_together(trees: Sequence[FastHoeffdingTreeClassifier], encoded: tuple, c: int,
                   weights: Sequence[float]) -> None:
    """Each tree (sharing one table) learns ``(x, c)`` with its weight: river's ``learn_one`` for
    every tree, the leaf statistics of all of them updated in one vectorised step."""
    vector, values, missing = encoded
    table = trees[0]._table
    table.fit()
    learning = [(t, w) for t, w in zip(trees, weights) if w > 0]
    if not learning:
        return
    paths = [t._prepare(values, missing, c, w) for t, w in learning]
    rows = np.array([leaf.row for leaf, _, _ in paths], dtype=np.intp)
    table.learn(rows, *_pad(vector, missing, table), c, np.array([w for _, w in learning], dtype=np.float64))
    gaps = (np.add.reduce(table.stats[rows], axis=1) - table.last[rows]).tolist()
    due = []
    for (tree, _), (leaf, parent, routed), gap in zip(learning, paths, gaps):
        weight = tree._due(leaf, routed, gap)
        if weight is not None:
            due.append((tree, leaf, parent, weight))
    if due:
        _attempt_splits(due)


def _pad(vector: np.ndarray, missing: bool, table: LeafTable) -> tuple[np.ndarray, bool]:
    """The instance's vector over the table's feature columns (NaN: missing)."""
    width = table.n.shape[2]
    if len(vector) == width:
        return vector, missing
    return np.concatenate([vector, np.full(width - len(vector), math.nan)]), True


def _attempt_splits(due: list[tuple[FastHoeffdingTreeClassifier, _Leaf, _Branch | None, float]]) -> None:
    """river's ``_attempt_to_split`` for every ``(tree, leaf, parent, weight)`` whose attempt is
    due, in order, with one split search for all the leaves that need it (trees sharing a table and
    the split-search settings); each leaf's weight is recorded as its last attempt right after its
    decision (a leaf freed by a split may be the next split's child)."""
    searched = [item for item in due if item[0]._splittable(item[1], item[3])]
    results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if searched:
        first = searched[0][0]
        same = [i for i, (t, _, _, _) in enumerate(searched) if (t.n_splits, t.min_branch_fraction)
                == (first.n_splits, first.min_branch_fraction)]
        merits, thresholds = _split_merits(first._table, np.array([searched[i][1].row for i in same], dtype=np.intp),
                                           first.n_splits, first.min_branch_fraction)
        results = {id(searched[i][1]): (merits[j], thresholds[j]) for j, i in enumerate(same)}
        for t, leaf, _, _ in searched:
            if id(leaf) not in results:  # other settings: searched alone
                m, th = _split_merits(t._table, np.array([leaf.row], dtype=np.intp), t.n_splits, t.min_branch_fraction)
                results[id(leaf)] = (m[0], th[0])
    for tree, leaf, parent, weight in due:
        r = leaf.row
        if id(leaf) in results:
            tree._decide(leaf, parent, weight, *results[id(leaf)])
        tree._table.last[r] = weight


def _split_merits(table: LeafTable, rows: np.ndarray, n_splits: int,
                  min_branch_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Per leaf of ``rows`` and feature: the best candidate's merit (``-inf``: none valid) and its
    threshold, ``[L, F]`` each, all leaves, features and candidates in one evaluation."""
    n, lo, hi = table.n[rows], table.lo[rows], table.hi[rows]  # [L, C, F]
    observed = n > 0
    low = np.where(observed, lo, math.inf).min(axis=1)  # [L, F]
    high = np.where(observed, hi, -math.inf).max(axis=1)
    candidates = np.arange(1, n_splits + 1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        width = (high - low) / (n_splits + 1.0)
        splits = low[:, :, None] + width[:, :, None] * candidates  # [L, F, S]
        valid = (low[:, :, None] < splits) & (splits < high[:, :, None])
        variance = np.where(n > 1.0, table.m2[rows] / np.maximum(n - 1.0, 1e-300), 0.0)
        sigma = np.sqrt(np.maximum(variance, 0.0))[:, :, :, None]  # [L, C, F, 1]
        s = splits[:, None]  # [L, 1, F, S]
        cdf = np.where(sigma > 0, 0.5 * (1.0 + erf((s - table.mean[rows][:, :, :, None]) / sigma / _SQRT2)), 0.0)
        nk = np.where(observed, n, 0.0)[:, :, :, None]
        left = np.where(s < lo[:, :, :, None], 0.0, np.where(s >= hi[:, :, :, None], nk, cdf * nk))
        sides = np.stack([left, nk - left])  # [2, L, C, F, S]
        weights = np.add.reduce(sides, axis=2)  # [2, L, F, S]
        both = weights[0] + weights[1]
        share = weights / both
        ok = valid & (both > 0) & (share[0] > min_branch_fraction) & (share[1] > min_branch_fraction)
        post = np.add.reduce(weights * _entropies(sides, weights), axis=0) / both
    pre = np.array([_entropy(table.stats[r]) for r in rows.tolist()])
    merit = np.where(ok, pre[:, None, None] - post, -math.inf)
    best = merit.argmax(axis=2)[:, :, None]  # the first best candidate, as river's strict ">"
    return np.take_along_axis(merit, best, axis=2)[:, :, 0], np.take_along_axis(splits, best, axis=2)[:, :, 0]


def _entropy(dist: np.ndarray) -> float:
    """river's ``H(d) = (D log2 D - sum_k d_k log2 d_k) / D`` over the entries ``d_k > 0``."""
    positive = dist[dist > 0]
    weight = float(positive.sum())
    return float((weight * math.log2(weight) - (positive * np.log2(positive)).sum()) / weight) if weight > 0 else 0.0


def _entropies(dists: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """:func:`_entropy` of every ``dists[b, l, :, f, s]`` (classes on axis 2), ``0`` where the total is 0."""
    plogp = np.add.reduce(np.where(dists > 0, dists * np.log2(np.where(dists > 0, dists, 1.0)), 0.0), axis=2)
    return np.where(totals > 0, (totals * np.log2(np.where(totals > 0, totals, 1.0)) - plogp) / totals, 0.0)
