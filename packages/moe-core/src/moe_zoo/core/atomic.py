"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A reader never sees a half-written file, and a crash leaves the old file (or none) in place. The
result gets the permissions a plain ``open(path, "w")`` would give (``0o666`` minus the umask):
the temporary file is created with mode ``0o666`` so the kernel applies the umask, and that mode
is restored after writing, since some writers (safetensors) recreate the file as ``0o600``.

Temporary files are named ``.<target name>.<pid>-<12 hex>.moe-zoo-tmp<target suffix>`` (the suffix
kept for writers that pick a format from it, e.g. matplotlib): a writer killed before
its rename leaves one behind, and :func:`remove_stale_temps` (called by the next write of the same
target, and by checkpoint loads) deletes those whose process is gone. No user file ends in
with ``.moe-zoo-tmp<its suffix>``, and a live writer's file (same host) is never touched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

from moe_zoo.core.runtime import get_logger

TEMP_MARK = ".moe-zoo-tmp"
_log = get_logger(__name__)


def _temp_pattern(path: Path) -> re.Pattern[str]:
    return re.compile(re.escape(f".{path.name}.") + r"(\d+)-[0-9a-f]{12}" + re.escape(TEMP_MARK + path.suffix))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's live process, or not a pid we can judge: leave its file alone
    return True


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete the temp files a killed writer of ``path`` left beside it (its process is gone); returns them."""
    path = Path(path)
    pattern = _temp_pattern(path)
    removed = []
    with contextlib.suppress(OSError):
        for candidate in path.parent.glob(f".{glob.escape(path.name)}.*{TEMP_MARK}*"):
            match = pattern.fullmatch(candidate.name)
            if match and candidate.is_file() and not _alive(int(match.group(1))):
                candidate.unlink(missing_ok=True)
                removed.append(candidate)
                _log.info("removed %s, left by an interrupted write of %s", candidate.name, path.name)
    return removed


def _create_temp(path: Path) -> Path:
    """A new, empty, uniquely named file beside ``path`` (``O_EXCL``: never an existing one)."""
    while True:
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}{TEMP_MARK}{path.suffix}")
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
    remove_stale_temps(path)
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
