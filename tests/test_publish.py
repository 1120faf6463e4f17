"""Reports people publish and compare: one report.yaml per run, and the cells that changed between runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conformance import matrix, publish


def _data(outcomes: dict[tuple[str, str], tuple[str, str]], backend: str = "cni") -> dict[str, object]:
    results = [
        {"example": e, "behaviour": b, "outcome": o, "detail": d, "errata": [], "doc": ""}
        for (e, b), (o, d) in outcomes.items()
    ]
    meta = {
        "backend": backend,
        "kernel": "6.1.0-57-amd64",
        "python": "3.11.7",
        "suite": "abc1234",
        "driver": {"driver": "CNI ipvlan plugin", "package": "containernetworking-plugins 1.1.1", "column": backend},
        "command": "cd /src && python -m pytest conformance --backend=cni",
    }
    return {"meta": meta, "results": results, "errata": []}


def test_a_run_report_has_what_a_reader_compares() -> None:
    data = _data(
        {
            ("db_net", "c1-addresses"): ("pass", ""),
            ("db_net", "c1-routes-v4"): ("fail", "AssertionError: no default route"),
            ("ipvlan20", "parent-lifecycle"): ("unsupported", "unsupported: backend cni lacks vlan-create"),
            ("l3s", "c1-addresses"): ("pass", ""),
            ("flag-private", "ping-c1-cannot-reach-c2"): ("unsupported", "unsupported: backend cni lacks flag"),
            ("flag-vepa", "c1-addresses"): (
                "unsupported",
                "unsupported: kernel 4.14.0 lacks flag (Linux 4.15: ipvlan's private and vepa flags arrived)",
            ),
        }
    )
    report = yaml.safe_load(publish.render(publish.build(data, "2026-12-01T17:00:00Z")))
    assert report["kind"] == "IpvlanConformanceReport" and report["result"] == "failure"
    assert report["implementation"] == {
        "column": "cni",
        "driver": "CNI ipvlan plugin",
        "package": "containernetworking-plugins 1.1.1",
    }
    assert report["suite"]["commit"] == "abc1234" and report["kernel"] == "6.1.0-57-amd64"
    assert report["statistics"] == {"passed": 2, "failed": 1, "unsupported": 3, "skipped": 0}
    sections = report["sections"]
    assert sum(c["failed"] for c in sections.values()) == 1 and sum(c["unsupported"] for c in sections.values()) == 3
    assert report["features"]["unsupported"] == ["flag", "vlan-create"]
    assert report["features"]["unsupportedByKernel"] == ["flag"]
    assert "l3s" in report["features"]["supported"] and "flag" not in report["features"]["supported"]
    assert report["reproduce"] == "cd /src && python -m pytest conformance --backend=cni"


def test_a_passing_run_is_a_success() -> None:
    report = publish.build(_data({("db_net", "c1-addresses"): ("pass", "")}), "2026-12-01T17:00:00Z")
    assert report["result"] == "success"


def test_diff_lists_the_cells_that_changed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    for where, outcomes in (
        (old, {"c1-routes-v4": "fail", "c1-addresses": "pass", "c2-addresses": "pass", "gone": "pass", "x": "skipped"}),
        (
            new,
            {
                "c1-routes-v4": "pass",
                "c1-addresses": "pass",
                "c2-addresses": "error",
                "new": "pass",
                "x": "unsupported",
            },
        ),
    ):
        where.mkdir()
        data = _data({("db_net", b): (o, "") for b, o in outcomes.items()})
        (where / "conformance.json").write_text(json.dumps(data))
    assert matrix.diff(old, new) == [
        f"{'fixed':<10} {'cni':<32} {'db_net-c1-routes-v4':<60} FAIL -> pass",
        f"{'regressed':<10} {'cni':<32} {'db_net-c2-addresses':<60} pass -> ERROR",
        f"{'removed':<10} {'cni':<32} {'db_net-gone':<60} pass -> -",
        f"{'added':<10} {'cni':<32} {'db_net-new':<60} - -> pass",
        f"{'changed':<10} {'cni':<32} {'db_net-x':<60} skipped -> unsupported",
    ]
    assert matrix.diff(old, old) == []
    assert matrix.main(["--diff", str(old), str(new)]) == 1, "a change is exit status 1"
    assert "5 cells changed, 1 added, 1 changed, 1 fixed, 1 regressed, 1 removed" in capsys.readouterr().out
    assert matrix.main(["--diff", str(old), str(old)]) == 0, "nothing changed is exit status 0"
    assert matrix.main(["--diff", str(old)]) == 2


def test_diff_reads_matrix_json_files(tmp_path: Path) -> None:
    def write(name: str, native: str) -> Path:
        path = tmp_path / name
        cells = [{"example": "db_net", "behaviour": "c1-addresses", "doc": "", "errata": [], "native": native}]
        path.write_text(json.dumps({"backends": [{"backend": "native"}], "cells": cells, "errata": []}))
        return path

    assert matrix.diff(write("old.json", "pass"), write("new.json", "fail")) == [
        f"{'regressed':<10} {'native':<32} {'db_net-c1-addresses':<60} pass -> FAIL"
    ]


def test_a_run_report_as_markdown_has_a_reproduce_block() -> None:
    data = _data(
        {
            ("db_net", "c1-addresses"): ("pass", ""),
            ("ipvlan20", "parent-lifecycle"): ("unsupported", "unsupported: backend cni lacks vlan-create"),
        }
    )
    for r in data["results"]:  # type: ignore[attr-defined]
        r["nodeid"] = f"conformance/test_{'addresses' if r['behaviour'] == 'c1-addresses' else 'lifecycle'}.py::t"
    data["meta"]["suite_version"] = "0.1.0"  # type: ignore[index]
    report = publish.build(data, "2026-12-01T17:00:00Z")
    assert report["suite"] == {"version": "0.1.0", "commit": "abc1234", "python": "3.11.7"}
    assert report["behaviourFamilies"] == {
        "addresses": {"passed": 1, "failed": 0, "unsupported": 0, "skipped": 0},
        "lifecycle": {"passed": 0, "failed": 0, "unsupported": 1, "skipped": 0},
    }
    page = publish.markdown(report)
    assert page.startswith("# ipvlan conformance report: cni\n")
    assert "- **package**: containernetworking-plugins 1.1.1" in page
    assert "- **suite**: ipvlan-conformance 0.1.0, commit abc1234" in page
    assert "- **date**: 2026-12-01T17:00:00Z" in page and "- **kernel**: 6.1.0-57-amd64" in page
    assert "| lifecycle | 0 | 0 | 1 | 0 |" in page
    assert "- **unsupported**: vlan-create" in page
    assert page.endswith("## Reproduce\n\n```\ncd /src && python -m pytest conformance --backend=cni\n```\n")


def test_a_run_directory_gets_its_report_yaml(tmp_path: Path) -> None:
    """report.write, as pytest calls it at the end of a run (no tests ran here: the counts are zero)."""
    from conformance import report

    class Config:
        stash = pytest.Stash()
        invocation_params = pytest.Config.InvocationParams(
            args=("conformance", "--backend=native"), plugins=None, dir=tmp_path
        )
        pluginmanager = type("PM", (), {"get_plugin": staticmethod(lambda name: None)})()

        @staticmethod
        def getoption(name: str) -> object:
            return {"--backend": "native", "--docker-driver": None}[name]

    report.write(tmp_path / "run", Config())  # type: ignore[arg-type]
    data = json.loads((tmp_path / "run" / "conformance.json").read_text())
    assert data["meta"]["command"] == f"cd {tmp_path} && python -m pytest conformance --backend=native"
    published = yaml.safe_load((tmp_path / "run" / "report.yaml").read_text())
    assert published["implementation"]["column"] == "native" and published["statistics"]["passed"] == 0
    assert (tmp_path / "run" / "conformance.html").exists()
    assert (tmp_path / "run" / "conformance-report.md").read_text().startswith("# ipvlan conformance report: native")


def test_the_conformance_report_records_seconds_per_phase(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
import json, time
from conformance import report

def pytest_configure(config):
    config.stash[report.STARTED] = time.monotonic()
    config.pluginmanager.register(report.PhaseRecorder(config), "phases")

def pytest_sessionfinish(session):
    out = {"totals": report.phase_totals(session.config), "tests": session.config.stash[report.PHASES]}
    open("phases.json", "w").write(json.dumps(out))
"""
    )
    pytester.makepyfile(
        """
import time, pytest

@pytest.fixture
def topology():
    time.sleep(0.05)

def test_one(topology):
    pass
"""
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    data = json.loads((pytester.path / "phases.json").read_text())
    [(nodeid, phases)] = data["tests"].items()
    assert nodeid.endswith("::test_one")
    assert set(phases) == {"setup", "call", "teardown"}
    assert phases["setup"] >= 0.05 and data["totals"]["setup_s"] >= 0.05  # the fixture's sleep is set-up time
    assert data["totals"]["wall_s"] >= data["totals"]["setup_s"]
