"""`plugin`: the suite plays libnetwork against a remote network-driver plugin on a unix socket.

It does what Docker's daemon does around a plugin (conformance/libnetwork.py, never our driver's rules):
its own IPAM, CreateNetwork / CreateEndpoint / Join with the -o options untouched, then moves `SrcName`
into the container namespace as `DstPrefix`+N, addresses it (IPv6 nodad), routes it, and Leave /
DeleteEndpoint / DeleteNetwork on teardown. Anything malformed in a reply fails the test with a message
saying what the plugin did wrong; a refusal is the plugin's own `Err` (PluginRefused) or one Docker
itself would give (LibnetworkRefused).

Which plugin: `--plugin-command 'CMD ... {socket}'` starts one per lab inside the docker-host namespace
(`{socket}` and `{state}` are filled in); without it, our own `ipvlan-driver serve` runs in-process.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import secrets
import shlex
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import netnsutil as ns
from ipvlan_driver.driver import Driver, DriverConfig  # only to serve our own driver when no --plugin-command
from ipvlan_driver.plugin import PluginServer

from ..examples import ContainerRequest, NetworkRequest
from ..labnet import Lab
from ..libnetwork import (
    AddressSpace,
    IPInterface,
    IPNetwork,
    LibnetworkRefused,
    NetworkIpam,
    create_endpoint_body,
    create_network_body,
    join_body,
)
from ..observe import Observer
from .base import (
    ALL_CAPABILITIES,
    Attached,
    BackendRefused,
    BaseBackend,
    HostContext,
    Option,
    our_version,
    stop_process,
)
from .unixhttp import UnixHTTPConnection

ROUTE_NEXTHOP, ROUTE_CONNECTED = 0, 1


class ProtocolViolation(AssertionError):
    """The plugin under test broke the libnetwork remote-driver protocol."""


class PluginRefused(BackendRefused):
    """The plugin under test answered with an `Err`: its own refusal, in its own words."""


def _want(reply: dict[str, Any], method: str, key: str, kind: type | tuple[type, ...], required: bool) -> Any:
    if key not in reply or reply[key] is None:
        if required:
            raise ProtocolViolation(f"{method}: the reply has no {key!r} (reply: {reply})")
        return None
    if not isinstance(reply[key], kind):
        raise ProtocolViolation(f"{method}: {key!r} should be {kind}, got {type(reply[key]).__name__}: {reply[key]!r}")
    return reply[key]


@dataclass
class _Net:
    id: str
    ipam: NetworkIpam
    endpoints: dict[str, str] = field(default_factory=dict)  # container name -> endpoint id


@dataclass
class _Sandbox:
    name: str
    network: str
    endpoint: str
    netns: str
    addresses: list[str]


class PluginBackend(BaseBackend):
    name = "plugin"
    capabilities = ALL_CAPABILITIES | {"restart", "kill"}
    OPTIONS = (
        Option(
            "--plugin-command",
            "--backend=plugin: start this plugin per lab inside the docker-host namespace; "
            "{socket} and {state} are filled in (default: our ipvlan-driver serve, in-process)",
        ),
    )

    @staticmethod
    def describe(options: Mapping[str, Any]) -> dict[str, str]:
        command = options.get("plugin_command")
        return {"driver": f"plugin: {command}" if command else f"{our_version()} (ipvlan-driver serve)"}

    def __init__(self, host: HostContext) -> None:
        self.host = host
        self.socket = host.workdir / "plugin.sock"
        self.networks: dict[str, _Net] = {}
        self.sandboxes: dict[str, _Sandbox] = {}
        self.space = AddressSpace()  # every network's pools: the default IPAM's local address space
        self.gw_alloc_checker = False  # GetCapabilities said to ask GwAllocCheck before CreateNetwork
        self._server: PluginServer | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        # libnetwork's own bookkeeping (IPAM, names) is serialised; the plugin sees calls concurrently
        self._lock = threading.RLock()
        self._start_plugin()

    def _start_plugin(self) -> None:
        command = self.host.options.get("plugin_command")
        if command:
            self._spawn(str(command))
        else:
            driver = Driver(
                DriverConfig(
                    state_dir=self.host.workdir / "state", host_netns=self.host.netns, container_prefix=self.host.prefix
                )
            )
            self._server = PluginServer(self.socket, driver)
            threading.Thread(target=self._server.serve_forever, name="plugin", daemon=True).start()
        self._handshake()

    def _stop_plugin(self, kill: bool = False) -> None:
        """Stop the plugin as a crash would (kill: SIGKILL) or as its service manager would (SIGTERM)."""
        if self._server is not None:
            # in-process there is nothing to kill: stopping between two requests is what a crash leaves
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._proc is not None:
            if kill:
                self._proc.kill()
                self._proc.wait()
            else:
                stop_process(self._proc, 10)
            self._proc = None
            with contextlib.suppress(FileNotFoundError):
                self.socket.unlink()  # a killed plugin leaves its socket

    def restart_driver(self) -> None:
        """The plugin restarts; libnetwork's side (networks, endpoints, sandboxes) lives on, as in Docker."""
        self._stop_plugin()
        self._start_plugin()

    def run_killed(self, req: ContainerRequest) -> Attached:
        """CreateEndpoint and Join answered, then the plugin dies before the sandbox is set up. Docker then
        fails the run: once the plugin is back, Leave and DeleteEndpoint, as libnetwork's rollback does."""
        net = self.networks[req.network]
        with self._lock:
            addrs = [net.ipam.allocate(req.name, 4)]
        endpoint = secrets.token_hex(32)
        ids = {"NetworkID": net.id, "EndpointID": endpoint}
        try:
            self.call("NetworkDriver.CreateEndpoint", create_endpoint_body(net.id, endpoint, addrs))
            self.call("NetworkDriver.Join", join_body(net.id, endpoint, "/var/run/docker/netns/killed"))
            self._stop_plugin(kill=True)
            self._start_plugin()
            self.call("NetworkDriver.Leave", ids)
            self.call("NetworkDriver.DeleteEndpoint", ids)
        finally:
            with self._lock:
                net.ipam.release(req.name)
        raise BackendRefused(f"run {req.name}: the plugin was killed after Join; the run was rolled back")

    # the plugin process ------------------------------------------------------------------

    def _spawn(self, template: str) -> None:
        argv = [a.format(socket=self.socket, state=self.host.workdir / "state") for a in shlex.split(template)]
        # the plugin writes to its own copy of the descriptor; ours is closed at once
        with open(self.host.workdir / "plugin.log", "wb") as log:
            self._proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, preexec_fn=ns.exec_preparer(self.host.netns)
            )
        deadline = time.monotonic() + 60
        while not self.socket.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise ProtocolViolation(f"plugin `{template}` never opened {self.socket}: see {log.name}")
            time.sleep(0.05)

    def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        conn = UnixHTTPConnection(self.socket, timeout=60)
        try:
            conn.request(
                "POST", f"/{method}", json.dumps(body), {"Content-Type": "application/vnd.docker.plugins.v1.2+json"}
            )
            resp = conn.getresponse()
            raw = resp.read()
        except OSError as exc:
            raise ProtocolViolation(f"{method}: no answer on {self.socket}: {exc}") from exc
        finally:
            conn.close()
        try:
            reply = json.loads(raw or b"{}")
        except ValueError as exc:
            raise ProtocolViolation(f"{method}: the reply is not JSON ({exc}): {raw[:200]!r}") from exc
        if not isinstance(reply, dict):
            raise ProtocolViolation(f"{method}: the reply is not a JSON object: {raw[:200]!r}")
        err = reply.get("Err")
        if err:
            if not isinstance(err, str):
                raise ProtocolViolation(f"{method}: 'Err' should be a string, got {err!r}")
            # the plugin only knows network ids; say which documented network an id is
            for name, net in self.networks.items():
                err = err.replace(net.id, f"{name} ({net.id[:12]})")
            raise PluginRefused(err)
        if resp.status != 200:
            raise ProtocolViolation(f"{method}: HTTP {resp.status} without an Err message: {raw[:200]!r}")
        return reply

    def _handshake(self) -> None:
        implements = _want(self.call("Plugin.Activate", {}), "Plugin.Activate", "Implements", list, True)
        if "NetworkDriver" not in implements:
            raise ProtocolViolation(f"Plugin.Activate: Implements {implements} lacks NetworkDriver")
        caps = self.call("NetworkDriver.GetCapabilities", {})
        scope = _want(caps, "GetCapabilities", "Scope", str, True)
        if scope not in ("local", "global"):
            raise ProtocolViolation(f"GetCapabilities: Scope must be local or global, got {scope!r}")
        self.gw_alloc_checker = bool(_want(caps, "GetCapabilities", "GwAllocChecker", bool, False))

    # libnetwork's side: IPAM, then the driver calls ----------------------------------------

    def _reserved(self) -> list[IPNetwork]:
        # netutils.InferReservedNetworks: a default pool must not overlap the docker host's own networks
        with Observer(self.host.netns) as seen:
            return [a.interface.network for a in seen.addresses()]

    def create_network(self, req: NetworkRequest) -> None:
        with self._lock:
            self._create_network(req)

    def _create_network(self, req: NetworkRequest) -> None:
        if req.name in self.networks:
            raise LibnetworkRefused(f"network with name {req.name} already exists")
        network_id = secrets.token_hex(32)
        skip = (False, False)
        if self.gw_alloc_checker:
            # controller.go NewNetwork: the driver may say it needs no gateway address, before IPAM runs
            options = create_network_body(network_id, req, NetworkIpam([]))["Options"]
            reply = self.call("NetworkDriver.GwAllocCheck", {"Options": options})
            skip = (
                bool(_want(reply, "GwAllocCheck", "SkipIPv4", bool, False)),
                bool(_want(reply, "GwAllocCheck", "SkipIPv6", bool, False)),
            )
        ipam = self.space.allocate_network(req, self._reserved(), skip)
        try:
            self.call("NetworkDriver.CreateNetwork", create_network_body(network_id, req, ipam))
        except BaseException:
            self.space.release_network(ipam)
            raise
        self.networks[req.name] = _Net(network_id, ipam)

    def remove_network(self, name: str) -> None:
        net = self.networks.get(name)
        if net is None:
            raise LibnetworkRefused(f"network {name} not found")
        if net.endpoints:
            raise LibnetworkRefused(f"network {name} has active endpoints")
        self.call("NetworkDriver.DeleteNetwork", {"NetworkID": net.id})
        del self.networks[name]
        with self._lock:
            self.space.release_network(net.ipam)

    def _allocate(self, req: ContainerRequest) -> tuple[_Net, list[IPInterface]]:
        net = self.networks.get(req.network)
        if net is None:
            raise LibnetworkRefused(f"network {req.network} not found")
        if req.name in self.sandboxes or req.name in net.endpoints:
            raise LibnetworkRefused(f"container name {req.name} is already in use")
        static = net.ipam.check_static(req.ip, req.ip6)
        try:
            addrs = [net.ipam.allocate(req.name, 4, static[4])]
            if net.ipam.of(6):
                addrs.append(net.ipam.allocate(req.name, 6, static[6]))
        except BaseException:
            net.ipam.release(req.name)
            raise
        net.endpoints[req.name] = ""  # the name is taken while the run is under way
        return net, addrs

    def _release(self, net: _Net, name: str) -> None:
        with self._lock:
            net.ipam.release(name)
            net.endpoints.pop(name, None)

    def run(self, req: ContainerRequest) -> Attached:
        with self._lock:
            net, addrs = self._allocate(req)
        endpoint = secrets.token_hex(32)
        netns_name = self.host.prefix + req.name
        undo = contextlib.ExitStack()
        try:
            undo.callback(self._release, net, req.name)
            reply = self.call("NetworkDriver.CreateEndpoint", create_endpoint_body(net.id, endpoint, addrs))
            _want(reply, "CreateEndpoint", "Interface", dict, False)
            undo.callback(
                self._quiet_call, "NetworkDriver.DeleteEndpoint", {"NetworkID": net.id, "EndpointID": endpoint}
            )
            ns.create(netns_name)
            undo.callback(ns.remove, netns_name)
            join = self.call("NetworkDriver.Join", join_body(net.id, endpoint, str(ns.netns_path(netns_name))))
            undo.callback(self._quiet_call, "NetworkDriver.Leave", {"NetworkID": net.id, "EndpointID": endpoint})
            self._configure_sandbox(join, netns_name, addrs)
            self.call(
                "NetworkDriver.ProgramExternalConnectivity",
                {"NetworkID": net.id, "EndpointID": endpoint, "Options": {}},
            )
            undo.pop_all()
        except BaseException:
            undo.close()
            raise
        with self._lock:
            net.endpoints[req.name] = endpoint
            self.sandboxes[req.name] = _Sandbox(req.name, req.network, endpoint, netns_name, [str(a) for a in addrs])
            self._write_hosts(req.network)
        return Attached(req.name, netns_name)

    def _configure_sandbox(self, join: dict[str, Any], netns_name: str, addrs: list[IPInterface]) -> None:
        names = _want(join, "Join", "InterfaceName", dict, True)
        src = _want(names, "Join InterfaceName", "SrcName", str, True)
        prefix = _want(names, "Join InterfaceName", "DstPrefix", str, True)
        gw4 = _want(join, "Join", "Gateway", str, False)
        gw6 = _want(join, "Join", "GatewayIPv6", str, False)
        static = _want(join, "Join", "StaticRoutes", list, False) or []
        # libnetwork's own work on the sandbox (osl): the suite's hands, never the driver's
        with Lab(self.host.netns) as nl:
            if nl.link(src) is None:
                raise ProtocolViolation(f"Join: SrcName {src!r} does not exist in the docker host's namespace")
            nl.move_to_netns(src, netns_name, f"{prefix}0")  # a fresh sandbox: the lowest free number is 0
        dev = f"{prefix}0"
        with Lab(netns_name) as cnl:
            cnl.set_up("lo")
            _set_ipv6(cnl, dev, any(a.version == 6 for a in addrs))
            for a in addrs:
                cnl.add_address(dev, str(a))  # IPv6 without duplicate detection, as osl adds it
            cnl.set_up(dev)
            for version, gw in ((4, gw4), (6, gw6)):
                if gw:
                    try:
                        ipaddress.ip_address(gw)
                    except ValueError:
                        raise ProtocolViolation(f"Join: Gateway {gw!r} is not an IP address") from None
                    cnl.add_route(ipaddress.ip_network("0.0.0.0/0" if version == 4 else "::/0"), dev, gw)
            for route in static:
                if not isinstance(route, dict):
                    raise ProtocolViolation(f"Join: StaticRoutes entry {route!r} is not an object")
                dst = _want(route, "Join StaticRoutes", "Destination", str, True)
                kind = _want(route, "Join StaticRoutes", "RouteType", int, True)
                hop = _want(route, "Join StaticRoutes", "NextHop", str, False) or None
                try:
                    network = ipaddress.ip_network(dst)
                except ValueError:
                    raise ProtocolViolation(f"Join: StaticRoutes Destination {dst!r} is not a CIDR") from None
                if kind == ROUTE_CONNECTED:
                    cnl.add_route(network, dev)
                elif kind == ROUTE_NEXTHOP and hop:
                    cnl.add_route(network, dev, hop)
                else:
                    raise ProtocolViolation(f"Join: StaticRoutes entry {route} has RouteType {kind} without NextHop")

    def _write_hosts(self, network: str) -> None:
        # name resolution is libnetwork's (embedded DNS), not the driver's: the harness provides it
        lines = ["127.0.0.1\tlocalhost"]
        members = [s for s in self.sandboxes.values() if s.network == network]
        for s in members:
            lines += [f"{a.split('/')[0]}\t{s.name}" for a in s.addresses]
        for s in members:
            path = ns.hosts_file(s.netns)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n")

    def _quiet_call(self, method: str, body: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            self.call(method, body)

    def remove(self, name: str) -> None:
        with self._lock:
            box = self.sandboxes.pop(name, None)
        if box is None:
            raise LibnetworkRefused(f"no such container: {name}")
        net = self.networks[box.network]
        ids = {"NetworkID": net.id, "EndpointID": box.endpoint}
        self.call("NetworkDriver.RevokeExternalConnectivity", ids)
        ns.remove(box.netns)
        self.call("NetworkDriver.Leave", ids)
        self.call("NetworkDriver.DeleteEndpoint", ids)
        with self._lock:
            net.ipam.release(name)
            net.endpoints.pop(name, None)
            self._write_hosts(box.network)

    def exec(self, name: str, argv: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        box = self.sandboxes[name]
        return subprocess.run(
            list(argv),
            preexec_fn=ns.exec_preparer(box.netns),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def close(self) -> None:
        try:
            for name in list(self.sandboxes):
                self.remove(name)
            for name in list(self.networks):
                self.remove_network(name)
        finally:
            self._stop_plugin()


def _set_ipv6(cnl: Lab, dev: str, enabled: bool) -> None:
    """libnetwork's osl setIPv6: IPv6 on the interface if and only if it has an IPv6 address, set before
    the link comes up (an IPv4-only interface must not join IPv6 multicast groups or answer NDP)."""
    with contextlib.suppress(FileNotFoundError):  # a kernel without IPv6: nothing to turn off
        cnl.set_sysctl(f"net.ipv6.conf.{dev}.disable_ipv6", "0" if enabled else "1")
