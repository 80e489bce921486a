"""Benchmark reporting shared by every package: mean ± std over seeds, Markdown tables,
the hardware line, and BENCHMARKS.md files written atomically."""

from __future__ import annotations

import os
import platform
import re
import statistics
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch

from moe_zoo.core.atomic import atomic_path


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    data = [float(v) for v in values]
    if not data:
        raise ValueError("mean_std of no values")
    return statistics.fmean(data), statistics.stdev(data) if len(data) > 1 else 0.0


def format_mean_std(values: Iterable[float], digits: int = 3, scale: float = 1.0) -> str:
    mean, std = mean_std(v * scale for v in values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def hardware_summary() -> str:
    """One line: CPU model, cores, torch threads, GPU (if any), torch version."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads, "
            f"{gpu}, Python {platform.python_version()}")


def recorded_hardware(saved: Mapping) -> str | None:
    """The ``"hardware"`` summary stored with saved benchmark records (None, with a warning, when absent)."""
    if "hardware" not in saved:
        warnings.warn("the saved records do not say which machine measured them; the report names this one",
                      stacklevel=2)
    return saved.get("hardware")


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temp file and rename (never a half-written file)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def replace_marked_block(path: str | Path, start: str, end: str, body: str) -> bool:
    """Replace the text between the ``start`` and ``end`` markers of ``path`` with ``body`` (atomically).

    The file becomes ``...start\nbody\nend...``; returns False, writing nothing, when the markers
    are missing (README summaries written by the benchmark scripts).
    """
    path = Path(path)
    text = path.read_text()
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), flags=re.DOTALL)
    if not pattern.search(text):
        return False
    write_text_atomic(path, pattern.sub(lambda _: f"{start}\n{body}\n{end}", text))
    return True


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure to ``path`` atomically (temp file, then rename) and close it.

    The format follows the suffix of ``path``; parent folders are created.
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return path


def write_benchmarks_md(path: str | Path, title: str, *, command: str, sections: Sequence[tuple[str, str]],
                        notes: str = "", seeds: Sequence[int] | None = None, hardware: str | None = None) -> Path:
    """A BENCHMARKS.md with the command, hardware, seeds, then titled Markdown sections.

    ``hardware`` defaults to this machine's :func:`hardware_summary`; a report re-rendered from
    saved records passes the summary recorded with them instead.
    """
    parts = [f"# {title}", "", f"Command: `{command}`", "", f"Hardware: {hardware or hardware_summary()}", ""]
    if seeds is not None:
        parts += [f"Seeds: {', '.join(map(str, seeds))}", ""]
    if notes:
        parts += [notes.strip(), ""]
    for heading, body in sections:
        parts += [f"## {heading}", "", body.strip(), ""]
    return write_text_atomic(path, "\n".join(parts))
