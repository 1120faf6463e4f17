"""The suite's command-line options and markers: the pytest11 entry point `conformance.options`, so
`pytest --pyargs conformance --backend=...` parses them from any directory once the suite is installed.

It loads in every pytest run of that environment, so it holds only what is harmless to a run that never
collects the suite (options, markers). The machinery (conformance.plugin: fixtures, the root-namespace
guard, reports) comes in through conformance/conftest.py when the suite is collected, with its asserts
rewritten.
"""

from __future__ import annotations

import pytest

from .backends import declared_options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ipvlan-conformance")
    group.addoption(
        "--backend",
        default="native",
        help="driver under test: native (our driver in-process), cli (our CLI), "
        "a name registered under the entry point group ipvlan_conformance.backends, or module:factory",
    )
    for option in declared_options():  # each backend's own, declared in its module
        group.addoption(option.flag, default=option.default, help=option.help)
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
