"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A reader never sees a half-written file, and a crash leaves the old file (or none) in place. The
result gets the permissions a plain ``open(path, "w")`` would give (``0o666`` minus the umask):
the temporary file is created with mode ``0o666`` so the kernel applies the umask, and that mode
is restored after writing, since some writers (safetensors) recreate the file as ``0o600``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


def _create_temp(path: Path) -> Path:
    """A new, empty, uniquely named file beside ``path`` (``O_EXCL``: never an existing one)."""
    while True:
        tmp = path.with_name(f".{path.stem}.{secrets.token_hex(6)}{path.suffix or '.tmp'}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_path(path: str | Path, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it replaces ``path``, on error it is removed.

    ``fsync=True`` flushes the file to disk before the rename (checkpoints).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(path)
    mode = tmp.stat().st_mode & 0o777     # 0o666 minus the umask, read without touching the umask
    try:
        yield tmp
        os.chmod(tmp, mode)               # writers that recreate the file (safetensors) make it 0o600
        if fsync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
