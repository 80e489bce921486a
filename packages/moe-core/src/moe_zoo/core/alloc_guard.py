"""Bound the memory a piece of code may allocate through tensor factories (``torch.empty``,
``zeros``, ``randn``, ...), checked *before* each allocation. Loading a checkpoint builds its model
under this guard, so a config that asks for more than the file's tensors justify
(``d_hidden=1e9``) fails at once instead of allocating terabytes."""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode

_FACTORIES = frozenset({torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.randint,
                        torch.randperm, torch.arange, torch.linspace, torch.logspace, torch.eye, torch.empty_strided})


class AllocationLimitError(RuntimeError):
    """A tensor factory asked for more bytes than the guard's budget had left."""


class allocation_limit(TorchFunctionMode):
    """``with allocation_limit(n):`` raises :class:`AllocationLimitError` once the tensor factories
    called inside ask for more than ``n`` bytes in all. Each call's size is found by running it on
    the meta device first (no memory); ops on existing tensors are not counted."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__()
        self.limit = limit_bytes
        self.used = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _FACTORIES and "out" not in kwargs:
            try:
                probe = func(*args, **{**kwargs, "device": "meta"})
            except (TypeError, ValueError, RuntimeError, NotImplementedError):
                return func(*args, **kwargs)  # a call the meta device cannot size: let it raise or run as usual
            self.used += probe.numel() * probe.element_size()
            if self.used > self.limit:
                raise AllocationLimitError(
                    f"torch.{func.__name__} asks for a {tuple(probe.shape)} {probe.dtype} tensor: "
                    f"{self.used / 2**20:.1f} MiB in all, over the limit of {self.limit / 2**20:.1f} MiB")
        return func(*args, **kwargs)
