"""The plugin server under what Docker does to it: bursts of connects, concurrent verbs, idle and slow
clients, SIGTERM; and fuzzing of every endpoint over the real socket and of the CLI's option parsing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipvlan_driver.driver import Driver, DriverConfig
from ipvlan_driver.errors import DriverError
from ipvlan_driver.options import network_spec, parse_opt_pairs
from ipvlan_driver.plugin import PluginServer
from ipvlan_driver.schema import SCHEMAS
from tests.hosts import docker_host, serving

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")
T = TypeVar("T")
NET = "a" * 64


class Served:
    def __init__(self, path: Path, server: PluginServer, driver: Driver) -> None:
        self.path, self.server, self.driver = path, server, driver

    def post(self, method: str, body: Any, timeout: float = 30) -> tuple[int, Any]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            _connect(sock, self.path)
            sock.sendall(
                f"POST /{method} HTTP/1.1\r\nHost: p\r\nContent-Length: {len(raw)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + raw
            )
            buf = b""
            while chunk := sock.recv(65536):
                buf += chunk
        head, _, payload = buf.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(payload)


def _connect(sock: socket.socket, path: Path) -> None:
    """A full backlog says EAGAIN until the server has accepted what is queued: retry, as a dialer does."""
    for _ in range(500):
        try:
            sock.connect(str(path))
            return
        except BlockingIOError:
            time.sleep(0.01)
    sock.connect(str(path))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with docker_host(f"tload{os.getpid()}") as host:
        driver = Driver(DriverConfig(state_dir=tmp_path / "state", host_netns=host, container_prefix="tloadc-"))
        with serving(tmp_path / "p.sock", driver, read_timeout=2.0) as server:
            yield Served(tmp_path / "p.sock", server, driver)


def _parallel(n: int, fn: Callable[[int], T]) -> list[T]:
    out: list[Any] = [None] * n
    gate = threading.Barrier(n)

    def work(i: int) -> None:
        gate.wait()
        try:
            out[i] = fn(i)
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_a_burst_of_non_blocking_connects_is_accepted(served: Served) -> None:
    """Go's client dials without blocking: with a backlog of 5, 43 of 50 got EAGAIN (a8b8e6e)."""
    socks = []
    try:
        for _ in range(50):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            socks.append(s)
        results = [s.connect_ex(str(served.path)) for s in socks]
    finally:
        for s in socks:
            s.close()
    assert results.count(0) == 50, f"refused: {[os.strerror(r) for r in results if r]}"


def test_fifty_concurrent_address_requests_are_all_distinct(served: Served) -> None:
    _, pool = served.post("IpamDriver.RequestPool", {"Pool": "10.60.0.0/24", "AddressSpace": "LocalIpvlan"})
    got = _parallel(50, lambda i: served.post("IpamDriver.RequestAddress", {"PoolID": pool["PoolID"]}))
    addresses = [reply["Address"] for _, reply in got]  # type: ignore[index]
    assert len(set(addresses)) == 50, f"duplicates: {sorted(addresses)}"


def test_fifty_concurrent_endpoints_are_all_recorded(served: Served) -> None:
    """a8b8e6e answered {} to 17 CreateEndpoint and kept one of them."""
    body = {
        "NetworkID": NET,
        "Options": {"com.docker.network.generic": {"parent": "eth0"}},
        "IPv4Data": [{"Pool": "10.70.0.0/24", "Gateway": "10.70.0.1/24"}],
    }
    assert served.post("NetworkDriver.CreateNetwork", body)[1] == {}

    def create(i: int) -> Any:
        iface = {"Address": f"10.70.0.{i + 2}/24"}
        return served.post(
            "NetworkDriver.CreateEndpoint", {"NetworkID": NET, "EndpointID": f"e{i:02d}", "Interface": iface}
        )

    replies = _parallel(50, create)
    assert all(r == (200, {}) for r in replies), replies
    assert sorted(served.driver.endpoints(NET)) == [f"e{i:02d}" for i in range(50)]


def test_idle_clients_cost_no_threads_and_real_requests_still_pass(served: Served) -> None:
    """1,100 idle connections made 1,101 threads in a8b8e6e; a real request must still be answered."""
    threads_before = threading.active_count()
    idle = []
    try:
        for _ in range(1100):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            idle.append(s)
            _connect(s, served.path)
        started = time.monotonic()
        status, reply = served.post("Plugin.Activate", {}, timeout=10)
        took = time.monotonic() - started
        assert status in (200, 503) and ("Implements" in reply or "busy" in reply["Err"])
        assert threading.active_count() <= threads_before + 8 + 1, "workers are bounded"
        print(f"1,100 idle clients: Activate answered in {took:.2f} s, {threading.active_count()} threads")
    finally:
        for s in idle:
            s.close()
    time.sleep(0.2)
    assert served.post("Plugin.Activate", {})[1]["Implements"]


def test_sigterm_stops_serve_and_removes_the_socket(tmp_path: Path) -> None:
    sock = tmp_path / "p.sock"
    proc = subprocess.Popen(
        ["unshare", "-n", sys.executable, "-m", "ipvlan_driver.cli", "--state-dir", str(tmp_path / "s"), "serve",
         "--socket", str(sock)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert not sock.exists(), "the socket is removed on SIGTERM"
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


# --- fuzzing ---------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_field_names = sorted({k for fields in SCHEMAS.values() for k in fields} | {"Gateway", "Pool", "Interface"})
_bodies = st.dictionaries(st.sampled_from(_field_names) | st.text(max_size=10), _json, max_size=6)
_methods = st.sampled_from([*sorted(SCHEMAS), "Plugin.Activate", "NetworkDriver.GetCapabilities", "No.Such"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=_methods, body=_bodies | _json)
def test_fuzz_every_endpoint_gets_a_well_formed_reply(served: Served, method: str, body: Any) -> None:
    status, reply = served.post(method, body, timeout=10)
    assert isinstance(reply, dict), reply
    assert status in (200, 400, 404), (status, reply)
    if status != 200 or "Err" in reply:
        assert isinstance(reply.get("Err"), str) and reply["Err"]
        assert "internal error" not in reply["Err"], f"a bug, not a refusal: {reply['Err']}"
        if method.startswith("IpamDriver."):
            assert reply.get("Error") == reply["Err"]


_option_text = st.text(st.sampled_from("abcdelmoprtvx_=.0123456789/:- l2l3sbridgeprivatevepaparentipvlan_mode"))


@settings(max_examples=500, deadline=None)
@given(
    pairs=st.lists(_option_text, max_size=4),
    subnets=st.lists(st.text(st.sampled_from("0123456789abcdef.:/%"), max_size=24), max_size=3),
    gateways=st.lists(st.text(st.sampled_from("0123456789abcdef.:/%"), max_size=20), max_size=2),
    name=st.text(max_size=70),
)
def test_fuzz_cli_option_parsing_refuses_or_accepts_cleanly(
    pairs: list[str], subnets: list[str], gateways: list[str], name: str
) -> None:
    try:
        spec = network_spec(name, subnets=subnets, gateways=gateways, options=parse_opt_pairs(pairs))
    except DriverError as exc:
        assert str(exc)
        return
    assert spec.mode in ("l2", "l3", "l3s") and spec.flag in ("bridge", "private", "vepa")
    assert all(g in n for g in spec.gateways for n in spec.subnets if n.version == g.version) or not spec.gateways
