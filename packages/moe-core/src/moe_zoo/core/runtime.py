"""Seeding, device selection and logging shared by every package.

numpy and torch are imported inside the functions that use them, so the CLI can set up logging
and answer a bad argument without loading torch.
"""

from __future__ import annotations

import logging
import os
import random
from typing import TYPE_CHECKING

from moe_zoo.core.errors import InputError

if TYPE_CHECKING:
    import torch

LOGGER_NAME = "moe_zoo"


def seed_everything(seed: int, *, deterministic: bool = False) -> int:
    """Seed Python, NumPy and torch (all devices); optionally force deterministic kernels."""
    if not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a non-negative int, got {seed!r}")
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    return seed


def set_threads(threads: int | None) -> None:
    """Set torch's CPU thread count; ``None`` keeps torch's default (every core).

    One thread is usually fastest for the small models here on a machine shared with other jobs.
    """
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"threads must be a positive int or None, got {threads!r}")
    import torch

    torch.set_num_threads(threads)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"`` -> cuda when available else cpu; an explicit device is validated."""
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InputError(f"device: {device!r} is not a torch device ({err})") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device: {device!r} requested but CUDA is not available on this machine")
    return resolved


def get_logger(name: str | None = None) -> logging.Logger:
    """Logger under the ``moe_zoo`` hierarchy (library code logs, never prints)."""
    return logging.getLogger(LOGGER_NAME if not name else f"{LOGGER_NAME}.{name.removeprefix('moe_zoo.')}")


def setup_logging(level: int | str = "INFO") -> logging.Logger:
    """Attach one stderr handler to the ``moe_zoo`` logger (idempotent)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level if isinstance(level, int) else level.upper())
    if not any(getattr(h, "_moe_zoo", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        handler._moe_zoo = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = False
    return logger
