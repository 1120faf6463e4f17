"""The driver's error tree: every failure a user can see is one of these, with a message to act on."""

from __future__ import annotations


class DriverError(Exception):
    """Base of every error the driver reports; the CLI prints it as `Error: <message>`."""


class ConfigError(DriverError):
    """A request is malformed or contradicts itself (bad option, non-canonical subnet, ...)."""


class NotFoundError(DriverError):
    """A named network, container or link does not exist."""


class ConflictError(DriverError):
    """A request collides with existing state (name taken, parent in use, address in use)."""


class IpamError(DriverError):
    """An address request cannot be satisfied (outside the subnets, reserved, exhausted)."""


class NetlinkFailure(DriverError):
    """The kernel refused or failed a netlink request."""


class StateError(DriverError):
    """The persisted state is unreadable or inconsistent."""
