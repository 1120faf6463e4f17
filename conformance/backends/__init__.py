"""Backends: how the suite drives a driver under test. One file per implementation.

A third party adds one without editing the suite: a subclass of base.BaseBackend (its hooks and its own
command-line OPTIONS included) under the entry-point group `ipvlan_conformance.backends`, or passed as
`--backend=module:Class` (whose OPTIONS cannot reach the command line: pytest reads options first).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from .base import Backend, BackendFactory, BaseBackend, HostContext, Option

BUILTIN = {
    "native": "conformance.backends.native:NativeBackend",
    "cli": "conformance.backends.cli:CliBackend",
    "plugin": "conformance.backends.plugin:PluginBackend",
    "docker": "conformance.backends.docker:DockerBackend",
    "cni": "conformance.backends.cni:CniBackend",
    "netavark": "conformance.backends.netavark:NetavarkBackend",
}


def _checked(found: object, name: str) -> BackendFactory:
    if not (isinstance(found, type) and issubclass(found, BaseBackend)):
        raise ValueError(f"backend {name!r} is {found!r}, not a subclass of conformance.backends.base.BaseBackend")
    return found


def resolve(name: str) -> BackendFactory:
    target = BUILTIN.get(name)
    if target is None:
        for ep in entry_points(group="ipvlan_conformance.backends"):
            if ep.name == name:
                return _checked(ep.load(), name)
        target = name if ":" in name else None
    if target is None:
        known = ", ".join(sorted(BUILTIN))
        raise ValueError(f"unknown backend {name!r}: use one of {known}, or module:Class")
    module, _, attr = target.partition(":")
    return _checked(getattr(importlib.import_module(module), attr), name)


def declared_options() -> list[Option]:
    """Every command-line option the built-in and installed backends declare, each dest once."""
    classes = [resolve(name) for name in BUILTIN]
    classes += [_checked(ep.load(), ep.name) for ep in entry_points(group="ipvlan_conformance.backends")]
    found: dict[str, Option] = {}
    for cls in classes:
        for option in cls.OPTIONS:
            if found.setdefault(option.dest, option) != option:
                raise ValueError(f"backend {cls.name!r} declares {option.flag} again, differently")
    return list(found.values())


__all__ = ["Backend", "BackendFactory", "BaseBackend", "HostContext", "Option", "declared_options", "resolve"]
