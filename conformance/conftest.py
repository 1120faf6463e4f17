"""Command-line options of the conformance suite; the machinery lives in conformance/plugin.py."""

from __future__ import annotations

import pytest

pytest_plugins = ["conformance.plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ipvlan-conformance")
    group.addoption(
        "--backend",
        default="native",
        help="driver under test: native (our driver in-process), cli (our CLI), "
        "a name registered under the entry point group ipvlan_conformance.backends, or module:factory",
    )
    group.addoption(
        "--plugin-command",
        default=None,
        help="--backend=plugin: start this plugin per lab inside the docker-host namespace; "
        "{socket} and {state} are filled in (default: our ipvlan-driver serve, in-process)",
    )
    group.addoption(
        "--docker-driver",
        default="ipvlan",
        help="--backend=docker: the network driver docker uses (ipvlan, or the name of a plugin)",
    )
    group.addoption(
        "--docker-ipam-driver",
        default=None,
        help="--backend=docker: the IPAM driver (default: Docker's own; with our plugin, the plugin, which "
        "implements IpamDriver too)",
    )
    group.addoption(
        "--docker-root",
        default=None,
        help="--backend=docker: an engine unpacked from its packages (DIR/usr/sbin/dockerd, DIR/usr/bin/docker); "
        "default: the dockerd on PATH",
    )
    group.addoption(
        "--netavark-root",
        default=None,
        help="--backend=netavark: a netavark unpacked from its package (DIR/usr/lib/podman/netavark, and its own "
        "libc when DIR has one); default: the system's",
    )
    group.addoption(
        "--report-dir",
        default=None,
        help="write conformance.html and conformance.json (examples x behaviours) here",
    )
