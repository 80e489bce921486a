"""Checkpoint guarantees (issue 25): the checksum covers config and metadata, a config is checked
against the file's tensors before memory is spent on it, malformed headers are one clear error,
interrupted saves leave nothing behind for long, and version-1 files still load and migrate."""

import json
import logging
import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from moe_zoo.core import InputError, create_model, load_checkpoint, load_model, save_checkpoint
from moe_zoo.core.atomic import TEMP_MARK, atomic_path, remove_stale_temps
from moe_zoo.core.checkpoint import (
    CheckpointCorruptError,
    CheckpointMismatchError,
    migrate_checkpoint,
    read_checkpoint_metadata,
)
from moe_zoo.core.checkpoint_header import META_KEY, checksum


# ---- taking a checkpoint file apart and putting it back together
def split(path: Path) -> tuple[dict[str, Any], bytes]:
    """(safetensors header as a dict, tensor bytes)."""
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + length]), raw[8 + length:]


def join(path: Path, header: Any, data: bytes) -> Path:
    """Write ``header`` (any JSON value, padded to 8 bytes as safetensors does) and ``data``."""
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def ours(path: Path) -> dict[str, Any]:
    """Our JSON header inside the file."""
    return json.loads(split(path)[0]["__metadata__"][META_KEY])


def rewrite(source: Path, target: Path, header: dict[str, Any], *, rehash: bool = False) -> Path:
    """``source`` with our header replaced by ``header`` (``rehash``: with a recomputed SHA-256,
    as someone who edits the file on purpose would)."""
    if rehash:
        header = {**header, "sha256": checksum(load_file(source), header)}
    table, data = split(source)
    table["__metadata__"][META_KEY] = json.dumps(header)
    return join(target, table, data)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = create_model("qwen2-moe", d_model=16, d_hidden=8, n_experts=6, top_k=2, shared_hidden=16)
    return model, save_checkpoint(tmp_path / "m.safetensors", model, {"data": "unit"})


@pytest.mark.parametrize("edit", [{"top_k": 3}, {"routed_scale": 2.0}, {"score": "sigmoid"}, {"renormalize": True}])
def test_an_edited_config_fails_the_checksum(saved, tmp_path, edit):
    _, path = saved
    header = ours(path)
    header["config"].update(edit)
    with pytest.raises(CheckpointCorruptError, match="fails the SHA-256"):
        load_model(rewrite(path, tmp_path / "edited.safetensors", header))


def test_edited_metadata_fails_the_checksum(saved, tmp_path):
    _, path = saved
    header = ours(path)
    header["metadata"]["data"] = "something else"
    with pytest.raises(CheckpointCorruptError, match="fails the SHA-256"):
        load_checkpoint(rewrite(path, tmp_path / "edited.safetensors", header))


def test_a_huge_config_fails_fast_even_with_a_recomputed_checksum(saved, tmp_path):
    _, path = saved
    header = ours(path)
    header["config"]["d_hidden"] = 10**9          # 2 TB of expert weights if it were built
    edited = rewrite(path, tmp_path / "huge.safetensors", header, rehash=True)
    started = time.perf_counter()
    with pytest.raises(CheckpointCorruptError, match="over the limit"):
        load_model(edited)
    assert time.perf_counter() - started < 5


def test_a_config_of_other_sizes_than_the_tensors_is_a_clear_error(saved, tmp_path):
    _, path = saved
    header = ours(path)
    header["config"]["n_experts"] = 5
    with pytest.raises(CheckpointCorruptError, match=r"does not fit MoELayer built from its config.*shape mismatch"):
        load_model(rewrite(path, tmp_path / "smaller.safetensors", header, rehash=True))


@pytest.mark.parametrize("field,value,message", [
    ("aliases", ["a", "b"], "'aliases' must be an object"),
    ("aliases", {"alias": "missing"}, "does not name one stored tensor"),
    ("format_version", "abc", "format_version 'abc'"),
    ("format_version", 3, "format_version 3"),
    ("format_version", True, "format_version True"),
    ("metadata", ["x"], "'metadata' must be an object"),
    ("config", [1, 2], "'config' must be an object"),
    ("model_name", 7, "'model_name' must be a string"),
    ("sha256", "abc", "'sha256' must be 64 hex digits"),
])
def test_malformed_header_fields_are_one_clear_error(saved, tmp_path, field, value, message):
    _, path = saved
    header = ours(path) | {field: value}
    edited = rewrite(path, tmp_path / "bad.safetensors", header, rehash=field != "sha256" and field != "format_version")
    for read in (read_checkpoint_metadata, load_checkpoint, load_model):
        with pytest.raises(CheckpointCorruptError, match=message):
            read(edited)


@pytest.mark.parametrize("value", ["8", 8.0, None, -1])
def test_a_config_value_of_the_wrong_type_or_range_is_one_clear_error(saved, tmp_path, value):
    _, path = saved
    header = ours(path)
    header["config"]["n_experts"] = value
    with pytest.raises(CheckpointCorruptError, match="config"):
        load_model(rewrite(path, tmp_path / "typed.safetensors", header, rehash=True))


def test_malformed_tensor_table_is_one_clear_error(saved, tmp_path):
    _, path = saved
    table, data = split(path)
    name = next(k for k in table if k != "__metadata__")
    for entry, message in ((["not", "a", "dict"], "tensor entry"), ({"dtype": "F32", "shape": [2]}, "tensor entry"),
                           ({"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}, "tensor entry")):
        with pytest.raises(CheckpointCorruptError, match=message):
            load_checkpoint(join(tmp_path / "t.safetensors", table | {name: entry}, data))
    with pytest.raises(CheckpointCorruptError, match="__metadata__"):
        load_checkpoint(join(tmp_path / "t.safetensors", table | {"__metadata__": ["x"]}, data))
    with pytest.raises(CheckpointCorruptError, match="not a JSON object"):
        load_checkpoint(join(tmp_path / "t.safetensors", [1, 2], data))


def test_nan_in_a_header_is_rejected(saved, tmp_path):
    _, path = saved
    table, data = split(path)
    table["__metadata__"][META_KEY] = table["__metadata__"][META_KEY].replace('"data": "unit"', '"data": NaN')
    with pytest.raises(CheckpointCorruptError, match="metadata is not valid JSON"):
        load_checkpoint(join(tmp_path / "nan.safetensors", table, data))


def test_a_killed_save_leaves_a_temp_file_that_the_next_save_or_load_removes(saved, tmp_path):
    model, path = saved
    script = ("import os, sys; from moe_zoo.core.atomic import atomic_path\n"
              "with atomic_path(sys.argv[1]) as tmp:\n    tmp.write_bytes(b'half'); os._exit(9)\n")
    done = subprocess.run([sys.executable, "-c", script, str(path)], check=False)
    assert done.returncode == 9
    [orphan] = tmp_path.glob(f".m.safetensors.*{TEMP_MARK}.safetensors")
    mine = tmp_path / f".m.safetensors.{os.getpid()}-0123456789ab{TEMP_MARK}.safetensors"  # a live writer's file
    mine.write_bytes(b"in progress")
    user_files = [tmp_path / ".m.safetensors.backup", tmp_path / "m.safetensors.123-0123456789ab.tmp"]
    for user_file in user_files:
        user_file.write_bytes(b"keep")
    load_checkpoint(path)
    assert not orphan.exists() and mine.exists() and all(f.exists() for f in user_files)
    mine.unlink()
    subprocess.run([sys.executable, "-c", script, str(path)], check=False)
    save_checkpoint(path, model)
    assert not list(tmp_path.glob(f"*{TEMP_MARK}*")) and all(f.exists() for f in user_files)


def test_remove_stale_temps_only_touches_the_targets_pattern(tmp_path):
    target = tmp_path / "weird[name]*.json"
    with atomic_path(target) as tmp:
        tmp.write_text("{}")
    stale = tmp_path / f".weird[name]*.json.999999999-abcdefabcdef{TEMP_MARK}.json"   # no such pid
    other = tmp_path / f".other.json.999999999-abcdefabcdef{TEMP_MARK}.json"
    for f in (stale, other):
        f.write_text("x")
    assert remove_stale_temps(target) == [stale] and other.exists()


def test_version_1_files_load_with_a_warning_and_migrate_unchanged(saved, tmp_path, caplog):
    _, path = saved
    header = ours(path)
    tensors = load_checkpoint(path).state_dict
    v1 = {k: v for k, v in header.items() if k != "sha256"} | {"format_version": 1, "sha256": checksum(tensors, None)}
    old = tmp_path / "old.safetensors"
    save_file(tensors, str(old), metadata={META_KEY: json.dumps(v1)})
    with caplog.at_level(logging.WARNING, logger="moe_zoo"):
        loaded = load_model(old)
    assert "format version 1" in caplog.text
    migrated = migrate_checkpoint(old, tmp_path / "new.safetensors")
    again = load_checkpoint(migrated)
    assert again.format_version == 2 and again.config == header["config"]
    assert {k: v for k, v in again.metadata.items() if k != "format_migration"} == header["metadata"]
    assert again.metadata["format_migration"]["from_version"] == 1
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(again.state_dict[name], tensor)
    edited = ours(migrated)
    edited["config"]["top_k"] = 3
    with pytest.raises(CheckpointCorruptError, match="SHA-256"):
        load_model(rewrite(migrated, tmp_path / "edited.safetensors", edited))
    assert migrate_checkpoint(migrated) == migrated                       # already current: untouched


def test_pretrained_overrides_that_change_shapes_are_a_mismatch(tmp_path, monkeypatch):
    from moe_zoo.core import registry

    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "w.safetensors", create_model("mixtral-moe", d_model=8, d_hidden=8))
    spec = registry.get_model_spec("mixtral-moe")
    monkeypatch.setattr(registry.ModelSpec, "weights_path", lambda self: path)
    monkeypatch.setattr(registry.ModelSpec, "has_weights", property(lambda self: self is spec))
    assert torch.equal(create_model("mixtral-moe", pretrained=True).router.weight, load_checkpoint(path).state_dict["router.weight"])
    with pytest.raises(CheckpointMismatchError, match="shape mismatch"):
        create_model("mixtral-moe", pretrained=True, d_hidden=16)
    with pytest.raises(InputError, match="unknown field"):               # the caller's mistake, not the file's
        create_model("mixtral-moe", pretrained=True, d_hiden=16)


def test_a_checkpoint_of_a_model_no_package_registers_is_a_clear_mismatch(saved, tmp_path):
    _, path = saved
    header = ours(path) | {"model_name": "gpt-9000-moe"}
    with pytest.raises(CheckpointMismatchError, match=r"no installed package registers.*gpt-9000-moe"):
        load_model(rewrite(path, tmp_path / "unknown.safetensors", header, rehash=True))


# ---- seeded fuzzing of a real checkpoint's headers, config and bytes
JUNK = [None, True, False, 0, -1, 3, 1.5, -2.5, 1e308, 10**30, "", "abc", "8", "sigmoid", [], [1, "a"], {}, {"a": 1}]


def _mutate_ours(header: dict[str, Any], rng) -> dict[str, Any]:
    """One random change to our header: a field or config/metadata/alias entry removed, replaced by junk,
    nudged, or added."""
    header = json.loads(json.dumps(header))
    where = rng.choice(["top", "config", "config", "config", "metadata", "aliases"])
    if where == "top":
        key = rng.choice([*header, "extra"])
        if rng.random() < 0.3:
            header.pop(key, None)
        else:
            header[key] = rng.choice(JUNK)
        return header
    table = header.get(where)
    key = rng.choice([*table, "unknown_field"]) if table else "unknown_field"
    value = table.get(key)
    choices = JUNK + ([value + 1, value * 2, -value, 0, str(value)] if isinstance(value, int | float) and not
                      isinstance(value, bool) else []) + ([not value] if isinstance(value, bool) else [])
    if rng.random() < 0.2:
        table.pop(key, None)
    else:
        table[key] = rng.choice(choices)
    if where == "aliases" and rng.random() < 0.5:
        table[rng.choice(["router.weight", "alias"])] = rng.choice(["experts.w_in", "missing", 5])
    return header


def _mutate_table(table: dict[str, Any], rng) -> dict[str, Any]:
    """One random change to the safetensors tensor table or its __metadata__."""
    table = json.loads(json.dumps(table))
    name = rng.choice(list(table))
    if name == "__metadata__":
        table[name] = rng.choice([*JUNK, {META_KEY: "{"}, {META_KEY: 5}, {}])
        return table
    entry = table[name]
    field = rng.choice(["dtype", "shape", "data_offsets", "entry"])
    if field == "entry":
        table[name] = rng.choice(JUNK)
    elif field == "dtype":
        entry["dtype"] = rng.choice(["F16", "I32", "BF16", "F64", "XYZ", 3])
    elif field == "shape":
        entry["shape"] = rng.choice([[1], [], list(reversed(entry["shape"])), [-1], ["a"], [10**12], "x"])
    else:
        start, end = entry["data_offsets"]
        entry["data_offsets"] = rng.choice([[start, start], [end, start], [start, end + 4], [0, 10**12], [start]])
    return table


def _mutate_bytes(raw: bytes, rng) -> bytes:
    data = bytearray(raw)
    kind = rng.choice(["flip", "flip", "truncate", "length"])
    if kind == "flip":
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del data[rng.randrange(len(data)):]
    else:
        data[:8] = struct.pack("<Q", rng.choice([0, 1, len(raw), 2**63, struct.unpack("<Q", raw[:8])[0] - 8]))
    return bytes(data)


def _same_model(model, reference, x) -> bool:
    state, want = model.state_dict(), reference.state_dict()
    return (model.config == reference.config and state.keys() == want.keys()
            and all(torch.equal(state[k], want[k]) and state[k].dtype == want[k].dtype for k in want)
            and torch.equal(model(x).output, reference(x).output))


def test_fuzzed_checkpoints_give_a_clear_error_or_the_identical_model(saved, tmp_path):
    """400 seeded mutations of a real checkpoint (our header, its config and metadata, the safetensors
    tensor table, raw bytes; a third of the header mutations with a recomputed checksum, as a deliberate
    editor would make): each load is a CheckpointError or exactly the saved model, never another
    exception, never a silently different model; a recomputed checksum may give another valid model
    of the same file's tensors, which must then load and run."""
    import random

    from moe_zoo.core.checkpoint import CheckpointError

    reference, path = saved
    reference.eval()
    x = torch.randn(5, 16, generator=torch.Generator().manual_seed(1))
    raw = path.read_bytes()
    table, data = split(path)
    rng = random.Random(25)
    outcomes = {"error": 0, "identical": 0, "valid edit": 0}
    started = time.perf_counter()
    for case in range(400):
        target = tmp_path / f"fuzz{case % 4}.safetensors"
        kind = rng.choice(["ours", "ours", "ours_rehash", "table", "bytes"])
        if kind.startswith("ours"):
            rewrite(path, target, _mutate_ours(ours(path), rng), rehash=kind == "ours_rehash")
        elif kind == "table":
            join(target, _mutate_table(table, rng), data)
        else:
            target.write_bytes(_mutate_bytes(raw, rng))
        try:
            read_checkpoint_metadata(target)
            model = load_model(target).eval()
        except CheckpointError as err:
            assert str(err), case
            outcomes["error"] += 1
            continue
        if _same_model(model, reference, x):
            outcomes["identical"] += 1
        else:
            assert kind == "ours_rehash", f"case {case} ({kind}) loaded a different model silently"
            model(x)  # another valid model of the same tensors: it must run
            outcomes["valid edit"] += 1
    assert outcomes["error"] > 300, outcomes
    assert time.perf_counter() - started < 30, outcomes  # about 2 s on a 2-core CI machine


def test_allocation_limit_sizes_factory_calls_before_they_allocate():
    from moe_zoo.core.alloc_guard import AllocationLimitError, allocation_limit

    with allocation_limit(1000):
        torch.empty(100)                                   # 400 bytes
        torch.zeros(2, 50, dtype=torch.float32)            # 400 more: within the limit
    with pytest.raises(AllocationLimitError, match=r"torch\.ones asks for a \(20, 20\)"), allocation_limit(1000):
        torch.empty(100)
        torch.ones(20, 20)
    with pytest.raises(AllocationLimitError, match=r"torch\.empty asks"), allocation_limit(2**20):
        torch.nn.Linear(10**6, 10**6)                      # 4 TB, refused before any allocation
    with allocation_limit(2**20):                          # calls the meta device cannot size still run
        assert torch.randn(4, generator=torch.Generator().manual_seed(0)).shape == (4,)
