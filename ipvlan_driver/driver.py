"""The driver's verbs (libnetwork's shape): networks, endpoints, sandboxes, restore.

Each verb runs under the state lock and either completes or undoes what it did. Only links the
driver created are ever deleted; deleting what is already gone is success.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import ipaddress
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import netns as ns
from .errors import ConfigError, ConflictError, DriverError, NotFoundError, StateError
from .ipam import Ipam, build_pools, default_pool, pools_from_json, pools_to_json
from .model import IPAddress, IPInterface, IPNetwork, NetworkSpec, ParentPlan
from .netlink import Netlink
from .parents import plan_parent
from .state import DEFAULT_STATE_DIR, StateStore

ENV_STATE_DIR = "IPVLAN_DRIVER_STATE_DIR"
ENV_HOST_NETNS = "IPVLAN_DRIVER_HOST_NETNS"
ENV_CONTAINER_PREFIX = "IPVLAN_DRIVER_NETNS_PREFIX"
CONTAINER_IFNAME = "eth0"


@dataclass(frozen=True)
class DriverConfig:
    state_dir: Path = DEFAULT_STATE_DIR
    host_netns: str | None = None  # the namespace that plays the Docker host (None: our own)
    container_prefix: str = ""  # container namespaces are named prefix + container name

    @classmethod
    def from_env(cls, **overrides: Any) -> DriverConfig:
        values: dict[str, Any] = {
            "state_dir": Path(os.environ.get(ENV_STATE_DIR, str(DEFAULT_STATE_DIR))),
            "host_netns": os.environ.get(ENV_HOST_NETNS) or None,
            "container_prefix": os.environ.get(ENV_CONTAINER_PREFIX, ""),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class Network:
    spec: NetworkSpec
    id: str
    parent: ParentPlan
    pools: Ipam
    containers: dict[str, list[str]] = field(default_factory=dict)  # name -> addresses

    def to_json(self) -> dict[str, Any]:
        s = self.spec
        return {
            "name": s.name,
            "id": self.id,
            "subnets": [str(n) for n in s.subnets],
            "gateways": [str(g) for g in s.gateways],
            "parent_option": s.parent,
            "mode": s.mode,
            "flag": s.flag,
            "internal": s.internal,
            "ipv6": s.ipv6,
            "parent": dataclasses.asdict(self.parent),
            "pools": pools_to_json(self.pools.pools),
            "containers": self.containers,
        }

    @classmethod
    def from_json(cls, rec: dict[str, Any]) -> Network:
        try:
            spec = NetworkSpec(
                name=rec["name"],
                subnets=tuple(ipaddress.ip_network(n) for n in rec["subnets"]),
                gateways=tuple(ipaddress.ip_address(g) for g in rec["gateways"]),
                parent=rec["parent_option"],
                mode=rec["mode"],
                flag=rec["flag"],
                internal=rec["internal"],
                ipv6=rec["ipv6"],
            )
            return cls(
                spec=spec,
                id=rec["id"],
                parent=ParentPlan(**rec["parent"]),
                pools=Ipam(pools_from_json(rec["pools"])),
                containers={k: list(v) for k, v in rec["containers"].items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"network record {rec.get('name')!r} is malformed: {exc}") from exc

    def gateway_for(self, address: IPInterface) -> IPAddress | None:
        for pool in self.pools.pools:
            if address.ip in pool.subnet:
                return pool.gateway
        return None


@dataclass(frozen=True)
class Container:
    name: str
    id: str
    network: str
    netns: str
    addresses: tuple[IPInterface, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.id,
            "network": self.network,
            "netns": self.netns,
            "addresses": [str(a) for a in self.addresses],
        }

    @classmethod
    def from_json(cls, rec: dict[str, Any]) -> Container:
        return cls(
            name=rec["name"],
            id=rec["id"],
            network=rec["network"],
            netns=rec["netns"],
            addresses=tuple(ipaddress.ip_interface(a) for a in rec["addresses"]),
        )


def slave_name(endpoint: str) -> str:
    # a host-side name unique per endpoint and <= 15 chars; it is renamed once moved into the sandbox
    return "iv" + hashlib.sha1(endpoint.encode()).hexdigest()[:11]


@dataclass(frozen=True)
class JoinInfo:
    """What join hands back (libnetwork's JoinResponse): the slave to move, its addresses and routes."""

    src_name: str
    addresses: tuple[IPInterface, ...]
    routes: tuple[tuple[IPNetwork, str | None], ...]
    l3: bool

    def gateway(self, version: int) -> str | None:
        for dst, gw in self.routes:
            if dst.version == version and dst.prefixlen == 0 and gw:
                return gw
        return None


class Undo:
    """Undo steps registered as resources are made, run in reverse when a verb fails."""

    def __init__(self) -> None:
        self._steps: list[Any] = []

    def push(self, fn: Any, *args: Any) -> None:
        self._steps.append((fn, args))

    def run(self) -> None:
        for fn, args in reversed(self._steps):
            with contextlib.suppress(Exception):
                fn(*args)


class Driver:
    def __init__(self, config: DriverConfig | None = None) -> None:
        self.config = config or DriverConfig.from_env()
        self.store = StateStore(self.config.state_dir)

    @contextlib.contextmanager
    def _host(self) -> Iterator[Netlink]:
        with Netlink(self.config.host_netns) as nl:
            yield nl

    # networks ----------------------------------------------------------------------------

    def get_network(self, name: str) -> Network:
        rec = self.store.get("networks", name)
        if rec is None:
            raise NotFoundError(f"network {name} not found")
        return Network.from_json(rec)

    def network_names(self) -> list[str]:
        return self.store.keys("networks")

    def create_network(self, spec: NetworkSpec, network_id: str | None = None) -> Network:
        with self.store.lock():
            if self.store.get("networks", spec.name) is not None:
                raise ConflictError(f"network with name {spec.name} already exists")
            network_id = network_id or secrets.token_hex(32)
            undo = Undo()
            try:
                with self._host() as nl:
                    plan = plan_parent(spec, network_id, lambda n: nl.link(n) is not None)
                    self._check_parent_free(plan)
                    default_v4 = None
                    if not any(n.version == 4 for n in spec.subnets):
                        default_v4 = default_pool(self._taken_subnets(nl))
                    ipam = Ipam(build_pools(spec, default_v4))
                    if plan.driver_owned:
                        self._make_parent(nl, plan)
                        undo.push(nl.delete_link, plan.name)
                    network = Network(spec=spec, id=network_id, parent=plan, pools=ipam)
                    self.store.put("parents", plan.name, {"network": spec.name})
                    undo.push(self.store.delete, "parents", plan.name)
                    self.store.put("networks", spec.name, network.to_json())
                    return network
            except BaseException:
                undo.run()
                raise

    def _check_parent_free(self, plan: ParentPlan) -> None:
        owner = self.store.get("parents", plan.name)
        if owner is not None:
            raise ConflictError(
                f"parent interface {plan.name!r} is already used by ipvlan network {owner['network']!r}"
            )

    @staticmethod
    def _make_parent(nl: Netlink, plan: ParentPlan) -> None:
        if plan.kind == "vlan":
            assert plan.link is not None and plan.vlan_id is not None
            nl.add_vlan(plan.name, plan.link, plan.vlan_id)
        else:
            nl.add_dummy(plan.name)
        nl.set_up(plan.name)

    def taken_subnets(self) -> list[IPNetwork]:
        """What a default pool must not overlap: the host's addresses and routes, and every network's subnets."""
        with self._host() as nl:
            return self._taken_subnets(nl)

    def _taken_subnets(self, nl: Netlink) -> list[IPNetwork]:
        taken: list[IPNetwork] = [a.interface.network for a in nl.addresses()]
        for family in (4, 6):
            taken.extend(r.dst for r in nl.routes(family) if r.dst.prefixlen > 0)
        # choosing a default pool is rare (no --subnet): only then look at every network
        for name in self.store.keys("networks"):
            rec = self.store.get("networks", name)
            if rec:
                taken.extend(ipaddress.ip_network(p["subnet"]) for p in rec.get("pools", []))
        return taken

    def delete_network(self, name: str) -> None:
        with self.store.lock():
            rec = self.store.get("networks", name)
            if rec is None:
                raise NotFoundError(f"network {name} not found")
            network = Network.from_json(rec)
            if network.containers:
                raise ConflictError(
                    f"error while removing network: network {name} has active containers: "
                    + ", ".join(sorted(network.containers))
                )
            if network.parent.driver_owned:
                with self._host() as nl:
                    self._delete_owned_parent(nl, network.parent)
            self.store.delete("parents", network.parent.name)
            self.store.delete("networks", name)
            hosts = self._hosts_path(name)
            hosts.unlink(missing_ok=True)

    @staticmethod
    def _delete_owned_parent(nl: Netlink, plan: ParentPlan) -> None:
        link = nl.link(plan.name)
        if link is None:
            return
        # re-check it is still the link we made: never delete a user's link that took the name
        if plan.kind == "vlan" and (link.kind != "vlan" or link.vlan_id != plan.vlan_id):
            return
        if plan.kind == "dummy" and link.kind != "dummy":
            return
        nl.delete_link(plan.name)

    # endpoints (libnetwork's verbs) ------------------------------------------------------------

    def create_endpoint(
        self,
        network_name: str,
        endpoint: str,
        ip: str | None = None,
        ip6: str | None = None,
    ) -> list[IPInterface]:
        """Reserve the endpoint's addresses: one IPv4, and one IPv6 when the network has a v6 subnet."""
        with self.store.lock():
            network = self.get_network(network_name)
            if endpoint in network.containers:
                raise ConflictError(f"endpoint {endpoint} already exists on network {network_name}")
            requested4 = _parse_ip(ip, 4, "--ip")
            requested6 = _parse_ip(ip6, 6, "--ip6")
            has_v6 = any(p.subnet.version == 6 for p in network.pools.pools)
            if requested6 is not None and not has_v6:
                raise ConfigError(f"--ip6 {requested6}: network {network_name} has no IPv6 subnet")
            addresses = [network.pools.allocate(endpoint, 4, requested4)]
            if has_v6:
                addresses.append(network.pools.allocate(endpoint, 6, requested6))
            network.containers[endpoint] = [str(a) for a in addresses]
            self.store.put("networks", network_name, network.to_json())
            return addresses

    def endpoint_addresses(self, network_name: str, endpoint: str) -> list[IPInterface]:
        network = self.get_network(network_name)
        if endpoint not in network.containers:
            raise NotFoundError(f"endpoint {endpoint} not found on network {network_name}")
        return [ipaddress.ip_interface(a) for a in network.containers[endpoint]]

    def join(self, network_name: str, endpoint: str) -> JoinInfo:
        """Create the endpoint's ipvlan slave on the parent, in the host namespace, and say how to route."""
        with self.store.lock():
            network = self.get_network(network_name)
            addresses = self.endpoint_addresses(network_name, endpoint)
            spec = network.spec
            src = slave_name(endpoint)
            with self._host() as nl:
                if nl.link(network.parent.name) is None:
                    raise NotFoundError(
                        f"parent interface {network.parent.name!r} of network {spec.name} does not exist"
                    )
                nl.delete_link(src)  # a slave left by an interrupted join
                self._create_slave(nl, src, network)
            routes = [r for a in addresses for r in self.routes_for(network, a)]
            return JoinInfo(src, tuple(addresses), tuple(routes), l3=spec.mode != "l2")

    def _create_slave(self, nl: Netlink, name: str, network: Network) -> None:
        nl.add_ipvlan(name, network.parent.name, network.spec.mode, network.spec.flag)

    @staticmethod
    def routes_for(network: Network, address: IPInterface) -> list[tuple[IPNetwork, str | None]]:
        """l2: `default via <gateway of the address's subnet>`; l3/l3s: `default dev eth0` (no ARP there)."""
        default = ipaddress.ip_network("0.0.0.0/0" if address.version == 4 else "::/0")
        if network.spec.mode != "l2":
            return [(default, None)]
        gateway = network.gateway_for(address)
        return [(default, str(gateway))] if gateway is not None else []

    def leave(self, network_name: str, endpoint: str) -> None:
        """Undo join: the slave is gone with its sandbox, or still in the host namespace."""
        self._delete_host_slave(endpoint)

    def _delete_host_slave(self, endpoint: str) -> None:
        name = slave_name(endpoint)
        with self._host() as nl:
            info = nl.link(name)
            if info is not None and info.kind == "ipvlan":  # never a user's link that happens to share the name
                nl.delete_link(name)

    def delete_endpoint(self, network_name: str, endpoint: str) -> None:
        """Release the endpoint's addresses and delete its slave if it is back in the host namespace.

        libnetwork calls Leave before it tears the sandbox down, and tearing down moves the slave back
        to the host under its join-time name: only DeleteEndpoint comes after that.
        """
        self._delete_host_slave(endpoint)
        with self.store.lock():
            rec = self.store.get("networks", network_name)
            if rec is None:
                return
            network = Network.from_json(rec)
            if endpoint not in network.containers:
                return
            self._release(network, endpoint)
            network.containers.pop(endpoint, None)
            self.store.put("networks", network_name, network.to_json())
            self._write_hosts(network, None)

    @staticmethod
    def _release(network: Network, name: str) -> None:
        network.pools.release(name)

    # containers: a sandbox (named namespace) around one endpoint ---------------------------

    def get_container(self, name: str) -> Container:
        rec = self.store.get("containers", name)
        if rec is None:
            raise NotFoundError(f"no such container: {name}")
        return Container.from_json(rec)

    def container_names(self) -> list[str]:
        return self.store.keys("containers")

    def run(
        self,
        network_name: str,
        name: str | None = None,
        ip: str | None = None,
        ip6: str | None = None,
    ) -> Container:
        """Create a container (a named namespace) on a network: create_endpoint + join + sandbox set-up."""
        with self.store.lock():
            self.get_network(network_name)
            name = name or self._fresh_name()
            _check_container_name(name)
            if self.store.get("containers", name) is not None:
                raise ConflictError(f"container name {name!r} is already in use")
            netns_name = self.config.container_prefix + name
            undo = Undo()
            try:
                addresses = self.create_endpoint(network_name, name, ip, ip6)
                undo.push(self.delete_endpoint, network_name, name)
                ns.create(netns_name)
                undo.push(ns.remove, netns_name)
                info = self.join(network_name, name)
                undo.push(self.leave, network_name, name)
                self._enter_sandbox(info, netns_name)
                container = Container(name, secrets.token_hex(32), network_name, netns_name, tuple(addresses))
                self.store.put("containers", name, container.to_json())
                undo.push(self.store.delete, "containers", name)
                self._write_hosts(self.get_network(network_name), netns_name)
                return container
            except BaseException:
                undo.run()
                raise

    def _enter_sandbox(self, info: JoinInfo, netns_name: str) -> None:
        """What libnetwork does after Join: move the slave in as eth0, address it, route it."""
        with self._host() as nl:
            nl.move_to_netns(info.src_name, netns_name, CONTAINER_IFNAME)
        with Netlink(netns_name) as cnl:
            cnl.set_up("lo")
            for address in info.addresses:
                self._add_container_address(cnl, address)
            cnl.set_up(CONTAINER_IFNAME)
            for dst, gateway in info.routes:
                cnl.add_route(dst, CONTAINER_IFNAME, gateway)

    @staticmethod
    def _add_container_address(cnl: Netlink, address: IPInterface) -> None:
        # libnetwork adds IPv6 with nodad: ipvlan slaves share one MAC, so DAD would fail them
        cnl.add_address(CONTAINER_IFNAME, address, nodad=address.version == 6)

    def remove_container(self, name: str) -> None:
        with self.store.lock():
            container = self.get_container(name)
            ns.remove(container.netns)  # takes the ipvlan slave with it
            self.leave(container.network, name)
            self.delete_endpoint(container.network, name)
            self.store.delete("containers", name)

    def exec_preparer(self, name: str) -> Any:
        container = self.get_container(name)
        if not ns.exists(container.netns):
            raise NotFoundError(f"container {name}: namespace {container.netns!r} is gone")
        return ns.exec_preparer(container.netns)

    # names -------------------------------------------------------------------------------

    def _hosts_path(self, network: str) -> Path:
        return self.config.state_dir / "hosts" / network

    def _write_hosts(self, network: Network, new_netns: str | None) -> None:
        """One hosts file per network; each container's /etc/netns/<ns>/hosts links to it."""
        path = self._hosts_path(network.spec.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        for cname, addrs in sorted(network.containers.items()):
            lines.extend(f"{addr.split('/')[0]}\t{cname}" for addr in addrs)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, path)
        if new_netns is not None:
            link = ns.hosts_file(new_netns)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.unlink(missing_ok=True)
            link.symlink_to(path)

    def _fresh_name(self) -> str:
        while True:
            candidate = "c" + secrets.token_hex(4)
            if self.store.get("containers", candidate) is None:
                return candidate

    # restart -----------------------------------------------------------------------------

    def restore(self) -> list[str]:
        """After a restart or reboot: re-create missing driver-owned parents, report the rest."""
        report: list[str] = []
        with self.store.lock(), self._host() as nl:
            for name in self.store.keys("networks"):
                network = self.get_network(name)
                plan = network.parent
                if nl.link(plan.name) is not None:
                    continue
                if plan.kind == "vlan":
                    assert plan.link is not None and plan.vlan_id is not None
                    if nl.link(plan.link) is None:
                        report.append(
                            f"network {name}: cannot re-create {plan.name!r}: base link {plan.link!r} is missing"
                        )
                        continue
                    self._make_parent(nl, plan)
                    report.append(f"network {name}: re-created 802.1q parent {plan.name!r}")
                elif plan.kind == "dummy":
                    self._make_parent(nl, plan)
                    report.append(f"network {name}: re-created dummy parent {plan.name!r}")
                else:
                    report.append(
                        f"network {name}: parent {plan.name!r} is missing; it is the user's link, "
                        "so it is not re-created"
                    )
            for cname in self.store.keys("containers"):
                container = self.get_container(cname)
                if not ns.exists(container.netns):
                    report.append(f"container {cname}: namespace {container.netns!r} is gone (remove it)")
        return report


def _parse_ip(value: str | None, version: int, flag: str) -> IPAddress | None:
    if value is None or value == "":
        return None
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(f"invalid {flag} address {value!r}") from None
    if addr.version != version:
        raise ConfigError(f"invalid {flag} address {value}: not an IPv{version} address")
    return addr


def _check_container_name(name: str) -> None:
    import re

    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", name) or len(name) > 64:
        raise ConfigError(
            f"invalid container name {name!r}: use 2-64 of [a-zA-Z0-9_.-], starting with a letter or digit"
        )


__all__ = ["Container", "Driver", "DriverConfig", "DriverError", "Network"]
