"""Each example's tests run in the order that deploys it once: the readers of its shared deployment,
then the one test taking it apart, then the tests with labs of their own."""

from __future__ import annotations

import pytest

from conformance.cases import Case, deployment_rank
from tests.suite_runs import suite_args


def test_readers_then_the_spender_then_fresh_labs() -> None:
    assert deployment_rank(["case", "deployment"]) == 0
    assert deployment_rank(["case", "spent_deployment"]) == 1
    assert deployment_rank(["case", "fresh_lab"]) == 2


def test_no_reader_after_its_deployment_is_closed(pytester: pytest.Pytester) -> None:
    rec = pytester.inline_run(*suite_args("--collect-only"))
    items = rec.getcall("pytest_collection_finish").session.items  # the order they run in
    closed: set[str] = set()
    late, spenders = [], 0
    for item in items:
        case = item.callspec.params.get("case")  # type: ignore[attr-defined]
        assert isinstance(case, Case)
        fixtures = item.fixturenames  # type: ignore[attr-defined]
        if "deployment" in fixtures and case.example.id in closed:
            late.append(item.nodeid)
        if "spent_deployment" in fixtures or "fresh_lab" in fixtures:
            spenders += "spent_deployment" in fixtures
            closed.add(case.example.id)
    assert spenders, "no test takes a shared deployment apart"
    assert not late, "readers after their example's deployment was closed:\n" + "\n".join(late)
