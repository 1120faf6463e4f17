"""What Docker does around a network driver, for the `plugin` harness that stands in for it: the default
IPAM and the remote-driver request bodies. None of our driver's rules: options reach the plugin untouched.

Facts checked against moby at b985e2313a86 (2026-08); each rule names the file it comes from. The code is
written from those readings, not translated from them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .backends.base import BackendRefused
from .examples import NetworkRequest

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

ADDRESS_SPACE = "LocalDefault"  # the default IPAM's local address space (daemon/libnetwork/ipamapi)

# daemon/libnetwork/ipamutils/utils.go localScopeDefaultNetworks: 172.17-172.31 as /16s, then 192.168/16 as /20s
DEFAULT_POOLS_V4: tuple[ipaddress.IPv4Network, ...] = (
    *(ipaddress.IPv4Network(f"172.{n}.0.0/16") for n in range(17, 32)),
    *ipaddress.IPv4Network("192.168.0.0/16").subnets(new_prefix=20),
)

# daemon/libnetwork/ipamapi/contract.go: the default IPAM's own messages, which Docker shows as they are
POOL_OVERLAP = "Pool overlaps with other one on this address space"
ADDRESS_IN_USE = "Address already in use"
NO_MORE_SUBNETS = "all predefined address pools have been fully subnetted"


class LibnetworkRefused(BackendRefused):
    """Docker itself (its CLI, daemon or IPAM) refuses the request: the plugin is never asked."""


@dataclass(frozen=True)
class IpamConf:
    """One pool as the CLI hands it to the daemon: a --subnet with the --ip-range, --gateway and
    --aux-address that fall inside it. No subnet: a default pool."""

    subnet: IPNetwork | None = None
    ip_range: IPNetwork | None = None
    gateway: IPAddress | None = None
    aux: tuple[tuple[str, IPAddress], ...] = ()


def enable_ipv6(req: NetworkRequest) -> bool:
    """IPv6 is on with --ipv6; the fixtures' errata read a v6 --subnet as asking for it too (the 1.13 pages
    never pass --ipv6), as the docker backend does. daemon/network.go drops v6 configs when it is off."""
    return req.ipv6 or any(":" in s for s in req.subnets)


def _net(text: str, what: str) -> IPNetwork:
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        raise LibnetworkRefused(f"invalid {what} {text!r}") from None
    if "/" not in text:
        raise LibnetworkRefused(f"invalid {what} {text!r}: not a CIDR block")
    if iface.ip != iface.network.network_address:
        # daemon/network.go validateIpamConfig / validateIPRange: host bits set
        raise LibnetworkRefused(f"invalid {what} {text}: it should be {iface.network}")
    return iface.network


def _addr(text: str, what: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise LibnetworkRefused(f"invalid {what} {text!r}") from None


def ipam_configs(req: NetworkRequest) -> list[IpamConf]:
    """The request's pools, each --ip-range / --gateway / --aux-address matched to the --subnet holding it,
    as docker/cli's consolidateIpam does (cli/command/network/create.go: it refuses overlapping subnets, a
    value no subnet holds, two ranges or gateways for one), with daemon/network.go validateIpamConfig's
    syntax checks. The subnets keep their order (the API keeps it; the CLI's map does not)."""
    if len(req.ip_ranges) > len(req.subnets) or len(req.gateways) > len(req.subnets):
        raise LibnetworkRefused("every ip-range or gateway must have a corresponding subnet")
    subnets = [_net(s, "subnet") for s in req.subnets]
    for i, one in enumerate(subnets):
        if any(one.version == other.version and one.overlaps(other) for other in subnets[:i]):
            raise LibnetworkRefused("multiple overlapping subnet configuration is not supported")

    def home(hits: Iterable[bool], what: str, value: object) -> int:
        for i, hit in enumerate(hits):
            if hit:
                return i
        raise LibnetworkRefused(f"no matching subnet for {what} {value}")

    ranges: dict[int, IPNetwork] = {}
    for text in req.ip_ranges:
        rng = _net(text, "ip-range")
        i = home((rng.network_address in n for n in subnets), "range", rng)  # the CLI looks at its first address
        if i in ranges:
            raise LibnetworkRefused(
                f"cannot configure multiple ranges ({rng}, {ranges[i]}) on the same subnet ({subnets[i]})"
            )
        ranges[i] = rng
    gateways: dict[int, IPAddress] = {}
    for text in req.gateways:
        gw = _addr(text, "gateway")
        i = home((gw in n for n in subnets), "gateway", gw)
        if i in gateways:
            raise LibnetworkRefused(
                f"cannot configure multiple gateways ({gw}, {gateways[i]}) for the same subnet ({subnets[i]})"
            )
        gateways[i] = gw
    aux: dict[int, list[tuple[str, IPAddress]]] = {}
    for key, text in req.aux_addresses:
        a = _addr(text, "aux-address")
        aux.setdefault(home((a in n for n in subnets), "aux-address", a), []).append((key, a))
    return [IpamConf(net, ranges.get(i), gateways.get(i), tuple(aux.get(i, ()))) for i, net in enumerate(subnets)]


@dataclass
class Pool:
    """One allocated pool. Addresses are handed lowest free first: the daemon never asks the default IPAM for
    serial allocation (only swarm's cnmallocator sets com.docker.network.ipam.serial), so a released address
    is the next one handed out (ipams/defaultipam/address_space.go requestAddress, allocator.go getAddress)."""

    subnet: IPNetwork
    ip_range: IPNetwork | None = None
    gateway: IPAddress | None = None
    aux: dict[str, IPAddress] = field(default_factory=dict)
    used: dict[IPAddress, str] = field(default_factory=dict)  # address -> owner ("" for the pool's own)

    def __post_init__(self) -> None:
        # allocator.go newPoolData: the IPv4 network and broadcast addresses and the IPv6 subnet-router
        # anycast address are never handed out (except in an IPv4 /31 or /32)
        net = self.subnet
        if net.version == 6 or net.num_addresses > 2:
            self.used[net.network_address] = ""
        if net.version == 4 and net.num_addresses > 2:
            self.used[net.broadcast_address] = ""

    def take(self, owner: str, preferred: IPAddress | None = None, within: IPNetwork | None = None) -> IPAddress:
        if preferred is not None:
            if preferred not in self.subnet:
                raise LibnetworkRefused("requested address is out of range")
            if preferred in self.used:
                raise LibnetworkRefused(f"{ADDRESS_IN_USE}: {preferred}")
            self.used[preferred] = owner
            return preferred
        space = within or self.subnet
        for addr in _hosts(space):
            if addr not in self.used:
                self.used[addr] = owner
                return addr
        raise _Exhausted(f"no available addresses on this pool {space}")

    def release(self, owner: str) -> None:
        for addr in [a for a, o in self.used.items() if o == owner and owner]:
            del self.used[addr]

    def interface(self, addr: IPAddress) -> IPInterface:
        return ipaddress.ip_interface(f"{addr}/{self.subnet.prefixlen}")

    def ipam_data(self) -> dict[str, Any]:
        """driverapi.IPAMData as the remote driver receives it (daemon/libnetwork/driverapi/ipamdata.go
        MarshalJSON: no Gateway key when none was allocated). AuxAddresses is always there, empty or not:
        Docker omits it only when the create carried no aux map at all, and a plugin must take both."""
        data: dict[str, Any] = {"AddressSpace": ADDRESS_SPACE, "Pool": str(self.subnet)}
        if self.gateway is not None:
            data["Gateway"] = str(self.interface(self.gateway))
        data["AuxAddresses"] = {k: str(self.interface(a)) for k, a in self.aux.items()}
        return data


def _reserve(pool: Pool, addr: IPAddress | None, what: str) -> IPAddress:
    try:
        return pool.take("", addr)
    except LibnetworkRefused as exc:
        raise LibnetworkRefused(f"{what}: {exc}") from None


class _Exhausted(LibnetworkRefused):
    """ipamapi.ErrNoAvailableIPs: the endpoint tries the network's next pool."""


def _hosts(net: IPNetwork) -> Iterable[IPAddress]:
    """Every address of `net` in order, lazily: an IPv6 /64 is never listed whole."""
    first = int(net.network_address)
    for i in range(net.num_addresses):
        yield ipaddress.ip_address(first + i) if net.version == 4 else ipaddress.IPv6Address(first + i)


@dataclass
class NetworkIpam:
    """A network's pools, IPv4 then IPv6, in the order the subnets were given."""

    pools: list[Pool]

    def of(self, version: int) -> list[Pool]:
        return [p for p in self.pools if p.subnet.version == version]

    def allocate(self, owner: str, version: int, preferred: IPAddress | None = None) -> IPInterface:
        """endpoint.go assignAddressVersion: a preferred address from the pool holding it, else the first pool
        with one free (from its --ip-range if it has one)."""
        pools = self.of(version)
        if not pools:
            raise LibnetworkRefused(f"no IPv{version} information available for endpoint {owner}")
        for pool in pools:
            if preferred is not None and preferred not in pool.subnet:
                continue
            try:
                return pool.interface(pool.take(owner, preferred, pool.ip_range))
            except _Exhausted:
                if preferred is not None:
                    raise
        if preferred is not None:
            raise LibnetworkRefused(f"invalid address {preferred}: It does not belong to any of this network's subnets")
        raise LibnetworkRefused(f"no available IPv{version} addresses on this network's address pools")

    def release(self, owner: str) -> None:
        for pool in self.pools:
            pool.release(owner)

    def check_static(self, ip: str | None, ip6: str | None) -> dict[int, IPAddress | None]:
        """--ip / --ip6 as daemon/container_operations.go validateEndpointSettings judges them before any
        IPAM call: each of its family, and inside one of the network's pools. The addresses, by family."""
        errors: list[str] = []
        found: dict[int, IPAddress | None] = {4: None, 6: None}
        for version, text in ((4, ip), (6, ip6)):
            if not text:
                continue
            try:
                addr = ipaddress.ip_address(text)
            except ValueError:
                addr = None
            if addr is None or addr.version != version or addr.is_unspecified:
                errors.append(f"invalid IPv{version} address: {text}")
            elif not any(addr in p.subnet for p in self.of(version)):
                errors.append(f"no configured subnet contains IP address {addr}")
            else:
                found[version] = addr
        if errors:
            raise LibnetworkRefused("invalid endpoint settings:\n" + "\n".join(errors))
        return found


class AddressSpace:
    """The default IPAM's local address space: every network's pools, so a second network cannot overlap."""

    def __init__(self) -> None:
        self.allocated: list[IPNetwork] = []

    def _request_pool(self, conf: IpamConf, version: int, reserved: Sequence[IPNetwork]) -> Pool:
        if conf.subnet is None:
            subnet = self._default_pool(version, reserved)
        elif any(conf.subnet.overlaps(a) for a in self.allocated if a.version == conf.subnet.version):
            # address_space.go allocateSubnetL: a master pool that overlaps any allocated one
            raise LibnetworkRefused(POOL_OVERLAP)
        else:
            subnet = conf.subnet
        self.allocated.append(subnet)
        return Pool(subnet, conf.ip_range)

    def _default_pool(self, version: int, reserved: Sequence[IPNetwork]) -> IPNetwork:
        # network.go ipamAllocateVersion excludes netutils.InferReservedNetworks (the host's own networks);
        # a default route overlaps everything and is not counted (prefix 0)
        busy = [n for n in [*self.allocated, *reserved] if n.version == version and n.prefixlen > 0]
        candidates: Sequence[IPNetwork] = DEFAULT_POOLS_V4 if version == 4 else ()
        for candidate in candidates:
            if not any(candidate.overlaps(n) for n in busy):
                return candidate
        # no IPv6 default pool unless the daemon's default-address-pools configure one; the harness has none
        raise LibnetworkRefused(f"could not find an available IPv{version} pool: {NO_MORE_SUBNETS}")

    def allocate_network(
        self, req: NetworkRequest, reserved: Sequence[IPNetwork] = (), skip_gateway: tuple[bool, bool] = (False, False)
    ) -> NetworkIpam:
        """network.go ipamAllocate: IPv4 pools always (a default one without a v4 --subnet), IPv6 pools only with
        IPv6 on. ipamAllocateVersion: each pool's gateway is the one given, else the lowest free address of the
        whole subnet (requested before any ip-range applies) unless the driver's GwAllocCheck said skip; each
        aux address is reserved. `skip_gateway` is (SkipIPv4, SkipIPv6)."""
        confs = ipam_configs(req)
        pools: list[Pool] = []
        start = len(self.allocated)
        try:
            for version, skip in ((4, skip_gateway[0]), (6, skip_gateway[1])):
                if version == 6 and not enable_ipv6(req):
                    continue
                mine = [c for c in confs if c.subnet is not None and c.subnet.version == version] or [IpamConf()]
                for conf in mine:
                    pool = self._request_pool(conf, version, reserved)
                    pools.append(pool)
                    if conf.gateway is not None or not skip:
                        why = f"failed to allocate gateway ({conf.gateway or ''})"
                        pool.gateway = _reserve(pool, conf.gateway, why)
                    for key, a in conf.aux:
                        pool.aux[key] = _reserve(pool, a, f"failed to allocate secondary ip address ({key}:{a})")
        except BaseException:
            del self.allocated[start:]
            raise
        return NetworkIpam(pools)

    def release_network(self, ipam: NetworkIpam) -> None:
        for pool in ipam.pools:
            self.allocated.remove(pool.subnet)


def create_network_body(network_id: str, req: NetworkRequest, ipam: NetworkIpam) -> dict[str, Any]:
    """/NetworkDriver.CreateNetwork as the daemon sends it (drivers/remote/api/api.go CreateNetworkRequest;
    network.go: the -o options travel untouched under netlabel.GenericData, com.docker.network.generic)."""
    return {
        "NetworkID": network_id,
        "Options": {
            "com.docker.network.generic": dict(req.options),
            "com.docker.network.enable_ipv6": enable_ipv6(req),
            "com.docker.network.internal": req.internal,
        },
        "IPv4Data": [p.ipam_data() for p in ipam.of(4)],
        "IPv6Data": [p.ipam_data() for p in ipam.of(6)],
    }


def create_endpoint_body(network_id: str, endpoint_id: str, addresses: Sequence[IPInterface]) -> dict[str, Any]:
    """/NetworkDriver.CreateEndpoint (api.go CreateEndpointRequest): the addresses IPAM chose, no MAC."""
    iface: dict[str, str] = {"MacAddress": ""}
    for a in addresses:
        iface["Address" if a.version == 4 else "AddressIPv6"] = str(a)
    return {"NetworkID": network_id, "EndpointID": endpoint_id, "Interface": iface, "Options": {}}


def join_body(network_id: str, endpoint_id: str, sandbox_key: str) -> dict[str, Any]:
    """/NetworkDriver.Join (api.go JoinRequest)."""
    return {"NetworkID": network_id, "EndpointID": endpoint_id, "SandboxKey": sandbox_key, "Options": {}}
