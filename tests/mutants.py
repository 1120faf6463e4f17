"""Deliberately broken drivers: each gets one documented behaviour wrong.

`pytest conformance --backend=tests.mutants:<name>` runs the suite against one; tests/kernel/test_mutants.py
proves the suite fails every one of them, naming the documented example that caught it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import ipaddress
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from conformance.backends.native import NativeBackend
from ipvlan_driver import driver as drv
from ipvlan_driver.model import IPInterface, IPNetwork, NetworkSpec, ParentPlan
from ipvlan_driver.netlink import Netlink
from ipvlan_driver.state import child_key

T = TypeVar("T")


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

    def create_network(self, spec: NetworkSpec, network_id: str | None = None) -> drv.Network:
        return super().create_network(dataclasses.replace(spec, mode="l2"), network_id)


class FlagIgnored(drv.Driver):
    """ipvlan_flag is accepted and dropped (Docker 20.10 does this)."""

    def create_network(self, spec: NetworkSpec, network_id: str | None = None) -> drv.Network:
        return super().create_network(dataclasses.replace(spec, flag="bridge"), network_id)


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

    def create_network(self, spec: NetworkSpec, network_id: str | None = None) -> drv.Network:
        if spec.internal or spec.parent is None:
            spec = dataclasses.replace(spec, internal=False, parent="eth0")
        return super().create_network(spec, network_id)


class NamesNotResolved(drv.Driver):
    """No per-container hosts files: `ping ipv1` cannot resolve."""

    @staticmethod
    def _link_hosts(path: Path, netns_name: str) -> None:
        return None


class DefaultPoolIgnoresHost(drv.Driver):
    """The default pool ignores the host's own addresses (docker0's 172.17.0.0/16)."""

    def _taken_subnets(self, nl: Netlink, networks: list[drv.Network]) -> list[IPNetwork]:
        return []


class ParentShared(drv.Driver):
    """A second network may use a parent another ipvlan network already has."""

    def _check_parent_free(self, plan: ParentPlan) -> None:
        return None


class LegacyStateStore:
    """a8b8e6e's store: JSON files, a re-entry depth shared by every thread, temp files named by pid.

    A second thread sees depth > 0 and skips flock; there are no transactions and no intents.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._depth = 0

    def _path(self, kind: str, key: str) -> Path:
        return self.root / kind / (quote(key, safe="") + ".json")

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0
                fcntl.flock(fh, fcntl.LOCK_UN)

    def lock_depth(self) -> int:
        return self._depth

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        yield

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        try:
            with open(self._path(kind, key)) as fh:
                data: dict[str, Any] = json.load(fh)
                return data
        except FileNotFoundError:
            return None

    def load(self, kind: str, key: str, parse: Callable[[dict[str, Any]], T]) -> T | None:
        rec = self.get(kind, key)
        return None if rec is None else parse(rec)

    def put(self, kind: str, key: str, record: dict[str, Any]) -> None:
        path = self._path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as fh:
            json.dump(record, fh)
        os.replace(tmp, path)

    def delete(self, kind: str, key: str) -> None:
        self._path(kind, key).unlink(missing_ok=True)

    def keys(self, kind: str) -> list[str]:
        directory = self.root / kind
        return sorted(unquote(p.name[:-5]) for p in directory.glob("*.json")) if directory.is_dir() else []

    def children(self, kind: str, parent: str) -> list[tuple[str, dict[str, Any]]]:
        start = child_key(parent, "")
        found = ((k[len(start) :], self.get(kind, k)) for k in self.keys(kind) if k.startswith(start))
        return [(child, rec) for child, rec in found if rec is not None]

    def first_child(self, kind: str, parent: str, low: str = "", high: str | None = None) -> str | None:
        inside = (c for c, _rec in self.children(kind, parent) if c >= low and (high is None or c <= high))
        return min(inside, default=None)

    def delete_children(self, kind: str, parent: str) -> None:
        for child, _rec in self.children(kind, parent):
            self.delete(kind, child_key(parent, child))

    def quarantine(self, kind: str, key: str, reason: str) -> None:
        self.delete(kind, key)

    def begin_intent(self, intent: dict[str, Any]) -> int:
        return 0

    def end_intent(self, intent_id: int) -> None:
        return None

    def pending_intents(self) -> list[tuple[int, dict[str, Any]]]:
        return []


class LegacyState(drv.Driver):
    """The driver on a8b8e6e's state store: concurrent verbs lose records and hand out addresses twice."""

    def __init__(self, config: drv.DriverConfig | None = None) -> None:
        super().__init__(config)
        self.store = LegacyStateStore(self.config.state_dir)  # type: ignore[assignment]


class RestoreForgetsContainers(drv.Driver):
    """A restart reconciles too eagerly: running containers' addresses are released and handed out again."""

    def restore(self) -> list[str]:
        lines = super().restore()
        with self.store.lock(), self.store.transaction():
            for network in self.networks():
                for endpoint in self.endpoints(network.spec.name):
                    self._release(network, endpoint)
                    self.store.delete("endpoints", child_key(network.spec.name, endpoint))
        return lines


class ParentCrash(drv.Driver):
    """A parent deleted behind the driver's back makes the next run crash instead of refusing or repairing."""

    def _ensure_parent(self, nl: Netlink, network: drv.Network) -> None:
        if nl.link(network.parent.name) is None:
            raise RuntimeError(f"unexpected: {network.parent.name} vanished")


class LoopbackLeftDown(drv.Driver):
    """The sandbox's lo stays down (CNI's ipvlan plugin leaves lo to another plugin; libnetwork brings it up)."""

    def _enter_sandbox(self, info: drv.JoinInfo, netns_name: str) -> None:
        super()._enter_sandbox(info, netns_name)
        with Netlink(netns_name) as cnl:
            cnl.set_down("lo")


class OverlayMtu(drv.Driver):
    """eth0 gets a fixed overlay-style MTU of 1450 instead of its parent's."""

    def _enter_sandbox(self, info: drv.JoinInfo, netns_name: str) -> None:
        super()._enter_sandbox(info, netns_name)
        with Netlink(netns_name) as cnl:
            cnl.set_mtu(drv.CONTAINER_IFNAME, 1450)


class IPv6LeftOn(drv.Driver):
    """IPv6 stays on for an eth0 without an IPv6 address (Docker before 26.0.2, CVE-2024-32473)."""

    @staticmethod
    def _set_ipv6(cnl: Netlink, enabled: bool) -> None:
        return None


class NameOutlivesContainer(drv.Driver):
    """`rm` leaves the container's name in the network's hosts file: only a `run` writes to it."""

    def _drop_from_hosts(self, network: str, name: str) -> None:
        return None

    def _write_hosts(self, network: str, new_netns: str | None) -> None:
        if new_netns is not None:  # restore's rewrite would take the name out
            super()._write_hosts(network, new_netns)


class SlaveBackOnHost(drv.Driver):
    """`rm` hands eth0 back to the host, as libnetwork's sandbox teardown does, and never deletes it there."""

    def _finish_rm(self, name: str, network: str, netns_name: str, intent: int) -> None:
        with contextlib.suppress(Exception), Netlink(netns_name) as cnl:
            cnl.move_to_netns(drv.CONTAINER_IFNAME, self.config.host_netns or "", drv.slave_name(name))
        super()._finish_rm(name, network, netns_name, intent)

    def _delete_host_slave(self, endpoint: str) -> None:
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
    Mutant("legacy_state_store", LegacyState, "resilience and l2-concurrent", "resilience-l2-concurrent-runs"),
    Mutant("restore_forgets_containers", RestoreForgetsContainers, "resilience-driver", "resilience-driver-restart"),
    Mutant("parent_crash", ParentCrash, "resilience-parent", "resilience-parent-deleted-behind-driver"),
    Mutant("loopback_left_down", LoopbackLeftDown, "ipvlan20 and netns-holds", "ipvlan20-netns-holds-lo-and-eth0"),
    Mutant("overlay_mtu", OverlayMtu, "ipnet210 and eth0-matches", "ipnet210-eth0-matches-parent"),
    Mutant("ipv6_left_on", IPv6LeftOn, "db_net_ipv and ipv6-off", "db_net_ipv-ipv6-off-without-v6-address"),
    Mutant(
        "name_outlives_container",
        NameOutlivesContainer,
        "db_net_ipv and rm-leaves",
        "db_net_ipv-rm-leaves-nothing-observable",
    ),
    Mutant("slave_back_on_host", SlaveBackOnHost, "ipvlan114 and rm-leaves", "ipvlan114-rm-leaves-nothing-observable"),
]


def _factory(mutant: Mutant) -> type[NativeBackend]:
    return type(f"Mutant_{mutant.name}", (NativeBackend,), {"name": mutant.name, "driver_factory": mutant.driver})


globals().update({m.name: _factory(m) for m in MUTANTS})
