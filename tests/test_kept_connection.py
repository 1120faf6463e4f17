"""A plugin worker keeps its host netlink connection across verbs (opening one was about 40% of a Join,
profiled), and nothing it keeps outlives the server, a failed verb or the namespace it was opened in.

Leave is the verb used: it looks the slave up on the host and needs no ipvlan kernel.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ipvlan_driver import driver as driver_module
from ipvlan_driver import netns as ns
from ipvlan_driver import plugin as plugin_module
from ipvlan_driver.driver import Driver, DriverConfig
from ipvlan_driver.errors import NetlinkFailure
from ipvlan_driver.netlink import Netlink
from ipvlan_driver.plugin import PluginServer
from tests.hosts import docker_host, serving
from tests.test_plugin import Client

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="cannot run here: needs root (network namespaces)"),
]
EP = "c" * 64


class Ledger:
    """Every host connection the driver opens, and which of them were closed, and on which thread."""

    def __init__(self) -> None:
        self.opened: list[Netlink] = []
        self.closed_by: dict[int, str] = {}
        self.opened_by: dict[int, str] = {}
        self.lock = threading.Lock()

    def counting(self) -> type[Netlink]:
        ledger = self

        class Counted(Netlink):
            def __init__(self, netns: str | None = None) -> None:
                super().__init__(netns)
                with ledger.lock:
                    ledger.opened.append(self)
                    ledger.opened_by[id(self)] = threading.current_thread().name

            def close(self) -> None:
                with ledger.lock:
                    assert id(self) not in ledger.closed_by, "closed twice"
                    ledger.closed_by[id(self)] = threading.current_thread().name
                super().close()

        return Counted

    @property
    def open(self) -> int:
        return len(self.opened) - len(self.closed_by)


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Ledger:
    book = Ledger()
    monkeypatch.setattr(driver_module, "Netlink", book.counting())
    return book


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Driver]:
    with docker_host(f"tkept{os.getpid()}") as host:
        yield Driver(DriverConfig(state_dir=tmp_path / "state", host_netns=host, container_prefix="tkeptc-"))


def in_worker(driver: Driver, work: Callable[[], Any]) -> Any:
    """`work` on a fresh thread that keeps its connection, closing it at the end as the plugin's pool does."""
    with ThreadPoolExecutor(1, initializer=driver.keep_host_connection_here) as pool:
        try:
            return pool.submit(work).result()
        finally:
            pool.submit(driver.close_host_connection).result()


def test_a_kept_connection_serves_every_verb_of_its_thread(driver: Driver, ledger: Ledger) -> None:
    def three_leaves() -> int:
        for _ in range(3):
            driver.leave("any", EP)
        return ledger.open

    assert in_worker(driver, three_leaves) == 1
    assert len(ledger.opened) == 1 and ledger.open == 0


def test_a_thread_that_did_not_ask_opens_one_per_verb(driver: Driver, ledger: Ledger) -> None:
    for _ in range(3):
        driver.leave("any", EP)
        assert ledger.open == 0
    assert len(ledger.opened) == 3


def test_a_failed_verb_closes_the_kept_connection(
    driver: Driver, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Netlink.link
    failures = [NetlinkFailure("failed to look up link: injected")]

    def fail_once(self: Netlink, name: str) -> Any:
        if failures:
            raise failures.pop()
        return real(self, name)

    def leaves() -> None:
        driver.leave("any", EP)
        monkeypatch.setattr(Netlink, "link", fail_once)
        with pytest.raises(NetlinkFailure, match="injected"):
            driver.leave("any", EP)
        assert ledger.open == 0  # the failed verb's connection went with it
        driver.leave("any", EP)

    in_worker(driver, leaves)
    assert len(ledger.opened) == 2 and ledger.open == 0


def test_a_host_namespace_recreated_under_its_name_gets_a_new_connection(driver: Driver, ledger: Ledger) -> None:
    host = driver.config.host_netns
    assert host is not None

    def across_recreation() -> None:
        driver.leave("any", EP)
        ns.remove(host)
        ns.create(host)
        driver.leave("any", EP)
        assert ledger.open == 1  # the old namespace's connection closed, the new one open
        with driver._host() as nl:
            assert nl is ledger.opened[-1]
            nl.add_veth("tk0", "tk1")  # made through the kept connection: in the namespace the name has now
        with Netlink(host) as fresh:
            assert fresh.index_of("tk0") is not None

    in_worker(driver, across_recreation)
    assert len(ledger.opened) == 2 and ledger.open == 0


def test_a_kept_connection_forgets_link_indices_between_verbs(driver: Driver, ledger: Ledger) -> None:
    def two_verbs() -> None:
        with driver._host() as nl:
            nl.assume_index("gone0", 4242)
        with driver._host() as nl:
            assert nl is ledger.opened[0]
            assert "gone0" not in nl._indices  # else a request would try ifindex 4242 first

    in_worker(driver, two_verbs)


# one request: a pool that has not grown yet, whose release tasks start the threads the barrier needs
@pytest.mark.parametrize("requests", [1, 60])
def test_the_plugin_closes_every_worker_connection_on_its_own_thread(
    driver: Driver, ledger: Ledger, tmp_path: Path, requests: int
) -> None:
    sock = tmp_path / "p.sock"
    with serving(sock, driver, workers=3):
        client = Client(sock)
        leave = {"NetworkID": "n", "EndpointID": EP}
        with ThreadPoolExecutor(6) as callers:  # more callers than workers
            replies = list(callers.map(lambda _: client("NetworkDriver.Leave", **leave), range(requests)))
        assert replies == [{}] * requests
        assert 1 <= len(ledger.opened) <= min(3, requests)  # one per worker that served, not one per verb
    assert ledger.open == 0
    assert all(ledger.closed_by[id(nl)] == ledger.opened_by[id(nl)] for nl in ledger.opened)


def test_a_verb_still_running_at_shutdown_closes_its_own_connection(
    driver: Driver, ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugin_module, "RELEASE_TIMEOUT_S", 0.0)  # the idle workers give up on the busy one
    entered, go_on = threading.Event(), threading.Event()
    busy: list[str] = []
    released: list[str] = []
    real_link, real_close = Netlink.link, driver.close_host_connection

    def slow_link(self: Netlink, name: str) -> Any:
        busy.append(threading.current_thread().name)
        entered.set()
        go_on.wait(30)
        return real_link(self, name)

    def counted_close() -> None:
        released.append(threading.current_thread().name)
        real_close()

    def call() -> None:
        with contextlib.suppress(OSError, http.client.HTTPException):  # shutdown closes the connection
            Client(sock).raw("NetworkDriver.Leave", json.dumps({"NetworkID": "n", "EndpointID": EP}).encode())

    monkeypatch.setattr(Netlink, "link", slow_link)
    monkeypatch.setattr(driver, "close_host_connection", counted_close)
    sock = tmp_path / "p.sock"
    server = PluginServer(sock, driver, workers=2)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    caller, stopper = threading.Thread(target=call), threading.Thread(target=server.shutdown)
    caller.start()
    try:
        assert entered.wait(30)  # the verb is in its worker, holding the kept connection
        stopper.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len([t for t in released if t not in busy]) < 2:
            time.sleep(0.01)  # both release tasks ran on the other worker
        assert len([t for t in released if t not in busy]) == 2 and ledger.open == 1
    finally:
        go_on.set()
        stopper.join(30)
        caller.join(30)
        server.server_close()
    assert ledger.open == 0  # closed by the busy worker itself, once its verb ended
    assert all(ledger.closed_by[id(nl)] == ledger.opened_by[id(nl)] for nl in ledger.opened)
