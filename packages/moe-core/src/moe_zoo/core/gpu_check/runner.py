"""Argument parsing, the CUDA refusal, and the sections run one by one as time-limited child processes."""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from moe_zoo.core.argtypes import positive_float, positive_int
from moe_zoo.core.gpu_check.junit import summarise_junit
from moe_zoo.core.gpu_check.report import SectionResult, write_report
from moe_zoo.core.runtime import get_logger

_log = get_logger(__name__)
BUILTIN_RECIPES = ("vad", "finance", "flidar", "recsys", "streams")  # recipes in training.py


def _hooked_packages() -> tuple[str, ...]:
    """Installed domain packages that bring their own section: a ``moe_zoo.<name>.gpu_check`` module
    with ``run(device) -> dict`` (found by path, nothing imported)."""
    import moe_zoo

    found = []
    for folder in moe_zoo.__path__:
        found += [p.parent.name for p in Path(folder).glob("*/gpu_check.py") if p.parent.name not in BUILTIN_RECIPES]
    return tuple(sorted(set(found)))


DOMAIN_PACKAGES = BUILTIN_RECIPES + _hooked_packages()
# Per-section limits (seconds); each is also capped by what is left of the whole run's budget.
TIMEOUTS = {"env": 60, "tests": 210, "bench": 150, **{f"train:{p}": 60 for p in DOMAIN_PACKAGES}}
SECTIONS = tuple(TIMEOUTS)
REFUSAL = "gpu-check: no CUDA device here (torch.cuda.is_available() is False); run it on a GPU machine"
TESTS_DIR = Path(__file__).resolve().parents[4] / "tests"
CHILD_ENV = {"TRITON_INTERPRET": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpu-check", description="moe-core's prepared check on a CUDA machine")
    parser.add_argument("--out", type=Path, default=Path("gpu-check-report"),
                        help="report folder (report.md, report.json, tests.xml); created if missing")
    parser.add_argument("--budget", type=positive_float, default=450.0,
                        help="seconds for the whole run; no section starts past it and each is cut at what is left")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=None, metavar="SECTION",
                        help=f"run only these sections (default all: {', '.join(SECTIONS)})")
    parser.add_argument("--repeats", type=positive_int, default=20, help="timed repeats per benchmark shape")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Section:
    """One step of the check: a command run in a child process, cut after ``timeout`` seconds."""

    name: str
    command: list[str]
    timeout: float


def section_command(name: str, data_path: Path, args: argparse.Namespace) -> list[str] | None:
    """The child command of section ``name`` (None when it cannot run here: not installed, no tests)."""
    if name == "tests":
        test_file = TESTS_DIR / "test_core_cuda.py"
        if not test_file.is_file():
            return None
        return [sys.executable, "-m", "pytest", str(test_file), "-q", "-p", "no:cacheprovider",
                f"--junitxml={data_path.with_suffix('.xml')}"]
    if name.startswith("train:") and importlib.util.find_spec(f"moe_zoo.{name.partition(':')[2]}") is None:
        return None
    return [sys.executable, "-m", "moe_zoo.core.gpu_check.child", name, str(data_path), str(args.repeats)]


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_section(section: Section, data_path: Path, env: dict[str, str] | None = None) -> SectionResult:
    """Run ``section``; the child writes its JSON data to ``data_path``. Never raises for the child's failures."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(section.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, **CHILD_ENV, **(env or {})})
        try:
            returncode = process.wait(timeout=section.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the child's own children (pytest workers) too
            process.wait()
            returncode = None
        log.seek(0)
        output = log.read()
    seconds = time.perf_counter() - started
    data = _read_data(data_path)
    if returncode is None:
        return SectionResult(section.name, "timeout", seconds, data, f"cut after {section.timeout:.0f} s\n{_tail(output)}")
    if returncode != 0:
        return SectionResult(section.name, "failed", seconds, data, f"exit code {returncode}\n{_tail(output)}")
    return SectionResult(section.name, "ok", seconds, data)


def _read_data(path: Path) -> dict:
    """The section's data: the pytest JUnit summary beside ``path`` for the tests, else its JSON."""
    if path.with_suffix(".xml").is_file():
        return summarise_junit(path.with_suffix(".xml"))
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        return {"unreadable_section_data": str(err)}
    return data if isinstance(data, dict) else {"data": data}


def run_all(args: argparse.Namespace, meta: dict) -> list[SectionResult]:
    """Every selected section in order within the budget; the report is rewritten after each."""
    args.out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.budget
    results: list[SectionResult] = []
    for name in args.only or SECTIONS:
        data_path = args.out / f"{name.replace(':', '-')}.json"
        data_path.unlink(missing_ok=True)
        data_path.with_suffix(".xml").unlink(missing_ok=True)
        left = deadline - time.monotonic()
        command = section_command(name, data_path, args)
        if command is None:
            results.append(SectionResult(name, "skipped", error="not installed here (or its tests are absent)"))
        elif left < 5:
            results.append(SectionResult(name, "skipped", error=f"the run's budget of {args.budget:.0f} s was spent"))
        else:
            _log.info("gpu-check: %s (limit %.0f s)", name, min(TIMEOUTS[name], left))
            result = run_section(Section(name, command, min(TIMEOUTS[name], left)), data_path)
            if name == "tests" and result.status == "ok" and not result.data.get("passed"):
                result.status, result.error = "failed", "no CUDA test passed (all skipped?)"
            results.append(result)
        write_report(args.out, results, meta)
    return results


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when every section that ran passed, 1 when one failed or timed out, 2 without CUDA."""
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print(REFUSAL, file=sys.stderr)
        return 2
    meta = {"started_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "gpu": torch.cuda.get_device_name(0), "command": " ".join(["gpu-check", *(argv or sys.argv[1:])]),
            "budget_s": args.budget}
    results = run_all(args, meta)
    for result in results:
        print(f"{result.name:16s} {result.status:8s} {result.seconds:6.1f} s")
    print(f"report: {args.out / 'report.md'}")
    return 0 if all(r.status in ("ok", "skipped") for r in results) else 1
