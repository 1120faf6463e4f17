"""The libnetwork remote-driver protocol of `ipvlan-driver serve`, spoken over its real unix socket.

Runs on any host (root, namespaces): networks use an existing parent, so no ipvlan kernel is needed
until Join, which tests/kernel covers.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipvlan_driver.driver import Driver, DriverConfig
from ipvlan_driver.netlink import Netlink
from tests.hosts import docker_host, serving

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
    with docker_host(f"tplug{os.getpid()}") as host:
        driver = Driver(DriverConfig(state_dir=tmp_path / "state", host_netns=host, container_prefix="tplugc-"))
        with serving(tmp_path / "p.sock", driver):
            yield Client(tmp_path / "p.sock")


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
    assert plugin("Plugin.Activate") == {"Implements": ["NetworkDriver", "IpamDriver"]}
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


# IpamDriver ---------------------------------------------------------------------------------

GATEWAY = {"RequestAddressType": "com.docker.network.gateway"}


def _pool(client: Client, pool: str = "", v6: bool = False) -> Any:
    return client("IpamDriver.RequestPool", AddressSpace="LocalIpvlan", Pool=pool, SubPool="", Options={}, V6=v6)


def test_ipam_address_spaces(plugin: Client) -> None:
    spaces = plugin("IpamDriver.GetDefaultAddressSpaces")
    assert spaces["LocalDefaultAddressSpace"] and spaces["GlobalDefaultAddressSpace"]
    assert plugin("IpamDriver.GetCapabilities")["RequiresMACAddress"] is False


def test_ipam_refuses_a_subnet_with_host_bits_naming_the_canonical_one(plugin: Client) -> None:
    assert "172.16.48.0/22" in _pool(plugin, "172.16.50.0/22")["Err"]


def test_ipam_default_pool_skips_the_hosts_networks_and_its_own(plugin: Client, tmp_path: Path) -> None:
    host = f"tplug{os.getpid()}"  # this process's: another run's tplug namespaces may exist meanwhile
    with Netlink(host) as nl:
        nl.add_address("eth0", ipaddress.ip_interface("172.17.0.1/16"))  # a docker0 holds 172.17
    first = _pool(plugin)
    assert first["Pool"] == "172.18.0.0/16"
    assert _pool(plugin)["Pool"] == "172.19.0.0/16", "a pool already granted is taken"
    plugin("IpamDriver.ReleasePool", PoolID=first["PoolID"])
    assert _pool(plugin)["Pool"] == "172.18.0.0/16", "a released pool is free again"
    assert "IPv6" in _pool(plugin, v6=True)["Err"]


def test_ipam_gateway_first_then_containers_from_the_next_address(plugin: Client) -> None:
    pid = _pool(plugin, "192.168.112.0/24")["PoolID"]
    assert plugin("IpamDriver.RequestAddress", PoolID=pid, Address="", Options=GATEWAY)["Address"] == "192.168.112.1/24"
    assert plugin("IpamDriver.RequestAddress", PoolID=pid, Address="")["Address"] == "192.168.112.2/24"
    assert plugin("IpamDriver.RequestAddress", PoolID=pid, Address="192.168.112.50")["Address"] == "192.168.112.50/24"
    assert "192.168.112.50" in plugin("IpamDriver.RequestAddress", PoolID=pid, Address="192.168.112.50")["Err"]
    assert plugin("IpamDriver.ReleaseAddress", PoolID=pid, Address="192.168.112.2") == {}
    assert plugin("IpamDriver.RequestAddress", PoolID=pid, Address="")["Address"] == "192.168.112.2/24"
    assert "overlaps" in _pool(plugin, "192.168.112.0/25")["Err"]
    assert plugin("IpamDriver.ReleasePool", PoolID=pid) == {}
    assert plugin("IpamDriver.ReleaseAddress", PoolID=pid, Address="192.168.112.2") == {}, "gone is success"
    assert "no address pool" in plugin("IpamDriver.RequestAddress", PoolID=pid, Address="")["Err"]


def test_ipam_explicit_gateway_and_v6(plugin: Client) -> None:
    pid = _pool(plugin, "2001:db8:abc2::/64", v6=True)["PoolID"]
    gw = plugin("IpamDriver.RequestAddress", PoolID=pid, Address="2001:db8:abc2::22", Options=GATEWAY)
    assert gw["Address"] == "2001:db8:abc2::22/64"
    assert plugin("IpamDriver.RequestAddress", PoolID=pid, Address="")["Address"] == "2001:db8:abc2::1/64"
    assert "not an IPv4" in _pool(plugin, "2001:db8:1::/64")["Err"]
