"""Decide which link a network hangs off: an existing one, a driver-made 802.1q sub-interface, or a dummy.

Pure planning: the caller says which links exist; netlink.py carries the plan out.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .errors import ConfigError, NotFoundError
from .model import NetworkSpec, ParentPlan

# libnetwork's naming for the dummy parent of an internal / parent-less network.
DUMMY_PREFIX = "di-"
SHORT_ID_LEN = 12

_VLAN_NAME_RE = re.compile(r"^(.+)\.(\d+)$")
VLAN_ID_MIN = 1
VLAN_ID_MAX = 4094


def dummy_name(network_id: str) -> str:
    """The dummy link's name: "di-" + the short network id, as Docker names it (15 characters)."""
    if not network_id:
        raise ConfigError("network id must not be empty")
    return DUMMY_PREFIX + network_id[:SHORT_ID_LEN]


def plan_parent(spec: NetworkSpec, network_id: str, link_exists: Callable[[str], bool]) -> ParentPlan:
    """Plan the parent link of `spec`; links that already exist are used as they are, never changed."""
    parent = spec.parent
    if parent == "lo":
        raise ConfigError("loopback interface is not a valid ipvlan parent")
    # The docs: an empty -o parent= and --internal give the same isolated network on a dummy link.
    if spec.internal or parent is None:
        return ParentPlan(kind="dummy", name=dummy_name(network_id))
    if link_exists(parent):
        return ParentPlan(kind="existing", name=parent)
    match = _VLAN_NAME_RE.match(parent)
    if match is None:
        raise NotFoundError(f"parent interface {parent!r} does not exist")
    base, vid = match.group(1), int(match.group(2))
    if not VLAN_ID_MIN <= vid <= VLAN_ID_MAX:
        raise ConfigError(f"invalid parent {parent!r}: vlan id must be {VLAN_ID_MIN}-{VLAN_ID_MAX}")
    if base == "lo":
        raise ConfigError(f"invalid parent {parent!r}: loopback interface is not a valid ipvlan parent")
    if not link_exists(base):
        raise NotFoundError(f"parent interface {parent!r} does not exist, and neither does its base interface {base!r}")
    return ParentPlan(kind="vlan", name=parent, link=base, vlan_id=vid)
