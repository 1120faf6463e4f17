"""SIGKILL at every named step of network create / run / rm / network rm (CLI) and of the plugin's
CreateNetwork / Join / DeleteNetwork; then the next command or `restore` must leave nothing behind, and
the same command, retried, must work.

The driver dies through its fail points (ipvlan_driver/failpoints.py): a real SIGKILL at an exact step.
Only the command that dies is a process of its own; what follows runs in-process (processes are what
costs under emulation).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ipvlan_driver import cli as cli_main
from ipvlan_driver import failpoints
from ipvlan_driver import netns as ns
from ipvlan_driver.driver import Driver, DriverConfig
from ipvlan_driver.netlink import Netlink
from ipvlan_driver.state import DB_NAME
from tests.hosts import docker_host, serving

pytestmark = pytest.mark.kernel
NET = "n" * 64
EP = "e" * 64


@dataclass
class Host:
    netns: str
    state: Path
    prefix: str

    def cli(self, *argv: str, point: str | None = None) -> subprocess.CompletedProcess[str]:
        base = ["--state-dir", str(self.state), "--host-netns", self.netns, "--netns-prefix", self.prefix]
        if point:  # only a process of its own can die by SIGKILL
            env = {**os.environ, failpoints.ENV: point}
            argv_full = [sys.executable, "-m", "ipvlan_driver.cli", *base, *argv]
            return subprocess.run(argv_full, capture_output=True, text=True, env=env, check=False, timeout=120)
        out, err = io.StringIO(), io.StringIO()
        handler = logging.StreamHandler(err)  # the CLI's warnings and repairs, as it prints them on stderr
        handler.setFormatter(logging.Formatter("ipvlan-driver: %(message)s"))
        logger = logging.getLogger("ipvlan_driver")
        logger.addHandler(handler)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli_main.main([*base, *argv])
        finally:
            logger.removeHandler(handler)
        return subprocess.CompletedProcess(list(argv), code, out.getvalue(), err.getvalue())

    def ok(self, *argv: str) -> str:
        proc = self.cli(*argv)
        assert proc.returncode == 0, f"{argv}: {proc.stderr}"
        return proc.stdout

    def links(self) -> set[tuple[str, str | None]]:
        with Netlink(self.netns) as nl:
            return {(link.name, link.kind) for link in nl.links()}

    def spaces(self) -> list[str]:
        return [n for n in ns.list_names() if n.startswith(self.prefix)]

    def intents(self) -> list[Any]:
        with contextlib.closing(sqlite3.connect(self.state / DB_NAME)) as conn:
            return conn.execute("SELECT data FROM intents").fetchall()

    def records(self, kind: str) -> list[str]:
        with contextlib.closing(sqlite3.connect(self.state / DB_NAME)) as conn:
            return [r[0] for r in conn.execute("SELECT key FROM records WHERE kind = ?", (kind,))]


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    with docker_host(f"tkill{os.getpid() % 10000}") as name:
        yield Host(name, tmp_path / "state", f"{name}c-")


def _killed(proc: subprocess.CompletedProcess[str], point: str) -> None:
    assert proc.returncode == -signal.SIGKILL, f"{point}: expected to die there, got {proc.returncode}: {proc.stderr}"


CREATE = ("network", "create", "--subnet=10.20.0.0/24", "-o", "parent=eth0.20", "n20")


@pytest.mark.parametrize("point", ["network-create:intent", "network-create:parent"])
def test_network_create_killed(host: Host, point: str) -> None:
    before = host.links()
    _killed(host.cli(*CREATE, point=point), point)
    restored = host.ok("restore")
    assert "network create n20 was interrupted" in restored
    assert host.links() == before, "the VLAN parent the dead create made is removed"
    assert host.records("networks") == [] and host.records("parents") == [] and host.intents() == []
    host.ok(*CREATE)
    assert ("eth0.20", "vlan") in host.links()
    host.ok("network", "rm", "n20")
    assert host.links() == before


@pytest.mark.parametrize("point", ["network-rm:intent", "network-rm:parent"])
def test_network_rm_killed_then_a_new_network_on_the_parent(host: Host, point: str) -> None:
    """a8b8e6e: rm killed, a new network on the same parent, rm again -> the new network's claim deleted."""
    before = host.links()
    host.ok(*CREATE)
    _killed(host.cli("network", "rm", "n20", point=point), point)
    # no restore: the next verb finishes the dead one first
    second = host.cli("network", "create", "--subnet=10.21.0.0/24", "-o", "parent=eth0.20", "again")
    assert second.returncode == 0, second.stderr
    assert "network rm n20 was interrupted; finished it" in second.stderr
    assert host.records("networks") == ["again"] and host.records("parents") == ["eth0.20"]
    third = host.cli("network", "create", "--subnet=10.22.0.0/24", "-o", "parent=eth0.20", "third")
    assert third.returncode != 0 and "again" in third.stderr, "the parent stays claimed by the new network"
    host.ok("network", "rm", "again")
    assert host.links() == before and host.intents() == []


RUN = ("run", "--net=web", "--name=web1", "-d", "alpine")


@pytest.mark.parametrize("point", ["run:netns", "run:slave", "run:sandbox"])
def test_run_killed(host: Host, point: str) -> None:
    host.ok("network", "create", "--subnet=10.30.0.0/24", "-o", "parent=eth0", "web")
    before = host.links()
    _killed(host.cli(*RUN, point=point), point)
    rm = host.cli("rm", "web1")  # what a user types next: the dead run is undone first
    assert "run web1 was interrupted; undone" in rm.stderr, rm.stderr
    assert host.links() == before, "no slave is left in the host namespace"
    assert host.spaces() == [] and host.intents() == [] and host.records("containers") == []
    host.ok(*RUN)
    assert "10.30.0.2" in host.ok("ps"), "the dead run held no address"
    host.ok("rm", "web1")
    host.ok("network", "rm", "web")
    assert host.spaces() == []


def test_rm_killed(host: Host) -> None:
    host.ok("network", "create", "--subnet=10.30.0.0/24", "-o", "parent=eth0", "web")
    host.ok(*RUN)
    _killed(host.cli("rm", "web1", point="rm:netns"), "rm:netns")
    assert "rm web1 was interrupted; finished it" in host.ok("restore")
    assert host.spaces() == [] and host.records("containers") == [] and host.intents() == []
    host.ok(*RUN)
    assert "10.30.0.2" in host.ok("ps"), "the dead rm's addresses were released"
    host.ok("rm", "web1")
    host.ok("network", "rm", "web")


class Plugin:
    """`ipvlan-driver serve` in the host namespace: a process that dies at a fail point, then restarted
    in-process the way `serve` starts (restore, then serve)."""

    def __init__(self, host: Host, tmp: Path) -> None:
        self.host, self.sock, self.log = host, tmp / "p.sock", tmp / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._serving: contextlib.AbstractContextManager[object] | None = None
        self.repairs: list[str] = []

    def start(self, point: str | None = None) -> None:
        if point is None:
            driver = Driver(DriverConfig(state_dir=self.host.state, host_netns=self.host.netns))
            self.repairs = driver.restore()  # what serve does at start-up
            self._serving = serving(self.sock, driver)
            self._serving.__enter__()
            return
        env = {**os.environ, failpoints.ENV: point}
        argv = [sys.executable, "-m", "ipvlan_driver.cli", "--state-dir", str(self.host.state)]
        argv += ["--host-netns", self.host.netns, "serve", "--socket", str(self.sock)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while not self._alive():
            assert self.proc.poll() is None and time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    def _alive(self) -> bool:
        with socket.socket(socket.AF_UNIX) as s:
            return s.connect_ex(str(self.sock)) == 0

    def call(self, method: str, body: dict[str, Any]) -> Any:
        conn = http.client.HTTPConnection("plugin", timeout=60)
        conn.sock = socket.socket(socket.AF_UNIX)
        conn.sock.connect(str(self.sock))
        try:
            conn.request("POST", f"/{method}", json.dumps(body))
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def stop(self) -> None:
        if self._serving is not None:
            self._serving.__exit__(None, None, None)
            self._serving = None
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            self.proc.wait(30)


@pytest.fixture
def plugin(host: Host, tmp_path: Path) -> Iterator[Plugin]:
    p = Plugin(host, tmp_path)
    try:
        yield p
    finally:
        p.stop()


def _network(parent: str | None) -> dict[str, Any]:
    generic = {"parent": parent} if parent else {}
    return {
        "NetworkID": NET,
        "Options": {"com.docker.network.generic": generic},
        "IPv4Data": [{"Pool": "10.40.0.0/24", "Gateway": "10.40.0.1/24"}],
    }


def _dies(plugin: Plugin, method: str, body: dict[str, Any], point: str) -> None:
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        plugin.call(method, body)
    assert plugin.proc is not None and plugin.proc.wait(30) == -signal.SIGKILL, f"{point}: the plugin did not die"


@pytest.mark.parametrize(
    ("point", "parent"),
    [("network-create:intent", "eth0.40"), ("network-create:parent", "eth0.40"), ("network-create:parent", None)],
)
def test_plugin_create_network_killed(host: Host, plugin: Plugin, point: str, parent: str | None) -> None:
    before = host.links()
    plugin.start(point)
    _dies(plugin, "NetworkDriver.CreateNetwork", _network(parent), point)
    plugin.start()  # serve reconciles at start-up
    assert any("network create" in r for r in plugin.repairs) and host.links() == before, plugin.repairs
    assert plugin.call("NetworkDriver.CreateNetwork", _network(parent)) == {}, "Docker's retry works"
    assert plugin.call("NetworkDriver.DeleteNetwork", {"NetworkID": NET}) == {}
    assert host.links() == before and host.intents() == []


def test_plugin_delete_network_killed(host: Host, plugin: Plugin) -> None:
    before = host.links()
    plugin.start("network-rm:parent")
    assert plugin.call("NetworkDriver.CreateNetwork", _network("eth0.40")) == {}
    _dies(plugin, "NetworkDriver.DeleteNetwork", {"NetworkID": NET}, "network-rm:parent")
    plugin.start()
    assert host.records("networks") == [] and host.records("parents") == [] and host.links() == before
    assert plugin.call("NetworkDriver.DeleteNetwork", {"NetworkID": NET}) == {}, "deleting what is gone is success"


def test_plugin_join_killed(host: Host, plugin: Plugin) -> None:
    plugin.start("join:slave")
    assert plugin.call("NetworkDriver.CreateNetwork", _network("eth0")) == {}
    iface = {"Address": "10.40.0.2/24"}
    ids = {"NetworkID": NET, "EndpointID": EP}
    assert plugin.call("NetworkDriver.CreateEndpoint", {**ids, "Interface": iface}) == {}
    before = host.links()
    _dies(plugin, "NetworkDriver.Join", {**ids, "SandboxKey": "/var/run/docker/netns/x"}, "join:slave")
    assert host.links() != before, "the slave exists when the plugin dies"
    plugin.start()
    assert host.links() == before, f"the dead Join's slave is removed at start-up: {plugin.repairs}"
    reply = plugin.call("NetworkDriver.Join", {**ids, "SandboxKey": "/var/run/docker/netns/x"})
    assert reply["InterfaceName"]["SrcName"], "Docker's retried Join works"
    assert plugin.call("NetworkDriver.DeleteEndpoint", ids) == {}
    assert plugin.call("NetworkDriver.DeleteNetwork", {"NetworkID": NET}) == {}
    assert host.links() == before and host.intents() == []
