"""Safe checkpoints: safetensors for tensors, JSON for config and provenance.

One ``.safetensors`` file holds everything: the tensors, and in its header metadata a JSON
document with the model's registry name, its config, provenance (command, data, git revision,
metrics, versions) and a SHA-256 over the tensor bytes. Nothing is ever unpickled, so loading a
checkpoint cannot run code. Writes are atomic (temp file in the same folder, fsync, rename).

Errors: :class:`CheckpointNotFoundError` (missing), :class:`CheckpointCorruptError` (truncated,
unreadable header, not a moe-zoo checkpoint, or tensor bytes that fail the checksum),
:class:`CheckpointMismatchError` (the tensors do not fit the model).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import struct
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from moe_zoo.core.atomic import atomic_path
from moe_zoo.core.config import Config
from moe_zoo.core.errors import MoeZooError

FORMAT = "moe-zoo/checkpoint"
FORMAT_VERSION = 1
_META_KEY = "moe_zoo"


class CheckpointError(MoeZooError):
    """A checkpoint cannot be used."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint path does not exist or is not a file."""


class CheckpointCorruptError(CheckpointError):
    """The file is truncated, unreadable, not a moe-zoo checkpoint, or fails its checksum."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's tensors do not match the model (missing, unexpected, wrong shape)."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint."""

    state_dict: dict[str, torch.Tensor]
    model_name: str | None
    config: dict[str, Any] | None
    metadata: dict[str, Any] = field(default_factory=dict)


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


def _tensor_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().contiguous().cpu()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


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
    path = Path(path)
    if isinstance(model, nn.Module):
        state = model.state_dict()
        model_name = model_name or getattr(model, "registry_name", None)
        config = config if config is not None else getattr(model, "config", None)
    else:
        state = dict(model)
    config_dict = config.to_dict() if isinstance(config, Config) else (dict(config) if config else None)
    tensors, aliases = _dedupe_shared(state)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_name": model_name,
        "config": config_dict,
        "aliases": aliases,
        "sha256": _tensor_digest(tensors),
        "metadata": provenance(**dict(metadata or {})),
    }
    try:
        header_json = json.dumps(header, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"checkpoint metadata must be JSON-serialisable: {err}") from None
    with atomic_path(path, fsync=True) as tmp:
        save_file(tensors, str(tmp), metadata={_META_KEY: header_json})
    return path


def _read_header(path: Path) -> dict[str, Any]:
    """Validate the safetensors framing (catches truncation) and return our JSON header."""
    if not path.exists():
        raise CheckpointNotFoundError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint is not a file: {path}")
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise CheckpointCorruptError(f"checkpoint {path} is truncated ({size} bytes, no header)")
        (header_len,) = struct.unpack("<Q", head)
        if 8 + header_len > size:
            raise CheckpointCorruptError(
                f"checkpoint {path} is truncated or corrupt: header claims {header_len} bytes, file has {size}"
            )
        try:
            raw = json.loads(handle.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CheckpointCorruptError(f"checkpoint {path} is corrupt: unreadable header") from None
    if not isinstance(raw, dict):
        raise CheckpointCorruptError(f"checkpoint {path} is corrupt: header is not a JSON object")
    data_end = max((int(v["data_offsets"][1]) for k, v in raw.items() if k != "__metadata__"), default=0)
    if 8 + header_len + data_end > size:
        raise CheckpointCorruptError(
            f"checkpoint {path} is truncated: tensors need {8 + header_len + data_end} bytes, file has {size}"
        )
    meta = (raw.get("__metadata__") or {}).get(_META_KEY)
    if meta is None:
        raise CheckpointCorruptError(f"{path} is a safetensors file but not a moe-zoo checkpoint (no metadata)")
    try:
        header = json.loads(meta)
    except json.JSONDecodeError:
        raise CheckpointCorruptError(f"checkpoint {path} is corrupt: metadata is not valid JSON") from None
    if header.get("format") != FORMAT:
        raise CheckpointCorruptError(f"{path} is not a moe-zoo checkpoint (format {header.get('format')!r})")
    if int(header.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointCorruptError(
            f"checkpoint {path} has format version {header['format_version']}; this moe-zoo reads <= {FORMAT_VERSION}"
        )
    return header


def read_checkpoint_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON header (model name, config, provenance) without loading the tensors."""
    return _read_header(Path(path))


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu", verify: bool = True) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint`; ``verify`` checks the SHA-256."""
    path = Path(path)
    header = _read_header(path)
    try:
        tensors = load_file(path, device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointCorruptError(f"checkpoint {path} is corrupt: {err}") from None
    if verify and _tensor_digest(tensors) != header.get("sha256"):
        raise CheckpointCorruptError(f"checkpoint {path} is corrupt: tensor data fails its SHA-256 checksum")
    for alias, original in header.get("aliases", {}).items():
        tensors[alias] = tensors[original]
    return Checkpoint(tensors, header.get("model_name"), header.get("config"), header.get("metadata", {}))


def load_state_into(model: nn.Module, state: Mapping[str, torch.Tensor], *, source: str = "checkpoint") -> None:
    """``model.load_state_dict(state)`` with one clear error listing every mismatch."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong)):
            if items:
                shown = ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")
                parts.append(f"{label}: {shown}")
        raise CheckpointMismatchError(f"{source} does not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a registered model from a checkpoint (registry name + stored config) and load it."""
    from moe_zoo.core.registry import create_model

    checkpoint = load_checkpoint(path)
    if not checkpoint.model_name:
        raise CheckpointMismatchError(f"checkpoint {path} records no registry model name; build the model yourself")
    model = create_model(checkpoint.model_name, **(checkpoint.config or {}))
    load_state_into(model, checkpoint.state_dict, source=str(path))
    return model.to(device)
