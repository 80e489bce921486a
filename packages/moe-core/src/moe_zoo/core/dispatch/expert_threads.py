"""Expert-level parallelism across CPU threads, used by the segmented backend's backward.

A 64-expert layer (d=512, f=256) at 4096 tokens runs four ``[~512, 512] x [512, 512]``-sized
GEMMs per expert in the backward, plus gathers and a scatter. Splitting each of those small ops
over the intra-op threads costs a synchronisation per op. Instead the experts are split into one
group per intra-op thread (balanced by rows, longest first) and each group runs on its own worker
thread with single-threaded BLAS; ``dL/dx`` goes to one buffer per group, summed at the end.
Workers call ``torch.set_num_threads(1)`` once when they start, which is thread-local for OpenMP
and MKL, so the caller's thread settings are untouched.

It pays only for small experts. ``benchmarks/expert_threads_ab.py`` times the backward alone
both ways on the 2-core EPYC (median per-repeat ratio loop / threads): d=512, f=256, E=64 runs
1.14x faster at 512 tokens and 1.12x at 4096; d=512, f=1024, E=8 (6 MiB of weights per expert,
more than a core's 1 MiB L2) gives 0.96, 1.07 and 0.96 at 256, 1024 and 4096 tokens, no gain.
Hence the cut-off :data:`SMALL_EXPERT_BYTES`. A threaded forward loop was tried as well and timed
within noise of the plain loop, so the forward stays one loop.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch
from torch import Tensor
from torch.utils._python_dispatch import _get_current_dispatch_mode

SMALL_EXPERT_BYTES = 2 * 2**20
"""Experts whose two weight matrices together are at most this size run on parallel threads."""

R = TypeVar("R")
_pool: ThreadPoolExecutor | None = None
_pool_key: tuple[int, int] = (0, 0)  # (pid, workers): a forked child or more threads needs a new pool


def balanced_groups(counts: Sequence[int], groups: int) -> list[list[int]]:
    """Experts with rows, split into at most ``groups`` lists of about equal total rows.

    Longest-processing-time first: experts in decreasing row count, each to the lightest group;
    each list is returned in increasing expert order.
    """
    loads = [(0, g) for g in range(groups)]
    members: list[list[int]] = [[] for _ in range(groups)]
    for e in sorted((e for e, c in enumerate(counts) if c > 0), key=lambda e: -counts[e]):
        load, g = heapq.heappop(loads)
        members[g].append(e)
        heapq.heappush(loads, (load + counts[e], g))
    return [sorted(m) for m in members if m]


def expert_threads(w_in: Tensor, w_out: Tensor, counts: Sequence[int]) -> int:
    """How many expert groups to run in parallel: the intra-op thread count, or 1.

    One group (the plain loop, in the caller's thread) unless the weights are on CPU and each
    expert's are at most :data:`SMALL_EXPERT_BYTES`; and one group while thread-local state is
    active that workers would not see: CPU autocast, a ``TorchDispatchMode`` (FLOP counters, fake
    tensors under ``torch.compile``), a ``TorchFunctionMode``, or ``torch.profiler`` (which
    records the caller's thread only, so a profile shows every expert op of the plain loop).
    """
    per_expert = (w_in[0].numel() + w_out[0].numel()) * w_in.element_size()
    if (w_in.device.type != "cpu" or per_expert > SMALL_EXPERT_BYTES or torch.is_autocast_enabled("cpu")
            or _get_current_dispatch_mode() is not None or torch._C._is_torch_function_mode_enabled()
            or torch.autograd._profiler_enabled()):
        return 1
    return max(1, min(torch.get_num_threads(), sum(c > 0 for c in counts)))


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_key
    pid = os.getpid()
    if _pool is None or _pool_key[0] != pid or _pool_key[1] < workers:
        if _pool is not None and _pool_key[0] == pid:
            _pool.shutdown(wait=False)
        _pool = ThreadPoolExecutor(workers, thread_name_prefix="moe-experts",
                                   initializer=torch.set_num_threads, initargs=(1,))
        _pool_key = (pid, workers)
    return _pool


def map_expert_groups(task: Callable[[list[int]], R], counts: Sequence[int], workers: int) -> list[R]:
    """``[task(group) for group in balanced_groups(counts, workers)]``; with ``workers > 1`` the
    groups run concurrently on single-threaded workers, under ``no_grad``."""
    groups = balanced_groups(counts, workers)
    if workers == 1:
        return [task(group) for group in groups]

    def run(group: list[int]) -> R:
        with torch.no_grad():
            return task(group)

    futures = [_executor(workers).submit(run, group) for group in groups]
    return [future.result() for future in futures]
