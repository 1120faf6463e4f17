"""One run's report to publish and compare, in the style of Gateway API's conformance reports: the
implementation and its versions, the kernel, counts per documented section, the features it supports
and lacks, and the exact command that reproduces it. Written beside conformance.json as report.yaml and,
for people, conformance-report.md."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from .examples import load_examples

KIND = "IpvlanConformanceReport"
API_VERSION = "ipvlan-conformance/v1"
_LACKS = re.compile(r"unsupported: (backend \S+|kernel \S+) lacks (.+)$")


def lacking(details: Iterable[str]) -> dict[str, list[str]]:
    """What the unsupported cells name as missing, by who lacks it: {'backend': [...], 'kernel': [...]}."""
    out: dict[str, set[str]] = {}
    for detail in details:
        found = _LACKS.match(detail)
        if not found:
            continue
        who = found.group(1).split()[0]
        for item in found.group(2).split(", "):
            out.setdefault(who, set()).add(item.split(" (")[0].strip())
    return {who: sorted(items) for who, items in sorted(out.items())}


def build(data: Mapping[str, Any], date: str) -> dict[str, Any]:
    """The report of one conformance.json (`meta`, `results`)."""
    meta, results = data["meta"], data["results"]
    sections: dict[str, dict[str, int]] = {}
    families: dict[str, dict[str, int]] = {}
    examples = load_examples()
    for r in results:
        example = examples.get(r["example"])
        _count(sections, example.section if example else r["example"], r["outcome"])
        _count(families, family(str(r.get("nodeid", ""))), r["outcome"])
    missing = lacking(str(r.get("detail", "")) for r in results if r["outcome"] == "unsupported")
    ran = {r["example"] for r in results if r["outcome"] in ("pass", "fail", "error")}
    exercised = sorted({cap for name in ran if name in examples for cap in examples[name].requires})
    failed = sum(1 for r in results if r["outcome"] in ("fail", "error"))
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "date": date,
        "implementation": {
            "column": str(meta.get("backend", "")),
            **{str(k): str(v) for k, v in (meta.get("driver") or {}).items() if k != "column"},
        },
        "kernel": str(meta.get("kernel", "")),
        "suite": {
            "version": str(meta.get("suite_version", "")),
            "commit": str(meta.get("suite", "")),
            "python": str(meta.get("python", "")),
        },
        "result": "failure" if failed else "success",
        "statistics": {
            "passed": sum(1 for r in results if r["outcome"] == "pass"),
            "failed": failed,
            "unsupported": sum(1 for r in results if r["outcome"] == "unsupported"),
            "skipped": sum(1 for r in results if r["outcome"] == "skipped"),
        },
        "sections": dict(sorted(sections.items())),
        "behaviourFamilies": dict(sorted(families.items())),  # per test module: addresses, routes, ping, ...
        "features": {
            "supported": exercised,  # required by examples whose tests ran here
            "unsupported": missing.get("backend", []),
            "unsupportedByKernel": missing.get("kernel", []),
        },
        "reproduce": str(meta.get("command", "")),
    }


def family(nodeid: str) -> str:
    """The behaviour family of a test: its module's name without `test_` (`test_routes.py::...` -> routes)."""
    module = nodeid.partition("::")[0].rsplit("/", 1)[-1]
    return module.removesuffix(".py").removeprefix("test_") or "?"


def _count(table: dict[str, dict[str, int]], key: str, outcome: str) -> None:
    counts = table.setdefault(key, {"passed": 0, "failed": 0, "unsupported": 0, "skipped": 0})
    name = {"pass": "passed", "fail": "failed", "error": "failed"}.get(outcome, outcome)
    counts[name] = counts.get(name, 0) + 1


def render(report: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(report), sort_keys=False, allow_unicode=True, width=120)


def markdown(report: Mapping[str, Any]) -> str:
    """The same report as a page to publish beside the YAML (conformance-report.md)."""
    impl = report["implementation"]
    suite = report["suite"]
    stats = report["statistics"]
    out = [f"# ipvlan conformance report: {impl.get('column', '?')}", ""]
    out += [f"- **{k}**: {v}" for k, v in impl.items() if k != "column"]
    out += [
        f"- **suite**: ipvlan-conformance {suite.get('version') or '?'}, commit {suite.get('commit') or 'unknown'}",
        f"- **kernel**: {report['kernel']}",
        f"- **date**: {report['date']}",
        f"- **result**: {report['result']} ({stats['passed']} passed, {stats['failed']} failed, "
        f"{stats['unsupported']} unsupported, {stats['skipped']} skipped)",
    ]
    for title, key in (("Documented section", "sections"), ("Behaviour family", "behaviourFamilies")):
        out += ["", f"| {title.lower()} | passed | failed | unsupported | skipped |", "|---|---:|---:|---:|---:|"]
        for name, c in report[key].items():
            out.append(f"| {name} | {c['passed']} | {c['failed']} | {c['unsupported']} | {c['skipped']} |")
    features = report["features"]
    out += ["", "## Features", ""]
    out.append("- **supported**: " + (", ".join(features["supported"]) or "none"))
    out.append("- **unsupported**: " + (", ".join(features["unsupported"]) or "none"))
    out.append("- **unsupported by the kernel**: " + (", ".join(features["unsupportedByKernel"]) or "none"))
    out += ["", "## Reproduce", "", "```", str(report["reproduce"]), "```"]
    return "\n".join(out) + "\n"
