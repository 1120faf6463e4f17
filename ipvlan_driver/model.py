"""Plain data the driver works with: what a user asked for, and what the driver made of it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["l2", "l3", "l3s"]
Flag = Literal["bridge", "private", "vepa"]
ParentKind = Literal["existing", "vlan", "dummy"]

MODES: tuple[Mode, ...] = ("l2", "l3", "l3s")
FLAGS: tuple[Flag, ...] = ("bridge", "private", "vepa")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True)
class NetworkSpec:
    """A validated `network create` request (CLI flags or plugin options, same shape)."""

    name: str
    subnets: tuple[IPNetwork, ...] = ()
    gateways: tuple[IPAddress, ...] = ()
    parent: str | None = None
    mode: Mode = "l2"
    flag: Flag = "bridge"
    internal: bool = False
    ipv6: bool = False


@dataclass(frozen=True)
class ParentPlan:
    """Which link a network hangs off, and whether the driver must create (and later delete) it."""

    kind: ParentKind
    name: str
    link: str | None = None
    vlan_id: int | None = None

    @property
    def driver_owned(self) -> bool:
        return self.kind != "existing"


@dataclass
class Pool:
    """One subnet of a network: its gateway (None in l3/l3s) and the addresses handed out."""

    subnet: IPNetwork
    gateway: IPAddress | None
    reserved: list[IPAddress] = field(default_factory=list)
    allocated: dict[str, str] = field(default_factory=dict)  # address -> container name
