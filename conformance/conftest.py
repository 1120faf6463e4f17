"""Loads the suite's machinery for the tests in this directory, however the suite was found (a checkout's
`pytest conformance/`, or `pytest --pyargs conformance` of an installed wheel).

Through pytest_plugins, pytest rewrites conformance.plugin's asserts, and only runs that collect the suite
import it (tests/kernel runs it in-process many times). conformance.options is normally loaded already by
its pytest11 entry point of the same name, and then not again; listed for a checkout that is not installed.
"""

from __future__ import annotations

pytest_plugins = ["conformance.options", "conformance.plugin"]
