"""Deliberately broken drivers: each gets one documented behaviour wrong.

`pytest conformance --backend=tests.mutants:<name>` runs the suite against one; tests/kernel/test_mutants.py
proves the suite fails every one of them, naming the documented example that caught it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Any

from conformance.backends.native import NativeBackend
from ipvlan_driver import driver as drv
from ipvlan_driver.model import IPInterface, IPNetwork, ParentPlan
from ipvlan_driver.netlink import Netlink


class L3GatewayRoute(drv.Driver):
    """l3 containers get `default via <first address>` as if they were l2."""

    @staticmethod
    def routes_for(network: drv.Network, address: IPInterface) -> list[tuple[IPNetwork, str | None]]:
        default = ipaddress.ip_network("0.0.0.0/0" if address.version == 4 else "::/0")
        return [(default, str(address.network.network_address + 1))]


class GatewayNotDefaulted(drv.Driver):
    """l2 without --gateway: no default route (the docs say the first usable address is used)."""

    @staticmethod
    def routes_for(network: drv.Network, address: IPInterface) -> list[tuple[IPNetwork, str | None]]:
        if network.spec.mode == "l2" and not network.spec.gateways:
            return []
        return drv.Driver.routes_for(network, address)


class VlanLeftBehind(drv.Driver):
    """`network rm` forgets to delete the `name.vid` sub-interface it created."""

    @staticmethod
    def _delete_owned_parent(nl: Netlink, plan: ParentPlan) -> None:
        if plan.kind != "vlan":
            drv.Driver._delete_owned_parent(nl, plan)


class PremadeDeleted(drv.Driver):
    """`network rm` deletes any parent that looks like a sub-interface, even one the user made."""

    def delete_network(self, name: str) -> None:
        parent = self.get_network(name).parent
        super().delete_network(name)
        if parent.kind == "existing" and parent.name != "eth0":
            with self._host() as nl:
                nl.delete_link(parent.name)


class ModeIgnored(drv.Driver):
    """Every network is created in l2 mode whatever ipvlan_mode says."""

    def create_network(self, spec: Any) -> drv.Network:
        return super().create_network(dataclasses.replace(spec, mode="l2"))


class FlagIgnored(drv.Driver):
    """ipvlan_flag is accepted and dropped (Docker 20.10 does this)."""

    def create_network(self, spec: Any) -> drv.Network:
        return super().create_network(dataclasses.replace(spec, flag="bridge"))


class WrongVlanId(drv.Driver):
    """`eth0.20` is created with VLAN id 21."""

    @staticmethod
    def _make_parent(nl: Netlink, plan: ParentPlan) -> None:
        if plan.kind == "vlan" and plan.vlan_id is not None:
            plan = dataclasses.replace(plan, vlan_id=plan.vlan_id + 1)
        drv.Driver._make_parent(nl, plan)


class NoNodad(drv.Driver):
    """IPv6 addresses are added without nodad (the shared MAC makes DAD fail them)."""

    @staticmethod
    def _add_container_address(cnl: Netlink, address: IPInterface) -> None:
        cnl.add_address(drv.CONTAINER_IFNAME, address, nodad=False)


class AddressesNotReleased(drv.Driver):
    """Removed containers keep their addresses (the docs' "Address already in use" bug)."""

    @staticmethod
    def _release(network: drv.Network, name: str) -> None:
        return None


class InternalNotIsolated(drv.Driver):
    """--internal is accepted but the network still hangs off the given or default parent eth0."""

    def create_network(self, spec: Any) -> drv.Network:
        if spec.internal or spec.parent is None:
            spec = dataclasses.replace(spec, internal=False, parent="eth0")
        return super().create_network(spec)


class NamesNotResolved(drv.Driver):
    """No per-container hosts files: `ping ipv1` cannot resolve."""

    def _write_hosts(self, network: drv.Network, new_netns: str | None) -> None:
        return None


class DefaultPoolIgnoresHost(drv.Driver):
    """The default pool ignores the host's own addresses (docker0's 172.17.0.0/16)."""

    def _taken_subnets(self, nl: Netlink) -> list[IPNetwork]:
        return []


class ParentShared(drv.Driver):
    """A second network may use a parent another ipvlan network already has."""

    def _check_parent_free(self, plan: ParentPlan) -> None:
        return None


@dataclass(frozen=True)
class Mutant:
    name: str
    driver: type[drv.Driver]
    select: str  # `-k` expression: the documented examples whose tests must catch it
    caught_by: str  # a test id that must fail


MUTANTS = [
    Mutant("l3_gateway_route", L3GatewayRoute, "ipnet210 and routes", "ipnet210-c1-routes-v4"),
    Mutant("gateway_not_defaulted", GatewayNotDefaulted, "db_net_ipv and routes", "db_net_ipv-ipv1-routes-v4"),
    Mutant("vlan_left_behind", VlanLeftBehind, "ipvlan20 and lifecycle", "ipvlan20-parent-lifecycle"),
    Mutant("premade_deleted", PremadeDeleted, "ipvlan40 and lifecycle", "ipvlan40-parent-lifecycle"),
    Mutant("mode_ignored", ModeIgnored, "ipnet210 and (mode or noarp)", "ipnet210-ipvlan-mode-and-flag"),
    Mutant("flag_ignored", FlagIgnored, "flag-private and ping", "flag-private-ping-c1-cannot-reach-c2"),
    Mutant("wrong_vlan_id", WrongVlanId, "ipvlan30 and lifecycle", "ipvlan30-parent-lifecycle"),
    Mutant("no_nodad", NoNodad, "v6ipvlan139 and nodad", "v6ipvlan139-c1-ipv6-nodad"),
    Mutant(
        "addresses_not_released", AddressesNotReleased, "ipnet110 and released", "ipnet110-addresses-released-on-rm"
    ),
    Mutant(
        "internal_not_isolated", InternalNotIsolated, "isolated2 and (lifecycle or ping)", "isolated2-parent-lifecycle"
    ),
    Mutant(
        "names_not_resolved", NamesNotResolved, "db_net_ipv and by-name", "db_net_ipv-ping-by-name-ipv2-reaches-ipv1"
    ),
    Mutant("default_pool_ignores_host", DefaultPoolIgnoresHost, "isolated3 and addresses", "isolated3-cid3-addresses"),
    Mutant("parent_shared", ParentShared, "ipvlan20 and second-network", "ipvlan20-second-network-on-parent-refused"),
]


def _factory(mutant: Mutant) -> type[NativeBackend]:
    return type(f"Mutant_{mutant.name}", (NativeBackend,), {"name": mutant.name, "driver_factory": mutant.driver})


globals().update({m.name: _factory(m) for m in MUTANTS})
