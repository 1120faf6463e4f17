"""The allure report of a run, rendered to one self-contained HTML page: allure 3 (Node), pinned, installed
on demand with npm into a private directory (never globally). Standard library only (bootstrap uses it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import vm

VERSION = "3.18.0"
HOME = vm.cache_dir() / f"allure-{VERSION}"
BINARY = HOME / "node_modules" / ".bin" / "allure"
# allure 3's "allure2" plugin: the classic report, one file that opens from file:// (no server), and the
# only one that honours ALLURE_NO_ANALYTICS (the others load Google's tag manager: a console error offline)
CONFIG = {
    "name": "ipvlan conformance",
    "plugins": {"allure2": {"options": {"singleFile": True, "reportName": "ipvlan conformance"}}},
}


def missing() -> str:
    """'' when allure can be installed or is there, else why not."""
    if BINARY.exists():
        return ""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "allure 3 needs node and npm (Debian: nodejs, npm)"
    return ""


def ensure(step: Callable[[str], None]) -> bool:
    """Install the pinned allure if it is not there; False (and why) when it cannot be."""
    if BINARY.exists():
        step(f"allure {VERSION}: {BINARY}")
        return True
    why = missing()
    if why:
        step(f"allure {VERSION}: not installed ({why}); reports get no allure HTML")
        return False
    HOME.mkdir(parents=True, exist_ok=True)
    argv = ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(HOME), f"allure@{VERSION}"]
    step(f"allure {VERSION}: $ {' '.join(argv)}")
    done = subprocess.run(argv, check=False)
    if done.returncode != 0 or not BINARY.exists():
        step(f"allure {VERSION}: npm install failed (exit {done.returncode}); reports get no allure HTML")
        return False
    return True


def render(results: Path, out: Path, binary: Path = BINARY) -> subprocess.CompletedProcess[str]:
    """allure-results/ -> out/index.html (one file, its data embedded)."""
    with tempfile.TemporaryDirectory(prefix="icallure-") as tmp:
        config = Path(tmp) / "allurerc.json"
        config.write_text(json.dumps(CONFIG))
        env = {**os.environ, "ALLURE_NO_ANALYTICS": "true"}
        argv = [str(binary), "generate", str(results), "--config", str(config), "--output", str(out)]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)


if __name__ == "__main__":  # `ci/allure_html.py RESULTS OUT`: one column's page, a step of ci/conformance
    done = render(Path(sys.argv[1]), Path(sys.argv[2]))
    print(done.stdout + done.stderr, end="")
    sys.exit(done.returncode)
