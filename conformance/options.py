"""The suite's command-line options and markers: the pytest11 entry point `conformance.options`, so
`pytest --pyargs conformance --backend=...` parses them from any directory once the suite is installed.

It loads in every pytest run of that environment, so it holds only what is harmless to a run that never
collects the suite (options, markers). The machinery (conformance.plugin: fixtures, the root-namespace
guard, reports) comes in through conformance/conftest.py when the suite is collected, with its asserts
rewritten.
"""

from __future__ import annotations

import pytest


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


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xdist_group(name): keep one example's tests on one worker")
    config.addinivalue_line(
        "markers",
        "representative: the examples flagged `representative: true` in fixtures (every mode, a VLAN parent, "
        "IPv6, a refusal): a third-party column's selection where the whole suite costs too much",
    )
    # `-n auto` alone would scatter one example's tests over workers, each deploying it again. Here, not in
    # conformance.plugin: under xdist the controller never collects, so never loads that one; loadgroup
    # schedules tests without an xdist_group mark exactly as load does, so other runs are unaffected.
    if getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadgroup"
