"""Test cases generated from the examples: each has an id `<example>-<behaviour>` that reads like the docs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from .examples import Example, load_examples


@dataclass(frozen=True)
class Case:
    example: Example
    behaviour: str
    data: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def id(self) -> str:
        return f"{self.example.id}-{self.behaviour}"


def params(cases: Iterator[Case]) -> list[Any]:
    """pytest params with doc-like ids; each example's tests share an xdist group (one deployment)."""
    return [pytest.param(c, id=c.id, marks=pytest.mark.xdist_group(c.example.id)) for c in cases]


def deployment_rank(fixtures: Sequence[str]) -> int:
    """Order within an example: the tests reading its shared deployment, then the one taking it apart
    (`spent_deployment`), then those with labs of their own (a fresh lab closes the shared deployment, so
    a reader after it would deploy the example again)."""
    if "spent_deployment" in fixtures:
        return 1
    return 2 if "fresh_lab" in fixtures else 0


def _examples() -> list[Example]:
    return list(load_examples().values())


def address_cases() -> Iterator[Case]:
    for ex in _examples():
        for step in ex.containers:
            name, addresses = step.request.name, step.expect.addresses
            if addresses is not None:
                yield Case(ex, f"{name}-addresses", {"container": name, "expect": list(addresses)})
                v6 = [a for a in addresses if ":" in a]
                if v6:
                    yield Case(ex, f"{name}-ipv6-nodad", {"container": name, "expect": v6})


def route_cases() -> Iterator[Case]:
    for ex in _examples():
        for step in ex.containers:
            name = step.request.name
            for family in (4, 6):
                shown = step.expect.routes_for(family)
                if shown is not None:
                    data = {"container": name, "family": family, "expect": sorted(shown)}
                    yield Case(ex, f"{name}-routes-v{family}", data)


def ping_cases() -> Iterator[Case]:
    for ex in _examples():
        for ping in ex.pings:
            how = "by-name-" if ping.get("by_name") else ""
            fam = "-v6" if ping.get("family") == 6 else ""
            verdict = "reaches" if ping["ok"] else "cannot-reach"
            yield Case(ex, f"ping-{how}{ping['from']}-{verdict}-{ping['to']}{fam}", dict(ping))


def network_cases(behaviour: str) -> Iterator[Case]:
    for ex in _examples():
        for step in ex.networks:
            yield Case(ex, behaviour, {"network": step.request, "expect": step.expect})


def example_cases(behaviour: str, *, when: Any = None) -> Iterator[Case]:
    for ex in _examples():
        if when is None or when(ex):
            yield Case(ex, behaviour)


def refusal_cases() -> Iterator[Case]:
    for ex in _examples():
        for i, ref in enumerate(ex.refusals):
            yield Case(ex, f"refuses-{i + 1}", dict(ref))
