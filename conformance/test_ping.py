"""The ping matrix each example documents: who reaches whom, and who must not."""

from __future__ import annotations

import ipaddress

import pytest

from .cases import Case, params, ping_cases
from .checks import PingResult, ping
from .deploy import Deployment


def _target(dep: Deployment, spec: dict[str, object]) -> str:
    to = str(spec["to"])
    try:
        return str(ipaddress.ip_address(to))
    except ValueError:
        return dep.address_of(to, int(spec.get("family", 4)))  # type: ignore[call-overload]


def _observe(dep: Deployment, spec: dict[str, object]) -> PingResult | str:
    src = dep.container(str(spec["from"]))
    if spec.get("by_name"):
        proc = dep.backend.exec(src.name, ["ping", "-c", "1", "-W", "3", str(spec["to"])])
        return f"`ping -c 1 {spec['to']}` in {src.name}: exit {proc.returncode} {proc.stderr.strip()[:200]}"
    return ping(src.netns, _target(dep, spec), expect_reply=bool(spec["ok"]))


def _matrix(dep: Deployment) -> str:
    lines = []
    for spec in dep.example.pings:
        if spec.get("by_name"):
            continue
        got = ping(dep.container(str(spec["from"])).netns, _target(dep, spec), expect_reply=bool(spec["ok"]))
        lines.append(f"  {got} (documented: {'ok' if spec['ok'] else 'fails'})")
    return "\n".join(lines)


@pytest.mark.parametrize("case", params(ping_cases()))
def test_ping(case: Case, deployment: Deployment) -> None:
    spec = case.data
    got = _observe(deployment, spec)
    ok = got.ok if isinstance(got, PingResult) else ": exit 0 " in got
    if ok != bool(spec["ok"]):
        expectation = "should reach" if spec["ok"] else "must NOT reach"
        pytest.fail(
            f"{spec['from']} {expectation} {spec['to']} ({spec.get('why', '')}); saw: {got}\n"
            f"whole matrix of {case.example.id}:\n{_matrix(deployment)}"
        )
