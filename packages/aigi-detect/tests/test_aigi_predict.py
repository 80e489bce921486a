"""predict / evaluate / CLI with the shipped weights, on real photographs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage
from PIL import Image

from moe_zoo.aigi import predict
from moe_zoo.aigi.builtin import DEFAULT_DOMAINS, finish, real_crops
from moe_zoo.aigi.demo import shipped_fakes
from moe_zoo.aigi.predict import load, score
from moe_zoo.core import InputError

PHOTOS = Path(skimage.__file__).parent / "data"


@pytest.fixture(scope="module")
def detector():
    return load("omniaid-mnv2", device="cpu")


def _check(result, model):
    assert 0.0 <= result.prob_fake <= 1.0
    names = [n for n, _ in result.experts]
    assert names[-1] == "artifact" and result.experts[-1][1] == 1.0
    semantic = result.experts[:-1]
    assert len(semantic) == model.config.top_k and set(names[:-1]) <= set(DEFAULT_DOMAINS)
    assert abs(sum(g for _, g in semantic) - 1.0) < 1e-3


def test_predict_on_real_photos_files_folders_and_arrays(detector, tmp_path):
    astronaut = PHOTOS / "astronaut.png"
    _check(predict(astronaut, detector), detector)
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("coffee.png", "chelsea.png", "rocket.jpg"):
        (folder / name).write_bytes((PHOTOS / name).read_bytes())
    Image.open(PHOTOS / "camera.png").save(folder / "gray.png")             # grayscale
    Image.open(PHOTOS / "coffee.png").convert("RGBA").save(folder / "rgba.png")
    results = predict(folder, detector)
    assert [Path(r.source).name for r in results] == ["chelsea.png", "coffee.png", "gray.png", "rgba.png", "rocket.jpg"]
    for r in results:
        _check(r, detector)
    from_array = predict(np.asarray(Image.open(PHOTOS / "coffee.png")), detector)
    from_pil = predict(Image.open(PHOTOS / "coffee.png"), detector)
    assert abs(from_array.prob_fake - from_pil.prob_fake) < 1e-6
    assert len(predict([astronaut, PHOTOS / "coffee.png"], detector)) == 2


def test_shipped_detector_scores_held_out_real_crops_below_generated_images(detector):
    real = np.stack([finish(img) for img in real_crops("human_animal", "test", 36, seed=7)])
    fakes, _, _ = shipped_fakes()
    real_p, _ = score(detector, real)
    fake_p, _ = score(detector, fakes)
    assert real_p.mean() + 0.2 < fake_p.mean()
    assert (real_p < 0.5).mean() >= 0.6


def test_bad_inputs_are_clear_errors(detector, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(InputError, match=r"bad\.jpg"):
        predict(bad, detector)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        predict(tmp_path / "empty", detector)
    with pytest.raises(InputError, match="no such"):
        predict(tmp_path / "missing.png", detector)


def test_cli_verbs_and_predict(capsys):
    from moe_zoo.core.cli import main

    assert main(["aigi", "predict", str(PHOTOS / "astronaut.png")]) == 0
    assert "artifact 1.00" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["aigi", "train", "--generators", "diffusion"])


def test_readme_example_runs():
    import doctest
    import re

    readme = Path(__file__).resolve().parents[1] / "README.md"
    block = re.search(r"```python\n(.*?)```", readme.read_text(), re.DOTALL).group(1)
    test = doctest.DocTestParser().get_doctest(block, {}, "README", str(readme), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0 and runner.tries >= 4
