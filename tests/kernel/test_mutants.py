"""The conformance suite is only worth something if a wrong driver fails it: run it against each
deliberately broken driver in tests/mutants.py and check the documented example that must catch it."""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator

import pytest

from tests.mutants import MUTANTS, Mutant
from tests.suite_runs import suite_args

pytestmark = pytest.mark.kernel


# What every in-process run needs: pytester forgets the modules a run imported, so without this each run
# would import them again (seconds each under emulation). Not conformance.plugin: a run imports that
# itself, so that pytest rewrites its asserts.
KEPT = ("yaml", "pyroute2", "scapy.all", "conformance.examples", "conformance.checks", "conformance.deploy")


@pytest.fixture(scope="module", autouse=True)
def _kept_between_runs() -> Iterator[None]:
    for name in KEPT:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()  # each run's closing gc.collect() then skips all of the above instead of walking it again
    try:
        yield
    finally:
        gc.unfreeze()


def _run_suite(pytester: pytest.Pytester, backend: str, select: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess(*suite_args("-q", f"--backend={backend}", "-k", select))


@pytest.mark.parametrize("mutant", [pytest.param(m, id=m.name) for m in MUTANTS])
def test_suite_kills_mutant(pytester: pytest.Pytester, mutant: Mutant) -> None:
    result = _run_suite(pytester, f"tests.mutants:{mutant.name}", mutant.select)
    outcomes = result.parseoutcomes()
    failed = [line for line in result.outlines if line.startswith("FAILED ")]
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) > 0, (
        f"mutant {mutant.name} ({mutant.driver.__doc__}) survived `-k {mutant.select}`:\n" + "\n".join(result.outlines)
    )
    assert any(f"[{mutant.caught_by}]" in line for line in failed), (
        f"mutant {mutant.name} should be caught by {mutant.caught_by}; failures were:\n" + "\n".join(failed)
    )


def test_reference_driver_passes_the_same_selection(pytester: pytest.Pytester) -> None:
    """The control: every selection that kills a mutant passes against the real driver."""
    select = " or ".join(f"({m.select})" for m in MUTANTS)
    result = _run_suite(pytester, "native", select)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, "\n".join(result.outlines)
    assert outcomes.get("passed", 0) > 0
