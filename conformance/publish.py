"""One run's report to publish and compare, in the style of Gateway API's conformance reports: the
implementation and its versions, the kernel, counts per documented section, the features it supports
and lacks, and the exact command that reproduces it. Written beside conformance.json as report.yaml."""

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
    examples = load_examples()
    for r in results:
        example = examples.get(r["example"])
        section = example.section if example else r["example"]
        counts = sections.setdefault(section, {"passed": 0, "failed": 0, "unsupported": 0, "skipped": 0})
        key = {"pass": "passed", "fail": "failed", "error": "failed"}.get(r["outcome"], r["outcome"])
        counts[key] = counts.get(key, 0) + 1
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
        "suite": {"commit": str(meta.get("suite", "")), "python": str(meta.get("python", ""))},
        "result": "failure" if failed else "success",
        "statistics": {
            "passed": sum(1 for r in results if r["outcome"] == "pass"),
            "failed": failed,
            "unsupported": sum(1 for r in results if r["outcome"] == "unsupported"),
            "skipped": sum(1 for r in results if r["outcome"] == "skipped"),
        },
        "sections": dict(sorted(sections.items())),
        "features": {
            "supported": exercised,  # required by examples whose tests ran here
            "unsupported": missing.get("backend", []),
            "unsupportedByKernel": missing.get("kernel", []),
        },
        "reproduce": str(meta.get("command", "")),
    }


def render(report: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(report), sort_keys=False, allow_unicode=True, width=120)
