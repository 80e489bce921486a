"""Summarise pytest's JUnit XML (``--junitxml``) into counts, failures and a per-test table."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


def summarise_junit(path: str | Path) -> dict[str, Any]:
    """Counts (``passed``, ``failed``, ``errors``, ``skipped``), each failure's message, and a table of tests."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as err:
        return {"unreadable_junit": str(err)}
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures, rows = [], []
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = "passed"
        for tag, label in (("failure", "failed"), ("error", "errors"), ("skipped", "skipped")):
            found = case.find(tag)
            if found is not None:
                outcome = label
                if label != "skipped":
                    failures.append({"test": name, "message": (found.get("message") or "")[:500]})
                break
        counts[outcome] += 1
        rows.append([name, outcome, f"{float(case.get('time') or 0):.2f}"])
    return {**counts, "failures": failures,
            "tables": {"tests": {"header": ["test", "outcome", "seconds"], "rows": rows}}}
