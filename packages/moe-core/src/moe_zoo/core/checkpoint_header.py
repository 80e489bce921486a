"""Reading and checking a checkpoint's two headers before any tensor is trusted.

A moe-zoo checkpoint is a safetensors file: an 8-byte length, the safetensors JSON header (one
entry per tensor: ``dtype``, ``shape``, ``data_offsets``; plus ``__metadata__``, a str -> str map),
then the tensor bytes. Our own JSON header lives in ``__metadata__["moe_zoo"]``. Every field of
both is type-checked here, so a malformed file gives one :class:`CheckpointCorruptError`, never a
``KeyError`` / ``TypeError`` from deep inside.

The SHA-256 (format version 2) covers our whole header except the digest itself (format, version,
model name, config, aliases, metadata) as canonical JSON, then every tensor's name, dtype, shape
and bytes. Version 1 files (written before 2026-12-06) covered the tensors only; they are still
read, with a warning, and :func:`~moe_zoo.core.checkpoint.migrate_checkpoint` re-saves them.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from moe_zoo.core.errors import MoeZooError

FORMAT = "moe-zoo/checkpoint"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
META_KEY = "moe_zoo"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_HEADER = 100 * 2**20  # safetensors' own limit on the header size


class CheckpointError(MoeZooError):
    """A checkpoint cannot be used."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint path does not exist or is not a file."""


class CheckpointCorruptError(CheckpointError):
    """The file is truncated, malformed, not a moe-zoo checkpoint, or fails its checksum."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's tensors do not match the model (missing, unexpected, wrong shape)."""


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-finite number {name} in JSON")


def _json(text: str | bytes) -> Any:
    """``json.loads`` that refuses NaN / Infinity (not JSON, and they would break the checksum)."""
    return json.loads(text, parse_constant=_reject_constant)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":")).encode()


def checksum(tensors: Mapping[str, torch.Tensor], header: Mapping[str, Any] | None) -> str:
    """SHA-256 of ``header`` (less its ``sha256``; None: version 1, tensors only) and of the tensors."""
    digest = hashlib.sha256()
    if header is not None:
        digest.update(canonical_json({k: v for k, v in header.items() if k != "sha256"}) + b"\0")
    for name in sorted(tensors):
        tensor = tensors[name].detach().contiguous().cpu()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def _corrupt(path: Path, why: str) -> CheckpointCorruptError:
    return CheckpointCorruptError(f"checkpoint {path} is corrupt: {why}")


def read_tensor_table(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The safetensors header, checked: ``({tensor: {dtype, shape, data_offsets}}, __metadata__)``."""
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
        if 8 + header_len > size or header_len > _MAX_HEADER:
            raise CheckpointCorruptError(
                f"checkpoint {path} is truncated or corrupt: header claims {header_len} bytes, file has {size}")
        try:
            raw = _json(handle.read(header_len))
        except (UnicodeDecodeError, ValueError):
            raise _corrupt(path, "unreadable header") from None
    if not isinstance(raw, dict):
        raise _corrupt(path, "header is not a JSON object")
    metadata = raw.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _corrupt(path, "__metadata__ is not a map of strings")
    data_end = 0
    for name, entry in raw.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("dtype"), str) and _ints(entry.get("shape"))
                and _ints(entry.get("data_offsets")) and len(entry["data_offsets"]) == 2
                and entry["data_offsets"][0] <= entry["data_offsets"][1]):
            raise _corrupt(path, f"tensor entry {name!r} is not {{dtype, shape, data_offsets}}")
        data_end = max(data_end, entry["data_offsets"][1])
    if 8 + header_len + data_end > size:
        raise CheckpointCorruptError(
            f"checkpoint {path} is truncated: tensors need {8 + header_len + data_end} bytes, file has {size}")
    return raw, metadata


def _ints(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


def parse_header(path: Path, metadata: Mapping[str, str], tensor_names: set[str]) -> dict[str, Any]:
    """Our JSON header from the safetensors metadata, every field type-checked."""
    text = metadata.get(META_KEY)
    if text is None:
        raise CheckpointCorruptError(f"{path} is a safetensors file but not a moe-zoo checkpoint (no metadata)")
    try:
        header = _json(text)
    except ValueError:
        raise _corrupt(path, "metadata is not valid JSON") from None
    if not isinstance(header, dict):
        raise _corrupt(path, "moe-zoo header is not a JSON object")
    if header.get("format") != FORMAT:
        raise CheckpointCorruptError(f"{path} is not a moe-zoo checkpoint (format {header.get('format')!r})")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise _corrupt(path, f"format_version {version!r}; this moe-zoo reads {READABLE_VERSIONS}")
    checks = {
        "model_name": (header.get("model_name") is None or isinstance(header.get("model_name"), str),
                       "a string or null"),
        "config": (header.get("config") is None or _str_keys(header.get("config")), "an object or null"),
        "metadata": (_str_keys(header.get("metadata", {})), "an object"),
        "aliases": (_str_keys(header.get("aliases", {}))
                    and all(isinstance(v, str) for v in header.get("aliases", {}).values()), "an object of strings"),
        "sha256": (isinstance(header.get("sha256"), str) and bool(_SHA256.fullmatch(header["sha256"])),
                   "64 hex digits"),
    }
    for key, (ok, expected) in checks.items():
        if not ok:
            raise _corrupt(path, f"header field {key!r} must be {expected}, got {header.get(key)!r:.80}")
    for alias, original in header.get("aliases", {}).items():
        if original not in tensor_names or alias in tensor_names:
            raise _corrupt(path, f"alias {alias!r} -> {original!r} does not name one stored tensor")
    return header


def _str_keys(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) for k in value)
