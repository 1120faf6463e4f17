"""Turn `docker network create` flags and `-o` options into a validated NetworkSpec.

Everything a user can get wrong in a create request is refused here, before any link or address exists.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from .errors import ConfigError
from .model import FLAGS, MODES, Flag, IPAddress, IPNetwork, Mode, NetworkSpec

# The docker-like network name rule and length limit this driver enforces.
_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
NAME_MAX = 64
# Linux IFNAMSIZ is 16 including the terminating NUL.
IFNAME_MAX = 15

OPTION_KEYS: tuple[str, ...] = ("parent", "ipvlan_mode", "ipvlan_flag")

# Smallest subnets that still hold a gateway (or the reserved first address) and one container:
# IPv4 also loses its broadcast address, IPv6 only its network address.
_MAX_PREFIX = {4: 30, 6: 126}

_CIDR_RE = re.compile(r"[0-9a-fA-F.:]+/(0|[1-9][0-9]{0,2})")

_NO_OPTIONS: Mapping[str, str] = MappingProxyType({})


def parse_opt_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """Parse docker `-o key=value` items; the value may itself contain '='."""
    options: dict[str, str] = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"invalid option {item!r}: expected key=value")
        if not key:
            raise ConfigError(f"invalid option {item!r}: empty key")
        if key in options:
            raise ConfigError(f"option {key!r} given more than once")
        options[key] = value
    return options


def network_spec(
    name: str,
    *,
    subnets: Sequence[str] = (),
    gateways: Sequence[str] = (),
    options: Mapping[str, str] = _NO_OPTIONS,
    internal: bool = False,
    ipv6: bool = False,
) -> NetworkSpec:
    """Validate a create request; subnets and gateways keep the order they were given in."""
    _check_name(name)
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise ConfigError(f"unknown option {names}: valid options are {', '.join(OPTION_KEYS)}")
    parent = _parent(options.get("parent", ""))
    mode = _mode(options.get("ipvlan_mode", "l2"))
    flag = _flag(options.get("ipvlan_flag", "bridge"))

    nets = tuple(parse_subnet(s) for s in subnets)
    _check_overlaps(nets)
    gws = _gateways(gateways, nets)

    has_v6 = any(n.version == 6 for n in nets)
    if ipv6 and not has_v6:
        raise ConfigError("--ipv6 needs an IPv6 --subnet")
    return NetworkSpec(
        name=name,
        subnets=nets,
        gateways=gws,
        parent=parent,
        mode=mode,
        flag=flag,
        internal=internal,
        # The 1.13 docs create IPv6 networks without --ipv6: an IPv6 subnet is the request.
        ipv6=ipv6 or has_v6,
    )


def _check_name(name: str) -> None:
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    if len(name) > NAME_MAX:
        raise ConfigError(f"invalid network name {name!r}: longer than {NAME_MAX} characters")


def _parent(value: str) -> str | None:
    if value == "":
        return None
    if value == "lo":
        raise ConfigError("loopback interface is not a valid ipvlan parent")
    if len(value) > IFNAME_MAX:
        raise ConfigError(f"invalid parent {value!r}: interface names are at most {IFNAME_MAX} characters")
    # The kernel's dev_valid_name(): refusing here beats a bare EINVAL from netlink later.
    if value in (".", "..") or any(c == "/" or c == ":" or c.isspace() for c in value):
        raise ConfigError(f"invalid parent {value!r}: not a valid interface name")
    return value


def _mode(value: str) -> Mode:
    for mode in MODES:
        if value == mode:
            return mode
    raise ConfigError(f"invalid ipvlan_mode {value!r}: valid modes are {', '.join(MODES)}")


def _flag(value: str) -> Flag:
    for flag in FLAGS:
        if value == flag:
            return flag
    raise ConfigError(f"invalid ipvlan_flag {value!r}: valid flags are {', '.join(FLAGS)}")


def parse_subnet(text: str) -> IPNetwork:
    # CIDR only, like Go's net.ParseCIDR: no bare address, netmask form or zone index.
    if not _CIDR_RE.fullmatch(text):
        raise ConfigError(f"invalid subnet {text!r}: expected CIDR notation like 192.168.1.0/24")
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConfigError(f"invalid subnet {text!r}: not an IPv4 or IPv6 network") from None
    if loose.network_address != ipaddress.ip_interface(text).ip:
        raise ConfigError(f"invalid subnet {text}: host bits set; did you mean {loose}?")
    if loose.prefixlen == 0:
        raise ConfigError(f"invalid subnet {loose}: it covers every address (the default route), not a network")
    if loose.prefixlen > _MAX_PREFIX[loose.version]:
        raise ConfigError(
            f"invalid subnet {loose}: too small for a gateway and a container "
            f"(IPv{loose.version} subnets are at most /{_MAX_PREFIX[loose.version]})"
        )
    return loose


def _check_overlaps(nets: Sequence[IPNetwork]) -> None:
    for i, a in enumerate(nets):
        for b in nets[:i]:
            if a == b:
                raise ConfigError(f"subnet {a} given more than once")
            if a.version == b.version and a.overlaps(b):
                raise ConfigError(f"subnets {b} and {a} overlap")


def _gateways(texts: Sequence[str], nets: Sequence[IPNetwork]) -> tuple[IPAddress, ...]:
    gws: list[IPAddress] = []
    owner: dict[IPNetwork, IPAddress] = {}
    for text in texts:
        gw = _address(text)
        if not nets:
            raise ConfigError(f"gateway {gw} needs a --subnet to belong to")
        inside = [n for n in nets if n.version == gw.version and gw in n]
        if not inside:
            raise ConfigError(f"gateway {gw} is outside every subnet ({', '.join(map(str, nets))})")
        net = inside[0]  # subnets never overlap, so there is exactly one
        if gw == net.network_address:
            raise ConfigError(f"gateway {gw} is the network address of {net}")
        if net.version == 4 and gw == net.broadcast_address:
            raise ConfigError(f"gateway {gw} is the broadcast address of {net}")
        if net in owner:
            raise ConfigError(f"subnet {net} has more than one gateway: {owner[net]} and {gw}")
        owner[net] = gw
        gws.append(gw)
    return tuple(gws)


def _address(text: str) -> IPAddress:
    # A zone index ("fe80::1%eth0") means nothing for a container's gateway.
    if "%" not in text:
        try:
            return ipaddress.ip_address(text)
        except ValueError:
            pass
    raise ConfigError(f"invalid gateway {text!r}: not an IP address")
