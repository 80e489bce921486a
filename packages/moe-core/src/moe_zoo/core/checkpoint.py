"""Safe checkpoints: safetensors for tensors, JSON for config and provenance.

One ``.safetensors`` file holds everything: the tensors, and in its header metadata a JSON
document with the model's registry name, its config, provenance (command, data, git revision,
metrics, versions) and a SHA-256 over that document and the tensor bytes
(:mod:`~moe_zoo.core.checkpoint_header`). Nothing is ever unpickled, so loading a checkpoint cannot
run code. Writes are atomic (temp file in the same folder, fsync, rename); temp files left by a
killed writer are removed by the next save or load of the same path.

Guarantees on load: every malformed header is one :class:`CheckpointCorruptError`; a file whose
header or tensors changed after saving fails the checksum; :func:`load_model` builds the model
under an allocation limit set by the file's own tensor bytes, then checks every shape. The
checksum is integrity (accidents: truncation, bit flips, edits), not authenticity: whoever can
write the file can recompute it.

Errors: :class:`CheckpointNotFoundError` (missing), :class:`CheckpointCorruptError` (truncated,
malformed, not a moe-zoo checkpoint, fails its checksum, or a config that does not build a model
fitting its own tensors), :class:`CheckpointMismatchError` (the tensors do not fit a given model).
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from moe_zoo.core.alloc_guard import allocation_limit
from moe_zoo.core.atomic import atomic_path, remove_stale_temps
from moe_zoo.core.checkpoint_header import (
    FORMAT,
    FORMAT_VERSION,
    META_KEY,
    CheckpointCorruptError,
    CheckpointError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    checksum,
    parse_header,
    read_tensor_table,
)
from moe_zoo.core.config import Config
from moe_zoo.core.runtime import get_logger

_log = get_logger(__name__)
# A model built from a checkpoint may allocate (parameters, buffers, temporaries) at most twice the
# file's tensor bytes plus this much: enough for any model that fits its file, bounded for any config.
BUILD_SLACK_BYTES = 64 * 2**20

__all__ = ["FORMAT", "FORMAT_VERSION", "Checkpoint", "CheckpointCorruptError", "CheckpointError",
           "CheckpointMismatchError", "CheckpointNotFoundError", "build_from_checkpoint", "load_checkpoint",
           "load_model", "load_state_into", "migrate_checkpoint", "provenance", "read_checkpoint_metadata",
           "save_checkpoint"]


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint."""

    state_dict: dict[str, torch.Tensor]
    model_name: str | None
    config: dict[str, Any] | None
    metadata: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def nbytes(self) -> int:
        """Bytes of the distinct stored tensors (aliases counted once)."""
        return sum(t.numel() * t.element_size() for t in {id(t): t for t in self.state_dict.values()}.values())


def git_revision(path: str | Path | None = None) -> str | None:
    """``<sha>`` or ``<sha>-dirty`` of the git checkout holding ``path`` (None outside git)."""
    cwd = Path(path or Path.cwd())
    cwd = cwd if cwd.is_dir() else cwd.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(**extra: Any) -> dict[str, Any]:
    """Where a checkpoint came from: command, git revision, time, versions, plus ``extra``."""
    from moe_zoo.core import __version__

    record: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else None,
        "git_revision": git_revision(),
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "versions": {"moe_zoo_core": __version__, "torch": torch.__version__, "python": platform.python_version()},
    }
    record.update(extra)
    return record


def _dedupe_shared(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """safetensors refuses tensors that share memory: keep one, record the others as aliases."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[int, int, tuple[int, ...], tuple[int, ...]], str] = {}
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"state entry {name!r} is {type(value).__name__}, not a tensor")
        tensor = value.detach()
        if tensor.device.type != "meta" and tensor.numel() > 0:
            key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape), tensor.stride())
            if key in seen:
                aliases[name] = seen[key]
                continue
            seen[key] = name
        tensors[name] = tensor.contiguous().cpu()
    # Tensors that still share storage (views into one buffer) must be copied apart.
    storages: set[int] = set()
    for name, tensor in tensors.items():
        ptr = tensor.untyped_storage().data_ptr()
        if tensor.numel() > 0 and ptr in storages:
            tensors[name] = tensor.clone()
        storages.add(ptr)
    return tensors, aliases


def save_checkpoint(
    path: str | Path,
    model: nn.Module | Mapping[str, torch.Tensor],
    metadata: Mapping[str, Any] | None = None,
    *,
    model_name: str | None = None,
    config: Config | Mapping[str, Any] | None = None,
) -> Path:
    """Atomically write ``model`` (a module or a state dict) to ``path`` (``.safetensors``).

    ``metadata`` (JSON-serialisable: data, metrics, ...) is merged into the provenance record.
    The registry name and config default to ``model.registry_name`` and ``model.config``.
    """
    if isinstance(model, nn.Module):
        state = model.state_dict()
        model_name = model_name or getattr(model, "registry_name", None)
        config = config if config is not None else getattr(model, "config", None)
    else:
        state = dict(model)
    config_dict = config.to_dict() if isinstance(config, Config) else (dict(config) if config else None)
    tensors, aliases = _dedupe_shared(state)
    return _write(Path(path), tensors, aliases, model_name, config_dict, provenance(**dict(metadata or {})))


def _write(path: Path, tensors: dict[str, torch.Tensor], aliases: dict[str, str], model_name: str | None,
           config: dict[str, Any] | None, metadata: dict[str, Any]) -> Path:
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "model_name": model_name, "config": config,
              "aliases": aliases, "metadata": metadata}
    try:
        header["sha256"] = checksum(tensors, header)
        header_json = json.dumps(header, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"checkpoint config and metadata must be JSON-serialisable (finite numbers): {err}") from None
    with atomic_path(path, fsync=True) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: header_json})
    return path


def _read_header(path: Path) -> dict[str, Any]:
    """Our JSON header, after checking the safetensors framing and tensor table (catches truncation)."""
    table, metadata = read_tensor_table(path)
    return parse_header(path, metadata, set(table))


def read_checkpoint_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON header (model name, config, provenance), type-checked but not yet checksummed
    (that needs the tensors: :func:`load_checkpoint`)."""
    return _read_header(Path(path))


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu", verify: bool = True) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint`; ``verify`` checks the SHA-256."""
    path = Path(path)
    remove_stale_temps(path)
    header = _read_header(path)
    try:
        tensors = load_file(path, device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointCorruptError(f"checkpoint {path} is corrupt: {err}") from None
    version = header["format_version"]
    if verify:
        if checksum(tensors, header if version >= 2 else None) != header["sha256"]:
            covered = "header or tensor data" if version >= 2 else "tensor data"
            raise CheckpointCorruptError(f"checkpoint {path} is corrupt: its {covered} fails the SHA-256 checksum")
        if version < 2:
            _log.warning("checkpoint %s has format version %d: its checksum covers the tensors but not the config "
                         "or metadata; re-save it with moe_zoo.core.checkpoint.migrate_checkpoint", path, version)
    for alias, original in header.get("aliases", {}).items():
        tensors[alias] = tensors[original]
    return Checkpoint(tensors, header.get("model_name"), header.get("config"), header.get("metadata", {}), version)


def state_mismatches(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> str | None:
    """One line listing missing, unexpected and wrongly shaped entries of ``state`` (None if it fits)."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape
    ]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong)):
        if items:
            shown = ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")
            parts.append(f"{label}: {shown}")
    return "; ".join(parts) or None


def load_state_into(model: nn.Module, state: Mapping[str, torch.Tensor], *, source: str = "checkpoint") -> None:
    """``model.load_state_dict(state)`` with one clear error listing every mismatch."""
    problems = state_mismatches(model.state_dict(), state)
    if problems:
        raise CheckpointMismatchError(f"{source} does not fit {type(model).__name__}: {problems}")
    model.load_state_dict(state, strict=True)


def build_from_checkpoint(build: Callable[[], nn.Module], checkpoint: Checkpoint, *, source: str,
                          overridden: bool = False) -> nn.Module:
    """``build()`` under an allocation limit set by the checkpoint's tensor bytes, then load its state.

    A config that fails to build, asks for more memory than its file holds, or builds other shapes
    than the file's tensors is a :class:`CheckpointCorruptError` (``overridden``: the caller changed
    the config, so a shape disagreement is the caller's :class:`CheckpointMismatchError`).
    """
    try:
        with allocation_limit(2 * checkpoint.nbytes + BUILD_SLACK_BYTES):
            model = build()
    except CheckpointError:
        raise
    except Exception as err:  # the trust boundary: any failure to build from a stored config is a bad file
        raise CheckpointCorruptError(f"checkpoint {source}: its config does not build a model "
                                     f"({type(err).__name__}: {err})") from None
    problems = state_mismatches(model.state_dict(), checkpoint.state_dict)
    if problems:
        error = CheckpointMismatchError if overridden else CheckpointCorruptError
        raise error(f"{source} does not fit {type(model).__name__} built from its config: {problems}")
    model.load_state_dict(checkpoint.state_dict, strict=True)
    return model


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a registered model from a checkpoint (registry name + stored config) and load it."""
    from moe_zoo.core.errors import UnknownModelError
    from moe_zoo.core.registry import create_model, get_model_spec

    checkpoint = load_checkpoint(path)
    if not checkpoint.model_name:
        raise CheckpointMismatchError(f"checkpoint {path} records no registry model name; build the model yourself")
    try:
        get_model_spec(checkpoint.model_name)
    except UnknownModelError as err:
        raise CheckpointMismatchError(f"checkpoint {path} holds a model no installed package registers: {err}") from None
    model = build_from_checkpoint(lambda: create_model(checkpoint.model_name, **(checkpoint.config or {})),
                                  checkpoint, source=str(path))
    return model.to(device)


def migrate_checkpoint(path: str | Path, out: str | Path | None = None) -> Path:
    """Re-save a format-version-1 checkpoint as the current version, tensors, config and provenance
    unchanged (after checking its version-1 checksum), adding ``metadata["format_migration"]``.
    Writes ``out`` (default: in place, atomically). A current-version file is left as it is."""
    path = Path(path)
    header = _read_header(path)
    if header["format_version"] == FORMAT_VERSION:
        return path
    checkpoint = load_checkpoint(path)
    aliases = header.get("aliases", {})
    tensors = {k: v for k, v in checkpoint.state_dict.items() if k not in aliases}
    metadata = {**checkpoint.metadata, "format_migration": {
        "from_version": header["format_version"], "to_version": FORMAT_VERSION,
        "utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "by": "moe_zoo.core.checkpoint.migrate_checkpoint (tensors, config and provenance unchanged)"}}
    return _write(Path(out or path), tensors, aliases, checkpoint.model_name, checkpoint.config, metadata)
