"""Shared by ci/test and ci/conformance: run named steps, print what runs and how long it took."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = str(REPO / ".venv" / "bin" / "python")
RUN_IN_VM = str(REPO / "ci" / "run-in-vm")
NO_TESTS = 5  # pytest: nothing collected


class Steps:
    def __init__(self, title: str) -> None:
        self.title = title
        self.timings: list[tuple[str, float, int]] = []

    def run(self, name: str, argv: Sequence[str], ok: Sequence[int] = (0,)) -> bool:
        print(f"\n=== {self.title}: {name}\n$ {' '.join(argv)}", flush=True)
        start = time.monotonic()
        status = subprocess.run(list(argv), cwd=REPO, check=False).returncode
        took = time.monotonic() - start
        self.timings.append((name, took, status))
        print(f"=== {name}: {'ok' if status in ok else f'FAILED (exit {status})'} in {took:.1f} s", flush=True)
        return status in ok

    def summary(self) -> int:
        print(f"\n=== {self.title} summary")
        failed = False
        for name, took, status in self.timings:
            print(f"  {name:<34} {took:>7.1f} s   exit {status}")
            failed = failed or status not in (0, NO_TESTS)
        total = sum(t for _, t, _ in self.timings)
        print(f"  {'total':<34} {total:>7.1f} s")
        return 1 if failed else 0


def bootstrap(steps: Steps, backends: Sequence[str] = ()) -> None:
    argv = [sys.executable, str(REPO / "ci" / "bootstrap.py")]
    if backends:
        argv.append("--backends=" + ",".join(backends))
    if not steps.run("bootstrap (install what is missing)", argv):
        raise SystemExit(steps.summary())
