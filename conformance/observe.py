"""The suite's own eyes on the kernel: links, addresses, routes and sysctls read over netlink, and the
normal forms the fixtures compare against.

Deliberately independent of `ipvlan_driver` (an import-linter contract holds it to that): if the
driver's netlink wrapper misread a route, an oracle built on it would misread it the same way.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

import netnsutil

T = TypeVar("T")

# uapi constants, named as in the kernel headers
IFF_UP = 0x1
IFF_BROADCAST = 0x2
IFF_NOARP = 0x80
IFF_MULTICAST = 0x1000
IFF_LOWER_UP = 0x10000
IFA_F_NODAD = 0x02
RTN_UNICAST = 1
RT_TABLE_MAIN = 254
IFLA_IPVLAN_MODE = 1
IFLA_IPVLAN_FLAGS = 2
IPVLAN_MODES = {0: "l2", 1: "l3", 2: "l3s"}
# IPVLAN_F_PRIVATE = 1, IPVLAN_F_VEPA = 2; neither bit set is the default, bridge
IPVLAN_FLAGS = {0: "bridge", 1: "private", 2: "vepa"}

_RETRIES = 5


class KernelError(Exception):
    """A netlink request of the suite's own failed; the message names what, where and why."""


class LinkMissing(KernelError):
    """A link the suite looked for is not there."""


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str | None
    parent_index: int | None
    mac: str | None
    flags: int
    vlan_id: int | None = None
    ipvlan_mode: str | None = None
    ipvlan_flag: str | None = None
    mtu: int | None = None

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def noarp(self) -> bool:
        return bool(self.flags & IFF_NOARP)


@dataclass(frozen=True)
class Address:
    interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    index: int
    scope: int
    flags: int

    @property
    def nodad(self) -> bool:
        return bool(self.flags & IFA_F_NODAD)

    @property
    def normal(self) -> str:
        """`10.0.0.2/24`, `2001:db8::2/64`: address and prefix, as the fixtures write them."""
        return str(self.interface)


@dataclass(frozen=True)
class Route:
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network
    gateway: str | None
    oif: int | None
    table: int
    type: int

    @property
    def normal(self) -> str:
        """`default`, `default via 192.168.1.1`, `10.0.0.0/24`: what the fixtures list."""
        dst = "default" if self.dst.prefixlen == 0 else str(self.dst)
        return f"{dst} via {self.gateway}" if self.gateway else dst


# normal forms of single messages: pure, so they are unit-tested on canned pyroute2 messages ---------


def nested_attrs(nla: Any) -> dict[int, bytes]:
    """An nla's nested attributes as type -> payload, read from the wire bytes.

    pyroute2 0.9.7's ipvlan map lacks IFLA_IPVLAN_FLAGS and drops its value; reading the bytes
    ourselves means neither that gap nor anyone's patch of it decides what the suite sees.
    """
    buf = bytes(nla.data[nla.offset : nla.offset + nla.length])
    out: dict[int, bytes] = {}
    pos = 4  # past the enclosing attribute's own header
    while pos + 4 <= len(buf):
        length, kind = struct.unpack_from("=HH", buf, pos)
        if length < 4:
            break
        out[kind & 0x3FFF] = buf[pos + 4 : pos + length]  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER
        pos += (length + 3) & ~3
    return out


def _u16(raw: bytes | None) -> int | None:
    return struct.unpack("=H", raw[:2])[0] if raw is not None and len(raw) >= 2 else None


def link_from_msg(msg: Any) -> Link:
    info = msg.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    data = info.get_attr("IFLA_INFO_DATA") if info is not None else None
    vlan_id = mode = flag = None
    if kind == "vlan" and data is not None:
        vlan_id = data.get_attr("IFLA_VLAN_ID")
    if kind == "ipvlan" and data is not None:
        raw = nested_attrs(data)
        raw_mode = _u16(raw.get(IFLA_IPVLAN_MODE))
        mode = IPVLAN_MODES.get(raw_mode) if raw_mode is not None else None
        flag = IPVLAN_FLAGS.get(_u16(raw.get(IFLA_IPVLAN_FLAGS)) or 0)
    return Link(
        index=msg["index"],
        name=msg.get_attr("IFLA_IFNAME"),
        kind=kind,
        parent_index=msg.get_attr("IFLA_LINK"),
        mac=msg.get_attr("IFLA_ADDRESS"),
        flags=msg["flags"],
        vlan_id=vlan_id,
        ipvlan_mode=mode,
        ipvlan_flag=flag,
        mtu=msg.get_attr("IFLA_MTU"),
    )


def address_from_msg(msg: Any) -> Address:
    # IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on point-to-point links);
    # `ip addr` prints the local one, and IPv6 sends only IFA_ADDRESS
    local = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
    interface = ipaddress.ip_interface(f"{local}/{msg['prefixlen']}")
    # IFA_FLAGS carries all 32 bits; the header's byte is the old, truncated copy
    flags = msg.get_attr("IFA_FLAGS")
    return Address(interface, msg["index"], msg["scope"], msg["flags"] if flags is None else flags)


def route_from_msg(msg: Any) -> Route:
    family = msg["family"]
    base = msg.get_attr("RTA_DST") or ("0.0.0.0" if family == socket.AF_INET else "::")
    dst = ipaddress.ip_network(f"{base}/{msg['dst_len']}", strict=False)
    table = msg.get_attr("RTA_TABLE")
    return Route(
        dst=dst,
        gateway=msg.get_attr("RTA_GATEWAY"),
        oif=msg.get_attr("RTA_OIF"),
        table=msg["table"] if table is None else table,
        type=msg["type"],
    )


def listed_route(route: Route) -> bool:
    """What `ip route` / `ip -6 route` print: unicast routes of the main table."""
    return route.table == RT_TABLE_MAIN and route.type == RTN_UNICAST


# the socket ---------------------------------------------------------------------------------------


def _cause(exc: NetlinkError) -> str:
    return os.strerror(exc.code).lower() if exc.code else str(exc)


class Observer:
    """One netlink socket opened inside namespace `netns` (None: the caller's) and reused for every read.

    The socket is opened by this thread after a setns and keeps that namespace whatever the thread
    does next; no helper process is forked (pyroute2's `netns=` would fork one per socket).
    """

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        try:
            with netnsutil.entered(netns):
                self._ipr: Any = IPRoute()
        except netnsutil.NetnsError as exc:
            raise KernelError(f"cannot open netlink in namespace {netns!r}: {exc}") from exc

    def close(self) -> None:
        self._ipr.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _where(self) -> str:
        return f" in namespace {self.netns!r}" if self.netns else ""

    def _request(self, what: str, fn: Callable[[], T]) -> T:
        # a dump that races a change comes back EINTR (NLM_F_DUMP_INTR) or EBUSY: ask again
        for attempt in range(_RETRIES):
            try:
                return fn()
            except NetlinkError as exc:
                if exc.code in (errno.EINTR, errno.EBUSY) and attempt + 1 < _RETRIES:
                    time.sleep(0.01 * (attempt + 1))
                    continue
                raise KernelError(f"failed to {what}{self._where()}: {_cause(exc)}") from exc
        raise AssertionError("unreachable")

    def _get_link(self, what: str, **key: Any) -> Link | None:
        try:
            return link_from_msg(self._ipr.link("get", **key)[0])
        except NetlinkError as exc:
            if exc.code in (errno.ENODEV, errno.ENOENT):
                return None
            raise KernelError(f"failed to look up {what}{self._where()}: {_cause(exc)}") from exc

    # reads ----------------------------------------------------------------------------------------

    def link(self, name: str) -> Link | None:
        return self._get_link(f"link {name!r}", ifname=name)

    def link_by_index(self, index: int) -> Link | None:
        return self._get_link(f"link #{index}", index=index)

    def require(self, name: str) -> Link:
        found = self.link(name)
        if found is None:
            raise LinkMissing(f"link {name!r} does not exist{self._where()}")
        return found

    def links(self) -> list[Link]:
        return [link_from_msg(m) for m in self._request("dump links", lambda: self._ipr.link("dump"))]

    def addresses(self, ifname: str | None = None) -> list[Address]:
        index = None if ifname is None else self.require(ifname).index
        msgs = self._request("dump addresses", lambda: self._ipr.addr("dump"))
        found = [address_from_msg(m) for m in msgs]
        return [a for a in found if index is None or a.index == index]

    def routes(self, version: int) -> list[Route]:
        """The routes `ip -<version> route` prints (main table, unicast)."""
        family = socket.AF_INET if version == 4 else socket.AF_INET6
        msgs = self._request("dump routes", lambda: self._ipr.route("dump", family=family))
        return [r for r in map(route_from_msg, msgs) if listed_route(r)]

    def sysctl(self, key: str) -> str:
        """Read a /proc/sys entry as this namespace sees it (`net.ipv4.ip_forward`)."""

        def read() -> str:
            # /proc/sys/net answers for the namespace of the thread that opens it
            with open(sysctl_path(key)) as fh:
                return fh.read().strip()

        return netnsutil.run_in(self.netns, read)


def sysctl_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")
