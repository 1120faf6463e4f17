"""tests/kernel need dummy, 802.1q and ipvlan links: where the kernel cannot make them they fail, never skip."""

from __future__ import annotations

import pytest

from tests.civm import load_vm


@pytest.fixture(scope="session", autouse=True)
def kernel_with_links() -> None:
    vm = load_vm()
    facts = vm.gather_facts()
    lacks = vm.shortfall(facts)
    if lacks:
        # Failing, not skipping: these tests are only ever run where the links exist, through the VM runner.
        pytest.fail(
            f"kernel {facts.release} {lacks}; tests/kernel need dummy, 802.1q and ipvlan links: "
            "run them through the VM runner, `ci/run-in-vm -- .venv/bin/pytest tests/kernel`",
            pytrace=False,
        )
