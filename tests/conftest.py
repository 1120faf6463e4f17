"""The project's own tests: unit tests run on any host; tests/kernel needs an ipvlan kernel (the VM)."""

from __future__ import annotations

import sys

import pytest
from _pytest.assertion.rewrite import AssertionRewritingHook

pytest_plugins = ["pytester"]

# tests/kernel runs the conformance suite in-process (pytester), which must import conformance.plugin itself
# with its asserts rewritten; a project test that imported it plainly first breaks every such run (pytest
# warns "already imported", and warnings are errors here). Loaded as a pytest plugin, it is rewritten.
SUITE_PLUGIN = "conformance.plugin"


def pytest_collection_finish(session: pytest.Session) -> None:
    module = sys.modules.get(SUITE_PLUGIN)
    if module is not None and not isinstance(getattr(module, "__loader__", None), AssertionRewritingHook):
        raise pytest.UsageError(
            f"a test module imported {SUITE_PLUGIN} while being collected; import what it needs from the module "
            "that defines it (conformance.kernel, conformance.examples, ...) so tests/kernel can load the suite"
        )
