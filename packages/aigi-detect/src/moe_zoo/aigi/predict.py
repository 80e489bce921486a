"""Inference: load a detector, score images, files or folders, evaluate on a labelled set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from moe_zoo.aigi.data import (
    ImageSet,
    load_records,
    read_binary_folders,
    read_chameleon,
    read_genimage,
)
from moe_zoo.aigi.images import list_images, load_image, to_tensor
from moe_zoo.aigi.inference import cached_inference_copy
from moe_zoo.aigi.metrics import detection_metrics, per_domain, per_generator
from moe_zoo.aigi.model import OmniAID
from moe_zoo.core import InputError, create_model, load_model, resolve_device

DEFAULT_MODEL = "omniaid-mnv2"


@dataclass(frozen=True)
class Prediction:
    """``prob_fake``: probability that the image is AI-generated; ``experts``: the semantic
    experts the router chose with their gates, then the artifact expert (gate 1.0)."""

    source: str
    prob_fake: float
    experts: tuple[tuple[str, float], ...]

    @property
    def is_fake(self) -> bool:
        return self.prob_fake >= 0.5


def load(model: str | Path | OmniAID = DEFAULT_MODEL, *, device: str | torch.device | None = None) -> OmniAID:
    """A registered name (shipped weights), a checkpoint path, or a model (returned as is)."""
    if isinstance(model, OmniAID):
        return model.to(resolve_device(device)).eval()
    path = Path(str(model))
    loaded = load_model(path) if path.suffix == ".safetensors" or path.is_file() else create_model(str(model),
                                                                                                    pretrained=True)
    if not isinstance(loaded, OmniAID):
        raise InputError(f"{model!r} is not an OmniAID detector")
    return loaded.to(resolve_device(device)).eval()


@torch.inference_mode()
def score(model: OmniAID, images: np.ndarray | list[np.ndarray], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(prob_fake [N], gates [N, E])`` for ``uint8`` RGB images (an array or a list), computed by
    an inference copy of ``model`` (:func:`~moe_zoo.aigi.inference.cached_inference_copy`, same outputs, faster)."""
    device = next(iter(model.buffers())).device
    fast = cached_inference_copy(model) if len(images) else model
    probs, gates = [], []
    for start in range(0, len(images), batch_size):
        x = to_tensor(images[start:start + batch_size], model.config.image_size).to(device)
        out = fast(x.contiguous(memory_format=torch.channels_last))
        probs.append(out.prob_fake.float().cpu())
        gates.append(out.gates.float().cpu())
    if not probs:
        return np.zeros(0), np.zeros((0, model.config.n_experts))
    return torch.cat(probs).numpy(), torch.cat(gates).numpy()


def _expert_names(model: OmniAID) -> list[str]:
    return list(model.config.domains) + (["artifact"] if model.config.artifact_expert else [])


def predict(source, model: str | Path | OmniAID = DEFAULT_MODEL, *, device: str | torch.device | None = None,
            batch_size: int = 64) -> Prediction | list[Prediction]:
    """Probability of AI-generated for an image (path, PIL image or ``uint8``/float array) -> one
    :class:`Prediction`, or for a folder / list -> a list (folder: every image under it, sorted)."""
    detector = load(model, device=device)
    single = not isinstance(source, list | tuple) and not (isinstance(source, str | Path) and Path(source).is_dir())
    if isinstance(source, str | Path) and Path(source).is_dir():
        items: list = list_images(source)
        if not items:
            raise InputError(f"{source}: no image files in this folder")
    else:
        items = [source] if single else list(source)
    size = detector.config.image_size
    images = [load_image(item, target=size) for item in items]
    probs, gates = score(detector, images, batch_size)
    names = _expert_names(detector)
    results = []
    for item, prob, row in zip(items, probs, gates, strict=True):
        chosen = tuple((names[e], round(float(row[e]), 4)) for e in np.flatnonzero(row > 0))
        label = str(item) if isinstance(item, str | Path) else f"<{type(item).__name__}>"
        if isinstance(item, Image.Image):
            label = f"<PIL {item.mode} {item.size[0]}x{item.size[1]}>"
        results.append(Prediction(label, float(prob), chosen))
    return results[0] if single else results


def read_layout(root: str | Path, layout: str = "auto", split: str = "val") -> list:
    """Records of a labelled folder: ``genimage``, ``chameleon``, ``binary`` (0_real/1_fake) or
    ``auto`` (GenImage when ``ai``/``nature`` folders exist, else 0_real/1_fake)."""
    if layout == "auto":
        root_path = Path(root)
        layout = "genimage" if any(p.name in ("ai", "nature") for p in root_path.glob("*/*/*/*")) else "binary"
    readers = {"genimage": lambda: read_genimage(root, split), "chameleon": lambda: read_chameleon(root),
               "binary": lambda: read_binary_folders(root)}
    if layout not in readers:
        raise InputError(f"layout must be auto, genimage, chameleon or binary, got {layout!r}")
    return readers[layout]()


def evaluate(model: str | Path | OmniAID = DEFAULT_MODEL, data: ImageSet | str | Path = "builtin",
             *, layout: str = "auto", device: str | torch.device | None = None, batch_size: int = 64) -> dict:
    """Accuracy, real/fake accuracy and AP overall, per generator and per semantic domain, plus the
    mean gate of each expert per domain. ``data``: an :class:`ImageSet`, ``"builtin"`` (the
    built-in test split) or a folder in one of the :func:`read_layout` layouts."""
    detector = load(model, device=device)
    if isinstance(data, str) and data == "builtin":
        from moe_zoo.aigi.builtin import load_builtin

        data = load_builtin("test")
    elif not isinstance(data, ImageSet):
        data = load_records(read_layout(data, layout), detector.config.image_size, detector.config.domains)
    probs, gates = score(detector, data.images, batch_size)
    names = _expert_names(detector)
    domain_names = data.domain_names or detector.config.domains
    gate_table = {name: dict(zip(names, gates[data.domains == i].mean(0).round(4).tolist(), strict=True))
                  for i, name in enumerate(domain_names) if (data.domains == i).any()}
    return {"overall": detection_metrics(data.labels, probs),
            "per_generator": per_generator(data.labels, probs, data.generators),
            "per_domain": per_domain(data.labels, probs, data.domains, domain_names),
            "gates_per_domain": gate_table, "probs": probs}
