"""The built-in offline data set: real photographs cropped into semantic domains, fakes from small
generators of three families trained here on them, and autoencoder reconstructions.

Real sources (located on disk, nothing downloaded): scikit-image's bundled photographs and its
``lfw_subset`` faces, OpenCV's sample photographs and clips (Debian ``opencv-doc``) and MATE's
nature photographs (Debian ``mate-backgrounds``). Each source belongs to one domain and one split
(every third source, every fifth face, the last quarter of a clip's frames go to test), so test
crops never come from a photograph seen in training. Crops are square, random in size and place,
area-resized to 32x32.

Generators (:mod:`moe_zoo.aigi.generators`: VAE, GAN, DDPM) train on the train crops; the
autoencoder's reconstructions of the real crops are the artifact expert's fakes. Every image, real
or fake, then goes through the same :func:`finish`: a JPEG round trip at quality
:data:`JPEG_QUALITY` and an uncompressed PNG (``compress_level=0``) of the same size, so the files
of real and fake images differ in nothing but their pixels (``tests/test_aigi_builtin.py`` checks
that a classifier on file statistics is at chance).

Cache: ``$MOE_ZOO_CACHE/aigi`` (or ``~/.cache/moe-zoo/aigi``), one folder per settings digest in the
``<split>/<domain>/<generator>/{0_real,1_fake}`` layout that :func:`~moe_zoo.aigi.data.read_binary_folders`
reads; ``complete.json`` is written last, so an interrupted build starts again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from moe_zoo.aigi.data import ImageSet, load_records, read_binary_folders
from moe_zoo.aigi.generators import FAMILIES, GeneratorSettings, sample, train_generator
from moe_zoo.aigi.images import jpeg_roundtrip, load_image
from moe_zoo.aigi.model import DEFAULT_DOMAINS
from moe_zoo.core import InputError, get_logger

_log = get_logger(__name__)
SIZE = 32
JPEG_QUALITY = 90
OPENCV = Path("/usr/share/doc/opencv-doc/examples")
MATE = Path("/usr/share/backgrounds/mate/nature")

# domain -> photographs (source, file); clips are listed separately
PHOTOS = {
    "human_animal": [("skimage", "astronaut.png"), ("skimage", "chelsea.png"), ("opencv", "data/messi5.jpg"),
                     ("opencv", "data/baboon.jpg"), ("opencv", "data/squirrel_cls.jpg"),
                     ("opencv", "data/butterfly.jpg"), ("mate", "LadyBird.jpg"), ("mate", "TwoWings.jpg")],
    "nature": [("mate", "Aqua.jpg"), ("mate", "Dune.jpg"), ("mate", "FreshFlower.jpg"), ("mate", "Garden.jpg"),
               ("mate", "GreenMeadow.jpg"), ("mate", "RainDrops.jpg"), ("mate", "Storm.jpg"), ("mate", "Wood.jpg"),
               ("mate", "YellowFlower.jpg"), ("opencv", "alphamat/input_images/plant.jpg")],
    "urban_object": [("opencv", "data/building.jpg"), ("opencv", "data/home.jpg"), ("opencv", "data/aero1.jpg"),
                     ("opencv", "data/box_in_scene.png"), ("opencv", "data/fruits.jpg"), ("opencv", "data/board.jpg"),
                     ("opencv", "data/stuff.jpg"), ("opencv", "data/rubberwhale1.png"),
                     ("opencv", "data/basketball1.png"), ("opencv", "text/scenetext01.jpg"),
                     ("opencv", "text/scenetext02.jpg"), ("opencv", "text/scenetext03.jpg"),
                     ("opencv", "text/scenetext04.jpg"), ("opencv", "text/scenetext05.jpg"),
                     ("opencv", "text/scenetext06.jpg"), ("skimage", "coffee.png"), ("skimage", "rocket.jpg"),
                     ("skimage", "motorcycle_left.png"), ("opencv", "data/orange.jpg")],
}
CLIPS = {"urban_object": ["data/vtest.avi"], "nature": ["data/tree.avi"]}


@dataclass(frozen=True)
class BuiltinConfig:
    """Sizes of the built-in set (images per domain) and the generators' training length."""

    real_train: int = 400
    real_test: int = 150
    fake_train: int = 200
    fake_test: int = 150
    generator: GeneratorSettings = field(default_factory=GeneratorSettings)
    seed: int = 0

    def digest(self) -> str:
        text = json.dumps({"config": asdict(self), "domains": DEFAULT_DOMAINS, "photos": PHOTOS, "clips": CLIPS,
                           "jpeg": JPEG_QUALITY, "size": SIZE, "version": 2}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def cache_dir() -> Path:
    base = os.environ.get("MOE_ZOO_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "moe-zoo") / "aigi"


def _source_path(source: str, name: str) -> Path:
    if source == "skimage":
        import skimage

        return Path(skimage.__file__).parent / "data" / name
    return (OPENCV if source == "opencv" else MATE) / name


def _crops(image: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` random square crops (side 12-50% of the short side, at least 32 px) area-resized to 32."""
    height, width = image.shape[:2]
    short = min(height, width)
    out = []
    for _ in range(n):
        side = int(np.clip(rng.uniform(0.12, 0.5) * short, min(SIZE, short), short))
        top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
        crop = Image.fromarray(image[top:top + side, left:left + side])
        out.append(np.asarray(crop.resize((SIZE, SIZE), Image.Resampling.BOX if side >= SIZE else Image.BICUBIC)))
    return out


def _clip_frames(path: Path, split: str, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    from moe_zoo.core.video import iter_frames

    frames = list(iter_frames(path, max_side=None))
    cut = int(len(frames) * 0.75)
    pool = frames[:cut] if split == "train" else frames[cut:]
    return [pool[i] for i in rng.integers(0, len(pool), count)]


def _split_sources(domain: str, split: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(photos, clip frames pool) of ``domain`` in ``split``; missing files are skipped with a warning."""
    photos = []
    for i, (source, name) in enumerate(PHOTOS[domain]):
        if (i % 3 == 2) != (split == "test"):
            continue
        path = _source_path(source, name)
        if path.is_file():
            photos.append(load_image(path))
        else:
            _log.warning("built-in data: %s missing (install %s)", path, "opencv-doc / mate-backgrounds")
    return photos, [p for p in (OPENCV / c for c in CLIPS.get(domain, [])) if p.is_file()]


def real_crops(domain: str, split: str, n: int, seed: int, *, clips: bool = True) -> np.ndarray:
    """``uint8 [n, 32, 32, 3]`` real crops of ``domain`` for ``split`` (before :func:`finish`);
    ``clips=False`` leaves the video frames out (no decoding: for quick demos)."""
    rng = np.random.default_rng([seed, DEFAULT_DOMAINS.index(domain), split == "test"])
    photos, clip_paths = _split_sources(domain, split)
    clip_paths = clip_paths if clips else []
    parts: list[np.ndarray] = []
    if domain == "human_animal":
        from skimage.data import lfw_subset

        faces = lfw_subset()
        keep = [i for i in range(len(faces)) if (i % 5 == 4) == (split == "test")]
        chosen = rng.choice(keep, size=min(len(keep), n // 2), replace=False)
        for i in chosen:
            face = (faces[i] * 255).round().astype(np.uint8)
            parts += _crops(np.repeat(face[..., None], 3, -1), 1, rng)
    sources = photos + [frame for clip in clip_paths for frame in _clip_frames(clip, split, 8, rng)]
    if not sources:
        raise InputError(f"built-in data: no real photographs found for domain {domain!r} (install opencv-doc and "
                         "mate-backgrounds: packages/aigi-detect/apt.txt)")
    per_source = np.bincount(rng.integers(0, len(sources), n - len(parts)), minlength=len(sources))
    for image, count in zip(sources, per_source, strict=True):
        parts += _crops(image, int(count), rng)
    return np.stack(parts)[rng.permutation(n)]


def finish(image: np.ndarray) -> np.ndarray:
    """The processing every built-in image gets, real or fake: JPEG round trip at quality 90."""
    return jpeg_roundtrip(image, JPEG_QUALITY)


def write_png(image: np.ndarray, path: Path) -> None:
    """Uncompressed PNG: the file size depends on the image size only, never on its content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG", compress_level=0)


def _save(images: np.ndarray, folder: Path) -> None:
    for i, image in enumerate(images):
        write_png(finish(image), folder / f"{i:05d}.png")


def _to_unit(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def build_builtin(config: BuiltinConfig | None = None, root: Path | None = None, *, force: bool = False) -> Path:
    """Build (once) and return the cached built-in set's folder."""
    config = config or BuiltinConfig()
    root = root or cache_dir() / f"builtin-{config.digest()}"
    if (root / "complete.json").is_file() and not force:
        return root
    if root.exists():
        shutil.rmtree(root)
    began = time.perf_counter()
    torch.manual_seed(config.seed)
    counts = {"train": (config.real_train, config.fake_train), "test": (config.real_test, config.fake_test)}
    real = {split: {d: real_crops(d, split, counts[split][0], config.seed) for d in DEFAULT_DOMAINS}
            for split in counts}
    for split, by_domain in real.items():
        for domain, images in by_domain.items():
            _save(images, root / split / domain / "real" / "0_real")
    train_x = torch.cat([_to_unit(real["train"][d]) for d in DEFAULT_DOMAINS])
    train_d = torch.cat([torch.full((len(real["train"][d]),), i) for i, d in enumerate(DEFAULT_DOMAINS)])
    for k, family in enumerate(tqdm((*FAMILIES, "ae"), desc="generators", mininterval=1)):
        model = train_generator(family, train_x, train_d, len(DEFAULT_DOMAINS), config.generator, config.seed + k)
        for split, (_, n_fake) in counts.items():
            for i, domain in enumerate(DEFAULT_DOMAINS):
                if family == "ae":
                    fakes = model.reconstruct(_to_unit(real[split][domain]))
                    name = "ae_recon"
                else:
                    seed = config.seed * 1000 + 10 * k + i + (5 if split == "test" else 0)
                    fakes = sample(model, torch.full((n_fake,), i), seed)
                    name = family
                _save(_to_uint8(fakes), root / split / domain / name / "1_fake")
    record = {"config": asdict(config), "seconds": round(time.perf_counter() - began, 1)}
    (root / "complete.json").write_text(json.dumps(record, indent=2))
    return root


def load_builtin(split: str, config: BuiltinConfig | None = None) -> ImageSet:
    """The built-in ``train`` or ``test`` split (built on first use), at 32x32."""
    if split not in ("train", "test"):
        raise InputError(f"built-in split must be 'train' or 'test', got {split!r}")
    root = build_builtin(config)
    records = read_binary_folders(root / split)
    # the real crops sit under <domain>/real/0_real: their "generator" is "real"
    return load_records(records, SIZE, DEFAULT_DOMAINS)


def file_statistics(path: str | Path) -> list[float]:
    """What a file says about itself, pixels aside: byte size, width, height, bands, PNG/JPEG
    format, and the first 64 header bytes before the pixel data (PNG: up to the first ``IDAT``
    tag; JPEG: up to the start-of-scan marker), i.e. chunk layout, compression, metadata."""
    path = Path(path)
    with Image.open(path) as image:
        width, height = image.size
        bands, fmt = len(image.getbands()), image.format
    data = path.read_bytes()
    ends = [i for i in (data.find(b"IDAT"), data.find(b"\xff\xda")) if i >= 0]
    header = data[:min([*ends, 64])][:64].ljust(64, b"\0")
    return [path.stat().st_size, width, height, bands, float(fmt == "PNG"), float(fmt == "JPEG"), *header]


def write_demo_grid(path: str | Path, per_domain: int = 4, config: BuiltinConfig | None = None) -> Path:
    """A PNG grid of test-split fakes (rows: vae, gan, ddpm; ``per_domain`` columns per domain),
    shipped next to the default weights for ``moe-zoo aigi demo``."""
    root = build_builtin(config)
    rows = []
    for family in FAMILIES:
        tiles = [np.asarray(Image.open(p).convert("RGB"))
                 for domain in DEFAULT_DOMAINS
                 for p in sorted((root / "test" / domain / family / "1_fake").glob("*.png"))[:per_domain]]
        rows.append(np.concatenate(tiles, axis=1))
    path = Path(path)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path, format="PNG", optimize=True)
    return path
