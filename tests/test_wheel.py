"""The suite as a product: a built wheel, installed into a fresh venv, collects the whole suite from an
empty directory (`pytest --pyargs conformance`) without reading a file of the source tree."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("wheel_probe.py")
SHIPPED = ("pyproject.toml", "README.md", "conformance", "ipvlan_driver", "netnsutil", "fixtures")


def _env() -> dict[str, str]:
    # nothing of the outer run may leak in: no PYTHONPATH, no pytest options or worker variables
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "PYTHON"))}


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def _probe(python: Path | str, cwd: Path, *pytest_args: str) -> dict[str, Any]:
    allowed = sys.prefix  # the project venv: the fresh one takes its dependencies from there
    done = subprocess.run(
        [str(python), str(PROBE), str(ROOT), allowed, "--", "-p", "no:cacheprovider", *pytest_args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("PROBE ")), None)
    assert line, f"the probe printed nothing:\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(line.removeprefix("PROBE "))
    result["output"] = done.stdout + done.stderr
    return result


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding only the built wheel; its dependencies come from the project venv through a .pth
    line (a directory added that way does not run its own .pth files: the editable install stays out)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"  # a copy: building writes build/ and *.egg-info next to the sources
    for name in SHIPPED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", str(src), "-w", str(base / "dist")], base)
    (wheel,) = (base / "dist").glob("ipvlan_conformance-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base)
    python = venv / "bin" / "python"
    _run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], base)
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([str(python), "-c", where], base).stdout.strip())
    (site / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _collected(output: str) -> int:
    found = re.search(r"(\d+) tests? collected", output)
    assert found, output
    return int(found.group(1))


def test_installed_wheel_collects_the_whole_suite_from_anywhere(fresh_venv: Path, tmp_path: Path) -> None:
    from_repo = _probe(sys.executable, ROOT, "conformance", "--collect-only", "-q")
    assert from_repo["status"] == 0, from_repo["output"]
    empty = tmp_path / "empty"
    empty.mkdir()
    installed = _probe(fresh_venv / "bin" / "python", empty, "--pyargs", "conformance", "--collect-only", "-q")
    assert installed["status"] == 0, installed["output"]
    assert installed["collected"] == from_repo["collected"] == _collected(from_repo["output"]) > 300
    assert str(installed["conformance"]).startswith(str(fresh_venv)), installed["conformance"]
    assert str(installed["fixtures"]).startswith(str(fresh_venv)), "the fixtures are the wheel's package data"
    assert not installed["editable_finder"], "the project's editable install leaked into the fresh venv"
    assert installed["opened"] == [], f"files read from the source tree: {installed['opened']}"
    for run in (from_repo, installed):
        # loaded once each (entry point and conftest name the same plugin), the machinery rewritten
        assert run["conformance.options"] == 1 and run["conformance.plugin"] == 1, run
        assert run["rewritten"] is True, "conformance.plugin's asserts must be rewritten"
    (empty / "test_other.py").write_text("def test_other():\n    pass\n")
    # an unrelated run in the same venv: the options parse, and the suite's machinery stays unloaded
    other = _probe(fresh_venv / "bin" / "python", empty, "test_other.py", "--backend=cni", "-q")
    assert other["status"] == 0 and other["collected"] == 1, other["output"]
    assert other["conformance.plugin"] == 0 and other["rewritten"] is None, other


def test_installed_command_writes_the_reports(fresh_venv: Path, tmp_path: Path) -> None:
    done = _run([str(fresh_venv / "bin" / "ipvlan-conformance"), "--help"], tmp_path)
    assert "--reports" in done.stdout and "pytest" in done.stdout
    # a collection only: the whole report pipeline runs (column kept, report.yaml, matrix) without a lab
    command = [str(fresh_venv / "bin" / "ipvlan-conformance"), "--reports", "out", "--collect-only", "-q"]
    done = _run(command, tmp_path)
    column = tmp_path / "out" / "native"
    assert (column / "conformance.json").exists() and (column / "junit.xml").exists(), done.stdout
    published = (column / "conformance-report.md").read_text()
    assert f"cd {tmp_path} && ipvlan-conformance --reports out --collect-only -q" in published
    # the installed suite names its version, and no commit: site-packages is no checkout
    assert f"- **suite**: ipvlan-conformance {metadata.version('ipvlan-conformance')}, commit unknown" in published
    assert (tmp_path / "out" / "matrix.html").exists() and not (tmp_path / "out" / ".running").exists()
