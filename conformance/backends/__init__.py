"""Backends: how the suite drives a driver under test. One file per implementation.

A third party adds one without editing the suite: expose a factory under the entry-point group
`ipvlan_conformance.backends` (or pass `--backend=module:factory`).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from .base import Backend, BackendFactory, HostContext

BUILTIN = {
    "native": "conformance.backends.native:NativeBackend",
    "cli": "conformance.backends.cli:CliBackend",
    "plugin": "conformance.backends.plugin:PluginBackend",
    "docker": "conformance.backends.docker:DockerBackend",
    "cni": "conformance.backends.cni:CniBackend",
    "netavark": "conformance.backends.netavark:NetavarkBackend",
}


def resolve(name: str) -> BackendFactory:
    target = BUILTIN.get(name)
    if target is None:
        for ep in entry_points(group="ipvlan_conformance.backends"):
            if ep.name == name:
                return ep.load()  # type: ignore[no-any-return]
        target = name if ":" in name else None
    if target is None:
        known = ", ".join(sorted(BUILTIN))
        raise ValueError(f"unknown backend {name!r}: use one of {known}, or module:factory")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


__all__ = ["Backend", "BackendFactory", "HostContext", "resolve"]
