"""Image sets: readers for the real benchmarks' folder layouts, and loading them into memory.

Layouts (labels from folder names, semantic domain and generator from the path):

- GenImage: ``<root>/<generator>/<subset>/{train,val}/{ai,nature}/*`` (``ai`` = fake, ``nature`` =
  real); generator = the first path component; no semantic domain (``domain`` = "").
- ``0_real`` / ``1_fake`` at any depth (the official OmniAID reader; Chameleon's
  ``test/{0_real,1_fake}``, the Mirage / UniversalFakeDetect sets): domain = the first path
  component under ``root`` (official: ``category = path_parts[0]``), generator = the folder
  holding ``0_real``/``1_fake``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from moe_zoo.aigi.images import IMAGE_SUFFIXES, load_image, to_tensor
from moe_zoo.core import InputError

REAL_FOLDER, FAKE_FOLDER = "0_real", "1_fake"


@dataclass(frozen=True)
class ImageRecord:
    path: Path
    label: int            # 0 real, 1 AI-generated
    domain: str = ""      # semantic domain ("" when the layout has none)
    generator: str = ""   # generator (or source) name


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _check_root(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder")
    return root


def read_genimage(root: str | Path, split: str = "val") -> list[ImageRecord]:
    """GenImage ``<generator>/<subset>/<split>/{ai,nature}``; ``split`` is ``train`` or ``val``."""
    if split not in ("train", "val"):
        raise InputError(f"GenImage split must be 'train' or 'val', got {split!r}")
    root = _check_root(root)
    records = [ImageRecord(path, int(kind == "ai"), "", generator_dir.name)
               for generator_dir in sorted(p for p in root.iterdir() if p.is_dir())
               for subset in sorted(p for p in generator_dir.iterdir() if p.is_dir())
               for kind in ("nature", "ai") if (subset / split / kind).is_dir()
               for path in _images_in(subset / split / kind)]
    if not records:
        raise InputError(f"{root}: no GenImage images (<generator>/<subset>/{split}/{{ai,nature}}/*)")
    return records


def read_binary_folders(root: str | Path) -> list[ImageRecord]:
    """Every ``0_real`` / ``1_fake`` folder at any depth under ``root``."""
    root = _check_root(root)
    records = []
    for folder in sorted(p for p in root.rglob("*") if p.is_dir() and p.name in (REAL_FOLDER, FAKE_FOLDER)):
        parts = folder.relative_to(root).parts
        domain = parts[0] if len(parts) > 1 else ""
        generator = parts[-2] if len(parts) > 1 else root.name
        label = int(folder.name == FAKE_FOLDER)
        records += [ImageRecord(path, label, domain, generator) for path in _images_in(folder)]
    if not records:
        raise InputError(f"{root}: no images in 0_real / 1_fake folders")
    return records


def read_chameleon(root: str | Path) -> list[ImageRecord]:
    """Chameleon (``test/{0_real,1_fake}``, or those two folders directly); generator "chameleon"."""
    return [ImageRecord(r.path, r.label, "", "chameleon") for r in read_binary_folders(root)]


@dataclass
class ImageSet:
    """Images in memory: ``images uint8 [N, S, S, 3]``, ``labels [N]``, ``domains [N]`` (index into
    ``domain_names``, -1 = none) and ``generators [N]`` (names)."""

    images: np.ndarray
    labels: np.ndarray
    domains: np.ndarray
    generators: np.ndarray
    domain_names: tuple[str, ...] = ()
    paths: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask: np.ndarray) -> ImageSet:
        index = np.flatnonzero(mask) if mask.dtype == bool else mask
        paths = [self.paths[i] for i in index] if self.paths else []
        return ImageSet(self.images[index], self.labels[index], self.domains[index], self.generators[index],
                        self.domain_names, paths)

    def concat(self, other: ImageSet) -> ImageSet:
        if self.domain_names != other.domain_names:
            raise InputError("cannot join image sets with different domain names")
        return ImageSet(np.concatenate([self.images, other.images]), np.concatenate([self.labels, other.labels]),
                        np.concatenate([self.domains, other.domains]),
                        np.concatenate([self.generators, other.generators]), self.domain_names,
                        self.paths + other.paths if self.paths and other.paths else [])

    def tensors(self, index: np.ndarray, size: int):
        import torch

        return (to_tensor(self.images[index], size), torch.from_numpy(self.labels[index]).long(),
                torch.from_numpy(self.domains[index]).long())


def load_records(records: list[ImageRecord], size: int, domain_names: tuple[str, ...] = ()) -> ImageSet:
    """Decode ``records`` into an :class:`ImageSet` at ``size`` x ``size`` (domains not in
    ``domain_names`` get -1)."""
    if not records:
        raise InputError("no images to load")
    lookup = {name: i for i, name in enumerate(domain_names)}
    images = np.stack([(to_tensor(load_image(r.path, target=size)[None], size)[0].permute(1, 2, 0) * 255)
                       .round().byte().numpy() for r in tqdm(records, desc="load images", leave=False, mininterval=5)])
    return ImageSet(images, np.array([r.label for r in records], dtype=np.int64),
                    np.array([lookup.get(r.domain, -1) for r in records], dtype=np.int64),
                    np.array([r.generator for r in records]), tuple(domain_names), [str(r.path) for r in records])
