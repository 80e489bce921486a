"""The gpu-check report: one folder with ``report.json`` (everything measured) and ``report.md``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from moe_zoo.core.atomic import atomic_path
from moe_zoo.core.reporting import markdown_table

STATUSES = ("ok", "failed", "timeout", "skipped")


@dataclass
class SectionResult:
    """What one section reported: its status, wall time, measured data and, on failure, the error."""

    name: str
    status: str
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")


def write_report(folder: str | Path, results: list[SectionResult], meta: dict[str, Any]) -> Path:
    """(Re)write ``folder/report.json`` and ``folder/report.md`` atomically; returns the Markdown path."""
    folder = Path(folder)
    document = {"meta": meta, "sections": [asdict(r) for r in results]}
    with atomic_path(folder / "report.json") as tmp:
        tmp.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    with atomic_path(folder / "report.md") as tmp:
        tmp.write_text(render_markdown(results, meta))
    return folder / "report.md"


def render_markdown(results: list[SectionResult], meta: dict[str, Any]) -> str:
    """The report as Markdown: a summary table, then each section's data and error."""
    lines = ["# moe-core gpu-check", ""]
    lines += [f"- {key}: {value}" for key, value in meta.items()]
    lines += ["", markdown_table(["section", "status", "seconds"],
                                 [[r.name, r.status, f"{r.seconds:.1f}"] for r in results]), ""]
    for result in results:
        lines += [f"## {result.name} ({result.status})", ""]
        tables = result.data.get("tables", {})
        for title, table in tables.items():
            lines += [f"### {title}", "", markdown_table(table["header"], table["rows"]), ""]
        rest = {k: v for k, v in result.data.items() if k != "tables"}
        if rest:
            lines += ["```json", json.dumps(rest, indent=2, sort_keys=True, default=str), "```", ""]
        if result.error:
            lines += ["Error:", "", "```", result.error.rstrip(), "```", ""]
    return "\n".join(lines)
