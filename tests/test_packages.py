"""Workspace-wide checks: every package registers its models and builds a wheel with its modules."""

import importlib
import importlib.metadata
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from moe_zoo.core.registry import MODELS_ENTRY_POINT_GROUP, get_model_spec, list_models

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists())


def _uv() -> list[str]:
    command = os.environ.get("MOE_ZOO_UV") or shutil.which("uv")
    assert command, "uv not found (the Makefile installs it and exports MOE_ZOO_UV)"
    return shlex.split(command)


def test_moe_zoo_is_a_namespace_package():
    import moe_zoo

    assert getattr(moe_zoo, "__file__", None) is None
    for member in MEMBERS:
        assert not (member / "src" / "moe_zoo" / "__init__.py").exists(), member.name


@pytest.mark.parametrize("entry_point", importlib.metadata.entry_points(group=MODELS_ENTRY_POINT_GROUP),
                         ids=lambda ep: ep.name)
def test_list_models_sees_each_package_models(entry_point):
    module = entry_point.value.partition(":")[0]
    importlib.import_module(module)
    package = module.rsplit(".", 1)[0]
    names = [n for n in list_models() if get_model_spec(n).factory.__module__.startswith(package)]
    assert names, f"{entry_point.name}: {module} registers no model"


@pytest.mark.parametrize("member", MEMBERS, ids=lambda p: p.name)
def test_every_member_builds_a_wheel_with_its_modules(member: Path, tmp_path: Path):
    project = tomllib.loads((member / "pyproject.toml").read_text())["project"]
    built = subprocess.run([*_uv(), "build", "--package", project["name"], "--wheel", "--no-build-isolation",
                            "--offline", "--python", sys.executable, "-o", str(tmp_path)],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {str(p.relative_to(member / "src")) for p in (member / "src").rglob("*") if p.is_file()
               and "__pycache__" not in p.parts}
    assert sources and sources <= names, sorted(sources - names)[:5]
    assert "moe_zoo/__init__.py" not in names
