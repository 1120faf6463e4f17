"""`ipvlan-driver serve`: a libnetwork remote network-driver plugin on a unix socket.

Every call is `POST /<Method>` with a JSON body; replies are JSON, errors `{"Err": "<message>"}`.
The protocol is mapped onto the same driver verbs the CLI uses.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import socket
import socketserver
import stat
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from .driver import Driver
from .errors import ConfigError, DriverError, NotFoundError
from .model import IPAddress
from .options import network_spec
from .remote_ipam import RemoteIpam

log = logging.getLogger("ipvlan_driver.plugin")

PLUGIN_DIR = Path("/run/docker/plugins")
CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"
GENERIC = "com.docker.network.generic"
LOCAL_SPACE, GLOBAL_SPACE = "LocalIpvlan", "GlobalIpvlan"
REQUEST_ADDRESS_TYPE, GATEWAY_TYPE = "RequestAddressType", "com.docker.network.gateway"
ENABLE_IPV6 = "com.docker.network.enable_ipv6"
INTERNAL = "com.docker.network.internal"
ROUTE_CONNECTED = 1

Body = dict[str, Any]


def _field(body: Body, key: str, kind: type = str) -> Any:
    value = body.get(key)
    if not isinstance(value, kind) or (kind is str and not value):
        raise ConfigError(f"request field {key!r} is missing or not a {kind.__name__}")
    return value


def _address(value: object) -> IPAddress | None:
    """An address as libnetwork sends it: bare, or with a prefix length."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ConfigError(f"'Address' must be a string, not {value!r}")
    try:
        return ipaddress.ip_address(_strip_prefix(value))
    except ValueError:
        raise ConfigError(f"invalid address {value!r}") from None


def _strip_prefix(cidr: str) -> str:
    return str(ipaddress.ip_interface(cidr).ip)


class Protocol:
    """The libnetwork methods, each taking and returning a JSON object."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.ipam = RemoteIpam(driver.store, driver.taken_subnets)
        self.methods: dict[str, Callable[[Body], Body]] = {
            "Plugin.Activate": lambda _: {"Implements": ["NetworkDriver", "IpamDriver"]},
            "NetworkDriver.GetCapabilities": lambda _: {"Scope": "local", "ConnectivityScope": "local"},
            "NetworkDriver.CreateNetwork": self.create_network,
            "NetworkDriver.DeleteNetwork": self.delete_network,
            "NetworkDriver.CreateEndpoint": self.create_endpoint,
            "NetworkDriver.EndpointOperInfo": self.endpoint_oper_info,
            "NetworkDriver.DeleteEndpoint": self.delete_endpoint,
            "NetworkDriver.Join": self.join,
            "NetworkDriver.Leave": self.leave,
            "NetworkDriver.DiscoverNew": lambda _: {},
            "NetworkDriver.DiscoverDelete": lambda _: {},
            "NetworkDriver.ProgramExternalConnectivity": lambda _: {},
            "NetworkDriver.RevokeExternalConnectivity": lambda _: {},
            "NetworkDriver.AllocateNetwork": lambda _: {"Options": {}},
            "NetworkDriver.FreeNetwork": lambda _: {},
            "IpamDriver.GetCapabilities": lambda _: {"RequiresMACAddress": False, "RequiresRequestReplay": False},
            "IpamDriver.GetDefaultAddressSpaces": lambda _: {
                "LocalDefaultAddressSpace": LOCAL_SPACE,
                "GlobalDefaultAddressSpace": GLOBAL_SPACE,
            },
            "IpamDriver.RequestPool": self.request_pool,
            "IpamDriver.ReleasePool": self.release_pool,
            "IpamDriver.RequestAddress": self.request_address,
            "IpamDriver.ReleaseAddress": self.release_address,
        }

    def create_network(self, body: Body) -> Body:
        network_id = _field(body, "NetworkID")
        options = body.get("Options") or {}
        if not isinstance(options, dict):
            raise ConfigError("request field 'Options' is not an object")
        generic = options.get(GENERIC) or {}
        if not isinstance(generic, dict):
            raise ConfigError(f"option {GENERIC!r} is not an object")
        subnets: list[str] = []
        gateways: list[str] = []
        for key in ("IPv4Data", "IPv6Data"):
            for pool in body.get(key) or []:
                if not isinstance(pool, dict) or not isinstance(pool.get("Pool"), str):
                    raise ConfigError(f"{key} entries need a 'Pool' string")
                subnets.append(pool["Pool"])
                if pool.get("Gateway"):
                    gateways.append(_strip_prefix(str(pool["Gateway"])))
        if self.driver.store.get("networks", network_id) is not None:
            # Docker re-sends CreateNetwork for the networks it knows after its own restart
            return {}
        spec = network_spec(
            network_id,
            subnets=subnets,
            gateways=gateways,
            options={str(k): str(v) for k, v in generic.items()},
            internal=bool(options.get(INTERNAL)),
            ipv6=bool(options.get(ENABLE_IPV6)),
        )
        self.driver.create_network(spec, network_id=network_id)
        return {}

    def delete_network(self, body: Body) -> Body:
        network_id = _field(body, "NetworkID")
        with contextlib.suppress(NotFoundError):  # deleting what is gone is success
            self.driver.delete_network(network_id)
        return {}

    def create_endpoint(self, body: Body) -> Body:
        network_id, endpoint_id = _field(body, "NetworkID"), _field(body, "EndpointID")
        iface = body.get("Interface") or {}
        if not isinstance(iface, dict):
            raise ConfigError("request field 'Interface' is not an object")
        ip = _strip_prefix(iface["Address"]) if iface.get("Address") else None
        ip6 = _strip_prefix(iface["AddressIPv6"]) if iface.get("AddressIPv6") else None
        if ip is None:
            raise ConfigError("CreateEndpoint needs Interface.Address (libnetwork's IPAM assigns it)")
        self.driver.create_endpoint(network_id, endpoint_id, ip, ip6)
        # ipvlan slaves share the parent's MAC: nothing to hand back
        return {}

    def endpoint_oper_info(self, body: Body) -> Body:
        network_id, endpoint_id = _field(body, "NetworkID"), _field(body, "EndpointID")
        addresses = self.driver.endpoint_addresses(network_id, endpoint_id)
        return {"Value": {"addresses": [str(a) for a in addresses]}}

    def delete_endpoint(self, body: Body) -> Body:
        self.driver.delete_endpoint(_field(body, "NetworkID"), _field(body, "EndpointID"))
        return {}

    def join(self, body: Body) -> Body:
        network_id, endpoint_id = _field(body, "NetworkID"), _field(body, "EndpointID")
        info = self.driver.join(network_id, endpoint_id)
        reply: Body = {
            "InterfaceName": {"SrcName": info.src_name, "DstPrefix": "eth"},
            "DisableGatewayService": True,
        }
        if info.l3:
            reply["StaticRoutes"] = [
                {"Destination": str(dst), "RouteType": ROUTE_CONNECTED, "NextHop": ""} for dst, _ in info.routes
            ]
        else:
            if info.gateway(4):
                reply["Gateway"] = info.gateway(4)
            if info.gateway(6):
                reply["GatewayIPv6"] = info.gateway(6)
        return reply

    def leave(self, body: Body) -> Body:
        self.driver.leave(_field(body, "NetworkID"), _field(body, "EndpointID"))
        return {}

    # IpamDriver: `docker network create --ipam-driver=<plugin>` ------------------------------

    def request_pool(self, body: Body) -> Body:
        pool = body.get("Pool") or None
        sub_pool = body.get("SubPool") or None
        if not all(v is None or isinstance(v, str) for v in (pool, sub_pool)):
            raise ConfigError("RequestPool: 'Pool' and 'SubPool' must be strings")
        space = str(body.get("AddressSpace") or LOCAL_SPACE)
        grant = self.ipam.request_pool(space, pool, sub_pool, v6=bool(body.get("V6")))
        return {"PoolID": grant.pool_id, "Pool": str(grant.subnet), "Data": {}}

    def release_pool(self, body: Body) -> Body:
        self.ipam.release_pool(_field(body, "PoolID"))
        return {}

    def request_address(self, body: Body) -> Body:
        options = body.get("Options") or {}
        if not isinstance(options, dict):
            raise ConfigError("RequestAddress: 'Options' is not an object")
        address = _address(body.get("Address"))
        gateway = options.get(REQUEST_ADDRESS_TYPE) == GATEWAY_TYPE
        given = self.ipam.request_address(_field(body, "PoolID"), address, gateway)
        return {"Address": str(given), "Data": {}}

    def release_address(self, body: Body) -> Body:
        address = _address(body.get("Address"))
        if address is None:
            raise ConfigError("ReleaseAddress needs 'Address'")
        self.ipam.release_address(_field(body, "PoolID"), address)
        return {}

    def handle(self, method: str, raw: bytes) -> tuple[HTTPStatus, Body]:
        fn = self.methods.get(method)
        if fn is None:
            return HTTPStatus.NOT_FOUND, {"Err": f"unknown method {method!r}"}
        try:
            body = json.loads(raw or b"{}")
        except ValueError as exc:
            return HTTPStatus.BAD_REQUEST, {"Err": f"{method}: request is not JSON: {exc}"}
        if not isinstance(body, dict):
            return HTTPStatus.BAD_REQUEST, {"Err": f"{method}: request is not a JSON object"}
        try:
            return HTTPStatus.OK, fn(body)
        except DriverError as exc:
            if method.startswith("IpamDriver."):
                # libnetwork reads an IPAM plugin's error from "Error" (a network driver's from "Err"):
                # an IPAM reply with only "Err" would pass for success with an empty pool
                return HTTPStatus.OK, {"Err": str(exc), "Error": str(exc)}
            return HTTPStatus.OK, {"Err": str(exc)}


class _Handler(BaseHTTPRequestHandler):
    server: PluginServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        method = self.path.lstrip("/")
        status, reply = self.server.protocol.handle(method, raw)
        outcome = f"error: {reply['Err']}" if "Err" in reply else "ok"
        ids = {k: v[:12] for k, v in _ids(raw).items()}
        log.info("%s %s %s", method, " ".join(f"{k}={v}" for k, v in ids.items()), outcome)
        log.debug("%s request=%s reply=%s", method, raw[:2000], reply)
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # http.server's signature
        return  # one line per request comes from do_POST instead


def _ids(raw: bytes) -> dict[str, str]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    return {k: str(body[k]) for k in ("NetworkID", "EndpointID") if isinstance(body.get(k), str)}


class PluginServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, driver: Driver) -> None:
        self.protocol = Protocol(driver)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                _refuse_if_live(path)
                path.unlink()
        old = os.umask(0o177)  # the socket is born 0600: only root may drive the network
        try:
            super().__init__(str(path), _Handler)
        finally:
            os.umask(old)
        self.path = path

    def server_close(self) -> None:
        super().server_close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _refuse_if_live(path: Path) -> None:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return  # a stale socket from a dead plugin: safe to replace
    finally:
        probe.close()
    raise DriverError(f"another plugin is already serving {path}")


def socket_path(name: str, directory: Path = PLUGIN_DIR) -> Path:
    if not name or "/" in name:
        raise ConfigError(f"invalid plugin name {name!r}")
    return directory / f"{name}.sock"
