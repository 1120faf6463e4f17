"""What a run says: allure labels, a terminal table, and a self-contained HTML + JSON report."""

from __future__ import annotations

import datetime
import html
import json
import platform
import shlex
import subprocess
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from . import publish
from .cases import Case
from .examples import load_examples

DRIVER: pytest.StashKey[dict[str, str]] = pytest.StashKey()  # the backend's versions, for the report
COMMAND: pytest.StashKey[str] = pytest.StashKey()  # set by a wrapper (ipvlan-conformance): the command to show
# seconds per test id and phase (setup holds a topology's deployment, call the assertions), and the run's start
PHASES: pytest.StashKey[dict[str, dict[str, float]]] = pytest.StashKey()
STARTED: pytest.StashKey[float] = pytest.StashKey()


def column(config: pytest.Config) -> str:
    """The report's name for this run: the backend's own (`docker-26.1`: the engine that ran), else the
    backend, and the Docker driver when it is not the built-in one."""
    named = config.stash.get(DRIVER, {}).get("column")
    if named:
        return named
    backend = str(config.getoption("--backend"))
    driver = config.getoption("--docker-driver")
    return f"{backend}:{driver}" if driver and driver != "ipvlan" else backend


@dataclass(frozen=True)
class Row:
    example: str
    behaviour: str
    outcome: str  # pass | fail | unsupported | skipped | error
    detail: str
    nodeid: str
    errata: tuple[str, ...] = ()  # the test encodes these errata's intended reading, not the doc's text
    doc: str = ""  # the example's place in the docs, file:line
    seconds: dict[str, float] = field(default_factory=dict)  # per phase: setup, call, teardown


def record_phase(config: pytest.Config, nodeid: str, when: str, seconds: float) -> None:
    """One phase of one test (under xdist the controller sees every worker's reports)."""
    config.stash.setdefault(PHASES, {}).setdefault(nodeid, {})[when] = round(seconds, 6)


class PhaseRecorder:
    """A plugin object: pytest hands it every test report (a hook alone has no config to keep them in)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record_phase(self.config, report.nodeid, report.when, report.duration)


def phase_totals(config: pytest.Config) -> dict[str, float]:
    """Seconds in topology set-up (the setup phases), assertions (call) and teardown, and the run's wall time."""
    times = config.stash.get(PHASES, {})
    totals = {
        f"{when}_s": round(sum(t.get(when, 0.0) for t in times.values()), 3) for when in ("setup", "call", "teardown")
    }
    started = config.stash.get(STARTED, None)
    if started is not None:
        totals["wall_s"] = round(time.monotonic() - started, 3)
    return totals


def label_allure(case: Case) -> None:
    try:
        import allure
    except ImportError:
        return
    dynamic: Any = allure.dynamic  # allure-pytest ships without annotations
    dynamic.feature(case.example.section or case.example.title)
    dynamic.story(case.example.id)
    dynamic.description(f"{case.example.title} — {case.example.doc}")
    commands = [s.command for s in case.example.networks] + [s.command for s in case.example.containers]
    for command in commands:
        with allure.step(command):
            pass


def _rows(config: pytest.Config) -> list[Row]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return []
    rows: dict[str, Row] = {}
    for key in ("passed", "failed", "skipped", "error"):
        for rep in reporter.stats.get(key, []):
            props = dict(getattr(rep, "user_properties", []) or [])
            if "example" not in props:
                continue
            if rep.when != "call" and not (rep.failed or rep.skipped):
                continue
            if rep.skipped:
                reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
                reason = reason.removeprefix("Skipped: ")
                outcome = "unsupported" if reason.startswith("unsupported") else "skipped"
                detail = reason
            elif rep.failed:
                outcome = "fail" if rep.when == "call" else "error"
                detail = failure_line(str(getattr(rep, "longreprtext", "") or rep.longrepr))
            else:
                outcome, detail = "pass", ""
            example = load_examples().get(props["example"])
            errata = tuple(example.errata_for(props["behaviour"])) if example else ()
            doc = str(example.doc) if example else ""
            seconds = config.stash.get(PHASES, {}).get(rep.nodeid, {})
            rows[rep.nodeid] = Row(
                props["example"], props["behaviour"], outcome, detail, rep.nodeid, errata, doc, dict(seconds)
            )
    return sorted(rows.values(), key=lambda r: (r.example, r.behaviour))


def failure_line(text: str) -> str:
    """The first line pytest marks `E` (the assertion's own message), else the report's last line."""
    for line in text.splitlines():
        if line.startswith("E "):
            return line[1:].strip()
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def _errata() -> list[dict[str, Any]]:
    out = []
    for ex in load_examples().values():
        for err in ex.errata:
            doc = err.get("doc") or {}
            out.append(
                {
                    "example": ex.id,
                    "id": err.get("id", ""),
                    "doc": f"{doc.get('file')}:{doc.get('line')}",
                    "says": err.get("says", ""),
                    "intended": err.get("intended", ""),
                    "behaviours": list(err.get("behaviours") or []),
                }
            )
    return out


def terminal_summary(tr: Any, config: pytest.Config) -> None:
    rows = _rows(config)
    if not rows:
        return
    tr.section("ipvlan conformance: examples x outcomes")
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        counts.setdefault(r.example, {}).setdefault(r.outcome, 0)
        counts[r.example][r.outcome] += 1
    kinds = ["pass", "fail", "error", "unsupported", "skipped"]
    tr.write_line(f"{'example':<18}" + "".join(f"{k:>12}" for k in kinds))
    for example, c in sorted(counts.items()):
        tr.write_line(f"{example:<18}" + "".join(f"{c.get(k, 0):>12}" for k in kinds))
    for r in rows:
        if r.outcome in ("fail", "error"):
            tr.write_line(f"  FAIL {r.example}-{r.behaviour}: {r.detail[:160]}")
    errata = _errata()
    tr.write_line(f"documentation errata encoded ({len(errata)}): see --report-dir output for the doc lines")


SUITE_ROOT = Path(__file__).resolve().parent.parent


def suite_commit(repo: Path = SUITE_ROOT) -> str:
    """The suite's commit (`git describe --always --dirty`), so a report says which suite judged; '' outside
    its own checkout (an installed suite sits in site-packages, perhaps inside someone else's repository)."""
    if not (repo / ".git").exists():
        return ""
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def suite_version() -> str:
    try:
        return metadata.version("ipvlan-conformance")
    except metadata.PackageNotFoundError:  # a checkout that was never installed
        return ""


def write(directory: Path, config: pytest.Config) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rows = _rows(config)
    backend = column(config)
    meta: dict[str, Any] = {"backend": backend, "kernel": platform.release(), "python": platform.python_version()}
    meta["driver"] = config.stash.get(DRIVER, {})
    meta["phases"] = phase_totals(config)
    commit = suite_commit()
    if commit:
        meta["suite"] = commit
    meta["suite_version"] = suite_version()
    invocation = config.invocation_params
    meta["command"] = config.stash.get(
        COMMAND, f"cd {shlex.quote(str(invocation.dir))} && python -m pytest {shlex.join(invocation.args)}"
    )
    payload = {"meta": meta, "results": [asdict(r) for r in rows], "errata": _errata()}
    emit(directory, payload, datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


COLORS = {"pass": "#c8f7c5", "fail": "#f7c5c5", "error": "#f7c5c5", "unsupported": "#f7eec5", "skipped": "#e0e0e0"}


def emit(directory: Path, payload: dict[str, Any], today: str) -> None:
    """One run's files from its data: conformance.json, report.yaml, conformance-report.md, conformance.html."""
    directory.mkdir(parents=True, exist_ok=True)
    meta, rows = payload["meta"], payload["results"]
    (directory / "conformance.json").write_text(json.dumps(payload, indent=1))
    published = publish.build(payload, today)
    (directory / "report.yaml").write_text(publish.render(published))
    (directory / "conformance-report.md").write_text(publish.markdown(published))
    outcomes = [r["outcome"] for r in rows]
    body = [
        f"<h1>ipvlan conformance — backend {html.escape(str(meta['backend']))}</h1>",
        f"<p>kernel {html.escape(str(meta['kernel']))}, Python {html.escape(str(meta.get('python', '')))}; "
        f"{outcomes.count('pass')} pass, {outcomes.count('fail') + outcomes.count('error')} "
        f"fail, {outcomes.count('unsupported')} unsupported</p>",
        "<table><tr><th>example</th><th>behaviour</th><th>outcome</th><th>erratum</th><th>detail</th></tr>",
    ]
    for r in rows:
        body.append(
            f"<tr style='background:{COLORS.get(r['outcome'], '#fff')}'><td>{html.escape(r['example'])}</td>"
            f"<td>{html.escape(r['behaviour'])}</td><td>{html.escape(r['outcome'])}</td>"
            f"<td>{html.escape(', '.join(r.get('errata') or []))}</td><td>{html.escape(r.get('detail', ''))}</td></tr>"
        )
    body.append(
        "</table><h2>Documentation errata (tests encode the intended behaviour)</h2>"
        "<table><tr><th>example</th><th>erratum</th><th>doc line</th><th>the doc says</th>"
        "<th>intended</th></tr>"
    )
    for e in payload.get("errata") or []:
        body.append(
            "<tr>"
            + "".join(f"<td>{html.escape(str(e[k]))}</td>" for k in ("example", "id", "doc", "says", "intended"))
            + "</tr>"
        )
    body.append("</table>")
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
        "td,th{border:1px solid #999;padding:3px 8px;font-size:13px;text-align:left}"
    )
    (directory / "conformance.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>ipvlan conformance</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
