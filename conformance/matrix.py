"""Merge per-backend runs into one implementation report: rows example/behaviour, columns backends.

`python -m conformance.matrix reports/native reports/plugin reports/docker --out reports` reads each
directory's conformance.json and writes matrix.html, matrix.json, implementation-report.md (the page to
publish: deviations with their doc lines) and prints a terminal table. A cell is
pass / FAIL / ERROR / unsupported / skipped; a row whose test encodes a documentation erratum (the
intended reading where the docs contradict themselves) carries the erratum's id, and its cells say so.
`python -m conformance.matrix --diff OLD NEW` lists the cells that changed between two runs (matrix.json
files or run directories): added, removed, regressed (pass -> FAIL), fixed, changed; it exits 1 when any
did, 0 when none.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import causes as causes_data
from . import statements as statements_data

SYMBOL = {"pass": "pass", "fail": "FAIL", "error": "ERROR", "unsupported": "unsupported", "skipped": "skipped"}
OUTPUTS = {
    "backend": ("matrix.html", "matrix.json", "implementation-report.md"),
    "kernel": ("kernels.html", "kernels.json", "kernels.md"),
}
COLOR = {"pass": "#c8f7c5", "fail": "#f7c5c5", "error": "#f7c5c5", "unsupported": "#f7eec5", "skipped": "#e0e0e0"}


@dataclass
class MatrixRow:
    example: str
    behaviour: str
    outcomes: dict[str, str] = field(default_factory=dict)  # column -> outcome
    errata: list[str] = field(default_factory=list)
    doc: str = ""
    details: dict[str, str] = field(default_factory=dict)  # column -> why it failed or is unsupported

    def cell(self, column: str) -> str:
        outcome = self.outcomes.get(column, "")
        text = SYMBOL.get(outcome, "-")
        return f"{text} (erratum)" if self.errata and outcome else text


@dataclass
class Matrix:
    columns: list[dict[str, Any]]
    rows: list[MatrixRow]
    errata: list[dict[str, Any]]

    @property
    def names(self) -> list[str]:
        return [str(c["backend"]) for c in self.columns]

    def counts(self, outcome: str) -> list[int]:
        """How many rows have `outcome`, per column."""
        return [sum(1 for r in self.rows if r.outcomes.get(n) == outcome) for n in self.names]

    def outcomes(self, column: str) -> dict[str, str]:
        """test id (`<example>-<behaviour>`) -> outcome, for one column."""
        return {f"{r.example}-{r.behaviour}": r.outcomes[column] for r in self.rows if column in r.outcomes}

    def deviations(self) -> list[MatrixRow]:
        """Rows where some column fails or errors."""
        return [r for r in self.rows if any(o in ("fail", "error") for o in r.outcomes.values())]


def load(directories: list[Path], by: str = "backend") -> Matrix:
    """One column per directory, named by its run's `by`: the backend (or engine), or the kernel release."""
    columns: list[dict[str, Any]] = []
    rows: dict[tuple[str, str], MatrixRow] = {}
    errata: list[dict[str, Any]] = []
    for directory in directories:
        path = directory / "conformance.json"
        if not path.exists():  # a column whose run broke before writing: the others still make a report
            print(f"matrix: no {path}, column left out")
            continue
        data = json.loads(path.read_text())
        meta = data["meta"]
        if by != "backend":  # the kernel matrix: one backend, a column per kernel
            meta = {**meta, "backend": str(meta.get(by, "?")), "suite backend": meta["backend"]}
        columns.append(meta)
        errata = data.get("errata", errata)
        for result in data["results"]:
            key = (result["example"], result["behaviour"])
            row = rows.setdefault(key, MatrixRow(*key))
            row.outcomes[meta["backend"]] = result["outcome"]
            row.errata = list(result.get("errata") or row.errata)
            row.doc = str(result.get("doc") or row.doc)
            if result.get("detail"):
                row.details[meta["backend"]] = str(result["detail"])
    return Matrix(columns, [rows[k] for k in sorted(rows)], errata)


def _versions(column: dict[str, Any]) -> str:
    return f"<li><b>{html.escape(str(column['backend']))}</b>: {html.escape(', '.join(_parts(column)))}</li>"


def render(matrix: Matrix, statements: list[statements_data.Statement] | None = None) -> str:
    head = "".join(f"<th>{html.escape(n)}</th>" for n in matrix.names)
    rows = []
    for row in matrix.rows:
        tds = "".join(
            f"<td style='background:{COLOR.get(row.outcomes.get(n, ''), '#fff')}' "
            f"title='{html.escape(row.details.get(n, ''), quote=True)}'>{html.escape(row.cell(n))}</td>"
            for n in matrix.names
        )
        rows.append(
            f"<tr><td>{html.escape(row.example)}</td><td>{html.escape(row.behaviour)}</td>"
            f"<td>{html.escape(row.doc)}</td><td>{html.escape(', '.join(row.errata))}</td>{tds}</tr>"
        )
    err = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(str(e.get(k, '')))}</td>" for k in ("example", "id", "doc", "says", "intended"))
        + "</tr>"
        for e in matrix.errata
    )
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
        "td,th{border:1px solid #999;padding:3px 8px;font-size:13px;text-align:left}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>ipvlan implementation report</title>"
        f"<style>{style}</style></head><body><h1>ipvlan implementation report</h1>"
        f"<ul>{''.join(_versions(c) for c in matrix.columns)}</ul>"
        "<p>Cells: pass, FAIL (the driver deviates from the docs), unsupported (the backend declares it lacks "
        "the behaviour), skipped. “(erratum)”: the docs contradict themselves there and the test encodes the "
        "intended reading named in the erratum column (see the table at the end).</p>"
        f"<table><tr><th>example</th><th>behaviour</th><th>doc</th><th>erratum</th>{head}</tr>{''.join(rows)}</table>"
        f"<h2>Documentation errata</h2><table><tr><th>example</th><th>erratum</th><th>doc line</th>"
        f"<th>the doc says</th><th>intended</th></tr>{err}</table>"
        f"{_coverage_html(matrix, statements_data.load() if statements is None else statements)}</body></html>\n"
    )


VERDICT_COLOR = {"pass": "#c8f7c5", "fail": "#f7c5c5", "unsupported": "#f7eec5", "partial": "#e3f7c5"}


def _coverage_html(matrix: Matrix, statements: list[statements_data.Statement]) -> str:
    if not statements:
        return ""
    c = statements_data.coverage(statements, [f"{r.example}-{r.behaviour}" for r in matrix.rows])
    outcomes = {n: matrix.outcomes(n) for n in matrix.names}
    rows = []
    for s in statements:
        if s.tests:
            verdicts = [statements_data.verdict(s, outcomes[n]) for n in matrix.names]
            tds = "".join(
                f"<td style='background:{VERDICT_COLOR.get(v, '#fff')}'>{html.escape(VERDICT.get(v, '-'))}</td>"
                for v in verdicts
            )
        else:
            label, why = ("not tested yet", s.untested) if s.untested else ("untestable", s.untestable)
            tds = f"<td colspan='{len(matrix.names)}' title='{html.escape(why, quote=True)}'>{label}</td>"
        rows.append(
            f"<tr><td>{html.escape(s.ref)}</td><td>{html.escape(s.level)}</td><td>{html.escape(s.quote)}</td>{tds}</tr>"
        )
    head = "".join(f"<th>{html.escape(n)}</th>" for n in matrix.names)
    return (
        f"<h2>Statement coverage</h2><p>{c.found} statements, {c.testable} testable, {c.covered} covered "
        f"({c.percent:.0f}%).</p><table><tr><th>statement</th><th>level</th><th>quote</th>{head}</tr>"
        f"{''.join(rows)}</table>"
    )


def to_json(matrix: Matrix) -> dict[str, Any]:
    return {
        "backends": matrix.columns,
        "cells": [
            {"example": r.example, "behaviour": r.behaviour, "doc": r.doc, "errata": r.errata, **r.outcomes}
            for r in matrix.rows
        ],
        "errata": matrix.errata,
    }


def table(matrix: Matrix) -> list[str]:
    """The terminal summary: outcome counts per column, then every deviating row."""
    names = matrix.names
    width = max([14, *(len(n) + 2 for n in names)])
    lines = [f"{'outcome':<14}" + "".join(f"{n:>{width}}" for n in names)]
    for outcome in SYMBOL:
        lines.append(f"{outcome:<14}" + "".join(f"{c:>{width}}" for c in matrix.counts(outcome)))
    with_errata = [sum(1 for r in matrix.rows if r.errata and n in r.outcomes) for n in names]
    lines.append(f"{'(erratum)':<14}" + "".join(f"{c:>{width}}" for c in with_errata))
    for row in matrix.deviations():
        bad = [n for n in names if row.outcomes.get(n) in ("fail", "error")]
        lines.append(f"  deviates: {row.example}-{row.behaviour} ({', '.join(bad)}) [{row.doc}]")
    return lines


def markdown(
    matrix: Matrix,
    causes: list[causes_data.Cause] | None = None,
    by: str = "backend",
    statements: list[statements_data.Statement] | None = None,
) -> str:
    """The report as a page to publish: versions, counts per column, and every deviation with its doc line."""
    names = matrix.names
    title, tool = (
        ("ipvlan kernel matrix", "ci/kernel-matrix")
        if by == "kernel"
        else ("ipvlan implementation report", "ci/conformance")
    )
    out = [f"# {title}", "", f"Generated by `{tool}` (`python -m conformance.matrix`).", ""]
    out += [f"- **{c['backend']}**: " + ", ".join(_parts(c)) for c in matrix.columns]
    out += ["", "| outcome | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for outcome in SYMBOL:
        out.append(f"| {outcome} | " + " | ".join(map(str, matrix.counts(outcome))) + " |")
    deviations = matrix.deviations()
    out += ["", f"## Deviations from the docs ({len(deviations)} behaviours)", ""]
    out += ["| example-behaviour | doc | erratum | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
    for r in deviations:
        cells = [r.cell(n) for n in names]
        out.append(f"| {r.example}-{r.behaviour} | {r.doc} | {', '.join(r.errata)} | " + " | ".join(cells) + " |")
    out += ["", "## Why each failed (first line of the assertion)", ""]
    for r in deviations:
        for n in names:
            if r.outcomes.get(n) in ("fail", "error"):
                why = r.details.get(n, "").replace("|", "\\|")
                out.append(f"- `{r.example}-{r.behaviour}` on **{n}**: {why}")
    if not all(ours(c) for c in matrix.columns):
        out += engines(matrix, causes_data.load() if causes is None else causes)
    out += coverage_section(matrix, statements_data.load() if statements is None else statements)
    return "\n".join(out) + "\n"


VERDICT = {"pass": "pass", "fail": "FAIL", "unsupported": "unsupported", "partial": "partial", "skipped": "skipped"}


def coverage_section(matrix: Matrix, statements: list[statements_data.Statement]) -> list[str]:
    """Statement coverage: how much of the pages the suite checks, and each statement's verdict per column."""
    if not statements:
        return []
    ids = [f"{r.example}-{r.behaviour}" for r in matrix.rows]
    c = statements_data.coverage(statements, ids)
    names = matrix.names
    verdicts = {n: [statements_data.verdict(s, matrix.outcomes(n)) for s in statements] for n in names}
    out = ["", "## Statement coverage", ""]
    out.append(
        f"{c.found} statements (the two pages and what they take for granted, fixtures/statements/): "
        f"{c.testable} testable, {c.covered} "
        f"covered by tests ({c.percent:.0f}%; 'not tested yet': testable, no test yet; the untestable ones "
        "say why). A statement passes "
        "in a column when every test tied to it passed there; partial: passed where its tests ran, some "
        "unsupported."
    )
    out += ["", "| verdict | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key, label in VERDICT.items():
        out.append(f"| {label} | " + " | ".join(str(verdicts[n].count(key)) for n in names) + " |")
    out += ["", "| statement | level | quote | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
    for i, s in enumerate(statements):
        quote = s.quote.replace("|", "\\|")
        if s.tests:
            cells = [VERDICT.get(verdicts[n][i], "-") for n in names]
        else:
            cells = ["not tested yet" if s.untested else "untestable"] * len(names)
        out.append(f"| {s.ref} | {s.level} | {quote} | " + " | ".join(cells) + " |")
    return out


def ours(column: dict[str, Any]) -> bool:
    """A column of this project's own driver (native, plugin, our plugin under Docker)."""
    return str((column.get("driver") or {}).get("driver", "")).startswith("ipvlan-conformance")


def engines(matrix: Matrix, causes: list[causes_data.Cause]) -> list[str]:
    """Per third-party column, its deviations grouped by cause (fixtures/engines/causes.yaml)."""
    out = ["", "## Engines: why each deviates", ""]
    out.append(
        "Causes come from fixtures/engines/causes.yaml (the engine's code, release notes, measurements); a "
        "deviation none explains is a suite bug until shown otherwise."
    )
    for column in matrix.columns:
        name = str(column["backend"])
        if ours(column):
            continue
        bad = [r for r in matrix.rows if r.outcomes.get(name) in ("fail", "error")]
        out += ["", f"### {name}: {len(bad)} deviations", ""]
        groups: dict[str, list[MatrixRow]] = {}
        found: dict[str, causes_data.Cause] = {}
        for row in bad:
            cause = causes_data.explain(causes, name, f"{row.example}-{row.behaviour}")
            key = cause.id if cause else ""
            groups.setdefault(key, []).append(row)
            if cause:
                found[cause.id] = cause
        for key, rows in sorted(groups.items(), key=lambda kv: (kv[0] == "", kv[0])):
            ids = ", ".join(f"`{r.example}-{r.behaviour}`" for r in rows)
            if key:
                c = found[key]
                out.append(f"- **{key}** ({len(rows)}): {c.cause} *Evidence*: {c.evidence} Behaviours: {ids}")
            else:
                out.append(f"- **unexplained** ({len(rows)}): {ids}")
    return out


def _parts(column: dict[str, Any]) -> list[str]:
    driver = {k: v for k, v in (column.get("driver") or {}).items() if k != "column"}  # the column's name already
    backend = [f"backend {column['suite backend']}"] if "suite backend" in column else []
    suite = [f"suite {column['suite']}"] if column.get("suite") else []  # the commit that judged
    return [f"kernel {column.get('kernel', '?')}", *backend] + [f"{k} {v}" for k, v in driver.items()] + suite


def cells(path: Path) -> dict[tuple[str, str], str]:
    """(test id, column) -> outcome, from a matrix.json or from a run directory's conformance.json."""
    if path.is_dir():
        path = path / "conformance.json"
    data = json.loads(path.read_text())
    if "cells" in data:
        names = [str(b["backend"]) for b in data["backends"]]
        return {(f"{c['example']}-{c['behaviour']}", n): str(c[n]) for c in data["cells"] for n in names if n in c}
    column = str(data["meta"]["backend"])
    return {(f"{r['example']}-{r['behaviour']}", column): str(r["outcome"]) for r in data["results"]}


def change(was: str, now: str) -> str:
    """What a cell's change is: added / removed (only one run has it), regressed / fixed, or changed."""
    bad = ("fail", "error")
    if was == "-":
        return "added"
    if now == "-":
        return "removed"
    if was == "pass" and now in bad:
        return "regressed"
    if was in bad and now == "pass":
        return "fixed"
    return "changed"


def diff(old: Path, new: Path) -> list[str]:
    """The cells that changed between two runs: outcome changes, and cells only one of them has."""
    before, after = cells(old), cells(new)
    out = []
    for key in sorted(set(before) | set(after)):
        was, now = before.get(key, "-"), after.get(key, "-")
        if was != now:
            test_id, column = key
            out.append(
                f"{change(was, now):<10} {column:<32} {test_id:<60} {SYMBOL.get(was, was)} -> {SYMBOL.get(now, now)}"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["--diff"]:
        if len(args_in) != 3:
            print("usage: python -m conformance.matrix --diff OLD NEW (matrix.json files or run directories)")
            return 2
        changed = diff(Path(args_in[1]), Path(args_in[2]))
        print("\n".join(changed) if changed else "no cell changed")
        kinds = [line.split()[0] for line in changed]
        print(f"{len(changed)} cells changed" + "".join(f", {kinds.count(k)} {k}" for k in sorted(set(kinds))))
        return 1 if changed else 0  # as diff(1): 0 the same, 1 something changed, 2 trouble
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="directories holding a conformance.json each")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--by", choices=("backend", "kernel"), default="backend", help="what names a column (kernel: ci/kernel-matrix)"
    )
    args = parser.parse_args(args_in)
    matrix = load(args.runs, args.by)
    if not matrix.columns:
        print("matrix: no run wrote a conformance.json")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    html_name, json_name, md_name = OUTPUTS[args.by]
    (args.out / html_name).write_text(render(matrix))
    (args.out / json_name).write_text(json.dumps(to_json(matrix), indent=1))
    (args.out / md_name).write_text(markdown(matrix, by=args.by))
    print("\n".join(table(matrix)))
    print(f"wrote {args.out / html_name}, {json_name}, {md_name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
