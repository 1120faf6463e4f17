"""The resilience tier: what a driver must survive beyond the docs' one-container-at-a-time examples.

Docker calls a driver concurrently (`docker compose up`), restarts it with the host, and sees requests
refused or a driver killed half-way. Ids are `resilience-<behaviour>`; a backend lacking a hook
(`restart`, `kill`: see backends/base.py) reports the behaviour as unsupported.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

import pytest

import netnsutil as ns

from .backends.base import Attached, BackendRefused
from .cases import Case
from .checks import global_addresses, ping
from .deploy import Deployment
from .examples import ContainerRequest, DocRef, Example, NetworkRequest, load_examples
from .labnet import Lab
from .observe import Observer

COUNT = 50
L2 = NetworkRequest("resil_l2", ("192.168.1.0/24",), ("192.168.1.1",), (("parent", "eth0"),))
L3 = NetworkRequest("resil_l3", ("10.61.0.0/24",), (), (("parent", "eth0"), ("ipvlan_mode", "l3")))
VLAN = NetworkRequest("resil_vlan", ("192.168.20.0/24",), ("192.168.20.1",), (("parent", "eth0.20"),))


def _example(requires: tuple[str, ...] = ()) -> Example:
    """The lab of db_net (an untagged segment and a router on 192.168.1.1), under its own name."""
    base = load_examples()["db_net"]
    raw = {**base.raw, "requires": list(requires), "errata": [], "pings": [], "refusals": [], "representative": False}
    return dataclasses.replace(
        base,
        id="resilience",
        title="Resilience: concurrency, restarts, refusals and crashes (beyond the docs)",
        section="Resilience",
        doc=DocRef("beyond the docs", 0),
        raw=raw,
        networks=[],
        containers=[],
    )


def _case(behaviour: str, network: NetworkRequest, *requires: str, representative: bool = False) -> Any:
    marks = [pytest.mark.xdist_group("resilience")] + ([pytest.mark.representative] if representative else [])
    case = Case(_example(requires), behaviour, {"network": network})
    return pytest.param(case, id=f"resilience-{behaviour}", marks=marks)


def _ipv4(attached: Attached) -> str:
    found = [a for a in global_addresses(attached.netns, attached.ifname) if ":" not in a]
    assert found, f"container {attached.name} has no IPv4 address on {attached.ifname}"
    return found[0].split("/")[0]


def _host_links(dep: Deployment) -> set[tuple[str, str | None]]:
    with Observer(dep.topo.host) as nl:
        return {(link.name, link.kind) for link in nl.links()}


def _our_namespaces(dep: Deployment) -> list[str]:
    return sorted(n for n in ns.list_names() if n.startswith(dep.topo.prefix + "-c-"))


def _lowest(network: NetworkRequest) -> str:
    subnet = ipaddress.ip_network(network.subnets[0])
    first = subnet.network_address + 1
    return str(first + 1)  # the first usable address is the gateway (or reserved, in l3)


@pytest.mark.parametrize("case", [_case("l2-concurrent-runs", L2), _case("l3-concurrent-runs", L3)])
def test_concurrent_runs(case: Case, fresh_lab: Deployment) -> None:
    dep, network = fresh_lab, case.data["network"]
    dep.backend.create_network(network)
    links_before = _host_links(dep)
    names = [f"r{i:02d}" for i in range(COUNT)]
    results = dep.calls(names, lambda n: dep.backend.run(ContainerRequest(n, network.name)))
    failed = {n: r for n, r in zip(names, results, strict=True) if isinstance(r, Exception)}
    for n, r in zip(names, results, strict=True):
        if isinstance(r, Attached):
            dep.attached[n] = r
    assert not failed, f"{len(failed)} of {COUNT} concurrent runs failed: {dict(list(failed.items())[:5])}"
    addresses = {n: _ipv4(a) for n, a in dep.attached.items()}
    duplicated = {a for a in addresses.values() if list(addresses.values()).count(a) > 1}
    assert not duplicated, f"addresses handed out twice: {sorted(duplicated)} ({addresses})"
    listed = dep.backend.network_members(network.name)
    if listed is not None:
        assert listed == set(names), f"the driver lists {len(listed)} of {COUNT}: missing {set(names) - listed}"
    first = dep.attached[names[0]]
    unreachable = [str(r) for n in names[1:] if not (r := ping(first.netns, addresses[n], True)).ok]
    assert not unreachable, f"{len(unreachable)} containers unreachable from {first.name}: {unreachable[:5]}"
    results = dep.calls(names, dep.backend.remove)
    failed = {n: r for n, r in zip(names, results, strict=True) if isinstance(r, Exception)}
    for n in names:
        if n not in failed:
            dep.attached.pop(n, None)
    assert not failed, f"{len(failed)} of {COUNT} concurrent removals failed: {dict(list(failed.items())[:5])}"
    assert _our_namespaces(dep) == [], "every container namespace is gone"
    assert _host_links(dep) == links_before, "no slave is left in the docker host"
    again = dep.backend.run(ContainerRequest("after", network.name))
    dep.attached["after"] = again
    assert _ipv4(again) == min(addresses.values(), key=ipaddress.ip_address), "every address was released"


@pytest.mark.parametrize("case", [_case("refused-run-leaves-nothing", L2, representative=True)])
def test_refused_run_leaves_nothing(case: Case, fresh_lab: Deployment) -> None:
    dep, network = fresh_lab, case.data["network"]
    dep.backend.create_network(network)
    dep.attached["c1"] = dep.backend.run(ContainerRequest("c1", network.name))
    taken = _ipv4(dep.attached["c1"])
    links, spaces = _host_links(dep), _our_namespaces(dep)
    refused = [
        ContainerRequest("c2", network.name, ip=taken),  # address in use
        ContainerRequest("c3", "no_such_net"),  # unknown network
    ]
    for req in refused:
        with pytest.raises(BackendRefused):
            dep.attached[req.name] = dep.backend.run(req)
        assert _host_links(dep) == links, f"refused {req}: links changed"
        assert _our_namespaces(dep) == spaces, f"refused {req}: a namespace was left behind"
    dep.attached["c4"] = dep.backend.run(ContainerRequest("c4", network.name))
    expected = str(ipaddress.ip_address(taken) + 1)
    assert _ipv4(dep.attached["c4"]) == expected, "a refused run must hold no address"


@pytest.mark.parametrize("case", [_case("driver-restart", VLAN, "vlan-create", "restart")])
def test_driver_restart(case: Case, fresh_lab: Deployment) -> None:
    dep, network = fresh_lab, case.data["network"]
    links_before = _host_links(dep)
    dep.backend.create_network(network)
    for name in ("r1", "r2"):
        dep.attached[name] = dep.backend.run(ContainerRequest(name, network.name))
    before = {n: _ipv4(a) for n, a in dep.attached.items()}
    dep.backend.restart_driver()
    assert {n: _ipv4(a) for n, a in dep.attached.items()} == before, "running containers keep their addresses"
    assert ping(dep.attached["r1"].netns, before["r2"], True).ok, "and still reach each other"
    dep.attached["r3"] = dep.backend.run(ContainerRequest("r3", network.name))
    assert _ipv4(dep.attached["r3"]) not in before.values(), "a new container gets a fresh address"
    for name in list(dep.attached):
        dep.backend.remove(name)
        dep.attached.pop(name)
    dep.backend.remove_network(network.name)
    assert _host_links(dep) == links_before, "network rm after the restart deletes the parent the driver made"


@pytest.mark.parametrize("case", [_case("killed-run-leaves-nothing", L2, "kill")])
def test_killed_run_leaves_nothing(case: Case, fresh_lab: Deployment) -> None:
    dep, network = fresh_lab, case.data["network"]
    dep.backend.create_network(network)
    links, spaces = _host_links(dep), _our_namespaces(dep)
    try:
        killed = dep.backend.run_killed(ContainerRequest("k1", network.name))
    except BackendRefused:
        pass  # the run failed: the engine rolled it back
    else:
        # the engine retried against the restarted driver and the run went through: it must be whole
        dep.attached["k1"] = killed
        assert _ipv4(killed) == _lowest(network), "the run completed after the kill holds the first address"
        dep.backend.remove("k1")
        dep.attached.pop("k1")
    assert _host_links(dep) == links, "the killed run left a link in the docker host"
    assert _our_namespaces(dep) == spaces, "the killed run left a namespace"
    dep.attached["k2"] = dep.backend.run(ContainerRequest("k2", network.name))
    assert _ipv4(dep.attached["k2"]) == _lowest(network), "the killed run must hold no address"


@pytest.mark.parametrize("case", [_case("parent-deleted-behind-driver", VLAN, "vlan-create")])
def test_parent_deleted_behind_driver(case: Case, fresh_lab: Deployment) -> None:
    dep, network = fresh_lab, case.data["network"]
    links_before = _host_links(dep)
    dep.backend.create_network(network)
    dep.attached["p1"] = dep.backend.run(ContainerRequest("p1", network.name))
    parent = network.opts["parent"]
    with Lab(dep.topo.host) as nl:
        nl.delete_link(parent)
    try:
        dep.attached["p2"] = dep.backend.run(ContainerRequest("p2", network.name))
    except BackendRefused as exc:
        assert parent in str(exc), f"a refusal must name the missing parent {parent}: {exc}"
    else:
        with Observer(dep.topo.host) as nl:
            link = nl.link(parent)
        assert link is not None and link.kind == "vlan" and link.vlan_id == 20, "the run re-created the parent"
    for name in list(dep.attached):
        dep.backend.remove(name)
        dep.attached.pop(name)
    dep.backend.remove_network(network.name)
    assert _host_links(dep) == links_before, "nothing of the network is left"
