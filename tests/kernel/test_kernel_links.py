"""Kernel smoke test: each link kind the driver builds can be made, and reads back over netlink as asked."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from pyroute2 import IPRoute, netns
from pyroute2.netlink import nla
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

pytestmark = [pytest.mark.kernel, pytest.mark.root]

IPVLAN_MODES = {"l2": 0, "l3": 1, "l3s": 2}  # IFLA_IPVLAN_MODE, u16
IPVLAN_FLAGS = {"bridge": 0, "private": 1, "vepa": 2}  # IFLA_IPVLAN_FLAGS, u16
ETH_P_8021Q = 0x8100
PARENT = "d0"
VLAN_LINK, VLAN_ID = "d0.20", 20


@dataclass(frozen=True)
class IpvlanSpec:
    mode: str
    flag: str

    @property
    def name(self) -> str:
        return f"iv-{self.mode}-{self.flag}"  # at most 14 characters


IPVLANS = [IpvlanSpec(mode, flag) for mode in IPVLAN_MODES for flag in IPVLAN_FLAGS]


class ipvlan_data(nla):  # type: ignore[misc]  # pyroute2 names nla classes so
    """The kernel's IFLA_INFO_DATA for ipvlan: pyroute2 0.9.7's own map stops at IFLA_IPVLAN_MODE."""

    prefix = "IFLA_"
    nla_map = (
        ("IFLA_IPVLAN_UNSPEC", "none"),
        ("IFLA_IPVLAN_MODE", "uint16"),
        ("IFLA_IPVLAN_FLAGS", "uint16"),
    )


@dataclass
class Namespace:
    """The test's own network namespace with the dummy parent d0 in it."""

    ipr: Any
    parent: int


@pytest.fixture(scope="module")
def ipvlan_nla() -> Iterator[None]:
    data_map = ifinfmsg.ifinfo.data_map
    original = data_map.get("ipvlan")
    ifinfmsg.ifinfo.register_link_kind(module={"ipvlan": ipvlan_data})
    try:
        yield
    finally:
        if original is not None:
            data_map["ipvlan"] = original


@pytest.fixture(scope="module")
def ns(ipvlan_nla: None) -> Iterator[Namespace]:
    name = f"kt{os.getpid()}-{secrets.token_hex(2)}"
    netns.create(name)
    try:
        with IPRoute(netns=name) as ipr:
            ipr.link("add", ifname=PARENT, kind="dummy")
            yield Namespace(ipr, parent=int(ipr.link_lookup(ifname=PARENT)[0]))
    finally:
        netns.remove(name)  # takes every link made in it along


@contextmanager
def link(ns: Namespace, ifname: str, **spec: Any) -> Iterator[Any]:
    """Make a link, yield it as the kernel reads it back, delete it."""
    try:
        ns.ipr.link("add", ifname=ifname, **spec)
    except NetlinkError as exc:
        pytest.fail(f"kernel refused {spec['kind']} link {ifname!r} {spec}: {exc}", pytrace=False)
    index = int(ns.ipr.link_lookup(ifname=ifname)[0])
    try:
        yield ns.ipr.link("get", index=index)[0]
    finally:
        try:
            ns.ipr.link("del", index=index)
        except NetlinkError as exc:
            pytest.fail(f"clean-up: deleting {spec['kind']} link {ifname!r} failed: {exc}", pytrace=False)


def ipvlan(ns: Namespace, ifname: str, mode: str, flag: str) -> AbstractContextManager[Any]:
    return link(
        ns, ifname, kind="ipvlan", link=ns.parent, ipvlan_mode=IPVLAN_MODES[mode], ipvlan_flags=IPVLAN_FLAGS[flag]
    )


def _info(msg: Any, *path: str) -> Any:
    return msg.get_nested("IFLA_LINKINFO", *path)


def _ipvlan_seen(msg: Any) -> dict[str, Any]:
    return {
        "kind": _info(msg, "IFLA_INFO_KIND"),
        "mode": _info(msg, "IFLA_INFO_DATA", "IFLA_IPVLAN_MODE"),
        "flags": _info(msg, "IFLA_INFO_DATA", "IFLA_IPVLAN_FLAGS"),
        "parent": msg.get("IFLA_LINK"),
    }


def test_dummy_parent(ns: Namespace) -> None:
    msg = ns.ipr.link("get", index=ns.parent)[0]
    assert (msg.get("IFLA_IFNAME"), _info(msg, "IFLA_INFO_KIND")) == (PARENT, "dummy")


@pytest.mark.parametrize("spec", [pytest.param(s, id=f"ipvlan-{s.mode}-{s.flag}") for s in IPVLANS])
def test_ipvlan_link_reads_back(ns: Namespace, spec: IpvlanSpec) -> None:
    with ipvlan(ns, spec.name, spec.mode, spec.flag) as msg:
        assert _ipvlan_seen(msg) == {
            "kind": "ipvlan",
            "mode": IPVLAN_MODES[spec.mode],
            "flags": IPVLAN_FLAGS[spec.flag],
            "parent": ns.parent,
        }


def test_mode_and_flag_belong_to_the_parent(ns: Namespace) -> None:
    """ipvlan keeps mode and flag per parent (its port): the last link made sets them for all its links.

    The reason one parent carries one ipvlan network (Docker: "network ... is already using parent interface").
    """
    with ipvlan(ns, "iv-first", "l2", "bridge"), ipvlan(ns, "iv-second", "l3", "private"):
        first = ns.ipr.link("get", index=ns.ipr.link_lookup(ifname="iv-first")[0])[0]
        assert _ipvlan_seen(first) == {
            "kind": "ipvlan",
            "mode": IPVLAN_MODES["l3"],
            "flags": IPVLAN_FLAGS["private"],
            "parent": ns.parent,
        }


def test_vlan_sub_interface_reads_back(ns: Namespace) -> None:
    with link(ns, VLAN_LINK, kind="vlan", link=ns.parent, vlan_id=VLAN_ID) as msg:
        seen = {
            "kind": _info(msg, "IFLA_INFO_KIND"),
            "vlan_id": _info(msg, "IFLA_INFO_DATA", "IFLA_VLAN_ID"),
            "protocol": _info(msg, "IFLA_INFO_DATA", "IFLA_VLAN_PROTOCOL"),
            "parent": msg.get("IFLA_LINK"),
        }
        assert seen == {"kind": "vlan", "vlan_id": VLAN_ID, "protocol": ETH_P_8021Q, "parent": ns.parent}
