"""Readers on fixture folders in the real benchmarks' layouts, image conversions and errors, and the
built-in pipeline's files carrying no cue besides their pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from moe_zoo.aigi import images as image_module
from moe_zoo.aigi.builtin import file_statistics, finish, real_crops, write_png
from moe_zoo.aigi.data import load_records, read_binary_folders, read_chameleon, read_genimage
from moe_zoo.aigi.images import load_image, to_tensor
from moe_zoo.core import InputError


def _img(path, size=(20, 14), color=(10, 20, 30), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)
    return path


def test_genimage_layout(tmp_path):
    for gen, sub in (("ADM", "imagenet_ai_0508_adm"), ("stable_diffusion_v_1_4", "imagenet_ai_0419_sdv4")):
        for split in ("train", "val"):
            _img(tmp_path / gen / sub / split / "ai" / "a.png")
            _img(tmp_path / gen / sub / split / "nature" / "n1.JPEG", fmt="JPEG")
            _img(tmp_path / gen / sub / split / "nature" / "n2.jpg")
    (tmp_path / "ADM" / "imagenet_ai_0508_adm" / "val" / "ai" / "notes.txt").write_text("not an image")
    records = read_genimage(tmp_path, "val")
    assert len(records) == 6
    assert {(r.generator, r.label) for r in records} == {("ADM", 0), ("ADM", 1), ("stable_diffusion_v_1_4", 0),
                                                          ("stable_diffusion_v_1_4", 1)}
    assert sum(r.label for r in records) == 2 and all(r.domain == "" for r in records)
    assert len(read_genimage(tmp_path, "train")) == 6
    with pytest.raises(InputError):
        read_genimage(tmp_path, "test")


def test_binary_layout_at_any_depth_takes_the_domain_from_the_path(tmp_path):
    _img(tmp_path / "human" / "sdxl" / "0_real" / "r.png")
    _img(tmp_path / "human" / "sdxl" / "1_fake" / "f.png")
    _img(tmp_path / "scene" / "deep" / "er" / "flux" / "1_fake" / "f.webp", fmt="WEBP")
    records = read_binary_folders(tmp_path)
    got = sorted((r.domain, r.generator, r.label) for r in records)
    assert got == [("human", "sdxl", 0), ("human", "sdxl", 1), ("scene", "flux", 1)]
    loaded = load_records(records, 8, ("human", "animal", "scene"))
    assert loaded.images.shape == (3, 8, 8, 3) and loaded.images.dtype == np.uint8
    assert sorted(loaded.domains.tolist()) == [0, 0, 2]


def test_chameleon_layout(tmp_path):
    _img(tmp_path / "test" / "0_real" / "r.jpg", fmt="JPEG")
    _img(tmp_path / "test" / "1_fake" / "f.jpg", fmt="JPEG")
    _img(tmp_path / "test" / "1_fake" / "g.png")
    records = read_chameleon(tmp_path)
    assert [r.label for r in records] == [0, 1, 1] and {r.generator for r in records} == {"chameleon"}


def test_empty_layouts_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="0_real"):
        read_binary_folders(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        read_binary_folders(tmp_path / "missing")


def test_conversions_to_rgb(tmp_path):
    gray = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8))
    assert load_image(gray).shape == (8, 8, 3)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:2, ..., 3] = 255                     # top half opaque red, bottom transparent -> white
    out = load_image(Image.fromarray(rgba, "RGBA"))
    assert out[0, 0].tolist() == [255, 0, 0] and out[3, 0].tolist() == [255, 255, 255]
    sixteen = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    path = tmp_path / "deep.png"
    Image.fromarray(sixteen).save(path)
    loaded = load_image(path)
    assert loaded.dtype == np.uint8 and loaded.min() == 0 and loaded.max() == 255
    assert load_image(sixteen).max() == 255
    pal = Image.new("P", (5, 5))
    pal.putpalette([0, 0, 0, 255, 128, 0] * 128)
    assert load_image(pal).shape == (5, 5, 3)
    assert load_image(np.full((3, 3), 0.5)).max() == 128
    cmyk = Image.new("CMYK", (4, 4), (0, 0, 0, 0))
    assert load_image(cmyk).shape == (4, 4, 3)


def test_corrupt_empty_unsupported_and_huge_files(tmp_path, monkeypatch):
    good = _img(tmp_path / "good.jpg", size=(64, 64), fmt="JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:200])
    text = tmp_path / "notes.png"
    text.write_text("hello")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    for bad, message in ((truncated, "not a readable image"), (text, "not a readable image"),
                         (empty, "empty"), (tmp_path / "missing.png", "no such")):
        with pytest.raises(InputError, match=message):
            load_image(bad)
    monkeypatch.setattr(image_module, "MAX_PIXELS", 1000)
    with pytest.raises(InputError, match="too large"):
        load_image(good)
    with pytest.raises(InputError, match="shape"):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(InputError, match="NaN"):
        load_image(np.full((4, 4), np.nan))


def test_large_jpeg_is_decoded_at_reduced_scale_and_resized_like_everything_else(tmp_path):
    path = _img(tmp_path / "big.jpg", size=(2400, 1800), color=(200, 100, 50), fmt="JPEG")
    image = load_image(path, target=64)
    assert image.shape[0] < 1800 and image.shape[0] >= 64
    tensor = to_tensor([image], 64)
    assert tensor.shape == (1, 3, 64, 64) and abs(float(tensor[0, 0].mean()) - 200 / 255) < 0.02


def test_builtin_files_carry_no_cue_but_their_pixels(tmp_path):
    """Real crops and the most different possible 'fakes' (noise, flat images) written by the
    built-in pipeline: a classifier on file statistics alone is at chance."""
    from sklearn.model_selection import cross_val_score
    from sklearn.tree import DecisionTreeClassifier

    real = real_crops("human_animal", "test", 40, seed=0)
    rng = np.random.default_rng(0)
    fake = np.concatenate([rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8),
                           np.full((20, 32, 32, 3), 128, np.uint8)])
    paths = []
    for name, batch in (("real", real), ("fake", fake)):
        for i, image in enumerate(batch):
            write_png(finish(image), tmp_path / name / f"{i}.png")
            paths.append(tmp_path / name / f"{i}.png")
    features = np.array([file_statistics(p) for p in paths])
    labels = np.r_[np.zeros(len(real)), np.ones(len(fake))]
    accuracy = cross_val_score(DecisionTreeClassifier(random_state=0), features, labels, cv=5).mean()
    assert accuracy <= 0.6
    # the same images saved the ordinary way (compressed PNG) are told apart by size alone
    for p, image in zip(paths, np.concatenate([real, fake]), strict=True):
        Image.fromarray(finish(image)).save(p, format="PNG")
    leaky = np.array([file_statistics(p) for p in paths])
    assert cross_val_score(DecisionTreeClassifier(random_state=0), leaky, labels, cv=5).mean() >= 0.8
