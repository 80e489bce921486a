"""Every extra installs from the built wheels into a fresh venv outside the repo, and predicts offline.

The wheels come from ``uv build --all-packages``; each extra goes into its own venv with
``uv pip install --find-links <wheels> "moe-zoo[<extra>]"`` run from a temporary folder, so no
workspace setting (``[tool.uv]`` overrides, the dependency metadata of this repo) applies: only the
wheels' own metadata and the registry. The lock's versions are passed as constraints, so the venvs
hold the versions CI tests (and uv's cache already has) and a wheel whose requirements conflict
with them fails here. Each venv then imports its package and runs a tiny predict with the shipped
weights, with HF_HUB_OFFLINE=1 and nothing from this repo on its path.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
# Variables that would point the venvs at this repo's environment or add settings a user lacks
# (the index, cache and link-mode variables stay: CI may need them to reach the registry).
OUTSIDE_ONLY = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT", "UV_CONSTRAINT", "UV_OVERRIDE",
                "UV_BUILD_CONSTRAINT"}

# A model each extra registers (through its wheel's entry points), and one tiny predict with the
# shipped weights, run in the extra's venv.
MODELS = {"vad": "gsmoe-vad", "finance": "miga-conv", "flidar": "evidence-moe-flidar", "recsys": "recsys-home",
          "streams": "driftmoe-data", "driving": "drivemoe", "audio": "unimoe-audio-tiny", "aigi": "omniaid-mnv2",
          "nerf": "switch-nerf-pp"}
PREDICT = {
    "vad": """
        import numpy as np
        from moe_zoo import vad
        from moe_zoo.core.backbones import mobilenet_v2_weights_path as mobilenet_weights_path
        from moe_zoo.core.video import write_video

        frames = np.zeros((24, 96, 128, 3), np.uint8)
        frames[:] = np.linspace(40, 200, 128, dtype=np.uint8)[None, None, :, None]
        for i, frame in enumerate(frames):
            frame[30:60, 4 * i:4 * i + 20] = 255                 # a bright block crossing the scene
        clip = write_video("clip.mp4", frames, 10.0)
        result = vad.predict(str(clip))
        scores = np.asarray(result.frame_scores)
        assert scores.shape == (24,) and np.isfinite(scores).all() and ((0 <= scores) & (scores <= 1)).all()
        assert mobilenet_weights_path().is_relative_to(PREFIX), mobilenet_weights_path()
    """,
    "finance": """
        import numpy as np
        from moe_zoo import finance

        panel = finance.load_sp500_2009()
        instruments = panel.index.get_level_values("instrument").unique()[:30]
        panel = panel[panel.index.get_level_values("instrument").isin(instruments)]
        scores = finance.predict("miga-conv", panel, start="2010-08-01")
        assert len(scores) and np.isfinite(scores.to_numpy()).all()
        assert set(scores.index.get_level_values("instrument")) <= set(instruments)
    """,
    "flidar": """
        import numpy as np
        from moe_zoo import flidar

        data = flidar.simulate(32, seed=0)
        result = flidar.predict(data.histograms)
        depth = result.depth_mm.numpy()
        assert depth.shape == (32,) and np.isfinite(depth).all()
        assert np.corrcoef(depth, data.params["depth_mm"].numpy())[0, 1] > 0.8   # the shipped model, not noise
    """,
    "recsys": """
        import numpy as np
        import pandas as pd
        from moe_zoo import recsys

        config = recsys.load("home").config
        schema = config.schema
        rows = pd.DataFrame({**{name: [vocabulary[i % len(vocabulary)] for i in range(4)]
                                for name, vocabulary in zip(schema.categorical, schema.vocabularies)},
                             **{name: [mean] * 4 for name, mean in zip(schema.numeric, schema.mean)}})
        scores = recsys.predict("home", rows)
        assert list(scores.columns) == list(config.tasks) and scores.shape == (4, len(config.tasks))
        binary = [t for t, kind in zip(config.tasks, config.task_kinds) if kind == "binary"]
        assert scores[binary].apply(lambda c: c.between(0, 1)).all().all()
    """,
    "streams": """
        from moe_zoo.streams import DriftMoEClassifier, make_stream, prequential

        result = prequential(DriftMoEClassifier(seed=0), make_stream("sea_a", length=600, seed=0))
        assert result.n == 600 and result.accuracy > 0.6, result.accuracy
    """,
    "driving": """
        import numpy as np
        import torch
        from moe_zoo import driving
        from moe_zoo.core import create_model

        torch.set_num_threads(1)
        policy = driving.as_policy(create_model("drivemoe", pretrained=True))
        obs = {"cameras": np.full((6, 64, 64, 3), 100, np.uint8), "history": np.zeros((5, 10), np.float32),
               "command": 1, "command_point": np.array([30.0, 0.0], np.float32)}
        action = policy.act(obs)                                  # [acceleration, steering] in [-1, 1]
        assert action.shape == (2,) and np.all(np.abs(action) <= 1)
        assert policy.last["waypoints"].shape == (10, 2) and 0 <= policy.last["camera"] < 5
    """,
    "audio": """
        from moe_zoo import audio
        from moe_zoo.core import create_model

        model = create_model("unimoe-audio-tiny", pretrained=True)
        song = audio.music([(60, 1.0), (64, 1.0), (67, 2.0)], model=model, seed=0, max_seconds=1.0)
        assert song.dtype.name == "float32" and song.ndim == 1 and 0 < len(song) <= 1.1 * audio.SAMPLE_RATE
        wave = audio.tts("two dogs", model=model, seed=0, max_seconds=1.0)   # espeak-ng phonemes (apt.txt)
        assert wave.ndim == 1 and len(wave) > 0
    """,
    "aigi": """
        import numpy as np
        from moe_zoo import aigi

        image = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
        result = aigi.predict(image, "omniaid-mnv2", device="cpu")   # shipped weights + moe-core MobileNetV2
        assert 0.0 <= result.prob_fake <= 1.0
        assert result.experts[-1] == ("artifact", 1.0) and len(result.experts) == 2   # top-1 semantic + artifact
    """,
    "nerf": """
        import numpy as np
        import torch
        from moe_zoo.core import create_model
        from moe_zoo.nerf import Cameras, render
        from moe_zoo.nerf.scene import look_at

        model = create_model("switch-nerf-pp", pretrained=True).eval()
        pose = torch.from_numpy(look_at(np.array([1.5, 0.0, 1.5]), np.zeros(3))).float()
        image = render(model, Cameras(pose[None], torch.tensor([[20.0, 20.0, 8.0, 8.0]]), 16, 16))
        assert image.shape == (1, 16, 16, 3) and torch.isfinite(image).all() and image.std() > 0.01
    """,
}
PROLOGUE = """
    import sys
    from pathlib import Path

    from moe_zoo.core import list_models

    PREFIX = Path(sys.prefix).resolve()
    assert not any(Path(p).resolve().is_relative_to(REPO) for p in sys.path if p), sys.path
    assert "{model}" in list_models(), "{model} is not registered through the wheel's entry points"
"""


def _uv() -> list[str]:
    command = os.environ.get("MOE_ZOO_UV") or shutil.which("uv")
    assert command, "uv not found (the Makefile installs it and exports MOE_ZOO_UV)"
    return shlex.split(command)


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{shlex.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """(wheels, constraints, environment): every distribution built, the lock's versions as constraints."""
    work = tmp_path_factory.mktemp("wheels")
    assert not work.resolve().is_relative_to(ROOT), f"{work} lies inside the repo: uv would read its settings"
    env = {k: v for k, v in os.environ.items() if k not in OUTSIDE_ONLY}
    env["HF_HUB_OFFLINE"] = "1"
    dist = work / "dist"
    _run([*_uv(), "build", "--all-packages", "--quiet", "-o", str(dist)], ROOT, env, 600)
    constraints = work / "constraints.txt"
    _run([*_uv(), "export", "--frozen", "--no-hashes", "--all-extras", "--all-packages", "--no-emit-workspace",
          "--quiet", "-o", str(constraints)], ROOT, env, 120)
    return dist, constraints, env


def test_root_sdist_holds_only_the_meta_package(wheelhouse):
    dist, _, _ = wheelhouse
    (sdist,) = dist.glob("moe_zoo-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert names <= {"PKG-INFO", "pyproject.toml", "README.md", ".gitignore"}, sorted(names)


@pytest.mark.parametrize("extra", sorted(PREDICT))
def test_extra_installs_from_the_wheels_and_predicts(extra, wheelhouse, tmp_path):
    dist, constraints, env = wheelhouse
    venv = tmp_path / "venv"
    _run([*_uv(), "venv", "--quiet", "--python", f"{sys.version_info.major}.{sys.version_info.minor}", str(venv)],
         tmp_path, env, 120)
    python = venv / "bin" / "python"
    script = f"REPO = __import__('pathlib').Path({str(ROOT)!r})\n" + textwrap.dedent(PROLOGUE).format(model=MODELS[extra])
    script += textwrap.dedent(PREDICT[extra]) + "print('ok')\n"
    try:
        _run([*_uv(), "pip", "install", "--quiet", "--python", str(python), "--find-links", str(dist),
              "-c", str(constraints), f"moe-zoo[{extra}]"], tmp_path, env, 600)
        done = _run([str(python), "-I", "-c", script], tmp_path, env, 600)
    finally:
        shutil.rmtree(venv)   # a venv is ~5 GB where uv cannot hardlink from its cache: one at a time
    assert done.stdout.strip().endswith("ok")
