"""L3 mode from afar: a remote host reaches containers only once the network in between has a route
to the container subnet via the docker host's address (the docs' closing L3 statement)."""

from __future__ import annotations

import ipaddress

import pytest

from .cases import Case, example_cases, params
from .checks import global_addresses, ping
from .deploy import Deployment, deploy_containers, deploy_networks
from .labnet import Lab
from .topology import HOST_ADDR, REMOTE_ADDR


@pytest.mark.parametrize(
    "case", params(example_cases("remote-host-needs-route", when=lambda ex: bool(ex.raw.get("remote"))))
)
def test_remote_host_needs_route(case: Case, fresh_lab: Deployment) -> None:
    dep = fresh_lab
    with Lab(dep.topo.upstream) as up:
        up.set_sysctl("net.ipv4.ip_forward", "1")
    deploy_networks(dep)
    deploy_containers(dep)
    name, attached = next(iter(dep.attached.items()))
    cidr = next(a for a in global_addresses(attached.netns) if ":" not in a)
    target = cidr.split("/")[0]
    remote = dep.topo.remote
    before = ping(remote, target, expect_reply=False)
    assert not before.ok, f"without a route to the container network the remote host must not reach it: {before}"
    subnet = ipaddress.ip_interface(cidr).network
    gateway = ipaddress.ip_interface(HOST_ADDR).ip
    with Lab(dep.topo.upstream) as up:
        up.add_route(subnet, "br0", str(gateway))
    after = ping(remote, target, expect_reply=True)
    assert after.ok, f"with `{subnet} via {gateway}` upstream, {REMOTE_ADDR} should reach {name}: {after}"
    back = ping(attached.netns, REMOTE_ADDR.split("/")[0], expect_reply=True)
    assert back.ok, f"{name} should reach the remote host once the route exists: {back}"
