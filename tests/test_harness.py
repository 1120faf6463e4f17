"""The `plugin` harness plays libnetwork for any remote driver, not only ours: a third party's plugin with an
option of its own gets it untouched, and only the plugin decides whether to refuse it.

Runs on any host (root, one namespace as the docker host); no ipvlan link is made.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.backends.base import HostContext
from conformance.backends.plugin import PluginBackend, PluginRefused
from conformance.examples import ContainerRequest, parse_network_create
from conformance.libnetwork import LibnetworkRefused
from ipvlan_driver.netlink import Netlink
from tests.hosts import docker_host

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
FAKE = Path(__file__).with_name("third_party_plugin.py")


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[PluginBackend]:
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE))} {{socket}} {{state}}"
    with docker_host(f"thar{os.getpid()}") as netns:
        # containers' namespaces start with the host's name: docker_host removes them even after a failure
        host = HostContext(netns=netns, workdir=tmp_path, prefix=f"{netns}c-", options={"plugin_command": command})
        backend = PluginBackend(host)
        try:
            yield backend
        finally:
            backend.close()


def _received(backend: PluginBackend, method: str) -> list[dict[str, Any]]:
    lines = (backend.host.workdir / "state" / "requests.jsonl").read_text().splitlines()
    return [r["body"] for r in map(json.loads, lines) if r["method"] == f"NetworkDriver.{method}"]


def test_own_option_reaches_the_plugin_untouched(harness: PluginBackend) -> None:
    # `vni` and `ipvlan_mode=weird` mean nothing to our driver, which would refuse both: the harness must not
    req = parse_network_create(
        "docker network create -d ipvlan --subnet=10.40.0.0/24 -o vni=4096 -o ipvlan_mode=weird vx1"
    )
    harness.create_network(req)
    (body,) = _received(harness, "CreateNetwork")
    assert body["Options"]["com.docker.network.generic"] == {"vni": "4096", "ipvlan_mode": "weird"}
    assert body["IPv4Data"] == [
        {"AddressSpace": "LocalDefault", "Pool": "10.40.0.0/24", "Gateway": "10.40.0.1/24", "AuxAddresses": {}}
    ]
    assert body["IPv6Data"] == []
    harness.remove_network("vx1")
    assert [b["NetworkID"] for b in _received(harness, "DeleteNetwork")] == [body["NetworkID"]]


def test_the_plugins_refusal_reaches_the_suite_as_the_plugins(harness: PluginBackend) -> None:
    with pytest.raises(PluginRefused, match=r"thirdparty: vni 'lots' is not a VXLAN id"):
        harness.create_network(parse_network_create("docker network create -d ipvlan -o vni=lots vx2"))
    assert "vx2" not in harness.networks
    # the refused network's pool went back: the next network gets the same default pool
    harness.create_network(parse_network_create("docker network create -d ipvlan -o vni=7 vx3"))
    first, second = _received(harness, "CreateNetwork")
    assert first["IPv4Data"][0]["Pool"] == second["IPv4Data"][0]["Pool"] == "172.17.0.0/16"


def test_libnetworks_own_refusal_never_asks_the_plugin(harness: PluginBackend) -> None:
    harness.create_network(parse_network_create("docker network create -d ipvlan --subnet=10.41.0.0/24 vx4"))
    with pytest.raises(LibnetworkRefused, match="Pool overlaps with other one on this address space"):
        harness.create_network(parse_network_create("docker network create -d ipvlan --subnet=10.41.0.0/25 vx5"))
    assert len(_received(harness, "CreateNetwork")) == 1


def test_the_plugin_decides_whether_libnetwork_allocates_a_gateway(harness: PluginBackend) -> None:
    harness.create_network(parse_network_create("docker network create -d ipvlan --subnet=10.42.0.0/24 -o routed=1 r1"))
    harness.create_network(parse_network_create("docker network create -d ipvlan --subnet=10.43.0.0/24 r2"))
    asked = [b["Options"]["com.docker.network.generic"] for b in _received(harness, "GwAllocCheck")]
    assert asked == [{"routed": "1"}, {}], "GwAllocCheck comes first, with the options CreateNetwork will carry"
    routed, plain = (b["IPv4Data"][0] for b in _received(harness, "CreateNetwork"))
    assert "Gateway" not in routed and plain["Gateway"] == "10.43.0.1/24"


def test_a_container_gets_libnetworks_address_on_the_plugins_interface(harness: PluginBackend) -> None:
    harness.create_network(parse_network_create("docker network create -d ipvlan --subnet=10.44.0.0/24 -o vni=9 v"))
    attached = harness.run(ContainerRequest("c1", "v"))
    (endpoint,) = _received(harness, "CreateEndpoint")
    assert endpoint["Interface"] == {"Address": "10.44.0.2/24", "MacAddress": ""}
    with Netlink(attached.netns) as nl:
        eth0 = nl.require("eth0").index
        assert [str(a.interface) for a in nl.addresses() if a.index == eth0] == ["10.44.0.2/24"]
    harness.remove("c1")
    ids = {"NetworkID": endpoint["NetworkID"], "EndpointID": endpoint["EndpointID"]}
    assert _received(harness, "Leave") == _received(harness, "DeleteEndpoint") == [ids]
