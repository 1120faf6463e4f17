"""The driver's verbs (libnetwork's shape): networks, endpoints, sandboxes, restore.

Each verb runs under the state lock, changes its records in one transaction and either completes or
undoes what it did; a verb that dies half-way (SIGKILL, power cut) leaves an intent that the next verb
or `restore` finishes or undoes. Only links the driver created are ever deleted; deleting what is
already gone is success.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import ipaddress
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import failpoints
from . import netns as ns
from .errors import ConfigError, ConflictError, DriverError, NetlinkFailure, NotFoundError, StateError
from .ipam import Ipam, build_pools, default_pool, pools_from_json, pools_to_json
from .model import FLAGS, MODES, IPAddress, IPInterface, IPNetwork, NetworkSpec, ParentPlan
from .netlink import Netlink
from .parents import plan_parent
from .state import DEFAULT_STATE_DIR, StateStore, child_key
from .stored_ipam import StoredTable

ENV_STATE_DIR = "IPVLAN_DRIVER_STATE_DIR"
ENV_HOST_NETNS = "IPVLAN_DRIVER_HOST_NETNS"
ENV_CONTAINER_PREFIX = "IPVLAN_DRIVER_NETNS_PREFIX"
CONTAINER_IFNAME = "eth0"
PREFIX_MAX = 64  # a namespace name is prefix + container name (<= 64): well inside a file name's 255
_PREFIX_RE = re.compile(r"[a-zA-Z0-9_.-]*")
log = logging.getLogger("ipvlan_driver")
_HOSTS_HEAD = ("127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback")


@dataclass(frozen=True)
class DriverConfig:
    state_dir: Path = DEFAULT_STATE_DIR
    host_netns: str | None = None  # the namespace that plays the Docker host (None: our own)
    container_prefix: str = ""  # container namespaces are named prefix + container name

    def __post_init__(self) -> None:
        if not _PREFIX_RE.fullmatch(self.container_prefix) or len(self.container_prefix) > PREFIX_MAX:
            raise ConfigError(
                f"invalid namespace prefix {self.container_prefix[:80]!r}: use at most {PREFIX_MAX} of [a-zA-Z0-9_.-]"
            )
        host = self.host_netns
        if host is not None and (not host or "/" in host or len(host) > 255):
            raise ConfigError(f"invalid host namespace name {host[:80]!r}")

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
    """A network's own record: what it is and its pools. Its endpoints and their addresses are records of
    their own (see state), read one at a time."""

    spec: NetworkSpec
    id: str
    parent: ParentPlan
    pools: Ipam

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
            "pools": [{k: v for k, v in p.items() if k != "allocated"} for p in pools_to_json(self.pools.pools)],
        }

    @classmethod
    def from_json(cls, rec: dict[str, Any], store: StateStore | None = None) -> Network:
        """The network of `rec`; its addresses are `store`'s records (without one, the record's own: tests)."""
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
            pools = pools_from_json(rec["pools"])
            table = None if store is None else StoredTable(store, address_scope(spec.name), pools)
            return cls(spec=spec, id=rec["id"], parent=ParentPlan(**rec["parent"]), pools=Ipam(pools, table))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StateError(f"network record {rec.get('name')!r} is malformed: {exc}") from exc

    def __post_init__(self) -> None:
        s, p = self.spec, self.parent
        if not isinstance(s.name, str) or not isinstance(self.id, str) or not isinstance(p.name, str):
            raise StateError(f"network record {s.name!r}: name, id and parent must be strings")
        if s.mode not in MODES or s.flag not in FLAGS or p.kind not in ("existing", "vlan", "dummy"):
            raise StateError(f"network record {s.name!r}: unknown mode, flag or parent kind")

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
        name, cid, network, netns = (rec[k] for k in ("name", "id", "network", "netns"))
        if not all(isinstance(f, str) for f in (name, cid, network, netns)) or not isinstance(rec["addresses"], list):
            raise StateError(f"container record {rec.get('name')!r} has fields of the wrong type")
        addresses = tuple(ipaddress.ip_interface(str(a)) for a in rec["addresses"])
        return cls(name=name, id=cid, network=network, netns=netns, addresses=addresses)


def address_scope(network: str) -> str:
    return f"networks:{network}"


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


def _logged(what: str, fn: Callable[..., object], *args: object) -> None:
    """An undo step: its failure is logged with what it was undoing, and the next step still runs."""
    try:
        fn(*args)
    except Exception as exc:
        log.warning("undo: %s failed: %s", what, exc)


@contextlib.contextmanager
def _undo_on_error() -> Iterator[contextlib.ExitStack]:
    """Undo steps registered as resources are made; run in reverse only if the block fails."""
    with contextlib.ExitStack() as stack:
        yield stack
        stack.pop_all()


class Driver:
    def __init__(self, config: DriverConfig | None = None) -> None:
        self.config = config or DriverConfig.from_env()
        self.store = StateStore(self.config.state_dir)
        self._local = threading.local()

    @contextlib.contextmanager
    def _host(self) -> Iterator[Netlink]:
        """The host namespace's netlink connection: one per outermost use in a thread, shared by the verbs
        nested in it (run's join and sandbox set-up), so a container costs one socket and one lookup per link.
        Per thread because pyroute2's sockets are. A thread that asked to (keep_host_connection_here) keeps
        its connection across verbs; a verb that fails closes it, as replies may be left unread on it (the
        cost of being wrong about that is one re-open)."""
        shared: Netlink | None = getattr(self._local, "host", None)
        if shared is not None:
            yield shared
            return
        keep = getattr(self._local, "keep", False)
        nl = self._kept_host() if keep else Netlink(self.config.host_netns)
        self._local.host = nl
        done = False
        try:
            yield nl
            done = True
        finally:
            self._local.host = None
            if not keep:
                nl.close()
            elif not done:
                self.close_host_connection()  # nl is the kept one

    def keep_host_connection_here(self) -> None:
        """Keep the calling thread's host connection open across verbs (a long-lived worker's: opening one
        was most of a plugin Join, profiled). The thread must call close_host_connection before it ends."""
        self._local.keep = True

    def close_host_connection(self) -> None:
        """Close the calling thread's kept host connection, if any: only its own thread can (pyroute2)."""
        kept: tuple[Netlink, object] | None = getattr(self._local, "kept", None)
        self._local.kept = None
        if kept is not None:
            kept[0].close()

    def _kept_host(self) -> Netlink:
        """This thread's kept connection, re-opened if the host namespace's name now names another one."""
        now = ns.identity(self.config.host_netns)
        kept: tuple[Netlink, object] | None = getattr(self._local, "kept", None)
        if kept is not None and kept[1] == now and now is not None:
            kept[0].forget_indices()
            return kept[0]
        self.close_host_connection()
        nl = Netlink(self.config.host_netns)
        self._local.kept = (nl, now)
        return nl

    @contextlib.contextmanager
    def _verb(self) -> Iterator[None]:
        """One verb: under the lock; the outermost verb first finishes what a dead one left."""
        with self.store.lock():
            if self.store.lock_depth() == 1:
                for line in self._recover_interrupted():
                    log.warning("repaired: %s", line)
            yield

    @contextlib.contextmanager
    def _intent(self, **what: Any) -> Iterator[int]:
        """Commit what the verb is about to do in the kernel; gone with the verb's result or its undo."""
        intent_id = self.store.begin_intent(what)
        try:
            yield intent_id
        except BaseException:
            # the block's own undo has run: nothing of this verb is pending any more
            self.store.end_intent(intent_id)
            raise

    # networks ----------------------------------------------------------------------------

    def _load_network(self, name: str) -> Network | None:
        return self.store.load("networks", name, lambda rec: Network.from_json(rec, self.store))

    def get_network(self, name: str) -> Network:
        network = self._load_network(name)
        if network is None:
            raise NotFoundError(f"network {name} not found")
        return network

    def endpoints(self, network: str) -> dict[str, list[str]]:
        """Every endpoint of `network` and its addresses (inspect's and the hosts file's view)."""
        out: dict[str, list[str]] = {}
        for endpoint, rec in self.store.children("endpoints", network):
            addresses = rec.get("addresses")
            if isinstance(addresses, list) and all(isinstance(a, str) for a in addresses):
                out[endpoint] = addresses
            else:
                self.store.quarantine("endpoints", child_key(network, endpoint), "malformed: addresses not a list")
        return out

    def _endpoint(self, network: str, endpoint: str) -> list[IPInterface] | None:
        """The endpoint's addresses, None if `network` has no such endpoint."""
        rec = self.store.get("endpoints", child_key(network, endpoint))
        if rec is None:
            return None
        try:
            return [ipaddress.ip_interface(str(a)) for a in rec["addresses"]]
        except (KeyError, TypeError, ValueError) as exc:
            self.store.quarantine("endpoints", child_key(network, endpoint), f"malformed: {exc}")
            return None

    def network_names(self) -> list[str]:
        return self.store.keys("networks")

    def networks(self) -> list[Network]:
        """Every readable network; one that cannot be read is set aside (with a warning), not fatal."""
        found = (self._load_network(n) for n in self.store.keys("networks"))
        return [n for n in found if n is not None]

    def create_network(self, spec: NetworkSpec, network_id: str | None = None) -> Network:
        with self._verb():
            if self._load_network(spec.name) is not None:
                raise ConflictError(f"network with name {spec.name} already exists")
            network_id = network_id or secrets.token_hex(32)
            with self._host() as nl:
                plan = plan_parent(spec, network_id, lambda n: nl.link(n) is not None)
                self._check_parent_free(plan)
                others = self.networks()
                self._check_subnets_free(spec, others)
                default_v4 = None
                if not any(n.version == 4 for n in spec.subnets):
                    default_v4 = default_pool(self._taken_subnets(nl, others))
                pools = build_pools(spec, default_v4)
                ipam = Ipam(pools, StoredTable(self.store, address_scope(spec.name), pools))
                network = Network(spec=spec, id=network_id, parent=plan, pools=ipam)
                with (
                    self._intent(op="network-create", network=spec.name, parent=dataclasses.asdict(plan)) as intent,
                    _undo_on_error() as undo,
                ):
                    failpoints.reached("network-create:intent")
                    if plan.driver_owned:
                        self._make_parent(nl, plan)
                        undo.callback(_logged, f"delete parent {plan.name}", self._delete_owned_parent, nl, plan)
                        failpoints.reached("network-create:parent")
                    with self.store.transaction():
                        self.store.put("parents", plan.name, {"network": spec.name})
                        self._forget_addresses(spec.name)  # a network of this name before: its leftovers
                        self.store.put("networks", spec.name, network.to_json())
                        self.store.end_intent(intent)
                return network

    def _check_parent_free(self, plan: ParentPlan) -> None:
        owner = self.store.get("parents", plan.name)
        if owner is None:
            return
        if self.store.get("networks", str(owner.get("network"))) is None:
            # a claim left by a network that no longer exists claims nothing
            self.store.delete("parents", plan.name)
            return
        raise ConflictError(f"parent interface {plan.name!r} is already used by ipvlan network {owner['network']!r}")

    @staticmethod
    def _check_subnets_free(spec: NetworkSpec, others: list[Network]) -> None:
        for subnet in spec.subnets:
            for other in others:
                for pool in other.pools.pools:
                    if pool.subnet.version == subnet.version and pool.subnet.overlaps(subnet):
                        raise ConflictError(
                            f"subnet {subnet} overlaps {pool.subnet} of network {other.spec.name}: "
                            "networks cannot share addresses"
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
            return self._taken_subnets(nl, self.networks())

    def _taken_subnets(self, nl: Netlink, networks: list[Network]) -> list[IPNetwork]:
        taken: list[IPNetwork] = [a.interface.network for a in nl.addresses()]
        for family in (4, 6):
            taken.extend(r.dst for r in nl.routes(family) if r.dst.prefixlen > 0)
        taken.extend(p.subnet for n in networks for p in n.pools.pools)
        return taken

    def delete_network(self, name: str) -> None:
        with self._verb():
            network = self.get_network(name)
            if self.store.first_child("endpoints", name) is not None:
                raise ConflictError(
                    f"error while removing network: network {name} has active containers: "
                    + ", ".join(sorted(self.endpoints(name)))
                )
            with self._intent(op="network-rm", network=name, parent=dataclasses.asdict(network.parent)) as intent:
                failpoints.reached("network-rm:intent")
                self._finish_network_rm(network, intent)

    def _finish_network_rm(self, network: Network, intent: int) -> None:
        if network.parent.driver_owned:
            with self._host() as nl:
                self._delete_owned_parent(nl, network.parent)
            failpoints.reached("network-rm:parent")
        with self.store.transaction():
            claim = self.store.get("parents", network.parent.name)
            if claim is not None and claim.get("network") == network.spec.name:
                self.store.delete("parents", network.parent.name)  # only this network's claim
            self.store.delete("networks", network.spec.name)
            self._forget_addresses(network.spec.name)
            self.store.end_intent(intent)
        self._hosts_path(network.spec.name).unlink(missing_ok=True)

    def _forget_addresses(self, name: str) -> None:
        self.store.delete_children("endpoints", name)
        StoredTable(self.store, address_scope(name), []).forget()

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
        with self._verb(), self.store.transaction():
            return self._reserve(self.get_network(network_name), endpoint, ip, ip6)

    def _reserve(self, network: Network, endpoint: str, ip: str | None, ip6: str | None) -> list[IPInterface]:
        """create_endpoint on a network already read in this verb (run reads it once)."""
        name = network.spec.name
        if self.store.get("endpoints", child_key(name, endpoint)) is not None:
            raise ConflictError(f"endpoint {endpoint} already exists on network {name}")
        requested4 = _parse_ip(ip, 4, "--ip")
        requested6 = _parse_ip(ip6, 6, "--ip6")
        has_v6 = any(p.subnet.version == 6 for p in network.pools.pools)
        if requested6 is not None and not has_v6:
            raise ConfigError(f"--ip6 {requested6}: network {name} has no IPv6 subnet")
        addresses = [network.pools.allocate(endpoint, 4, requested4)]
        if has_v6:
            addresses.append(network.pools.allocate(endpoint, 6, requested6))
        self.store.put("endpoints", child_key(name, endpoint), {"addresses": [str(a) for a in addresses]})
        return addresses

    def endpoint_addresses(self, network_name: str, endpoint: str) -> list[IPInterface]:
        self.get_network(network_name)
        addresses = self._endpoint(network_name, endpoint)
        if addresses is None:
            raise NotFoundError(f"endpoint {endpoint} not found on network {network_name}")
        return addresses

    def join(self, network_name: str, endpoint: str) -> JoinInfo:
        """Create the endpoint's ipvlan slave on the parent, in the host namespace, and say how to route."""
        with self._verb():
            network = self.get_network(network_name)
            addresses = self._endpoint(network_name, endpoint)
            if addresses is None:
                raise NotFoundError(f"endpoint {endpoint} not found on network {network_name}")
            with self._intent(op="join", network=network_name, endpoint=endpoint) as intent:
                info = self._join(network, endpoint, addresses)
                failpoints.reached("join:slave")
                self.store.end_intent(intent)
            return info

    def _join(self, network: Network, endpoint: str, addresses: list[IPInterface]) -> JoinInfo:
        """join's kernel work for an endpoint of `network`, under an intent of the caller's (join's or run's)."""
        src = slave_name(endpoint)
        with self._host() as nl:
            self._ensure_parent(nl, network)
            self._replace_slave(nl, src, network)
        routes = [r for a in addresses for r in self.routes_for(network, a)]
        return JoinInfo(src, tuple(addresses), tuple(routes), l3=network.spec.mode != "l2")

    def _ensure_parent(self, nl: Netlink, network: Network) -> None:
        """A parent deleted behind our back: re-create it if it is ours (as Docker does), else say so."""
        plan = network.parent
        if nl.index_of(plan.name) is not None:
            return
        if not plan.driver_owned:
            raise NotFoundError(
                f"parent interface {plan.name!r} of network {network.spec.name} does not exist "
                "(it is not the driver's to re-create)"
            )
        if plan.kind == "vlan" and plan.link is not None and nl.index_of(plan.link) is None:
            raise NotFoundError(
                f"cannot re-create parent {plan.name!r} of network {network.spec.name}: "
                f"its base link {plan.link!r} does not exist"
            )
        self._make_parent(nl, plan)
        log.warning("repaired: network %s: re-created its missing parent %s", network.spec.name, plan.name)

    def _replace_slave(self, nl: Netlink, name: str, network: Network) -> None:
        """Create the slave; a link of its name left by an interrupted join is deleted first. Tried before
        looked for: the name is free on every join but a repair's."""
        try:
            self._create_slave(nl, name, network)
        except NetlinkFailure as exc:
            if getattr(exc.__cause__, "code", None) != errno.EEXIST:
                raise
            nl.delete_link(name)
            self._create_slave(nl, name, network)

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
            info = nl.link(name)  # not index_of: the slave is usually gone, and a missing name is its slow case
            if info is not None and info.kind == "ipvlan":  # never a user's link that happens to share the name
                nl.delete_link(name)

    def delete_endpoint(self, network_name: str, endpoint: str) -> None:
        """Release the endpoint's addresses and delete its slave if it is back in the host namespace.

        libnetwork calls Leave before it tears the sandbox down, and tearing down moves the slave back
        to the host under its join-time name: only DeleteEndpoint comes after that.
        """
        self._delete_host_slave(endpoint)
        self._forget_endpoint(network_name, endpoint)

    def _forget_endpoint(self, network_name: str, endpoint: str) -> None:
        """The records half of delete_endpoint: its addresses released, its name out of the hosts file."""
        with self._verb(), self.store.transaction():
            network = self._load_network(network_name)
            if network is None or self.store.get("endpoints", child_key(network_name, endpoint)) is None:
                return
            self._release(network, endpoint)
            self.store.delete("endpoints", child_key(network_name, endpoint))
            self._drop_from_hosts(network_name, endpoint)

    @staticmethod
    def _release(network: Network, name: str) -> None:
        network.pools.release(name)

    # containers: a sandbox (named namespace) around one endpoint ---------------------------

    def get_container(self, name: str) -> Container:
        container = self.store.load("containers", name, Container.from_json)
        if container is None:
            raise NotFoundError(f"no such container: {name}")
        return container

    def container_names(self) -> list[str]:
        return self.store.keys("containers")

    def run(
        self,
        network_name: str,
        name: str | None = None,
        ip: str | None = None,
        ip6: str | None = None,
    ) -> Container:
        """Create a container (a named namespace) on a network: create_endpoint + join + sandbox set-up.

        The records commit in one transaction at the end; until then an intent names the namespace and
        the slave, so a run killed half-way is undone by the next verb.
        """
        with self._verb():
            network = self.get_network(network_name)  # read once: reserve and join share it
            name = name or self._fresh_name()
            _check_container_name(name)
            if self.store.get("containers", name) is not None:
                raise ConflictError(f"container name {name!r} is already in use")
            netns_name = self.config.container_prefix + name
            ns.netns_path(netns_name)  # a bad name is refused before anything is made
            with (
                self._intent(op="run", container=name, network=network_name, netns=netns_name) as intent,
                _undo_on_error() as undo,
                self.store.transaction(),
                self._host(),  # join and the sandbox set-up share it (see _host)
            ):
                addresses = self._reserve(network, name, ip, ip6)
                ns.create(netns_name)
                undo.callback(_logged, f"remove namespace {netns_name}", ns.remove, netns_name)
                failpoints.reached("run:netns")
                info = self._join(network, name, addresses)
                undo.callback(_logged, f"delete slave {info.src_name}", self.leave, network_name, name)
                failpoints.reached("run:slave")
                self._enter_sandbox(info, netns_name)
                failpoints.reached("run:sandbox")
                container = Container(name, secrets.token_hex(32), network_name, netns_name, tuple(addresses))
                self.store.put("containers", name, container.to_json())
                undo.callback(
                    _logged,
                    f"take {name} out of the hosts of {network_name}",
                    self._drop_from_hosts,
                    network_name,
                    name,
                )
                self._link_hosts(self._add_to_hosts(network_name, name, addresses), netns_name)
                self.store.end_intent(intent)
            return container

    def _enter_sandbox(self, info: JoinInfo, netns_name: str) -> None:
        """What libnetwork does after Join: move the slave in as eth0, address it, route it."""
        with self._host() as nl:
            index = nl.move_to_netns(info.src_name, netns_name, CONTAINER_IFNAME)
        with Netlink(netns_name) as cnl:
            cnl.assume_index(CONTAINER_IFNAME, index)  # the sandbox holds only lo: the slave kept its ifindex
            cnl.set_up("lo")
            # before the link is up, so an IPv4-only eth0 never gets a link-local address
            self._set_ipv6(cnl, any(a.version == 6 for a in info.addresses))
            for address in info.addresses:
                self._add_container_address(cnl, address)
            cnl.set_up(CONTAINER_IFNAME)
            for dst, gateway in info.routes:
                cnl.add_route(dst, CONTAINER_IFNAME, gateway)

    @staticmethod
    def _set_ipv6(cnl: Netlink, enabled: bool) -> None:
        """IPv6 on eth0 if and only if the endpoint has an IPv6 address (libnetwork's osl setIPv6).

        Left on, an IPv4-only interface joins IPv6 multicast groups and answers NDP and router
        advertisements nobody configured (CVE-2024-32473, fixed in Docker 26.0.2).
        """
        with contextlib.suppress(FileNotFoundError):  # a kernel without IPv6: nothing to turn off (as libnetwork)
            cnl.set_sysctl(f"net.ipv6.conf.{CONTAINER_IFNAME}.disable_ipv6", "0" if enabled else "1")

    @staticmethod
    def _add_container_address(cnl: Netlink, address: IPInterface) -> None:
        # libnetwork adds IPv6 with nodad: ipvlan slaves share one MAC, so DAD would fail them
        cnl.add_address(CONTAINER_IFNAME, address, nodad=address.version == 6)

    def remove_container(self, name: str) -> None:
        with self._verb():
            container = self.get_container(name)
            with self._intent(op="rm", container=name, network=container.network, netns=container.netns) as intent:
                self._finish_rm(container.name, container.network, container.netns, intent)

    def _finish_rm(self, name: str, network: str, netns_name: str, intent: int) -> None:
        ns.remove(netns_name)  # takes the ipvlan slave with it
        failpoints.reached("rm:netns")
        self.leave(network, name)  # (a slave some kernel handed back to the host namespace goes here)
        with self.store.transaction():
            self._forget_endpoint(network, name)
            self.store.delete("containers", name)
            self.store.end_intent(intent)

    def exec_preparer(self, name: str) -> Any:
        container = self.get_container(name)
        if not ns.exists(container.netns):
            raise NotFoundError(f"container {name}: namespace {container.netns!r} is gone")
        if not ns.is_namespace(container.netns):
            raise NotFoundError(f"container {name}: {ns.netns_path(container.netns)} is not a network namespace")
        return ns.exec_preparer(container.netns)

    # names -------------------------------------------------------------------------------

    def _hosts_path(self, network: str) -> Path:
        return self.config.state_dir / "hosts" / network

    def _write_hosts(self, network: str, new_netns: str | None) -> None:
        """One hosts file per network, from its endpoints' records; each container's /etc/netns/<ns>/hosts
        links to it. Written whole where the file must be made true again (restore, an interrupted run)."""
        path = self._hosts_path(network)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lines = list(_HOSTS_HEAD)
        for cname, addrs in self.endpoints(network).items():
            lines.extend(f"{addr.split('/')[0]}\t{cname}" for addr in addrs)
        _replace_hosts(path, "\n".join(lines) + "\n")
        if new_netns is not None:
            self._link_hosts(path, new_netns)

    def _add_to_hosts(self, network: str, name: str, addresses: list[IPInterface]) -> Path:
        """run's line(s) appended: one short write, where rewriting the file cost more with each container."""
        path = self._hosts_path(network)
        if not path.exists():
            self._write_hosts(network, None)  # the endpoint's record is already there
            return path
        with path.open("a") as fh:
            fh.write("".join(f"{a.ip}\t{name}\n" for a in addresses))
        return path

    def _drop_from_hosts(self, network: str, name: str) -> None:
        """rm's lines taken out of the file as text: a thousand lines filtered cost less than the thousand
        endpoint records the file is written from."""
        path = self._hosts_path(network)
        try:
            lines = path.read_text().splitlines(keepends=True)
        except FileNotFoundError:
            return
        suffix, head = f"\t{name}\n", len(_HOSTS_HEAD)  # the head stays, even for a container named localhost
        kept = lines[:head] + [line for line in lines[head:] if not line.endswith(suffix)]
        if len(kept) == len(lines):
            return
        _replace_hosts(path, "".join(kept))

    @staticmethod
    def _link_hosts(path: Path, netns_name: str) -> None:
        link = ns.hosts_file(netns_name)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(path)

    def _fresh_name(self) -> str:
        while True:
            candidate = "c" + secrets.token_hex(4)
            if self.store.get("containers", candidate) is None:
                return candidate

    # recovery and restart ------------------------------------------------------------------

    def _recover_interrupted(self) -> list[str]:
        """Finish or undo every verb that died half-way (its intent is still there); one line each."""
        lines: list[str] = []
        for intent_id, intent in self.store.pending_intents():
            try:
                lines.append(self._recover_one(intent_id, intent))
            except DriverError as exc:
                lines.append(f"could not recover interrupted {intent.get('op')} ({exc}); `restore` retries it")
        return lines

    def _recover_one(self, intent_id: int, intent: dict[str, Any]) -> str:
        op = intent.get("op")
        if op == "network-create":
            name, plan = str(intent["network"]), ParentPlan(**intent["parent"])
            made = ""
            claim = self.store.get("parents", plan.name)
            claimed = claim is not None and self.store.get("networks", str(claim.get("network"))) is not None
            if plan.driver_owned and not claimed:
                with self._host() as nl:
                    if nl.link(plan.name) is not None:
                        self._delete_owned_parent(nl, plan)
                        made = f": deleted the parent {plan.name} it had made"
            self.store.end_intent(intent_id)
            return f"network create {name} was interrupted; undone{made}"
        if op == "network-rm":
            name = str(intent["network"])
            network = self._load_network(name)
            if network is None:
                self._forget_addresses(name)
                self.store.end_intent(intent_id)
                return f"network rm {name} was interrupted; nothing was left"
            self._finish_network_rm(network, intent_id)
            return f"network rm {name} was interrupted; finished it (parent {network.parent.name} released)"
        if op == "run":
            name, netns_name, network_name = str(intent["container"]), str(intent["netns"]), str(intent["network"])
            ns.remove(netns_name)
            self._delete_host_slave(name)
            if self._load_network(network_name) is not None:
                self._write_hosts(network_name, None)
            self.store.end_intent(intent_id)
            return f"run {name} was interrupted; undone: namespace {netns_name} and its slave removed"
        if op == "rm":
            name, netns_name, network_name = str(intent["container"]), str(intent["netns"]), str(intent["network"])
            self._finish_rm(name, network_name, netns_name, intent_id)
            return f"rm {name} was interrupted; finished it: namespace {netns_name} removed, addresses released"
        if op == "join":
            endpoint = str(intent["endpoint"])
            self._delete_host_slave(endpoint)
            self.store.end_intent(intent_id)
            return f"join of endpoint {endpoint[:12]} was interrupted; its slave was removed"
        self.store.end_intent(intent_id)
        return f"dropped an unreadable record of an interrupted verb ({intent})"

    def restore(self) -> list[str]:
        """After a crash, restart or reboot: reconcile state with the kernel, one line per repair.

        Finishes or undoes interrupted verbs, re-creates missing driver-owned parents, drops parent
        claims of networks that are gone and containers whose namespace is gone (releasing their
        addresses). Links and namespaces the driver did not make are never touched.
        """
        with self.store.lock():
            report = self._recover_interrupted()
            networks = self.networks()
            with self._host() as nl:
                for network in networks:
                    report.extend(self._restore_parent(nl, network))
            known = {n.spec.name for n in networks}
            for parent in self.store.keys("parents"):
                claim = self.store.get("parents", parent) or {}
                if claim.get("network") not in known:
                    self.store.delete("parents", parent)
                    report.append(f"parent {parent}: claim of missing network {claim.get('network')!r} removed")
            for cname in self.store.keys("containers"):
                container = self.store.load("containers", cname, Container.from_json)
                if container is None or ns.exists(container.netns):
                    continue
                with self._intent(op="rm", container=cname, network=container.network, netns=container.netns) as i:
                    self._finish_rm(cname, container.network, container.netns, i)
                report.append(
                    f"container {cname}: namespace {container.netns!r} is gone; removed it, addresses released"
                )
            for network in self.networks():
                self._write_hosts(network.spec.name, None)
        return report

    def _restore_parent(self, nl: Netlink, network: Network) -> list[str]:
        plan, name = network.parent, network.spec.name
        if nl.link(plan.name) is not None:
            return []
        if plan.kind == "vlan":
            assert plan.link is not None and plan.vlan_id is not None
            if nl.link(plan.link) is None:
                return [f"network {name}: cannot re-create {plan.name!r}: base link {plan.link!r} is missing"]
            self._make_parent(nl, plan)
            return [f"network {name}: re-created 802.1q parent {plan.name!r}"]
        if plan.kind == "dummy":
            self._make_parent(nl, plan)
            return [f"network {name}: re-created dummy parent {plan.name!r}"]
        return [f"network {name}: parent {plan.name!r} is missing; it is the user's link, so it is not re-created"]


def _replace_hosts(path: Path, text: str) -> None:
    """Atomically, as containers may be reading it; 0644: read by their processes through the bind mount."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o644)
    os.replace(tmp, path)


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
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", name) or len(name) > 64:
        raise ConfigError(
            f"invalid container name {name!r}: use 2-64 of [a-zA-Z0-9_.-], starting with a letter or digit"
        )


__all__ = ["Container", "Driver", "DriverConfig", "DriverError", "Network"]
