"""The plugin in libnetwork's order of calls, with real links: no slave outlives its endpoint.

libnetwork calls Leave before it tears a sandbox down, and tearing down moves the slave back to the host
namespace under its join-time name (SrcName); DeleteEndpoint is the driver's last chance to delete it.
When the sandbox's namespace is destroyed instead, the slave is gone with it and every call still succeeds.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

from ipvlan_driver import netns as ns
from ipvlan_driver.driver import Driver, DriverConfig
from ipvlan_driver.netlink import Netlink
from ipvlan_driver.plugin import Protocol

pytestmark = [pytest.mark.kernel, pytest.mark.root]

NET, EP = "n" * 64, "e" * 64


@dataclass
class Lab:
    host: str
    sandbox: str
    call: Any


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    tag = f"{os.getpid()}-{secrets.token_hex(2)}"
    host, sandbox = f"kph{tag}", f"kps{tag}"
    ns.create(host)
    ns.create(sandbox)
    try:
        with Netlink(host) as nl:
            nl.add_dummy("eth0")
            nl.set_up("eth0")
        protocol = Protocol(Driver(DriverConfig(state_dir=tmp_path / "state", host_netns=host)))

        def call(method: str, **body: Any) -> Any:
            status, reply = protocol.handle(f"NetworkDriver.{method}", json.dumps(body).encode())
            assert status == HTTPStatus.OK, f"{method}: {reply}"
            return reply

        call(
            "CreateNetwork",
            NetworkID=NET,
            Options={"com.docker.network.generic": {"parent": "eth0", "ipvlan_mode": "l2"}},
            IPv4Data=[{"Pool": "192.168.1.0/24", "Gateway": "192.168.1.1/24"}],
        )
        call("CreateEndpoint", NetworkID=NET, EndpointID=EP, Interface={"Address": "192.168.1.2/24"})
        yield Lab(host, sandbox, call)
    finally:
        ns.remove(sandbox)
        ns.remove(host)


def _host_links(lab: Lab) -> set[str]:
    with Netlink(lab.host) as nl:
        return {link.name for link in nl.links()}


def _join_into_sandbox(lab: Lab) -> str:
    src = str(lab.call("Join", NetworkID=NET, EndpointID=EP, SandboxKey="")["InterfaceName"]["SrcName"])
    with Netlink(lab.host) as nl:
        nl.move_to_netns(src, lab.sandbox, "eth0")  # what libnetwork does with SrcName / DstPrefix
    return src


def test_slave_moved_back_by_sandbox_teardown_is_deleted(lab: Lab) -> None:
    before = _host_links(lab)
    src = _join_into_sandbox(lab)
    lab.call("Leave", NetworkID=NET, EndpointID=EP)
    with Netlink(lab.sandbox) as nl:
        nl.move_to_netns("eth0", lab.host, src)  # libnetwork's sandbox teardown, after Leave
    assert src in _host_links(lab)
    lab.call("DeleteEndpoint", NetworkID=NET, EndpointID=EP)
    assert _host_links(lab) == before, f"slave {src} outlived its endpoint"
    lab.call("DeleteNetwork", NetworkID=NET)


def test_slave_gone_with_its_sandbox(lab: Lab) -> None:
    before = _host_links(lab)
    _join_into_sandbox(lab)
    ns.remove(lab.sandbox)
    lab.call("Leave", NetworkID=NET, EndpointID=EP)
    lab.call("DeleteEndpoint", NetworkID=NET, EndpointID=EP)
    lab.call("DeleteNetwork", NetworkID=NET)
    assert _host_links(lab) == before


def test_a_user_link_with_the_slave_name_is_left_alone(lab: Lab) -> None:
    src = _join_into_sandbox(lab)
    lab.call("Leave", NetworkID=NET, EndpointID=EP)
    with Netlink(lab.host) as nl:
        nl.add_dummy(src)  # not ours: a dummy, not an ipvlan slave
    lab.call("DeleteEndpoint", NetworkID=NET, EndpointID=EP)
    assert src in _host_links(lab)
