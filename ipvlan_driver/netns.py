"""Named network namespaces as the driver sees them: `netnsutil` with its errors in the driver's tree.

The plumbing lives in `netnsutil` (shared with the conformance suite); this face only turns its
exceptions into `DriverError`s, so the CLI and the plugin report them like every other failure.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import netnsutil
from netnsutil import (
    NETNS_ETC_DIR,
    NETNS_RUN_DIR,
    exec_preparer,
    exists,
    hosts_file,
    is_namespace,
    list_names,
    remove,
)

from .errors import ConflictError, DriverError, NotFoundError

__all__ = [
    "NETNS_ETC_DIR",
    "NETNS_RUN_DIR",
    "attach",
    "create",
    "entered",
    "exec_preparer",
    "exists",
    "hosts_file",
    "identity",
    "is_namespace",
    "list_names",
    "netns_path",
    "remove",
    "run_in",
]

T = TypeVar("T")


@contextlib.contextmanager
def _driver_errors() -> Iterator[None]:
    try:
        yield
    except netnsutil.NetnsExists as exc:
        raise ConflictError(str(exc)) from exc
    except netnsutil.NetnsMissing as exc:
        raise NotFoundError(str(exc)) from exc
    except netnsutil.NetnsError as exc:
        raise DriverError(str(exc)) from exc


def identity(name: str | None) -> tuple[int, int] | None:
    """Which namespace `name` names now (None: the calling thread's own), as its nsfs device and inode, or
    None if the name is gone: a name deleted and re-created names another namespace, with another inode."""
    path = netns_path(name) if name is not None else Path("/proc/thread-self/ns/net")
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def netns_path(name: str) -> Path:
    with _driver_errors():
        return netnsutil.netns_path(name)


def create(name: str) -> None:
    with _driver_errors():
        netnsutil.create(name)


def attach(name: str, pid: int) -> None:
    with _driver_errors():
        netnsutil.attach(name, pid)


@contextlib.contextmanager
def entered(name: str | None) -> Iterator[None]:
    # only entering is translated: what the block itself raises passes through untouched
    with contextlib.ExitStack() as stack:
        with _driver_errors():
            stack.enter_context(netnsutil.entered(name))
        yield


def run_in(name: str | None, work: Callable[[], T]) -> T:
    with entered(name):
        return work()
