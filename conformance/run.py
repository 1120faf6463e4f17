"""`ipvlan-conformance`: run the installed suite from any directory and keep its reports.

`ipvlan-conformance --backend=NAME [pytest options]` is `pytest --pyargs conformance` with the reports
ci/conformance writes: REPORTS/<column>/ (junit.xml, allure-results/, conformance.html/json, report.yaml,
conformance-report.md) and, across every column kept in REPORTS, matrix.html / matrix.json /
implementation-report.md. Runs of other backends into the same REPORTS add their columns.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from . import matrix, report

RUNNING = ".running"  # the column's name is known only once the run has described its driver


def pytest_args(reports: Path, extra: list[str]) -> list[str]:
    """The pytest command line of one run writing into REPORTS/.running/."""
    out = reports / RUNNING
    args = ["--pyargs", "conformance", "-p", "no:cacheprovider", f"--junitxml={out / 'junit.xml'}"]
    if importlib.util.find_spec("allure_pytest") is not None:
        args += [f"--alluredir={out / 'allure-results'}", "--clean-alluredir"]
    return [*args, f"--report-dir={out}", *extra]


def keep(reports: Path) -> Path | None:
    """Move the finished run to REPORTS/<column>/ (replacing an older run of that column)."""
    running = reports / RUNNING
    data = running / "conformance.json"
    if not data.exists():
        return None
    column = str(json.loads(data.read_text())["meta"]["backend"]).replace(":", "-").replace("/", "-")
    target = reports / column
    if target.exists():
        shutil.rmtree(target)
    running.rename(target)
    return target


class Reproduce:
    """Makes the report's `reproduce` line this command, not the pytest command line it expands to."""

    def __init__(self, command: str) -> None:
        self.command = command

    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[report.COMMAND] = self.command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ipvlan-conformance",
        description=__doc__,
        epilog="every other option goes to pytest (--backend=..., -k ipvlan20, -n auto, ...); run as root",
    )
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="where the reports go (./reports)")
    given = list(sys.argv[1:] if argv is None else argv)
    ours, extra = parser.parse_known_args(given)
    reports: Path = ours.reports.resolve()
    shutil.rmtree(reports / RUNNING, ignore_errors=True)
    command = f"cd {shlex.quote(str(Path.cwd()))} && ipvlan-conformance {shlex.join(given)}"
    status = int(pytest.main(pytest_args(reports, extra), plugins=[Reproduce(command)]))
    kept = keep(reports)
    if kept is None:
        print(f"ipvlan-conformance: the run wrote no report (pytest exit {status})")
        return status or 1
    columns = sorted(p.parent for p in reports.glob("*/conformance.json"))
    matrix.main([*map(str, columns), "--out", str(reports)])
    print(f"ipvlan-conformance: {kept}/ and {reports}/matrix.html")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
