"""Calls into the driver under test that cannot hang the suite: a driver that stops answering fails
the behaviour that waited for it (and its teardown says so) instead of holding the run until CI kills it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .backends.base import Backend

T = TypeVar("T")


class NoAnswer(TimeoutError):
    """The driver under test did not return from a call within the backend's patience."""


def patience(backend: Backend) -> float:
    """How long a backend's batch of calls may take: Docker's 50 concurrent runs need minutes, ours seconds."""
    return float(backend.patience)


def call_all(items: list[T], fn: Callable[[T], Any], within: float) -> list[Any]:
    """Call fn on every item at once (a barrier releases them together): results or exceptions.

    An item whose call has not returned `within` seconds after the release is a NoAnswer; its thread is
    a daemon and is left behind (a deadlocked driver cannot be interrupted from outside).
    """
    out: list[Any] = [None] * len(items)
    done = [False] * len(items)
    gate = threading.Barrier(len(items) + 1)

    def work(i: int) -> None:
        gate.wait()
        try:
            out[i] = fn(items[i])
        except Exception as exc:
            out[i] = exc
        done[i] = True

    threads = [threading.Thread(target=work, args=(i,), name=f"call{i}", daemon=True) for i in range(len(items))]
    for t in threads:
        t.start()
    gate.wait()
    deadline = time.monotonic() + within
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return [out[i] if done[i] else NoAnswer(f"no answer in {within:.0f} s") for i in range(len(items))]


def call_within(fn: Callable[[], T], within: float, what: str) -> T:
    """fn(), or NoAnswer naming `what` if it has not returned in `within` seconds."""
    result = call_all([None], lambda _: fn(), within)[0]
    if isinstance(result, NoAnswer):
        raise NoAnswer(f"{what}: {result}")
    if isinstance(result, BaseException):
        raise result
    return result  # type: ignore[no-any-return]
