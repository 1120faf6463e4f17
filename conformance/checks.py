"""Observations the tests assert on: pings over raw sockets, addresses and routes over netlink.

Positive checks poll to a deadline; negative checks wait one short explicit timeout. Both return what
they saw so a failing assertion can print it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import re
import select
import socket
import struct
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import netnsutil as ns

from .observe import Link, Observer

POSITIVE_DEADLINE = float(os.environ.get("IPVLAN_CONFORMANCE_PING_DEADLINE", "6"))
NEGATIVE_WAIT = float(os.environ.get("IPVLAN_CONFORMANCE_NEGATIVE_WAIT", "1.5"))
# every probe its own ICMP id: concurrent probes from one namespace each see all its echo replies
_IDENTS = itertools.count(os.getpid() * 64)


@dataclass(frozen=True)
class PingResult:
    src: str
    dst: str
    ok: bool
    sent: int
    waited: float

    def __str__(self) -> str:
        verdict = "reply" if self.ok else "no reply"
        return f"{self.src} -> {self.dst}: {verdict} ({self.sent} sent, {self.waited:.1f}s)"


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def ping(netns: str, dst: str, expect_reply: bool) -> PingResult:
    """Echo requests from inside `netns` to `dst`; stop at the first reply."""
    addr = ipaddress.ip_address(dst)
    v6 = addr.version == 6
    family = socket.AF_INET6 if v6 else socket.AF_INET
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    sock = ns.run_in(netns, lambda: socket.socket(family, socket.SOCK_RAW, proto))
    ident = next(_IDENTS) & 0xFFFF
    budget = POSITIVE_DEADLINE if expect_reply else NEGATIVE_WAIT
    start = time.monotonic()
    sent = 0
    try:
        while time.monotonic() - start < budget:
            sent += 1
            body = struct.pack("!HH", ident, sent) + b"ipvlan-conformance"
            if v6:
                packet = struct.pack("!BBH", 128, 0, 0) + body  # the kernel fills ICMPv6 checksums
            else:
                header = struct.pack("!BBH", 8, 0, 0) + body
                packet = struct.pack("!BBH", 8, 0, _checksum(header)) + body
            # unreachable right now (no route, no neighbour yet): keep trying to the deadline
            with contextlib.suppress(OSError):
                sock.sendto(packet, (dst, 0))
            until = min(time.monotonic() + 0.3, start + budget)
            while (left := until - time.monotonic()) > 0:
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                    break
                data, src = sock.recvfrom(4096)
                icmp = data if v6 else data[(data[0] & 0x0F) * 4 :]
                reply_type = 129 if v6 else 0
                ours = len(icmp) >= 8 and struct.unpack("!H", icmp[4:6])[0] == ident
                if ours and icmp[0] == reply_type and src[0] == str(addr):
                    return PingResult(netns, dst, True, sent, time.monotonic() - start)
        return PingResult(netns, dst, False, sent, time.monotonic() - start)
    finally:
        sock.close()


def ping_many(probes: Sequence[tuple[str, str, bool]]) -> list[PingResult]:
    """Every (netns, dst, expect_reply) probe at once, in the order given.

    One documented ping matrix then costs one negative wait, not one per pair that must not reach.
    """
    if not probes:
        return []
    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        return list(pool.map(lambda probe: ping(*probe), probes))


def global_addresses(netns: str, ifname: str = "eth0") -> dict[str, bool]:
    """Global-scope addresses on `ifname` -> whether the address carries nodad."""
    with Observer(netns) as seen:
        return {a.normal: a.nodad for a in seen.addresses(ifname) if a.scope == 0}


def links(netns: str) -> dict[str, Link]:
    """Every link of a namespace, by name (`ip link`)."""
    with Observer(netns) as seen:
        return {link.name: link for link in seen.links()}


def bare_namespace_links(prefix: str) -> set[str]:
    """The links this kernel puts in every new namespace: lo, and the fallback tunnels (tunl0, sit0...) of
    tunnel modules loaded on the host. A namespace named `<prefix>bare` is made, read and removed."""
    name = f"{prefix}bare"
    ns.create(name)
    try:
        return set(links(name))
    finally:
        ns.remove(name)


def sysctl(netns: str, key: str) -> str | None:
    """A /proc/sys/net entry as seen inside `netns` (None: this kernel has no such entry)."""

    def read() -> str | None:
        # /proc/sys/net follows the namespace of the thread that opens it
        try:
            with open("/proc/sys/" + key.replace(".", "/")) as fh:
                return fh.read().strip()
        except FileNotFoundError:
            return None

    return ns.run_in(netns, read)


def routes(netns: str, family: int) -> list[str]:
    """`ip route` / `ip -6 route` of the main table, normalized, link-local and multicast left out."""
    with Observer(netns) as seen:
        listed = seen.routes(family)
    return sorted(r.normal for r in listed if not (r.dst.is_link_local or r.dst.is_multicast))


def names_network(message: str, refs: tuple[str, ...]) -> bool:
    """The message names the network: by name, or by its id (whole or the usual 12-character short form).

    Both must stand alone: Docker's own driver names its dummy link `di-<id12>` in the one-network-per-
    parent refusal, which names a link, not the network.
    """
    name, *ids = refs
    if re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", message):
        return True
    return any(re.search(rf"(?<![\w-]){re.escape(i[:12])}", message) for i in ids)
