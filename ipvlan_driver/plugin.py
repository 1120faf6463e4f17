"""`ipvlan-driver serve`: a libnetwork remote network-driver plugin on a unix socket.

Every call is `POST /<Method>` with a JSON body; replies are JSON, errors `{"Err": "<message>"}`.
The protocol is mapped onto the same driver verbs the CLI uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import signal
import socket
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path
from typing import Any

import h11

from . import schema
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
BACKLOG = 128
WORKERS = 8
MAX_CONNECTIONS = 1024
READ_TIMEOUT_S = 10.0
RELEASE_TIMEOUT_S = 10.0  # at shutdown, how long idle workers wait at the barrier for a busy one
MAX_BODY = 1 << 20  # libnetwork's largest request, CreateNetwork, is a few KiB
MAX_HEADER = 64 * 1024
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}

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


def _strip_prefix(cidr: str, what: str = "address") -> str:
    try:
        return str(ipaddress.ip_interface(cidr).ip)
    except ValueError:
        raise ConfigError(f"invalid {what} {cidr!r}: not an IP address") from None


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
                    gateways.append(_strip_prefix(str(pool["Gateway"]), f"{key} gateway"))
        if self.driver.store.get("networks", network_id) is not None:
            # Docker re-sends CreateNetwork for the networks it knows after its own restart
            return {}
        spec = network_spec(
            network_id,
            subnets=subnets,
            gateways=gateways,
            options={str(k): str(v) for k, v in generic.items()},
            internal=options.get(INTERNAL) is True,
            ipv6=options.get(ENABLE_IPV6) is True,
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
        """Every request gets a well-formed reply: a result, or an error naming the method and the cause."""
        fn = self.methods.get(method)
        if fn is None:
            return HTTPStatus.NOT_FOUND, {"Err": f"unknown method {method[:80]!r}"}
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, RecursionError) as exc:
            why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            return HTTPStatus.BAD_REQUEST, self._error(method, f"request is not JSON: {why}")
        if not isinstance(body, dict):
            return HTTPStatus.BAD_REQUEST, self._error(method, "request is not a JSON object")
        try:
            schema.validate(method, body)
            return HTTPStatus.OK, fn(body)
        except DriverError as exc:
            return HTTPStatus.OK, self._error(method, str(exc))
        except Exception as exc:  # a bug must still answer, or Docker waits for its timeout
            log.exception("%s failed", method)
            return HTTPStatus.INTERNAL_SERVER_ERROR, self._error(
                method, f"internal error ({type(exc).__name__}: {exc})"
            )

    @staticmethod
    def _error(method: str, message: str) -> Body:
        if method.startswith("IpamDriver."):
            # libnetwork reads an IPAM plugin's error from "Error" (a network driver's from "Err"):
            # an IPAM reply with only "Err" would pass for success with an empty pool
            return {"Err": message, "Error": message}
        return {"Err": message}


class PluginServer:
    """The plugin's HTTP server on a unix socket: it always answers, whatever arrives.

    One asyncio loop reads requests (h11 parses HTTP/1.1): thousands of idle or slow clients cost a
    socket each, not a thread. Every read has a timeout, bodies have a size limit, and at most
    `max_connections` are open at once (the rest get 503 at once). Verbs run on a bounded pool of
    worker threads; they are serialised by the state lock anyway, so a few suffice.
    """

    def __init__(
        self,
        path: Path,
        driver: Driver,
        *,
        workers: int = WORKERS,
        max_connections: int = MAX_CONNECTIONS,
        read_timeout: float = READ_TIMEOUT_S,
        max_body: int = MAX_BODY,
    ) -> None:
        self.protocol = Protocol(driver)
        self.path = path
        self.workers, self.max_connections = workers, max_connections
        self.read_timeout, self.max_body = read_timeout, max_body
        self._open = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._unadopted: set[socket.socket] = set()  # accepted, handler not started yet
        self._state_lock = threading.Lock()
        self._shutdown_requested = False
        self._stopped = threading.Event()
        self._stopped.set()
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                _refuse_if_live(path)
                path.unlink()
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is born 0600: only root may drive the network
        try:
            self.socket.bind(str(path))
        except OSError as exc:
            self.socket.close()
            raise DriverError(f"cannot serve on {path}: {exc.strerror}") from None
        finally:
            os.umask(old)
        # Go's HTTP client dials without blocking: a short backlog refuses a burst of connects (EAGAIN)
        self.socket.listen(BACKLOG)
        self.socket.setblocking(False)

    def serve_forever(self, handle_signals: bool = False) -> None:
        """Serve until shutdown() (from another thread) or, with handle_signals, SIGTERM/SIGINT."""
        self._stopped.clear()
        try:
            asyncio.run(self._serve(handle_signals))
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        with self._state_lock:
            self._shutdown_requested = True  # seen by a serve_forever that has not started its loop yet
            loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                loop.call_soon_threadsafe(stop.set)
        self._stopped.wait(30)

    def server_close(self) -> None:
        self.socket.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, handle_signals: bool) -> None:
        with self._state_lock:
            if self._shutdown_requested:
                return
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
        if handle_signals:
            for sig in STOP_SIGNALS:
                self._loop.add_signal_handler(sig, self._stop.set)
            # `serve` blocked them before the socket existed: one sent since is delivered now
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        keep = self.protocol.driver.keep_host_connection_here  # each worker's, closed by _release_workers
        with ThreadPoolExecutor(self.workers, thread_name_prefix="verb", initializer=keep) as pool:
            self._pool = pool
            # accepting by a reader callback, not asyncio.Server or sock_accept: in 3.11 both can leak a
            # socket accepted just as they are closed or cancelled
            self._loop.add_reader(self.socket.fileno(), self._accept)
            try:
                await self._stop.wait()
            finally:
                self._stopping = True
                self._loop.remove_reader(self.socket.fileno())
                await self._drain()
                await self._release_workers(pool)
                with self._state_lock:
                    self._loop = None

    async def _release_workers(self, pool: ThreadPoolExecutor) -> None:
        """Each worker closes its kept host connection, on its own thread: one task per worker, held at a
        barrier so that no worker takes two (the pool starts a thread for each task while all are busy).
        A worker still in a verb past RELEASE_TIMEOUT_S closes its own when the verb ends (_handle)."""
        barrier = threading.Barrier(self.workers)
        driver = self.protocol.driver

        def release() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(RELEASE_TIMEOUT_S)
            driver.close_host_connection()

        tasks = [asyncio.wrap_future(pool.submit(release)) for _ in range(self.workers)]
        for failed in await asyncio.gather(*tasks, return_exceptions=True):
            if failed is not None:
                log.warning("closing a worker's host connection failed: %s", failed)

    async def _drain(self) -> None:
        """Close every connection: none may outlive the loop (each would leak its socket)."""
        for _ in range(3):  # accepted connections start their handlers, which see _stopping and close
            await asyncio.sleep(0)
        for _ in range(100):
            handlers = list(self._clients)
            if not handlers:
                break
            for task in handlers:
                task.cancel()  # all have started: a cancel lands in an await, inside try/finally
            await asyncio.gather(*handlers, return_exceptions=True)
        for conn in list(self._unadopted):
            conn.close()
        for _ in range(3):  # closed transports release their sockets in callbacks of later rounds
            await asyncio.sleep(0.01)

    def _accept(self) -> None:
        """Take every connection waiting in the backlog; each gets a handler task."""
        assert self._loop is not None
        while True:
            try:
                conn, _ = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: leave the rest queued, say so
                log.warning("accept failed: %s", exc)
                return
            conn.setblocking(False)
            self._unadopted.add(conn)
            task = self._loop.create_task(self._adopt(conn))
            self._clients.add(task)
            task.add_done_callback(self._clients.discard)

    async def _adopt(self, conn: socket.socket) -> None:
        self._unadopted.discard(conn)
        try:
            reader, writer = await asyncio.open_unix_connection(sock=conn, limit=MAX_HEADER)
        except BaseException:
            conn.close()
            raise
        await self._client(reader, writer)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open += 1
        try:
            if self._stopping:
                return
            if self._open > self.max_connections:
                # read what the client sent first: closing on unread data would reset, not answer, it
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 1.0)
                await self._send_raw(writer, 503, {"Err": "plugin busy: too many open connections, retry"})
                return
            await self._conversation(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away: nobody to answer
        except Exception:
            log.exception("connection handler failed")
        except asyncio.CancelledError:
            pass  # the server is stopping
        finally:
            self._open -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _conversation(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER)
        while True:
            try:
                request = await self._read_request(conn, reader)
            except _Refusal as refusal:
                await self._send(conn, writer, refusal.status, {"Err": refusal.message}, close=True)
                return
            if request is None:
                return
            method, raw = request
            assert self._loop is not None and self._pool is not None
            status, reply = await self._loop.run_in_executor(self._pool, self._handle, method, raw)
            await self._send(conn, writer, status, reply)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader) -> tuple[str, bytes] | None:
        method = ""
        body = bytearray()
        started = False
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise _Refusal(400, f"malformed HTTP request: {exc}") from None
            if event is h11.NEED_DATA:
                try:
                    data = await asyncio.wait_for(reader.read(65536), self.read_timeout)
                except TimeoutError:
                    if not started:
                        return None  # an idle keep-alive connection: close it quietly
                    raise _Refusal(408, f"request not received within {self.read_timeout:g} s") from None
                if not data and not started:
                    return None
                started = True
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                started = True
                if event.method != b"POST":
                    raise _Refusal(405, f"method {event.method.decode(errors='replace')} not allowed: use POST")
                method = event.target.decode(errors="replace").lstrip("/")
                length = dict(event.headers).get(b"content-length")
                if length is not None and int(length) > self.max_body:
                    raise _Refusal(413, f"{method}: request body over {self.max_body} bytes")
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.max_body:
                    raise _Refusal(413, f"{method}: request body over {self.max_body} bytes")
            elif isinstance(event, h11.EndOfMessage):
                return method, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                return None

    def _handle(self, method: str, raw: bytes) -> tuple[HTTPStatus, Body]:
        try:
            status, reply = self.protocol.handle(method, raw)
        finally:
            if self._stopping:  # a verb that outlived the drain: its worker may get no release task
                self.protocol.driver.close_host_connection()
        outcome = f"error: {reply['Err']}" if "Err" in reply else "ok"
        ids = {k: v[:12] for k, v in _ids(raw).items()}
        log.info("%s %s %s", method, " ".join(f"{k}={v}" for k, v in ids.items()), outcome)
        log.debug("%s request=%s reply=%s", method, raw[:2000], reply)
        return status, reply

    async def _send(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int, reply: Body, close: bool = False
    ) -> None:
        data = json.dumps(reply).encode()
        headers = [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(data)))]
        if close:
            headers.append(("Connection", "close"))
        try:
            out = conn.send(h11.Response(status_code=int(status), headers=headers))
            out = (out or b"") + (conn.send(h11.Data(data=data)) or b"") + (conn.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            await self._send_raw(writer, int(status), reply)  # the request was too broken for h11's state
            return
        writer.write(out)
        await writer.drain()

    @staticmethod
    async def _send_raw(writer: asyncio.StreamWriter, status: int, reply: Body) -> None:
        data = json.dumps(reply).encode()
        reason = HTTPStatus(status).phrase
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {CONTENT_TYPE}\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + data)
        await writer.drain()


class _Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _ids(raw: bytes) -> dict[str, str]:
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        return {}
    if not isinstance(body, dict):
        return {}
    return {k: str(body[k]) for k in ("NetworkID", "EndpointID") if isinstance(body.get(k), str)}


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
