"""Reports people publish and compare: one report.yaml per run, and the cells that changed between runs."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_diff_lists_the_cells_that_changed(tmp_path: Path, capsys: object) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    for where, outcome in ((old, "fail"), (new, "pass")):
        where.mkdir()
        data = _data({("db_net", "c1-routes-v4"): (outcome, ""), ("db_net", "c1-addresses"): ("pass", "")})
        (where / "conformance.json").write_text(json.dumps(data))
    assert matrix.diff(old, new) == [f"{'cni':<32} {'db_net-c1-routes-v4':<60} FAIL -> pass"]
    assert matrix.diff(old, old) == []
    assert matrix.main(["--diff", str(old), str(new)]) == 0
    assert matrix.main(["--diff", str(old)]) == 2


def test_a_run_directory_gets_its_report_yaml(tmp_path: Path) -> None:
    """report.write, as pytest calls it at the end of a run (no tests ran here: the counts are zero)."""
    import pytest

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
