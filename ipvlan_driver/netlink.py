"""The one module that talks netlink: typed link, address and route operations over pyroute2.

Every kernel request the driver makes goes through `Netlink`; kernel errors come back as
`NetlinkFailure` naming the verb, the object and the cause.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ifinfmsg.plugins.ipvlan import ipvlan as _ipvlan_nla

from . import netns as ns
from .errors import NetlinkFailure, NotFoundError
from .model import FLAGS, MODES, Flag, IPInterface, IPNetwork, Mode

# pyroute2 0.9.7 knows only IFLA_IPVLAN_MODE; the kernel has had IFLA_IPVLAN_FLAGS since 4.15.
# nla maps compile on first use, so extending it before any request is enough.
_ipvlan_nla.nla_map = (
    ("IFLA_IPVLAN_UNSPEC", "none"),
    ("IFLA_IPVLAN_MODE", "uint16"),
    ("IFLA_IPVLAN_FLAGS", "uint16"),
)

IFA_F_NODAD = 0x02
IFF_UP = 0x1
IFF_BROADCAST = 0x2
IFF_NOARP = 0x80
IFF_MULTICAST = 0x1000
IFF_LOWER_UP = 0x10000
RT_SCOPE_LINK = 253
LOOPBACK_IFINDEX = 1
SIOCGIFINDEX = 0x8933
IFNAMSIZ = 16
RTN_UNICAST = 1
MAIN_TABLE = 254

T = TypeVar("T")


@dataclass(frozen=True)
class LinkInfo:
    index: int
    name: str
    kind: str | None
    parent_index: int | None
    mac: str | None
    flags: int
    vlan_id: int | None = None
    ipvlan_mode: Mode | None = None
    ipvlan_flag: Flag | None = None
    mtu: int | None = None

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def noarp(self) -> bool:
        return bool(self.flags & IFF_NOARP)


@dataclass(frozen=True)
class AddressInfo:
    interface: IPInterface
    index: int
    scope: int
    flags: int

    @property
    def nodad(self) -> bool:
        return bool(self.flags & IFA_F_NODAD)


@dataclass(frozen=True)
class RouteInfo:
    family: int
    dst: IPNetwork
    gateway: str | None
    oif: int | None
    scope: int

    def normalized(self) -> str:
        """The form the fixtures use: `default`, `default via GW`, `10.0.0.0/24`."""
        dst = "default" if self.dst.prefixlen == 0 else str(self.dst)
        return f"{dst} via {self.gateway}" if self.gateway else dst


def _describe(exc: NetlinkError) -> str:
    return os.strerror(exc.code).lower() if exc.code else str(exc)


class Netlink:
    """A netlink connection bound to one network namespace (None: the caller's own)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._ipr: Any = ns.run_in(netns, IPRoute)
        # name -> ifindex seen on this connection: a verb names the same link in several requests, and
        # each lookup is a full RTM_GETLINK decode (most of a container's set-up, profiled in the VM).
        # Every namespace's loopback is ifindex 1 (the kernel's LOOPBACK_IFINDEX).
        self._indices: dict[str, int] = {"lo": LOOPBACK_IFINDEX}

    def close(self) -> None:
        self._ipr.close()

    def forget_indices(self) -> None:
        """Drop the names' ifindexes seen so far: a connection kept across verbs starts each verb knowing
        none, as links of the same name come and go between verbs."""
        self._indices = {"lo": LOOPBACK_IFINDEX}

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        # dumps can be interrupted by concurrent changes (EINTR / NLM_F_DUMP_INTR): retry those
        for attempt in range(5):
            try:
                return fn()
            except NetlinkError as exc:
                if exc.code in (errno.EINTR, errno.EBUSY) and attempt < 4:
                    time.sleep(0.01 * (attempt + 1))
                    continue
                where = f" in namespace {self.netns!r}" if self.netns else ""
                raise NetlinkFailure(f"failed to {what}{where}: {_describe(exc)}") from exc
        raise AssertionError("unreachable")

    # links -------------------------------------------------------------------------------

    def link(self, name: str) -> LinkInfo | None:
        try:
            msgs = self._ipr.link("get", ifname=name)
        except NetlinkError as exc:
            if exc.code in (errno.ENODEV, errno.ENOENT):
                self._indices.pop(name, None)
                return None
            raise NetlinkFailure(f"failed to look up link {name!r}: {_describe(exc)}") from exc
        info = _link_info(msgs[0])
        self._indices[name] = info.index
        return info

    def assume_index(self, name: str, index: int) -> None:
        """Name a link's ifindex without a lookup, as the caller knows it (a link moved into a namespace
        holding only lo keeps its ifindex); should the link not have it, the first request looks it up."""
        self._indices[name] = index

    def index_of(self, name: str) -> int | None:
        """The link's ifindex in this connection's namespace, None if it has none: the SIOCGIFINDEX ioctl on
        the netlink socket, which the kernel answers in the socket's namespace. One system call where an
        RTM_GETLINK reply is a full decode of every attribute (a few ms each under emulation).

        For links expected to exist: for a name it does not find, the kernel first asks modprobe for a
        module `netdev-NAME` (dev_load), an upcall that cost 70 ms a call in the VM; link() says "gone" fast.
        """
        raw = name.encode()
        if len(raw) >= IFNAMSIZ:
            return None  # no link can have a name this long
        try:
            reply = fcntl.ioctl(self._ipr.fileno(), SIOCGIFINDEX, struct.pack("16si", raw, 0))
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                self._indices.pop(name, None)
                return None
            raise NetlinkFailure(f"failed to look up link {name!r}: {exc.strerror}") from exc
        index: int = struct.unpack("16si", reply)[1]
        self._indices[name] = index
        return index

    def _index(self, name: str) -> int:
        """The link's ifindex, looked up once per connection (see _on_link)."""
        index = self._indices.get(name)
        if index is None:
            index = self.index_of(name)
        if index is None:
            raise NotFoundError(f"link {name!r} does not exist")
        return index

    def _on_link(self, what: str, name: str, request: Callable[[int], object]) -> None:
        """`request(ifindex of name)`; a cached index the link no longer has (deleted, renamed or moved
        by someone else since) is looked up again, once."""
        cached = name in self._indices
        try:
            self._call(what, lambda: request(self._index(name)))
        except NetlinkFailure as exc:
            code = getattr(exc.__cause__, "code", None)
            if not cached or code not in (errno.ENODEV, errno.ENOENT):
                raise
            self._indices.pop(name, None)
            self._call(what, lambda: request(self._index(name)))

    def require(self, name: str) -> LinkInfo:
        info = self.link(name)
        if info is None:
            raise NotFoundError(f"link {name!r} does not exist")
        return info

    def link_by_index(self, index: int) -> LinkInfo | None:
        try:
            return _link_info(self._ipr.link("get", index=index)[0])
        except NetlinkError as exc:
            if exc.code in (errno.ENODEV, errno.ENOENT):
                return None
            raise NetlinkFailure(f"failed to look up link #{index}: {_describe(exc)}") from exc

    def links(self) -> list[LinkInfo]:
        return [_link_info(m) for m in self._call("dump links", lambda: self._ipr.link("dump"))]

    def add_dummy(self, name: str) -> LinkInfo:
        self._call(f"create dummy link {name!r}", lambda: self._ipr.link("add", ifname=name, kind="dummy"))
        return self.require(name)

    def add_vlan(self, name: str, base: str, vlan_id: int) -> LinkInfo:
        base_index = self._index(base)
        self._call(
            f"create 802.1q link {name!r} (vlan {vlan_id}) on {base!r}",
            lambda: self._ipr.link("add", ifname=name, kind="vlan", link=base_index, vlan_id=vlan_id),
        )
        return self.require(name)

    def add_ipvlan(self, name: str, parent: str, mode: Mode, flag: Flag) -> int:
        """Create the slave; its ifindex (kept for the requests that name it next)."""
        parent_index = self._index(parent)
        self._call(
            f"create ipvlan link on parent {parent!r}",
            lambda: self._ipr.link(
                "add",
                ifname=name,
                kind="ipvlan",
                link=parent_index,
                ipvlan_mode=MODES.index(mode),
                ipvlan_flags=FLAGS.index(flag),
            ),
        )
        return self._index(name)

    def add_veth(self, name: str, peer: str) -> LinkInfo:
        self._call(
            f"create veth pair {name!r}/{peer!r}",
            lambda: self._ipr.link("add", ifname=name, kind="veth", peer=peer),
        )
        return self.require(name)

    def add_bridge(self, name: str) -> LinkInfo:
        self._call(f"create bridge {name!r}", lambda: self._ipr.link("add", ifname=name, kind="bridge"))
        return self.require(name)

    def set_master(self, name: str, master: str | None) -> None:
        index = self._index(name)
        master_index = self._index(master) if master else 0
        self._call(f"set master of {name!r}", lambda: self._ipr.link("set", index=index, master=master_index))

    def set_hairpin(self, port: str, on: bool) -> None:
        index = self._index(port)
        self._call(
            f"set hairpin on bridge port {port!r}",
            # IFLA_BRPORT_MODE is the hairpin switch (pyroute2 names it `mode`)
            lambda: self._ipr.brport("set", index=index, mode=1 if on else 0),
        )

    def set_up(self, name: str) -> None:
        self._on_link(f"bring up link {name!r}", name, lambda i: self._ipr.link("set", index=i, state="up"))

    def set_down(self, name: str) -> None:
        self._on_link(f"bring down link {name!r}", name, lambda i: self._ipr.link("set", index=i, state="down"))

    def set_mtu(self, name: str, mtu: int) -> None:
        self._on_link(f"set MTU of {name!r} to {mtu}", name, lambda i: self._ipr.link("set", index=i, mtu=mtu))

    def delete_link(self, name: str) -> bool:
        """Delete a link; one already gone is success (False)."""
        info = self.link(name)
        self._indices.pop(name, None)
        if info is None:
            return False
        try:
            self._ipr.link("del", index=info.index)
        except NetlinkError as exc:
            if exc.code in (errno.ENODEV, errno.ENOENT):
                return False
            raise NetlinkFailure(f"failed to delete link {name!r}: {_describe(exc)}") from exc
        return True

    def move_to_netns(self, name: str, target_netns: str, new_name: str) -> int:
        """Move a link into another namespace under a new name; the ifindex it had here (the kernel keeps it
        there unless that namespace already uses it)."""
        fd = os.open(ns.netns_path(target_netns), os.O_RDONLY)
        try:
            self._on_link(
                f"move link {name!r} into namespace {target_netns!r} as {new_name!r}",
                name,
                lambda i: self._ipr.link("set", index=i, net_ns_fd=fd, ifname=new_name),
            )
            return self._indices[name]  # the request's own lookup left it here
        finally:
            os.close(fd)
            self._indices.pop(name, None)

    # addresses and routes ----------------------------------------------------------------

    def add_address(self, name: str, interface: IPInterface, nodad: bool = False) -> None:
        flags = IFA_F_NODAD if nodad else 0
        self._on_link(
            f"add address {interface} to {name!r}",
            name,
            lambda i: self._ipr.addr(
                "add", index=i, address=str(interface.ip), prefixlen=interface.network.prefixlen, flags=flags
            ),
        )

    def addresses(self, name: str | None = None) -> list[AddressInfo]:
        kwargs: dict[str, Any] = {}
        if name is not None:
            kwargs["index"] = self.require(name).index  # a fresh lookup: a read reports what is there now
        msgs = self._call("dump addresses", lambda: self._ipr.addr("dump", **kwargs))
        out = []
        for m in msgs:
            iface = ipaddress.ip_interface(f"{m.get('address')}/{m.get('prefixlen')}")
            flags = m.get("IFA_FLAGS") or m.get("flags") or 0
            out.append(AddressInfo(iface, m.get("index"), m.get("scope"), flags))
        return out

    def add_route(self, dst: IPNetwork, name: str, gateway: str | None = None) -> None:
        family = socket.AF_INET if dst.version == 4 else socket.AF_INET6
        kwargs: dict[str, Any] = {"dst": str(dst), "family": family}
        if gateway:
            kwargs["gateway"] = gateway
        elif family == socket.AF_INET:
            kwargs["scope"] = RT_SCOPE_LINK
        label = "default" if dst.prefixlen == 0 else str(dst)
        via = f" via {gateway}" if gateway else ""
        self._on_link(f"add route {label}{via} dev {name!r}", name, lambda i: self._ipr.route("add", oif=i, **kwargs))

    def delete_route(self, dst: IPNetwork, gateway: str | None = None) -> None:
        family = socket.AF_INET if dst.version == 4 else socket.AF_INET6
        kwargs: dict[str, Any] = {"dst": str(dst), "family": family}
        if gateway:
            kwargs["gateway"] = gateway
        self._call(f"delete route {dst}", lambda: self._ipr.route("del", **kwargs))

    def routes(self, family: int) -> list[RouteInfo]:
        """Unicast routes of the main table (what `ip route` / `ip -6 route` print)."""
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        msgs = self._call("dump routes", lambda: self._ipr.route("dump", family=af))
        out = []
        for m in msgs:
            if m.get("table") != MAIN_TABLE or m.get("type") != RTN_UNICAST:
                continue
            base = m.get("dst") or ("0.0.0.0" if family == 4 else "::")
            dst = ipaddress.ip_network(f"{base}/{m.get('dst_len')}", strict=False)
            out.append(RouteInfo(family, dst, m.get("gateway"), m.get("oif"), m.get("scope")))
        return out

    def set_sysctl(self, key: str, value: str) -> None:
        """Write a /proc/sys/net entry inside this connection's namespace."""
        path = "/proc/sys/" + key.replace(".", "/")

        def write() -> None:
            # /proc/sys/net follows the opening thread's namespace
            with open(path, "w") as fh:
                fh.write(value)

        ns.run_in(self.netns, write)


def _link_info(msg: Any) -> LinkInfo:
    kind = msg.get(("linkinfo", "kind"))
    vlan_id = None
    mode: Mode | None = None
    flag: Flag | None = None
    data = msg.get(("linkinfo", "data"))
    if kind == "vlan" and data is not None:
        vlan_id = data.get("IFLA_VLAN_ID")
    if kind == "ipvlan" and data is not None:
        raw_mode = data.get("IFLA_IPVLAN_MODE")
        raw_flag = data.get("IFLA_IPVLAN_FLAGS")
        mode = MODES[raw_mode] if raw_mode is not None and raw_mode < len(MODES) else None
        flag = FLAGS[raw_flag or 0] if (raw_flag or 0) < len(FLAGS) else None
    return LinkInfo(
        index=msg["index"],
        name=msg.get("ifname"),
        kind=kind,
        parent_index=msg.get("link"),
        mac=msg.get("address"),
        flags=msg["flags"],
        vlan_id=vlan_id,
        ipvlan_mode=mode,
        ipvlan_flag=flag,
        mtu=msg.get("IFLA_MTU"),
    )


def iter_netns_links(netns: str | None) -> Iterator[LinkInfo]:
    with Netlink(netns) as nl:
        yield from nl.links()
