"""The import contracts (pyproject.toml, checked by `lint-imports` in ci/test): the suite does not import
the driver it judges outside the backends that run it, and each contract really breaks when violated."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")
PACKAGES = ("conformance", "ipvlan_driver", "netnsutil")


def _contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert sorted(config["root_packages"]) == sorted(PACKAGES)
    return {c["id"]: c for c in config["contracts"]}


def test_the_suite_may_import_the_driver_only_in_the_backends_that_run_it() -> None:
    oracle = _contracts()["oracle"]
    assert (oracle["type"], oracle["source_modules"], oracle["forbidden_modules"]) == (
        "forbidden",
        ["conformance"],
        ["ipvlan_driver"],
    )
    assert not oracle.get("allow_indirect_imports"), "an import through a helper module counts too"
    importers = {line.split(" -> ")[0] for line in oracle["ignore_imports"]}
    assert importers == {
        "conformance.backends.native",
        "conformance.backends.plugin",
        "conformance.backends.docker",
    }
    assert "conformance.backends.docker -> ipvlan_driver.failpoints" in oracle["ignore_imports"]


def test_the_driver_and_the_shared_plumbing_import_no_suite() -> None:
    contracts = _contracts()
    assert contracts["driver"]["source_modules"] == ["ipvlan_driver"]
    assert contracts["driver"]["forbidden_modules"] == ["conformance"]
    assert contracts["netnsutil"]["source_modules"] == ["netnsutil"]
    assert set(contracts["netnsutil"]["forbidden_modules"]) == {"conformance", "ipvlan_driver", "pyroute2"}


def test_each_side_talks_netlink_in_one_place() -> None:
    netlink = _contracts()["netlink"]
    assert (netlink["source_modules"], netlink["forbidden_modules"]) == (["conformance", "ipvlan_driver"], ["pyroute2"])
    assert {line.split(" -> ")[0] for line in netlink["ignore_imports"]} == {
        "conformance.observe",
        "conformance.labnet",
        "ipvlan_driver.netlink",
    }


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first: the editable install would otherwise resolve the packages to the real tree
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=root, env=env, capture_output=True, text=True, check=False, timeout=120
    )


def test_the_tree_keeps_its_contracts() -> None:
    done = _lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("conformance/checks.py", "from ipvlan_driver.netlink import Netlink", "conformance.checks -> ipvlan_driver"),
        ("conformance/backends/docker.py", "from ipvlan_driver import netlink", "conformance.backends.docker"),
        ("ipvlan_driver/driver.py", "import conformance.observe", "ipvlan_driver.driver -> conformance"),
        ("netnsutil/__init__.py", "import pyroute2", "netnsutil -> pyroute2"),
        ("conformance/checks.py", "from pyroute2 import IPRoute", "conformance.checks -> pyroute2"),
        ("ipvlan_driver/driver.py", "import pyroute2", "ipvlan_driver.driver -> pyroute2"),
    ],
    ids=[
        "suite-imports-driver",
        "docker-beyond-failpoints",
        "driver-imports-suite",
        "plumbing-reads-netlink",
        "suite-netlink-outside-observe",
        "driver-netlink-outside-netlink",
    ],
)
def test_a_forbidden_import_breaks_a_contract(copy: Path, module: str, line: str, broken: str) -> None:
    path = copy / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    done = _lint(copy)
    assert done.returncode != 0 and broken in done.stdout, done.stdout + done.stderr
