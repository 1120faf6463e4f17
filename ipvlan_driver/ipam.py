"""Address management for one network: default pools, gateways, and handing addresses to containers.

Behaves like Docker's default IPAM (lowest free address first, network address, IPv4 broadcast and the
first usable address never handed out) minus its bug of keeping a released static IPv6 address busy.
"""

from __future__ import annotations

import bisect
import ipaddress
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypedDict

from .errors import ConfigError, ConflictError, IpamError, StateError
from .model import IPAddress, IPInterface, IPNetwork, NetworkSpec, Pool

# Docker's default local address pools, in the order it tries them.
DEFAULT_POOLS: tuple[ipaddress.IPv4Network, ...] = (
    *(ipaddress.IPv4Network(f"172.{n}.0.0/16") for n in range(17, 32)),
    *ipaddress.IPv4Network("192.168.0.0/16").subnets(new_prefix=20),
)


def default_pool(taken: Iterable[IPNetwork]) -> ipaddress.IPv4Network:
    """The first default pool that overlaps none of `taken` (host addresses, routes, other networks)."""
    # A default route (prefix 0) overlaps everything yet says nothing about which addresses are used;
    # Docker skips routes without a destination for the same reason.
    busy = [net for net in taken if net.version == 4 and net.prefixlen > 0]
    for candidate in DEFAULT_POOLS:
        if not any(candidate.overlaps(net) for net in busy):
            return candidate
    raise IpamError(
        f"no default address pool left: {DEFAULT_POOLS[0]} to {DEFAULT_POOLS[-1]} all overlap networks in use"
    )


def build_pools(spec: NetworkSpec, default_v4: ipaddress.IPv4Network | None) -> list[Pool]:
    """One Pool per subnet of `spec`, in order, plus `default_v4` when the spec has no IPv4 subnet.

    l2 pools route via the subnet's explicit gateway, else its first usable address. l3/l3s pools have
    no gateway (an explicit one is ignored) but still keep the first usable address back, as Docker does.
    """
    explicit: dict[IPNetwork, IPAddress] = {}
    for gw in spec.gateways:
        inside = [net for net in spec.subnets if net.version == gw.version and gw in net]
        if not inside:
            raise ConfigError(
                f"gateway {gw} is outside every subnet ({', '.join(map(str, spec.subnets)) or 'none given'})"
            )
        explicit[inside[0]] = gw

    subnets: list[IPNetwork] = list(spec.subnets)
    if not any(net.version == 4 for net in subnets):
        if default_v4 is None:
            raise IpamError(f"network {spec.name!r} has no IPv4 subnet and no default IPv4 pool is free")
        subnets.append(default_v4)

    pools: list[Pool] = []
    for net in subnets:
        first, last = usable_range(net)
        if first > last:
            raise ConfigError(f"invalid subnet {net}: it has no address for a container")
        first_addr = address_of(net.version, first)
        if spec.mode == "l2":
            pools.append(Pool(subnet=net, gateway=explicit.get(net, first_addr)))
        else:
            pools.append(Pool(subnet=net, gateway=None, reserved=[first_addr]))
    return pools


class AddressTable(Protocol):
    """Where a network's handed-out addresses live, pool by pool (`i` is the pool's index): in the pools'
    `allocated` maps (MemoryTable) or in records of their own (stored_ipam.StoredTable). Values are the
    addresses' integers; the table knows each pool's usable range and its gateway and reserved addresses."""

    def held(self, owner: str) -> list[str]: ...
    def holder(self, i: int, value: int) -> str | None: ...
    def lowest_free(self, i: int) -> int | None: ...
    def take(self, i: int, value: int, owner: str) -> None: ...
    def free(self, owner: str) -> list[str]: ...


class Ipam:
    """Hands out and takes back the addresses of one network's pools, kept in an AddressTable.

    Finding the lowest free address never walks the whole subnet, whichever table keeps them.
    """

    def __init__(self, pools: list[Pool], table: AddressTable | None = None) -> None:
        for i, a in enumerate(pools):
            for b in pools[:i]:
                if a.subnet.version == b.subnet.version and a.subnet.overlaps(b.subnet):
                    raise StateError(f"pools {b.subnet} and {a.subnet} overlap")
        self._pools = pools
        self._table = table if table is not None else MemoryTable(pools)

    @property
    def pools(self) -> list[Pool]:
        return self._pools

    def allocate(self, owner: str, family: int, requested: IPAddress | None = None) -> IPInterface:
        """Give `owner` the requested address, or the lowest free one of `family` over the pools in order."""
        if family not in (4, 6):
            raise IpamError(f"address family must be 4 or 6, not {family}")
        if not owner:
            raise IpamError("cannot allocate an address for a container without a name")
        held = [a for a in map(ipaddress.ip_address, self._table.held(owner)) if a.version == family]
        if held:
            raise ConflictError(f"container {owner!r} already has address {held[0]} in this network")
        if requested is None:
            idx, value = self._lowest_free(family)
        else:
            if requested.version != family:
                raise IpamError(f"address {requested} is not an IPv{family} address")
            idx, value = self._check_static(requested)
        self._table.take(idx, value, owner)
        return _interface(address_of(family, value), self._pools[idx].subnet.prefixlen)

    def release(self, owner: str) -> list[IPAddress]:
        """Free every address `owner` holds, at once; an owner holding nothing is not an error."""
        return [ipaddress.ip_address(text) for text in self._table.free(owner)]

    def owner_of(self, addr: IPAddress) -> str | None:
        """The container holding `addr`, if any."""
        i = self._pool_of(addr)
        return None if i is None else self._table.holder(i, int(addr))

    def _pool_of(self, addr: IPAddress) -> int | None:
        for i, pool in enumerate(self._pools):
            if pool.subnet.version == addr.version and addr in pool.subnet:
                return i
        return None

    def _family(self, family: int) -> list[int]:
        return [i for i, pool in enumerate(self._pools) if pool.subnet.version == family]

    def _lowest_free(self, family: int) -> tuple[int, int]:
        candidates = self._family(family)
        if not candidates:
            raise IpamError(f"the network has no IPv{family} subnet")
        for i in candidates:
            value = self._table.lowest_free(i)
            if value is not None:
                return i, value
        subnets = ", ".join(str(self._pools[i].subnet) for i in candidates)
        raise IpamError(f"no free IPv{family} address left in {subnets}")

    def _check_static(self, addr: IPAddress) -> tuple[int, int]:
        candidates = self._family(addr.version)
        if not candidates:
            raise IpamError(f"address {addr} is outside the network: it has no IPv{addr.version} subnet")
        for i in candidates:
            pool = self._pools[i]
            net = pool.subnet
            if addr not in net:
                continue
            if addr == net.network_address:
                raise IpamError(f"address {addr} is the network address of {net}")
            if net.version == 4 and addr == net.broadcast_address:
                raise IpamError(f"address {addr} is the broadcast address of {net}")
            if addr == pool.gateway:
                raise IpamError(f"address {addr} is the gateway of {net}")
            if addr in pool.reserved:
                raise IpamError(f"address {addr} is reserved in {net}")
            holder = self._table.holder(i, int(addr))
            if holder is not None:
                raise ConflictError(f"address {addr} is already in use by container {holder!r}")
            return i, int(addr)
        subnets = ", ".join(str(self._pools[i].subnet) for i in candidates)
        raise IpamError(f"address {addr} is outside every IPv{addr.version} subnet of this network ({subnets})")


class MemoryTable:
    """The addresses in the pools' own `allocated` maps, with a sorted index of each pool's unavailable ones."""

    def __init__(self, pools: list[Pool]) -> None:
        self._index = [_index(pool, f"pool {i} ({pool.subnet})") for i, pool in enumerate(pools)]
        self._by_owner: dict[str, list[str]] = {}
        for pool in pools:
            for text, owner in pool.allocated.items():
                self._by_owner.setdefault(owner, []).append(text)

    def held(self, owner: str) -> list[str]:
        return list(self._by_owner.get(owner, ()))

    def holder(self, i: int, value: int) -> str | None:
        pool = self._index[i].pool
        return pool.allocated.get(str(address_of(pool.subnet.version, value)))

    def lowest_free(self, i: int) -> int | None:
        return self._index[i].lowest_free()

    def take(self, i: int, value: int, owner: str) -> None:
        index = self._index[i]
        text = str(address_of(index.pool.subnet.version, value))
        bisect.insort(index.taken, value)
        index.pool.allocated[text] = owner
        self._by_owner.setdefault(owner, []).append(text)

    def free(self, owner: str) -> list[str]:
        released = self._by_owner.pop(owner, [])
        for text in released:
            addr = ipaddress.ip_address(text)
            for index in self._index:
                if index.pool.subnet.version == addr.version and addr in index.pool.subnet:
                    del index.pool.allocated[text]
                    del index.taken[bisect.bisect_left(index.taken, int(addr))]
                    break
        return released


class PoolJSON(TypedDict):
    """A Pool as the state file stores it."""

    subnet: str
    gateway: str | None
    reserved: list[str]
    allocated: dict[str, str]


def pools_to_json(pools: Iterable[Pool]) -> list[PoolJSON]:
    return [
        {
            "subnet": str(pool.subnet),
            "gateway": None if pool.gateway is None else str(pool.gateway),
            "reserved": [str(a) for a in pool.reserved],
            "allocated": dict(pool.allocated),
        }
        for pool in pools
    ]


def pools_from_json(data: Sequence[Mapping[str, object]]) -> list[Pool]:
    """The inverse of pools_to_json; anything malformed or inconsistent is a StateError."""
    pools = _parse_pools(data)
    for i, pool in enumerate(pools):
        _index(pool, f"pool {i} ({pool.subnet})")  # refuse an inconsistent pool now, not at the first allocation
    return pools


def _parse_pools(data: Sequence[Mapping[str, object]]) -> list[Pool]:
    """The pools' fields, each checked for its type; their consistency is _index's to check."""
    if not isinstance(data, Sequence) or isinstance(data, str):
        raise StateError("pools: expected a list")
    pools: list[Pool] = []
    for i, item in enumerate(data):
        where = f"pool {i}"
        if not isinstance(item, Mapping):
            raise StateError(f"{where}: expected an object")
        subnet = item.get("subnet")
        gateway = item.get("gateway")
        reserved = item.get("reserved", [])
        allocated = item.get("allocated", {})
        if not isinstance(subnet, str):
            raise StateError(f"{where}: 'subnet' must be a string")
        try:
            net = ipaddress.ip_network(subnet)
        except ValueError as exc:
            raise StateError(f"{where}: bad subnet {subnet!r}: {exc}") from None
        where = f"pool {i} ({net})"
        if gateway is not None and not isinstance(gateway, str):
            raise StateError(f"{where}: 'gateway' must be a string or null")
        if not isinstance(reserved, list) or not all(isinstance(a, str) for a in reserved):
            raise StateError(f"{where}: 'reserved' must be a list of strings")
        if not isinstance(allocated, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in allocated.items()
        ):
            raise StateError(f"{where}: 'allocated' must map address strings to container names")
        pool = Pool(
            subnet=net,
            gateway=None if gateway is None else _parse(gateway, where),
            reserved=[_parse(a, where) for a in reserved],
            allocated=dict(allocated),
        )
        pools.append(pool)
    return pools


@dataclass
class _PoolIndex:
    """A pool plus the sorted integer values of its usable addresses that cannot be handed out."""

    pool: Pool
    first: int
    last: int
    taken: list[int]

    def lowest_free(self) -> int | None:
        # `taken` is sorted and distinct, so taken[i] - i never decreases: binary-search the first i where
        # it exceeds `first`, i.e. the first hole in the run of taken addresses starting at `first`.
        taken = self.taken
        hole = bisect.bisect_right(range(len(taken)), self.first, key=lambda i: taken[i] - i)
        value = self.first + hole
        return value if value <= self.last else None


def _index(pool: Pool, where: str) -> _PoolIndex:
    net = pool.subnet
    first, last = usable_range(net)
    taken: set[int] = set()

    def claim(addr: IPAddress, what: str) -> None:
        if addr.version != net.version or not first <= int(addr) <= last:
            raise StateError(f"{where}: {what} {addr} is not a usable address of {net}")
        if int(addr) in taken:
            raise StateError(f"{where}: {what} {addr} is claimed twice")
        taken.add(int(addr))

    if pool.gateway is not None:
        claim(pool.gateway, "gateway")
    for addr in pool.reserved:
        claim(addr, "reserved address")
    for text, owner in pool.allocated.items():
        if not owner:
            raise StateError(f"{where}: allocated address {text} has no owner")
        value = _canonical_v4(text) if net.version == 4 else None
        if value is not None and first <= value <= last and value not in taken:
            taken.add(value)
            continue
        addr = _parse(text, where)
        if str(addr) != text:
            raise StateError(f"{where}: allocated address {text!r} is not written as {str(addr)!r}")
        claim(addr, "allocated address")
    return _PoolIndex(pool=pool, first=first, last=last, taken=sorted(taken))


def usable_range(net: IPNetwork) -> tuple[int, int]:
    """Integer bounds of the addresses a container may get: no network address, no IPv4 broadcast."""
    first = int(net.network_address) + 1
    last = int(net.broadcast_address) - (1 if net.version == 4 else 0)
    return first, last


def address_of(version: int, value: int) -> IPAddress:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


def _interface(addr: IPAddress, prefixlen: int) -> IPInterface:
    if isinstance(addr, ipaddress.IPv4Address):
        return ipaddress.IPv4Interface((addr, prefixlen))
    return ipaddress.IPv6Interface((addr, prefixlen))


def _canonical_v4(text: str) -> int | None:
    """`text` as an integer if it is an IPv4 address written canonically, else None (ask ipaddress).

    ipaddress builds objects and parses octets in Python: for the thousands of addresses a loaded pool
    holds, the C parser is many times cheaper. inet_pton refuses leading zeros and short forms, and the
    round trip refuses anything not written as str(IPv4Address) writes it.
    """
    try:
        packed = socket.inet_pton(socket.AF_INET, text)
    except OSError:
        return None
    return int.from_bytes(packed, "big") if socket.inet_ntop(socket.AF_INET, packed) == text else None


def _parse(text: str, where: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise StateError(f"{where}: {text!r} is not an IP address") from None
