"""The suite's plugin in the project's own runs: tests/kernel runs the suite in-process (pytester) many
times in one process that also has the pytest11 entry point loaded. Each run must load the machinery
once, with its asserts rewritten, and leave the outer run as it found it."""

from __future__ import annotations

import re
import sys

import pytest
from _pytest.assertion.rewrite import AssertionRewritingHook

from tests.suite_runs import suite_args


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[int, int, bool]] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        plugins = session.config.pluginmanager.get_plugins()
        machinery = sys.modules["conformance.plugin"]
        self.seen.append(
            (
                sum(getattr(p, "__name__", None) == "conformance.plugin" for p in plugins),
                sum(getattr(p, "__name__", None) == "conformance.options" for p in plugins),
                isinstance(machinery.__loader__, AssertionRewritingHook),
            )
        )


def test_in_process_runs_load_the_suite_once_each_rewritten(pytester: pytest.Pytester) -> None:
    assert "conformance.options" in sys.modules, "the pytest11 entry point loads in every run of this venv"
    assert "conformance.plugin" not in sys.modules, "a run that does not collect the suite never loads its machinery"
    recorder = Recorder()
    for _ in range(2):  # as test_mutants does, one run after another
        result = pytester.runpytest_inprocess(*suite_args("--collect-only", "-q"), plugins=[recorder])
        assert result.ret == 0, "\n".join(result.outlines + result.errlines)
        found = re.search(r"(\d+) tests collected", "\n".join(result.outlines))
        assert found and int(found.group(1)) > 300, "\n".join(result.outlines)
    assert recorder.seen == [(1, 1, True), (1, 1, True)]
    assert "conformance.plugin" not in sys.modules, "pytester forgets what a run imported"
