"""Merge per-backend runs into one implementation report: rows example/behaviour, columns backends.

`python -m conformance.matrix reports/native reports/cli reports/plugin --out reports` reads each
directory's conformance.json and writes matrix.html, matrix.json and prints a terminal table.
"""

from __future__ import annotations

import argparse
import html
import json
from pathlib import Path
from typing import Any

SYMBOL = {"pass": "pass", "fail": "FAIL", "error": "ERROR", "unsupported": "unsupported", "skipped": "skipped"}
COLOR = {"pass": "#c8f7c5", "fail": "#f7c5c5", "error": "#f7c5c5", "unsupported": "#f7eec5", "skipped": "#e0e0e0"}


def load(directories: list[Path]) -> tuple[list[dict[str, Any]], dict[tuple[str, str], dict[str, str]], list[Any]]:
    columns: list[dict[str, Any]] = []
    cells: dict[tuple[str, str], dict[str, str]] = {}
    errata: list[Any] = []
    for directory in directories:
        data = json.loads((directory / "conformance.json").read_text())
        meta = data["meta"]
        columns.append(meta)
        errata = data.get("errata", errata)
        for row in data["results"]:
            cells.setdefault((row["example"], row["behaviour"]), {})[meta["backend"]] = row["outcome"]
    return columns, cells, errata


def render(columns: list[dict[str, Any]], cells: dict[tuple[str, str], dict[str, str]], errata: list[Any]) -> str:
    names = [c["backend"] for c in columns]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    for (example, behaviour), by_backend in sorted(cells.items()):
        outcomes = [by_backend.get(n, "") for n in names]
        tds = "".join(f"<td style='background:{COLOR.get(o, '#fff')}'>{SYMBOL.get(o, '-')}</td>" for o in outcomes)
        rows.append(f"<tr><td>{html.escape(example)}</td><td>{html.escape(behaviour)}</td>{tds}</tr>")
    versions = "".join(
        f"<li><b>{html.escape(c['backend'])}</b>: kernel {html.escape(c.get('kernel', '?'))}"
        + "".join(f", {html.escape(k)} {html.escape(v)}" for k, v in (c.get("driver") or {}).items())
        + "</li>"
        for c in columns
    )
    err = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(str(e.get(k, '')))}</td>" for k in ("example", "id", "doc", "says", "intended"))
        + "</tr>"
        for e in errata
    )
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
        "td,th{border:1px solid #999;padding:3px 8px;font-size:13px;text-align:left}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>ipvlan implementation report</title>"
        f"<style>{style}</style></head><body><h1>ipvlan implementation report</h1><ul>{versions}</ul>"
        f"<table><tr><th>example</th><th>behaviour</th>{head}</tr>{''.join(rows)}</table>"
        f"<h2>Documentation errata</h2><table><tr><th>example</th><th>erratum</th><th>doc line</th>"
        f"<th>the doc says</th><th>intended</th></tr>{err}</table></body></html>\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="directories holding a conformance.json each")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    columns, cells, errata = load(args.runs)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "matrix.html").write_text(render(columns, cells, errata))
    payload = {
        "backends": columns,
        "cells": [{"example": e, "behaviour": b, **v} for (e, b), v in sorted(cells.items())],
    }
    (args.out / "matrix.json").write_text(json.dumps(payload, indent=1))
    names = [c["backend"] for c in columns]
    print(f"{'outcome':<14}" + "".join(f"{n:>14}" for n in names))
    for outcome in SYMBOL:
        counts = [sum(1 for v in cells.values() if v.get(n) == outcome) for n in names]
        print(f"{outcome:<14}" + "".join(f"{c:>14}" for c in counts))
    deviations = [(e, b, v) for (e, b), v in sorted(cells.items()) if any(o in ("fail", "error") for o in v.values())]
    for example, behaviour, v in deviations:
        bad = ", ".join(n for n in names if v.get(n) in ("fail", "error"))
        print(f"  deviates: {example}-{behaviour} ({bad})")
    print(f"wrote {args.out / 'matrix.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
