"""tests/kernel need dummy, 802.1q and ipvlan links: where the kernel cannot make them they fail, never skip."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _load_vm() -> ModuleType:
    # The one definition of "this kernel has the links" is ci/vm.py's probe (scripts, not a package).
    if "ci_vm" not in sys.modules:
        spec = importlib.util.spec_from_file_location("ci_vm", Path(__file__).parents[2] / "ci" / "vm.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["ci_vm"] = module
        spec.loader.exec_module(module)
    return sys.modules["ci_vm"]


@pytest.fixture(scope="session", autouse=True)
def kernel_with_links() -> None:
    vm = _load_vm()
    facts = vm.gather_facts()
    lacks = vm.shortfall(facts)
    if lacks:
        # Failing, not skipping: these tests are only ever run where the links exist, through the VM runner.
        pytest.fail(
            f"kernel {facts.release} {lacks}; tests/kernel need dummy, 802.1q and ipvlan links: "
            "run them through the VM runner, `ci/run-in-vm -- .venv/bin/pytest tests/kernel`",
            pytrace=False,
        )
