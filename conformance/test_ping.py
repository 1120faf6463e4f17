"""The ping matrix each example documents: who reaches whom, and who must not."""

from __future__ import annotations

import ipaddress
import json

import pytest

from .cases import Case, params, ping_cases
from .checks import PingResult, ping_many
from .deploy import DeployError, Deployment


def _target(dep: Deployment, spec: dict[str, object]) -> str:
    to = str(spec["to"])
    try:
        return str(ipaddress.ip_address(to))
    except ValueError:
        return dep.address_of(to, int(spec.get("family", 4)))  # type: ignore[call-overload]


def _key(spec: dict[str, object]) -> str:
    return json.dumps(spec, sort_keys=True, default=str)


def _raw_pings(dep: Deployment) -> dict[str, PingResult | DeployError]:
    """The example's whole matrix of raw pings, probed at once on first use and kept with the deployment
    (its read-only tests change nothing a ping could see). A pair the suite cannot even aim (no such
    container, no address of that family) keeps its error: only that pair's test reports it."""
    if "pings" not in dep.observed:
        found: dict[str, PingResult | DeployError] = {}
        probes: dict[str, tuple[str, str, bool]] = {}
        for spec in dep.example.pings:
            if spec.get("by_name"):
                continue
            try:
                probes[_key(spec)] = (dep.container(str(spec["from"])).netns, _target(dep, spec), bool(spec["ok"]))
            except DeployError as exc:
                found[_key(spec)] = exc
        found.update(zip(probes, ping_many(list(probes.values())), strict=True))
        dep.observed["pings"] = found
    pings: dict[str, PingResult | DeployError] = dep.observed["pings"]
    return pings


def _raw_ping(dep: Deployment, spec: dict[str, object]) -> PingResult:
    got = _raw_pings(dep)[_key(spec)]
    if isinstance(got, DeployError):
        raise got
    return got


def _observe(dep: Deployment, spec: dict[str, object]) -> PingResult | str:
    src = dep.container(str(spec["from"]))
    if spec.get("by_name"):
        proc = dep.backend.exec(src.name, ["ping", "-c", "1", "-W", "3", str(spec["to"])])
        return f"`ping -c 1 {spec['to']}` in {src.name}: exit {proc.returncode} {proc.stderr.strip()[:200]}"
    return _raw_ping(dep, spec)


def _matrix(dep: Deployment) -> str:
    lines = []
    for spec in dep.example.pings:
        if not spec.get("by_name"):
            got = _raw_pings(dep)[_key(spec)]
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
