"""The sandbox contract on any host (root, namespaces, veth): our driver's sandbox set-up passes
conformance/test_sandbox.py's read-only checks and the sandbox mutants fail them, with a veth end
playing the ipvlan slave (its peer on the docker host stands in for the parent)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance import test_sandbox
from conformance.backends.base import Attached, run_in_netns
from conformance.cases import Case
from conformance.checks import bare_namespace_links, links, sysctl
from conformance.deploy import Deployment
from conformance.examples import load_examples
from conformance.topology import Topology
from ipvlan_driver import driver as drv
from ipvlan_driver import netns as ns
from ipvlan_driver.netlink import Netlink
from tests import mutants
from tests.hosts import docker_host

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")
HOST = f"hsb{os.getpid() % 10000}"
CONTAINER = f"{HOST}-c1"
V4 = ipaddress.ip_interface("192.168.1.10/24")
V6 = ipaddress.ip_interface("2001:db8::10/64")


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Callable[[type[drv.Driver], tuple[Any, ...]], Deployment]]:
    """Set up container c1 of db_net with a driver class and addresses; a deployment to check it."""
    with docker_host(HOST, uplinks=("up0",)):

        def make(cls: type[drv.Driver], addresses: tuple[Any, ...]) -> Deployment:
            driver = cls(drv.DriverConfig(state_dir=tmp_path, host_netns=HOST))
            ns.create(CONTAINER)
            with Netlink(HOST) as nl:
                nl.set_down("peer0")  # the slave moves in down, as an ipvlan slave is made
            info = drv.JoinInfo("peer0", addresses, (), False)
            driver._enter_sandbox(info, CONTAINER)
            example = load_examples()["db_net"]
            dep = Deployment(example, Topology(HOST, host_name=HOST), backend=None)  # type: ignore[arg-type]
            dep.attached["c1"] = Attached("c1", CONTAINER)
            return dep

        yield make


def _case(behaviour: str) -> Case:
    return Case(load_examples()["db_net"], behaviour)


CHECKS = {
    "netns-holds-lo-and-eth0": test_sandbox.test_netns_holds_lo_and_eth0,
    "eth0-matches-parent": test_sandbox.test_eth0_matches_parent,
    "ipv6-off-without-v6-address": test_sandbox.test_ipv6_off_without_v6_address,
}


@pytest.mark.parametrize("behaviour", sorted(CHECKS))
def test_our_sandbox_passes(sandbox: Callable[..., Deployment], behaviour: str) -> None:
    dep = sandbox(drv.Driver, (V4,))
    CHECKS[behaviour](_case(behaviour), dep)


@pytest.mark.parametrize(
    ("mutant", "behaviour", "message"),
    [
        (mutants.LoopbackLeftDown, "netns-holds-lo-and-eth0", "lo is down"),
        (mutants.OverlayMtu, "eth0-matches-parent", "MTU 1450"),
        (mutants.IPv6LeftOn, "ipv6-off-without-v6-address", "IPv6 is on"),
    ],
)
def test_sandbox_mutant_fails_its_check(
    sandbox: Callable[..., Deployment], mutant: type[drv.Driver], behaviour: str, message: str
) -> None:
    dep = sandbox(mutant, (V4,))
    with pytest.raises(AssertionError, match=message):
        CHECKS[behaviour](_case(behaviour), dep)


def test_a_stray_link_in_the_sandbox_is_named(sandbox: Callable[..., Deployment]) -> None:
    dep = sandbox(drv.Driver, (V4,))
    with Netlink(CONTAINER) as nl:
        nl.add_veth("stray0", "stray1")
    with pytest.raises(AssertionError, match=r"besides lo and eth0: \['stray0', 'stray1'\]"):
        test_sandbox.test_netns_holds_lo_and_eth0(_case("netns-holds-lo-and-eth0"), dep)


def test_ipv6_stays_on_with_an_ipv6_address(sandbox: Callable[..., Deployment]) -> None:
    sandbox(drv.Driver, (V4, V6))
    assert sysctl(CONTAINER, "net.ipv6.conf.eth0.disable_ipv6") == "0"
    with Netlink(CONTAINER) as nl:
        assert {str(a.interface) for a in nl.addresses("eth0") if a.interface.version == 6} >= {str(V6)}


def test_ipv4_only_eth0_never_gets_a_link_local_address(sandbox: Callable[..., Deployment]) -> None:
    sandbox(drv.Driver, (V4,))
    with Netlink(CONTAINER) as nl:
        assert [str(a.interface) for a in nl.addresses("eth0")] == [str(V4)]


def test_the_bare_namespace_probe_cleans_up() -> None:
    assert "lo" in bare_namespace_links(f"{HOST}-")
    assert not [n for n in ns.list_names() if n.startswith(HOST)]  # other processes' namespaces may come and go


def test_links_report_mtu(sandbox: Callable[..., Deployment]) -> None:
    sandbox(drv.Driver, (V4,))
    assert links(CONTAINER)["eth0"].mtu == links(HOST)["up0"].mtu == 1500


def test_resolved_reads_ping_output() -> None:
    busybox = "PING ipv2 (192.168.1.3): 56 data bytes\n"
    iputils = "PING ipv2 (2001:db8::3) 56 data bytes\n"
    assert test_sandbox._RESOLVED.search(busybox).group(1) == "192.168.1.3"  # type: ignore[union-attr]
    assert test_sandbox._RESOLVED.search(iputils).group(1) == "2001:db8::3"  # type: ignore[union-attr]
    assert test_sandbox._RESOLVED.search("ping: bad address 'ipv2'\n") is None


class _Exec:
    """Just enough of a backend for `_resolved`: exec in the sandbox, with its hosts file as /etc/hosts."""

    def exec(self, name: str, argv: list[str], timeout: float = 30) -> Any:
        return run_in_netns(CONTAINER, argv, timeout)


@pytest.mark.skipif(shutil.which("ping") is None, reason="needs ping")
def test_resolved_asks_the_container(sandbox: Callable[..., Deployment]) -> None:
    dep = sandbox(drv.Driver, (V4,))
    dep.backend = _Exec()  # type: ignore[assignment]
    hosts = ns.hosts_file(CONTAINER)
    hosts.parent.mkdir(parents=True, exist_ok=True)
    hosts.write_text(f"127.0.0.1\tlocalhost\n{V4.ip}\tpeer-c2\n")
    assert test_sandbox._resolved(dep, "c1", "peer-c2") == str(V4.ip)
    with Netlink(CONTAINER) as nl:
        # as in the lab: a lookup of an unknown name goes out to the host's resolvers and is never answered
        nl.add_route(ipaddress.ip_network("0.0.0.0/0"), "eth0")
    started = time.monotonic()
    assert test_sandbox._resolved(dep, "c1", "gone-c3") is None
    assert time.monotonic() - started < test_sandbox.RESOLVE_WAIT + 1
