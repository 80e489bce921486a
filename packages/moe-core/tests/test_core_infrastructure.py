"""Registry, configs, checkpoints and resumable training state."""

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from moe_zoo.core import (
    CheckpointCorruptError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    Config,
    InputError,
    UnknownModelError,
    create_model,
    get_model_spec,
    list_models,
    load_checkpoint,
    load_model,
    load_state_into,
    read_checkpoint_metadata,
    register_model,
    resolve_device,
    save_checkpoint,
    seed_everything,
)
from moe_zoo.core.atomic import TEMP_MARK
from moe_zoo.core.training_state import (
    check_resume,
    load_training_state,
    save_training_state,
    settings_differences,
)


@dataclass(frozen=True)
class TinyConfig(Config):
    width: int = 4
    depth: int = 2
    sizes: tuple[int, ...] = (1, 2)
    rate: float = 0.5


@register_model("test-tiny-net", config=TinyConfig())
class TinyNet(nn.Module):
    """A tiny test network."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.Sequential(*[nn.Linear(config.width, config.width) for _ in range(config.depth)])
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))


def test_config_json_round_trip_restores_types():
    config = TinyConfig(width=8, sizes=(3, 4, 5), rate=1)
    again = TinyConfig.from_json(config.to_json())
    assert again == config and isinstance(again.sizes, tuple) and isinstance(again.rate, float)
    assert config.replace(width=2).width == 2
    with pytest.raises(InputError, match="did you mean 'width'"):
        config.replace(widht=3)


def test_registry_create_list_and_close_matches():
    model = create_model("test-tiny-net", width=6)
    assert isinstance(model, TinyNet) and model.config.width == 6 and model.registry_name == "test-tiny-net"
    assert "test-tiny-net" in list_models("test-*")
    assert get_model_spec("test-tiny-net").summary == "A tiny test network."
    with pytest.raises(UnknownModelError, match="did you mean: test-tiny-net"):
        create_model("test-tiny-nett")
    with pytest.raises(InputError, match="ships no pretrained weights"):
        create_model("test-tiny-net", pretrained=True)
    with pytest.raises(ValueError, match="already registered"):
        register_model("test-tiny-net")(nn.Linear)


def test_checkpoint_round_trip_is_bit_identical(tmp_path: Path):
    model = create_model("test-tiny-net", width=5, sizes=(7,))
    model.steps += 3
    path = save_checkpoint(tmp_path / "m.safetensors", model, {"data": "unit-test", "metrics": {"auc": 0.5}})
    loaded = load_checkpoint(path)
    assert loaded.model_name == "test-tiny-net"
    assert TinyConfig.from_dict(loaded.config) == model.config
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict[name], tensor) and loaded.state_dict[name].dtype == tensor.dtype
    meta = read_checkpoint_metadata(path)["metadata"]
    assert meta["data"] == "unit-test" and meta["metrics"]["auc"] == 0.5
    assert {"command", "git_revision", "created_utc", "versions"} <= set(meta)
    rebuilt = load_model(path)
    assert isinstance(rebuilt, TinyNet) and rebuilt.config == model.config
    assert not list(tmp_path.glob(f"*{TEMP_MARK}*"))  # the temp file was renamed away


def test_checkpoint_keeps_tied_weights(tmp_path: Path):
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    model[1].weight = model[0].weight
    save_checkpoint(tmp_path / "tied.safetensors", model)
    state = load_checkpoint(tmp_path / "tied.safetensors").state_dict
    assert torch.equal(state["1.weight"], state["0.weight"])


def test_missing_truncated_corrupt_and_mismatched_checkpoints(tmp_path: Path):
    model = create_model("test-tiny-net")
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    raw = path.read_bytes()
    with pytest.raises(CheckpointNotFoundError):
        load_checkpoint(tmp_path / "absent.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(raw[: len(raw) - 10])
    with pytest.raises(CheckpointCorruptError, match="truncated"):
        load_checkpoint(truncated)
    (tmp_path / "tiny.safetensors").write_bytes(raw[:5])
    with pytest.raises(CheckpointCorruptError, match="truncated"):
        load_checkpoint(tmp_path / "tiny.safetensors")
    flipped = bytearray(raw)
    flipped[-3] ^= 0xFF  # one bit-flip inside the tensor data
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointCorruptError, match="checksum"):
        load_checkpoint(corrupt)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(struct.pack("<Q", 20) + b"{not json at all!!!}" + b"\0" * 8)
    with pytest.raises(CheckpointCorruptError, match="unreadable header"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.safetensors"
    header = json.dumps({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    foreign.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    with pytest.raises(CheckpointCorruptError, match="not a moe-zoo checkpoint"):
        load_checkpoint(foreign)
    wider = create_model("test-tiny-net", width=6, depth=3)
    with pytest.raises(CheckpointMismatchError, match=r"missing: layers\.2\.bias.*shape mismatch: layers\.0\.bias"):
        load_state_into(wider, load_checkpoint(path).state_dict)


def test_training_state_resumes_exactly(tmp_path: Path):
    def train(model, optimizer, steps, generator):
        for _ in range(steps):
            loss = model.layers(torch.randn(8, 4, generator=generator) + torch.rand(1)).square().mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

    seed_everything(0)
    straight = create_model("test-tiny-net")
    optimizer = torch.optim.Adam(straight.parameters(), lr=1e-2)
    train(straight, optimizer, 6, torch.Generator().manual_seed(1))

    seed_everything(0)
    resumed = create_model("test-tiny-net")
    optimizer = torch.optim.Adam(resumed.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(1)
    train(resumed, optimizer, 3, generator)
    save_training_state(tmp_path / "state.safetensors", resumed, optimizer, step=3)
    torch.rand(5)  # disturb the global RNG: resuming must restore it
    fresh = create_model("test-tiny-net")
    fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=1e-2)
    state = load_training_state(tmp_path / "state.safetensors", fresh, fresh_optimizer)
    assert state.step == 3
    train(fresh, fresh_optimizer, 3, generator)
    for a, b in zip(straight.parameters(), fresh.parameters()):
        assert torch.equal(a, b)


def test_resume_check_names_what_changed(tmp_path: Path):
    path = tmp_path / "state.safetensors"
    settings = {"seed": 0, "train": {"lr": 0.01, "sizes": (4, 8)}}
    assert not check_resume(path, settings)                       # nothing to resume yet
    save_training_state(path, create_model("test-tiny-net"), step=2, metadata={"settings": settings})
    assert check_resume(path, settings)                           # tuples compare as the JSON lists stored
    changed = {"seed": 1, "train": {"lr": 0.01, "sizes": (4, 8), "decay": 0.1}}
    assert settings_differences(json.loads(json.dumps(settings)), json.loads(json.dumps(changed))) == [
        "seed: state 0, now 1", "train.decay: state None, now 0.1"]
    with pytest.raises(InputError, match=r"other settings \(seed: state 0, now 1; train.decay"):
        check_resume(path, changed)
    assert not check_resume(path, changed, force_restart=True)    # the caller starts afresh
    with pytest.raises(InputError, match="records no settings"):
        check_resume(path, settings, key="other")


def test_device_and_seed_validation():
    assert resolve_device().type in ("cpu", "cuda")
    with pytest.raises(InputError):
        resolve_device("tpu:9")
    with pytest.raises(InputError):
        seed_everything(-1)


def test_set_threads_sets_validates_and_keeps_default_on_none():
    import torch

    from moe_zoo.core.runtime import set_threads

    before = torch.get_num_threads()
    try:
        set_threads(None)
        assert torch.get_num_threads() == before
        set_threads(1)
        assert torch.get_num_threads() == 1
        for bad in (0, -2, 1.5, True, "2"):
            with pytest.raises(InputError, match="threads"):
                set_threads(bad)
    finally:
        torch.set_num_threads(before)
