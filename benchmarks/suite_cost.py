"""Part 4: what the conformance suite itself costs: per column from its finished conformance.json, and a
column timed serial against `-n N` (each a full run of that column, so only when asked for).

Topology set-up is the tests' setup phases (a module's deployment lands in its first test's setup); the
assertions are the call phases.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import REPO

SLOWEST = 5  # examples named in the report


def column_cost(path: Path) -> dict[str, Any]:
    """One finished column: wall time, set-up vs assertions, and the examples that cost most."""
    data = json.loads(path.read_text())
    meta = data.get("meta", {})
    per_example: dict[str, float] = {}
    for row in data.get("results", []):
        seconds = row.get("seconds") or {}
        per_example[row["example"]] = per_example.get(row["example"], 0.0) + sum(seconds.values())
    slowest = sorted(per_example.items(), key=lambda kv: -kv[1])[:SLOWEST]
    return {
        "column": meta.get("backend", path.parent.name),
        "kernel": meta.get("kernel", ""),
        "tests": len(data.get("results", [])),
        "phases": meta.get("phases", {}),
        "per_example_s": {k: round(v, 3) for k, v in sorted(per_example.items())},
        "slowest": [{"example": k, "seconds": round(v, 3)} for k, v in slowest],
    }


def finished_columns(reports: Path) -> dict[str, Any]:
    """Every column under reports/ whose conformance.json records phases (older runs did not)."""
    out = {}
    for path in sorted(reports.glob("*/conformance.json")):
        cost = column_cost(path)
        if cost["phases"]:
            out[cost["column"]] = cost
    return out


def time_modes(column: str, modes: Sequence[str], select: str | None) -> dict[str, Any]:
    """`pytest conformance --backend COLUMN` once per mode (serial, or an `-n` value), wall-timed."""
    out: dict[str, Any] = {}
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
            argv = [
                sys.executable,
                "-m",
                "pytest",
                "conformance",
                f"--backend={column}",
                "-q",
                "-p",
                "no:cacheprovider",
            ]
            argv += [
                f"--report-dir={tmp}",
                *(["-n", mode] if mode != "serial" else []),
                *(["-k", select] if select else []),
            ]
            start = time.monotonic()
            done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
            wall = time.monotonic() - start
            report = Path(tmp) / "conformance.json"
            cost = column_cost(report) if report.exists() else {}
        out[mode] = {"wall_s": round(wall, 3), "exit": done.returncode, "phases": cost.get("phases", {})}
        out[mode]["tests"] = cost.get("tests", 0)
        print(f"suite cost: {column} {mode}: {wall:.1f} s (exit {done.returncode})", flush=True)
    return out


def run(reports: Path, column: str, modes: Sequence[str], select: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {"columns": finished_columns(reports)}
    if modes:
        result["modes"] = {"column": column, "select": select or "", "runs": time_modes(column, modes, select)}
    return result
