"""The suite's own normal forms, on netlink messages as the kernel sends them (bytes built here, decoded
by pyroute2), and agreement with the forms the fixtures were written against."""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from conformance import checks, observe
from conformance.observe import address_from_msg, link_from_msg, listed_route, route_from_msg

RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24


def nla(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def u16(value: int) -> bytes:
    return struct.pack("=H", value)


def u32(value: int) -> bytes:
    return struct.pack("=I", value)


def text(value: str) -> bytes:
    return value.encode() + b"\0"


def message(cls: Any, msg_type: int, header: bytes, *attrs: bytes) -> Any:
    body = header + b"".join(attrs)
    raw = struct.pack("=IHHII", 16 + len(body), msg_type, 0, 0, 0) + body
    msg = cls(raw)
    msg.decode()
    return msg


def link_msg(index: int, flags: int, name: str, *attrs: bytes) -> Any:
    # ifinfomsg: family, pad, type, index, flags, change
    header = struct.pack("=BxHiII", 0, 1, index, flags, 0)
    return message(ifinfmsg, RTM_NEWLINK, header, nla(3, text(name)), *attrs)  # IFLA_IFNAME


def linkinfo(kind: str, *data: bytes) -> bytes:
    inner = nla(1, text(kind)) + (nla(2, b"".join(data)) if data else b"")  # IFLA_INFO_KIND, IFLA_INFO_DATA
    return nla(18, inner)  # IFLA_LINKINFO


MAC = nla(1, bytes.fromhex("02420a000002"))  # IFLA_ADDRESS
PARENT = nla(5, u32(7))  # IFLA_LINK


def test_an_ipvlan_link_reads_mode_and_flag_from_the_wire() -> None:
    # IFLA_IPVLAN_FLAGS (2) is read from the bytes: pyroute2 0.9.7 by itself does not decode it
    msg = link_msg(
        12, 0x1043 | observe.IFF_NOARP, "eth0", MAC, PARENT, linkinfo("ipvlan", nla(1, u16(1)), nla(2, u16(1)))
    )
    link = link_from_msg(msg)
    assert link == observe.Link(
        index=12,
        name="eth0",
        kind="ipvlan",
        parent_index=7,
        mac="02:42:0a:00:00:02",
        flags=0x1043 | observe.IFF_NOARP,
        ipvlan_mode="l3",
        ipvlan_flag="private",
    )
    assert link.up and link.noarp


@pytest.mark.parametrize(
    ("data", "mode", "flag"),
    [
        ((nla(1, u16(0)),), "l2", "bridge"),  # no flags attribute: the kernel's default
        ((nla(1, u16(2)), nla(2, u16(0))), "l3s", "bridge"),
        ((nla(1, u16(0)), nla(2, u16(2))), "l2", "vepa"),
        ((nla(1, u16(9)), nla(2, u16(3))), None, None),  # numbers the suite does not know are not guessed
    ],
)
def test_ipvlan_modes_and_flags(data: tuple[bytes, ...], mode: str | None, flag: str | None) -> None:
    link = link_from_msg(link_msg(3, 0, "iv0", linkinfo("ipvlan", *data)))
    assert (link.ipvlan_mode, link.ipvlan_flag) == (mode, flag)


def test_a_vlan_link_and_a_plain_one() -> None:
    vlan = link_from_msg(link_msg(4, 0x1003, "eth0.20", MAC, PARENT, linkinfo("vlan", nla(1, u16(20)))))
    assert (vlan.kind, vlan.vlan_id, vlan.parent_index, vlan.ipvlan_mode) == ("vlan", 20, 7, None)
    lo = link_from_msg(link_msg(1, 0x8, "lo"))
    assert (lo.kind, lo.vlan_id, lo.parent_index, lo.up, lo.noarp) == (None, None, None, False, False)


def addr_msg(family: int, prefixlen: int, flags: int, scope: int, index: int, *attrs: bytes) -> Any:
    header = struct.pack("=BBBBI", family, prefixlen, flags, scope, index)
    return message(ifaddrmsg, RTM_NEWADDR, header, *attrs)


def test_addresses_normal_form_and_nodad() -> None:
    v4 = addr_msg(
        socket.AF_INET,
        24,
        0,
        0,
        5,
        nla(1, socket.inet_aton("192.168.1.250")),  # IFA_ADDRESS
        nla(2, socket.inet_aton("192.168.1.250")),  # IFA_LOCAL
    )
    assert (address_from_msg(v4).normal, address_from_msg(v4).nodad, address_from_msg(v4).index) == (
        "192.168.1.250/24",
        False,
        5,
    )
    # IFA_FLAGS is authoritative: here it says nodad while the header's 8-bit copy says nothing
    v6 = addr_msg(
        socket.AF_INET6,
        64,
        0,
        0,
        5,
        nla(1, socket.inet_pton(socket.AF_INET6, "2001:db8:abc8::10")),
        nla(8, u32(observe.IFA_F_NODAD | 0x100)),  # IFA_FLAGS, with a bit above the header's byte
    )
    seen = address_from_msg(v6)
    assert (seen.normal, seen.nodad, seen.flags) == ("2001:db8:abc8::10/64", True, 0x102)


def test_a_point_to_point_address_is_the_local_one() -> None:
    ptp = addr_msg(
        socket.AF_INET,
        32,
        0,
        0,
        2,
        nla(1, socket.inet_aton("10.0.0.2")),  # IFA_ADDRESS: the peer
        nla(2, socket.inet_aton("10.0.0.1")),  # IFA_LOCAL: ours, what `ip addr` shows
    )
    assert address_from_msg(ptp).normal == "10.0.0.1/32"


def route_msg(family: int, dst_len: int, table: int, rtype: int, *attrs: bytes) -> Any:
    # rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
    header = struct.pack("=BBBBBBBBI", family, dst_len, 0, 0, table, 4, 0, rtype, 0)
    return message(rtmsg, RTM_NEWROUTE, header, *attrs)


def v4(addr: str) -> bytes:
    return socket.inet_aton(addr)


def v6(addr: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, addr)


ROUTES = [
    # (message, normal form) in the fixtures' notation
    (route_msg(socket.AF_INET, 0, 254, 1, nla(5, v4("192.168.1.1")), nla(4, u32(2))), "default via 192.168.1.1"),
    (route_msg(socket.AF_INET, 24, 254, 1, nla(1, v4("192.168.1.0")), nla(4, u32(2))), "192.168.1.0/24"),
    (
        route_msg(socket.AF_INET, 16, 254, 1, nla(1, v4("10.1.0.0")), nla(5, v4("192.168.1.250"))),
        "10.1.0.0/16 via 192.168.1.250",
    ),
    (route_msg(socket.AF_INET6, 0, 254, 1, nla(5, v6("2001:db8:abc8::1"))), "default via 2001:db8:abc8::1"),
    (route_msg(socket.AF_INET6, 64, 254, 1, nla(1, v6("2001:db8:abc8::"))), "2001:db8:abc8::/64"),
]


@pytest.mark.parametrize(("msg", "normal"), ROUTES, ids=[n for _, n in ROUTES])
def test_routes_normal_form(msg: Any, normal: str) -> None:
    route = route_from_msg(msg)
    assert route.normal == normal
    assert listed_route(route)


def test_the_normal_form_is_the_one_the_fixtures_were_written_against() -> None:
    # the reference driver's RouteInfo.normalized produced the strings in fixtures/; the suite's own
    # form must agree on every kind of route the fixtures list (the test may read both: it is not the suite)
    from ipvlan_driver.netlink import RouteInfo

    for msg, _ in ROUTES:
        ours = route_from_msg(msg)
        theirs = RouteInfo(ours.dst.version, ours.dst, ours.gateway, ours.oif, 0)
        assert ours.normal == theirs.normalized()


def test_only_main_table_unicast_routes_are_listed() -> None:
    local = route_msg(socket.AF_INET, 32, 255, 2, nla(1, v4("127.0.0.1")))  # table local, RTN_LOCAL
    assert not listed_route(route_from_msg(local))
    # a table above 255 comes as RTA_TABLE, the header saying RT_TABLE_COMPAT (252)
    other = route_msg(socket.AF_INET, 24, 252, 1, nla(1, v4("10.9.0.0")), nla(15, u32(1000)))
    assert route_from_msg(other).table == 1000 and not listed_route(route_from_msg(other))
    main = route_msg(socket.AF_INET, 24, 252, 1, nla(1, v4("10.9.0.0")), nla(15, u32(254)))
    assert listed_route(route_from_msg(main))


def test_checks_routes_leaves_out_link_local_and_multicast(monkeypatch: pytest.MonkeyPatch) -> None:
    listed = [
        route_from_msg(m)
        for m in (
            route_msg(socket.AF_INET6, 64, 254, 1, nla(1, v6("fe80::"))),
            route_msg(socket.AF_INET6, 8, 254, 1, nla(1, v6("ff00::"))),
            route_msg(socket.AF_INET6, 64, 254, 1, nla(1, v6("2001:db8::"))),
            route_msg(socket.AF_INET6, 0, 254, 1, nla(5, v6("2001:db8::1"))),
        )
    ]

    class Canned:
        def __init__(self, netns: str | None) -> None:
            self.netns = netns

        def __enter__(self) -> Canned:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def routes(self, version: int) -> list[observe.Route]:
            assert (self.netns, version) == ("c1", 6)
            return listed

    monkeypatch.setattr(checks, "Observer", Canned)
    assert checks.routes("c1", 6) == ["2001:db8::/64", "default via 2001:db8::1"]
