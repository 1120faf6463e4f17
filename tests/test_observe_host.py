"""The suite's own netlink layer on this host's kernel: two namespaces joined by a veth pair, built with
`labnet.Lab` and read back with `observe.Observer` (veth and bridge links need no VM)."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

import pytest

import netnsutil
from conformance import checks
from conformance.labnet import Lab
from conformance.observe import KernelError, LinkMissing, Observer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")


@pytest.fixture
def pair() -> Iterator[tuple[str, str]]:
    a, b = f"or{os.getpid()}a", f"or{os.getpid()}b"
    made: list[str] = []
    try:
        for name in (a, b):
            netnsutil.create(name)
            made.append(name)
        yield a, b
    finally:
        for name in reversed(made):
            netnsutil.remove(name)


def _build(a: str, b: str) -> None:
    with Lab(a) as lab:
        lab.add_veth("eth0", "vtmp")
        lab.move_to_netns("vtmp", b, "p1")
        for link in ("lo", "eth0"):
            lab.set_up(link)
        lab.add_address("eth0", "192.168.1.250/24")
        lab.add_address("eth0", "2001:db8:abc8::10/64")
        lab.add_route("default", "eth0", "192.168.1.1")
        lab.add_route("10.1.0.0/16", "eth0", "192.168.1.9")
    with Lab(b) as lab:
        lab.add_bridge("br0")
        lab.set_master("p1", "br0")
        lab.set_hairpin("p1", True)
        for link in ("p1", "br0"):
            lab.set_up(link)
        lab.add_address("br0", "192.168.1.1/24")
        lab.set_sysctl("net.ipv4.ip_forward", "1")


def test_a_lab_built_and_read_back(pair: tuple[str, str]) -> None:
    a, b = pair
    _build(a, b)
    with Observer(a) as seen:
        eth0 = seen.require("eth0")
        assert (eth0.kind, eth0.up) == ("veth", True)
        assert {link.name for link in seen.links()} == {"lo", "eth0"}
        assert seen.link("p1") is None, "the peer was moved out"
        assert seen.sysctl("net.ipv4.ip_forward") == "0"
    with Observer(b) as seen:
        p1, br0 = seen.require("p1"), seen.require("br0")
        assert (p1.kind, br0.kind) == ("veth", "bridge")
        assert seen.link_by_index(br0.index) == br0
        assert seen.sysctl("net.ipv4.ip_forward") == "1", "the sysctl was written in the lab's namespace"
    assert checks.global_addresses(a) == {"192.168.1.250/24": False, "2001:db8:abc8::10/64": True}
    assert checks.routes(a, 4) == ["10.1.0.0/16 via 192.168.1.9", "192.168.1.0/24", "default via 192.168.1.1"]
    assert checks.routes(a, 6) == ["2001:db8:abc8::/64"]
    assert checks.routes(b, 4) == ["192.168.1.0/24"]


def test_the_oracle_and_the_driver_read_a_healthy_kernel_alike(pair: tuple[str, str]) -> None:
    # not a proof of independence (that is the import contract), but the two readings must agree
    from ipvlan_driver.netlink import Netlink

    a, b = pair
    _build(a, b)
    with Netlink(a) as nl:
        theirs = sorted(r.normalized() for r in nl.routes(4))
        their_links = {(link.name, link.kind, link.mac, link.flags) for link in nl.links()}
    with Observer(a) as seen:
        assert sorted(r.normal for r in seen.routes(4)) == theirs
        assert {(link.name, link.kind, link.mac, link.flags) for link in seen.links()} == their_links


def test_failures_name_what_and_where(pair: tuple[str, str]) -> None:
    a, _ = pair
    with Lab(a) as lab:
        with pytest.raises(LinkMissing, match=f"link 'nope' does not exist in namespace '{a}'"):
            lab.set_up("nope")
        lab.add_bridge("br0")
        with pytest.raises(KernelError, match=f"failed to create bridge 'br0' in namespace '{a}': file exists"):
            lab.add_bridge("br0")
        assert lab.delete_link("br0") and not lab.delete_link("br0"), "deleting what is gone is success"
    with pytest.raises(KernelError, match="namespace 'or-missing'"):
        Observer("or-missing")


def test_the_documented_lab_reads_the_same_through_both_layers() -> None:
    # the lab without 802.1Q (this host has none): built by labnet, read by the suite and by the driver
    from conformance.topology import build
    from ipvlan_driver.netlink import Netlink

    upstream = {"hairpin": True, "forwarding": True, "untagged": ["10.0.0.1/24"], "second_host": ["10.0.0.7/24"]}
    with build(f"or{os.getpid() % 10000}", upstream) as topo:
        for netns in (topo.host, topo.host2, topo.upstream, topo.remote):
            with Netlink(netns) as nl:
                routes = sorted(r.normalized() for r in nl.routes(4))
                links = sorted((link.name, link.kind, link.mac, link.flags, link.parent_index) for link in nl.links())
                addresses = sorted((str(a.interface), a.nodad, a.scope) for a in nl.addresses())
            with Observer(netns) as seen:
                assert sorted(r.normal for r in seen.routes(4)) == routes, netns
                assert sorted((x.name, x.kind, x.mac, x.flags, x.parent_index) for x in seen.links()) == links, netns
                assert sorted((a.normal, a.nodad, a.scope) for a in seen.addresses()) == addresses, netns
        assert checks.routes(topo.host2, 4) == ["10.0.0.0/24", "192.168.1.0/24", "default via 192.168.1.1"]
        with Observer(topo.upstream) as seen:
            assert (seen.sysctl("net.ipv4.ip_forward"), seen.sysctl("net.ipv4.conf.all.arp_ignore")) == ("1", "1")
    assert not [n for n in netnsutil.list_names() if n.startswith(topo.prefix + "-")], "the lab is torn down"


@pytest.mark.parametrize(("mode", "number"), [("private", 1), ("bridge", 4)])
def test_nested_attributes_are_read_from_a_real_dump(pair: tuple[str, str], mode: str, number: int) -> None:
    # the bytes reader behind ipvlan's mode and flag, on a link this host has: macvlan's IFLA_MACVLAN_MODE
    # (type 1, u32) inside a whole multi-message dump buffer
    from conformance.observe import nested_attrs

    a, _ = pair
    with Lab(a) as lab:
        lab.add_veth("v0", "v1")
        lab.add_bridge("br0")  # another link with IFLA_INFO_DATA in the same dump
        parent = lab.require("v0").index
        lab._ipr.link("add", ifname="mv0", kind="macvlan", link=parent, macvlan_mode=mode)
        dump = {m.get_attr("IFLA_IFNAME"): m for m in lab._ipr.link("dump")}
    data = dump["mv0"].get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
    assert nested_attrs(data)[1] == struct.pack("=I", number)
