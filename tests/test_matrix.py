"""The implementation report merges per-backend runs: every cell, the versions, the errata marks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import matrix
from conformance.report import failure_line


def _run(
    directory: Path,
    backend: str,
    results: list[tuple[str, str, str]],
    driver: dict[str, str],
    kernel: str = "6.1.0-test",
) -> Path:
    directory.mkdir(parents=True)
    rows = [
        {
            "example": e,
            "behaviour": b,
            "outcome": o,
            "errata": ["ipnet210-route-subnet"] if b == "c1-routes-v4" else [],
            "doc": f"{e}.md:1",
            "detail": "AssertionError: boom" if o == "fail" else "",
        }
        for e, b, o in results
    ]
    meta = {"backend": backend, "kernel": kernel, "driver": driver}
    (directory / "conformance.json").write_text(json.dumps({"meta": meta, "results": rows, "errata": []}))
    return directory


def test_matrix_has_a_cell_per_row_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ours = _run(
        tmp_path / "native",
        "native",
        [("ipnet210", "c1-routes-v4", "pass"), ("db_net", "parent-lifecycle", "pass")],
        {"driver": "ipvlan-conformance 0.1.0"},
    )
    docker = _run(
        tmp_path / "docker",
        "docker",
        [("ipnet210", "c1-routes-v4", "fail"), ("l3s", "c1-addresses", "unsupported")],
        {"driver": "built-in ipvlan", "docker": "20.10.24"},
    )
    assert matrix.main([str(ours), str(docker), str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out" / "matrix.json").read_text())
    cells = {(c["example"], c["behaviour"]): c for c in data["cells"]}
    assert cells[("ipnet210", "c1-routes-v4")] == {
        "example": "ipnet210",
        "behaviour": "c1-routes-v4",
        "doc": "ipnet210.md:1",
        "errata": ["ipnet210-route-subnet"],
        "native": "pass",
        "docker": "fail",
    }
    assert "native" not in cells[("l3s", "c1-addresses")]
    page = (tmp_path / "out" / "matrix.html").read_text()
    assert "FAIL (erratum)" in page and "docker 20.10.24" in page and "unsupported" in page
    report = (tmp_path / "out" / "implementation-report.md").read_text()
    assert (
        "| ipnet210-c1-routes-v4 | ipnet210.md:1 | ipnet210-route-subnet | pass (erratum) | FAIL (erratum) |" in report
    )
    assert "- `ipnet210-c1-routes-v4` on **docker**: AssertionError: boom" in report
    printed = capsys.readouterr().out
    assert "title='AssertionError: boom'" in page
    assert "deviates: ipnet210-c1-routes-v4 (docker) [ipnet210.md:1]" in printed and "column left out" in printed


def test_kernel_matrix_has_a_column_per_kernel(tmp_path: Path) -> None:
    ours = {"driver": "ipvlan-conformance 0.1.0"}
    runs = [
        _run(
            tmp_path / "5.10",
            "native",
            [("l3s", "c1-addresses", "pass"), ("db_net", "c1-routes", "fail")],
            ours,
            "5.10.0-32-amd64",
        ),
        _run(
            tmp_path / "6.12",
            "native",
            [("l3s", "c1-addresses", "pass"), ("db_net", "c1-routes", "pass")],
            ours,
            "6.12.95+deb12-amd64",
        ),
    ]
    assert matrix.main([*map(str, runs), "--by", "kernel", "--out", str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out" / "kernels.json").read_text())
    assert [c["backend"] for c in data["backends"]] == ["5.10.0-32-amd64", "6.12.95+deb12-amd64"]
    cells = {(c["example"], c["behaviour"]): c for c in data["cells"]}
    assert cells[("db_net", "c1-routes")]["5.10.0-32-amd64"] == "fail"
    page = (tmp_path / "out" / "kernels.md").read_text()
    assert page.startswith("# ipvlan kernel matrix") and "ci/kernel-matrix" in page
    assert "- **5.10.0-32-amd64**: kernel 5.10.0-32-amd64, backend native, driver ipvlan-conformance 0.1.0" in page
    assert "Engines: why" not in page  # only our driver ran: nothing third-party to explain
    assert not (tmp_path / "out" / "matrix.json").exists()


def test_matrix_without_any_run_is_an_error(tmp_path: Path) -> None:
    assert matrix.main([str(tmp_path / "none"), "--out", str(tmp_path / "out")]) == 1


def test_failure_detail_is_the_assertion_message() -> None:
    text = (
        "    def test_x():\n>       assert seen == expected, msg\n"
        "E       AssertionError: c1 eth0: expected ['a'], saw ['b']\nE       assert ['b'] == ['a']\n\n"
        "conformance/test_addresses.py:23: AssertionError"
    )
    assert failure_line(text) == "AssertionError: c1 eth0: expected ['a'], saw ['b']"
    assert failure_line("conformance/test_ping.py:47: Failed") == "conformance/test_ping.py:47: Failed"
    assert failure_line("") == ""


def test_engines_section_groups_deviations_by_cause(tmp_path: Path) -> None:
    from conformance.causes import Cause

    ours = _run(
        tmp_path / "plugin",
        "plugin",
        [("db_net", "second-network-on-parent-refused", "fail")],
        {"driver": "ipvlan-conformance 0.1.0"},
    )
    theirs = _run(
        tmp_path / "docker-26.1",
        "docker-26.1",
        [
            ("db_net", "second-network-on-parent-refused", "fail"),
            ("ipvlan20", "second-network-on-parent-refused", "fail"),
            ("l3s", "c1-routes-v4", "fail"),
            ("l3s", "c2-routes-v4", "pass"),
        ],
        {"driver": "built-in ipvlan", "docker": "26.1.5"},
    )
    causes = [
        Cause("dummy-name", ("docker-*",), ("*-second-network-on-parent-refused",), "names di-<id>.", "moby."),
        Cause("cni-only", ("cni",), ("l3s-*",), "not docker.", "none."),
    ]
    page = matrix.markdown(matrix.load([ours, theirs]), causes)
    section = page[page.index("## Engines") :]
    assert "### plugin" not in section, "our own columns are judged, not explained"
    assert "### docker-26.1: 3 deviations" in section
    assert "**dummy-name** (2): names di-<id>." in section
    assert "`db_net-second-network-on-parent-refused`, `ipvlan20-second-network-on-parent-refused`" in section
    assert "**unexplained** (1): `l3s-c1-routes-v4`" in section, "a cause for another column does not apply"


def test_causes_file_is_well_formed() -> None:
    from conformance import causes

    found = causes.load()
    assert found, "fixtures/engines/causes.yaml lists the known causes"
    for cause in found:
        assert cause.cause.strip() and cause.evidence.strip(), f"{cause.id}: a cause says why, with evidence"


def test_a_cause_missing_a_field_is_refused(tmp_path: Path) -> None:
    from conformance import causes

    bad = tmp_path / "causes.yaml"
    bad.write_text("causes:\n  - {id: x, columns: [cni], behaviours: ['*'], cause: y}\n")
    with pytest.raises(ValueError, match="exactly the fields"):
        causes.load(bad)


def test_a_report_names_the_suite_commit_that_judged(tmp_path: Path) -> None:
    from conformance.report import SUITE_ROOT, suite_commit

    assert suite_commit(tmp_path) == ""  # not a git checkout (an installed suite): nothing is claimed
    if (SUITE_ROOT / ".git").exists():
        assert suite_commit().split("-")[0].isalnum()
    run = _run(tmp_path / "native", "native", [("db_net", "c1-addresses", "pass")], {"driver": "ours"})
    data = json.loads((run / "conformance.json").read_text())
    data["meta"]["suite"] = "abc1234"
    (run / "conformance.json").write_text(json.dumps(data))
    assert "suite abc1234" in matrix.markdown(matrix.load([run]), causes=[], statements=[])


def test_an_installed_suite_claims_no_commit_of_the_repository_around_it(tmp_path: Path) -> None:
    import subprocess

    from conformance.report import suite_commit

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(tmp_path),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    site = tmp_path / "venv" / "lib" / "site-packages"
    site.mkdir(parents=True)
    assert suite_commit(tmp_path) != "", "the checkout itself names its commit"
    assert suite_commit(site) == "", "site-packages inside someone's repository is not that repository's suite"
