"""The `moe-zoo` console script and its plug-in mechanism."""

import importlib.metadata
import shutil
import subprocess
import sys

import pytest

from moe_zoo.core.cli import COMMANDS_ENTRY_POINT_GROUP, main


def _console_script() -> str:
    script = shutil.which("moe-zoo", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert script, "the moe-zoo console script is not installed next to this Python"
    return script


def test_console_script_version_and_help():
    version = subprocess.run([_console_script(), "--version"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0
    assert version.stdout.startswith("moe-zoo ") and "core" in version.stdout
    listed = subprocess.run([_console_script(), "list"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "mixtral-moe" in listed.stdout


def test_every_plugin_is_reachable_and_shows_its_verbs(capsys):
    plugins = {ep.name: ep for ep in importlib.metadata.entry_points(group=COMMANDS_ENTRY_POINT_GROUP)}
    assert "core" in plugins
    for name in plugins:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "demo" in capsys.readouterr().out, f"`moe-zoo {name}` has no demo verb"


def test_core_demo_runs_and_learns(capsys):
    assert main(["-q", "core", "demo", "--steps", "60"]) == 0
    out = capsys.readouterr().out
    losses = [float(line.split()[1]) for line in out.splitlines() if line[:4].strip().isdigit()]
    assert losses[-1] < 0.5 * losses[0]
    assert "per-expert load" in out


def test_unknown_command_and_user_errors_exit_cleanly(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-domain"])
    assert exit_info.value.code == 2
    assert main(["core", "demo", "--steps", "1", "--backend", "warp-drive"]) == 2
    assert "unknown dispatch backend" in capsys.readouterr().err


def test_missing_video_is_refused_before_torch_loads():
    """A bad path must be answered at once: neither the CLI nor moe_zoo.core's import loads torch."""
    code = (
        "import sys\n"
        "from moe_zoo.core.cli import main\n"
        "rc = main(['vad', 'predict', '/nonexistent/clip.mp4'])\n"
        "print(rc, 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["2", "False"], done.stdout + done.stderr
    assert "not found" in done.stderr
