"""ipvlan_driver: a compact reference ipvlan network driver (IPAM, netlink, state, CLI, plugin)."""

from __future__ import annotations

__version__ = "0.1.0"
