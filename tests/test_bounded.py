"""A driver that stops answering fails the behaviour that waited for it; it never holds the run."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import deploy
from conformance.backends.base import BaseBackend, HostContext
from conformance.bounded import NoAnswer, call_all, call_within, patience
from conformance.examples import load_examples
from ipvlan_driver import netns as ns


@pytest.fixture
def stuck() -> Iterator[threading.Event]:
    """An event calls wait on; set at the end so no thread outlives the test."""
    event = threading.Event()
    try:
        yield event
    finally:
        event.set()


def test_call_all_returns_results_and_exceptions_in_order() -> None:
    def fn(n: int) -> int:
        if n == 2:
            raise ValueError("two")
        return n * 10

    out = call_all([0, 1, 2, 3], fn, within=30)
    assert out[:2] == [0, 10] and out[3] == 30
    assert isinstance(out[2], ValueError) and str(out[2]) == "two"


def test_call_all_releases_every_call_together() -> None:
    seen: list[int] = []
    lock = threading.Lock()
    all_in = threading.Barrier(5, timeout=10)

    def fn(n: int) -> None:
        all_in.wait()  # breaks (BrokenBarrierError) unless all five run at the same time
        with lock:
            seen.append(n)

    assert call_all(list(range(5)), fn, within=30) == [None] * 5
    assert sorted(seen) == [0, 1, 2, 3, 4]


def test_a_call_that_never_returns_is_no_answer(stuck: threading.Event) -> None:
    out = call_all([1, 2], lambda n: stuck.wait() if n == 2 else n, within=0.2)
    assert out[0] == 1
    assert isinstance(out[1], NoAnswer) and "no answer in 0 s" in str(out[1])


def test_call_within_names_what_hung_and_reraises(stuck: threading.Event) -> None:
    with pytest.raises(NoAnswer, match="plugin teardown: no answer"):
        call_within(stuck.wait, 0.1, "plugin teardown")
    with pytest.raises(KeyError):
        call_within(lambda: {}["x"], 5, "lookup")
    assert call_within(lambda: 7, 5, "seven") == 7


def test_patience_is_the_backends_own_or_the_default() -> None:
    class Slow(BaseBackend):
        patience = 1800

    host = HostContext("n", Path("/nonexistent"), "p-")
    assert patience(Slow(host)) == 1800.0
    assert patience(BaseBackend(host)) == 300.0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")
def test_a_hung_teardown_fails_and_the_suite_removes_the_containers_namespaces(
    stuck: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lab's teardown waits briefly for a driver known to be stuck, then cleans up after it."""
    monkeypatch.setattr(deploy, "HUNG_PATIENCE", 0.2)
    made: list[str] = []

    class Hangs(BaseBackend):
        name = "hangs"
        capabilities = frozenset[str]()

        def __init__(self, host: deploy.HostContext) -> None:
            made.append(host.prefix + "1")
            ns.create(made[0])

        def close(self) -> None:
            stuck.wait()

    with pytest.raises(NoAnswer, match="hangs teardown"), contextlib.ExitStack() as stack:
        dep = stack.enter_context(deploy.lab(load_examples()["db_net"], Hangs))
        dep.hung = True
    assert made and made[0] not in ns.list_names()
