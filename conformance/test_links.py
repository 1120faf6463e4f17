"""What the kernel holds for each container link: ipvlan, the documented mode and flag, its parent."""

from __future__ import annotations

from typing import Any

import pytest

from .cases import Case, example_cases, params
from .deploy import Deployment
from .examples import NetworkExpect
from .observe import Link, Observer


def _expect(case: Case) -> NetworkExpect:
    return case.example.networks[0].expect if case.example.networks else NetworkExpect()


def _eth0(dep: Deployment, name: str) -> Link:
    with Observer(dep.container(name).netns) as nl:
        return nl.require("eth0")


def _parent_of(dep: Deployment, link: Link) -> Link:
    with Observer(dep.topo.host) as nl:
        parent = nl.link_by_index(link.parent_index or 0)
    assert parent is not None, f"the container's eth0 (parent ifindex {link.parent_index}) has no parent on the host"
    return parent


def _has_containers(ex: Any) -> bool:
    return bool(ex.containers and ex.networks)


@pytest.mark.parametrize("case", params(example_cases("ipvlan-mode-and-flag", when=_has_containers)))
def test_mode_and_flag(case: Case, deployment: Deployment) -> None:
    expect = _expect(case)
    for name in deployment.attached:
        link = _eth0(deployment, name)
        assert link.kind == "ipvlan", f"{name}: eth0 is a {link.kind!r} link, not ipvlan"
        assert link.ipvlan_mode == expect.mode, f"{name}: ipvlan mode {link.ipvlan_mode}"
        assert link.ipvlan_flag == expect.flag, f"{name}: ipvlan flag {link.ipvlan_flag}"


@pytest.mark.parametrize(
    "case",
    params(
        example_cases(
            "l3-noarp",
            when=lambda ex: _has_containers(ex) and any(n.expect.mode in ("l3", "l3s") for n in ex.networks),
        )
    ),
)
def test_l3_noarp(case: Case, deployment: Deployment) -> None:
    """The docs: ARP/broadcast/multicast are all filtered in L3 mode (the interface shows NOARP)."""
    for name in deployment.attached:
        assert _eth0(deployment, name).noarp, f"{name}: eth0 lacks NOARP in {_expect(case).mode} mode"


@pytest.mark.parametrize("case", params(example_cases("parent-and-shared-mac", when=_has_containers)))
def test_parent_and_shared_mac(case: Case, deployment: Deployment) -> None:
    """Every container hangs off the documented parent and shares its MAC (one MAC per port)."""
    expect = _expect(case).parent
    for name in deployment.attached:
        link = _eth0(deployment, name)
        parent = _parent_of(deployment, link)
        if expect.name:
            assert parent.name == expect.name, f"{name}: parent is {parent.name!r}, not {expect.name!r}"
        kind = expect.kind
        if kind == "vlan":
            assert parent.kind == "vlan" and parent.vlan_id == expect.vlan_id, (
                f"{name}: parent {parent.name} is {parent.kind} vlan {parent.vlan_id}, documented vlan {expect.vlan_id}"
            )
        if kind == "dummy":
            assert parent.kind == "dummy", f"{name}: parent {parent.name} is {parent.kind!r}, not a dummy link"
        assert link.mac == parent.mac, f"{name}: eth0 MAC {link.mac} differs from its parent's {parent.mac}"
