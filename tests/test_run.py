"""`ipvlan-conformance`: one run's reports land in REPORTS/<column>/, and the matrix covers every column kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import run


def _fake_run(column: str, outcome: str) -> object:
    def main(args: list[str], plugins: list[run.Reproduce]) -> int:
        out = Path(next(a for a in args if a.startswith("--report-dir=")).partition("=")[2])
        out.mkdir(parents=True)
        result = {"example": "db_net", "behaviour": "c1-addresses", "outcome": outcome, "detail": "", "doc": ""}
        meta = {"backend": column, "kernel": "6.1.0-test", "driver": {}, "command": plugins[0].command}
        (out / "conformance.json").write_text(json.dumps({"meta": meta, "results": [result], "errata": []}))
        return 1 if outcome == "fail" else 0

    return main


def test_each_run_keeps_its_column_and_the_matrix_has_them_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run.pytest, "main", _fake_run("native", "pass"))
    assert run.main(["--reports", str(tmp_path), "--backend=native"]) == 0
    monkeypatch.setattr(run.pytest, "main", _fake_run("docker-26.1:ipvlan-conformance", "fail"))
    assert run.main(["--reports", str(tmp_path), "--backend=docker"]) == 1, "pytest's status is the command's"
    assert (tmp_path / "native" / "conformance.json").exists()
    assert (tmp_path / "docker-26.1-ipvlan-conformance" / "conformance.json").exists()
    assert not (tmp_path / run.RUNNING).exists()
    kept = json.loads((tmp_path / "native" / "conformance.json").read_text())
    assert kept["meta"]["command"].endswith(f"&& ipvlan-conformance --reports {tmp_path} --backend=native")
    cells = json.loads((tmp_path / "matrix.json").read_text())["cells"]
    assert cells[0]["native"] == "pass" and cells[0]["docker-26.1:ipvlan-conformance"] == "fail"


def test_the_pytest_command_line_is_the_installed_suite_with_reports(tmp_path: Path) -> None:
    args = run.pytest_args(tmp_path, ["--backend=cni", "-k", "ipvlan20"])
    assert args[:2] == ["--pyargs", "conformance"]
    assert f"--report-dir={tmp_path / run.RUNNING}" in args and f"--junitxml={tmp_path / run.RUNNING}/junit.xml" in args
    assert args[-3:] == ["--backend=cni", "-k", "ipvlan20"]


def test_a_run_that_wrote_nothing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run.pytest, "main", lambda args, plugins: 4)
    assert run.main(["--reports", str(tmp_path)]) == 4


def test_the_report_reproduces_the_command_not_its_pytest_expansion(tmp_path: Path) -> None:
    from conformance import report

    class Config:
        stash = pytest.Stash()
        invocation_params = pytest.Config.InvocationParams(
            args=("--pyargs", "conformance", "--report-dir=x/.running"), plugins=None, dir=tmp_path
        )
        pluginmanager = type("PM", (), {"get_plugin": staticmethod(lambda name: None)})()

        @staticmethod
        def getoption(name: str) -> object:
            return {"--backend": "cni", "--docker-driver": None}[name]

    run.Reproduce("cd /x && ipvlan-conformance --backend=cni").pytest_configure(Config())  # type: ignore[arg-type]
    report.write(tmp_path / "run", Config())  # type: ignore[arg-type]
    published = (tmp_path / "run" / "conformance-report.md").read_text()
    assert "```\ncd /x && ipvlan-conformance --backend=cni\n```" in published
