"""The libnetwork remote-driver protocol of `ipvlan-driver serve`, spoken over its real unix socket.

Runs on any host (root, namespaces): networks use an existing parent, so no ipvlan kernel is needed
until Join, which tests/kernel covers.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipvlan_driver import netns as ns
from ipvlan_driver.driver import Driver, DriverConfig
from ipvlan_driver.netlink import Netlink
from ipvlan_driver.plugin import PluginServer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")
NET = "a" * 64
EP = "b" * 64


class Client:
    def __init__(self, path: Path) -> None:
        self.path = path

    def raw(self, method: str, body: bytes) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("plugin")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(self.path))
        conn.sock = sock
        conn.request("POST", f"/{method}", body)
        resp = conn.getresponse()
        data = json.loads(resp.read())
        conn.close()
        return resp.status, data

    def __call__(self, method: str, **body: Any) -> Any:
        status, data = self.raw(method, json.dumps(body).encode())
        assert status in (200, 404, 400)
        return data


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[Client]:
    host = f"tplug{os.getpid()}"
    ns.create(host)
    try:
        with Netlink(host) as nl:
            nl.add_veth("eth0", "peer0")
            nl.set_up("eth0")
        driver = Driver(DriverConfig(state_dir=tmp_path / "state", host_netns=host, container_prefix="tplugc-"))
        server = PluginServer(tmp_path / "p.sock", driver)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Client(tmp_path / "p.sock")
        finally:
            server.shutdown()
            server.server_close()
    finally:
        ns.remove(host)


def _create(client: Client, **extra: Any) -> Any:
    body = {
        "NetworkID": NET,
        "Options": {"com.docker.network.generic": {"parent": "eth0", "ipvlan_mode": "l2"}},
        "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": "192.168.1.0/24", "Gateway": "192.168.1.1/24"}],
        "IPv6Data": [],
    }
    body.update(extra)
    return client("NetworkDriver.CreateNetwork", **body)


def test_activate_and_capabilities(plugin: Client) -> None:
    assert plugin("Plugin.Activate") == {"Implements": ["NetworkDriver"]}
    assert plugin("NetworkDriver.GetCapabilities")["Scope"] == "local"


def test_socket_is_root_only(plugin: Client) -> None:
    assert stat.S_IMODE(os.stat(plugin.path).st_mode) == 0o600


def test_unknown_method_is_404(plugin: Client) -> None:
    status, data = plugin.raw("NetworkDriver.Teleport", b"{}")
    assert status == 404 and "Teleport" in data["Err"]


def test_bad_json_is_an_error_reply(plugin: Client) -> None:
    status, data = plugin.raw("NetworkDriver.CreateNetwork", b"{not json")
    assert status == 400 and "not JSON" in data["Err"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"NetworkID": ""}, "NetworkID"),
        ({"Options": {"com.docker.network.generic": {"ipvlan_mode": "l9"}}}, "l9"),
        ({"Options": {"com.docker.network.generic": {"parent": "lo"}}}, "loopback"),
        ({"IPv4Data": [{"Pool": "10.1.100.0/16"}]}, "10.1.0.0/16"),
        ({"IPv4Data": [{"Gateway": "10.0.0.1/24"}]}, "Pool"),
    ],
)
def test_create_network_refusals(plugin: Client, body: dict[str, Any], message: str) -> None:
    reply = _create(plugin, **body)
    assert message in reply["Err"]


def test_network_and_endpoint_lifecycle(plugin: Client) -> None:
    assert _create(plugin) == {}
    assert _create(plugin) == {}, "Docker re-sends CreateNetwork after its restart: idempotent"
    iface = {"Address": "192.168.1.2/24", "AddressIPv6": "", "MacAddress": ""}
    assert plugin("NetworkDriver.CreateEndpoint", NetworkID=NET, EndpointID=EP, Interface=iface) == {}
    info = plugin("NetworkDriver.EndpointOperInfo", NetworkID=NET, EndpointID=EP)
    assert info["Value"]["addresses"] == ["192.168.1.2/24"]
    again = plugin("NetworkDriver.CreateEndpoint", NetworkID=NET, EndpointID="c" * 64, Interface=iface)
    assert "192.168.1.2" in again["Err"] and "in use" in again["Err"]
    assert plugin("NetworkDriver.DeleteNetwork", NetworkID=NET) != {}, "a network with endpoints stays"
    assert plugin("NetworkDriver.DeleteEndpoint", NetworkID=NET, EndpointID=EP) == {}
    assert plugin("NetworkDriver.DeleteEndpoint", NetworkID=NET, EndpointID=EP) == {}, "gone is success"
    assert plugin("NetworkDriver.DeleteNetwork", NetworkID=NET) == {}
    assert plugin("NetworkDriver.DeleteNetwork", NetworkID=NET) == {}, "gone is success"


def test_second_network_on_the_parent_names_the_first(plugin: Client) -> None:
    assert _create(plugin) == {}
    reply = _create(plugin, NetworkID="d" * 64, IPv4Data=[{"Pool": "10.9.0.0/24", "Gateway": "10.9.0.1/24"}])
    assert NET in reply["Err"]


def test_endpoint_outside_the_network_is_refused(plugin: Client) -> None:
    _create(plugin)
    iface = {"Address": "10.0.0.2/24"}
    reply = plugin("NetworkDriver.CreateEndpoint", NetworkID=NET, EndpointID=EP, Interface=iface)
    assert "10.0.0.2" in reply["Err"]


@pytest.mark.parametrize(
    "method",
    ["DiscoverNew", "DiscoverDelete", "ProgramExternalConnectivity", "RevokeExternalConnectivity", "FreeNetwork"],
)
def test_no_op_methods_answer_empty(plugin: Client, method: str) -> None:
    assert plugin(f"NetworkDriver.{method}", NetworkID=NET, EndpointID=EP) == {}


def test_allocate_network_answers_options(plugin: Client) -> None:
    assert plugin("NetworkDriver.AllocateNetwork", NetworkID=NET) == {"Options": {}}
