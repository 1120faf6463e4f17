"""The ways a container gets its network, each behind one small interface: set up container i, remove it.

`Floor` is the kernel's floor: the same kernel work as the driver (slave on the parent in the host
namespace, moved into the container's as eth0, lo up, its address, up, its default route; removal is
the namespace going) in raw pyroute2: one host socket for the whole run, one socket per container namespace
for all of its steps (opened inside it by setns, never `IPRoute(netns=...)`, which forks). `IpCommands` is
that work as `ip` commands. `InProcess`, `Cli` and `Plugin` are our driver's three faces; `Cni` is the CNI
plugin's ADD/DEL and `DockerBuiltin` Docker's own ipvlan driver. Setup and removal are timed apart.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from conformance.backends.unixhttp import UnixHTTPConnection
from ipvlan_driver import netns as ns
from ipvlan_driver.driver import Driver, DriverConfig
from ipvlan_driver.model import MODES
from ipvlan_driver.netlink import Netlink
from ipvlan_driver.options import network_spec

from .common import HOST_ADDR, L3_NET, LAB_NET, PARENT, Lab, address, open_iproute, rss_kb

CNI_PATH = Path(os.environ.get("IPVLAN_CONFORMANCE_CNI_PATH", "/usr/lib/cni"))
RT_SCOPE_LINK = 253
LO_INDEX = 1  # a fresh namespace's loopback is always ifindex 1


@dataclass
class Handle:
    """One set-up container: its namespace, its address, and whatever the face must keep to remove it."""

    netns: str
    address: str
    keep: dict[str, Any] = field(default_factory=dict)


class Face(Protocol):
    name: str

    @staticmethod
    def available(kind: str) -> str: ...

    def setup(self, i: int) -> Handle: ...

    def remove(self, handle: Handle) -> None: ...

    def close(self) -> None: ...


def subnet(mode: str) -> Any:
    return LAB_NET if mode == "l2" else L3_NET


def link_args(kind: str, mode: str) -> dict[str, Any]:
    """The kind-specific attributes of the slave (ipvlan as the driver makes it; macvlan for hosts without)."""
    if kind == "ipvlan":
        return {"kind": "ipvlan", "ipvlan_mode": MODES.index(mode), "ipvlan_flags": 0}
    if kind == "macvlan":
        return {"kind": "macvlan", "macvlan_mode": "bridge"}
    raise ValueError(f"unknown slave kind {kind!r}")


def configure_sandbox(cnl: Any, mode: str, ip: Any, gateway: str | None) -> None:
    """Inside the container's namespace: lo up, address eth0, up, default route (what libnetwork does)."""
    cnl.link("set", index=LO_INDEX, state="up")
    index = cnl.link_lookup(ifname="eth0")[0]
    cnl.addr("add", index=index, address=str(ip.ip), prefixlen=ip.network.prefixlen)
    cnl.link("set", index=index, state="up")
    if mode == "l2" and gateway:
        cnl.route("add", dst="0.0.0.0/0", gateway=gateway, oif=index)
    else:
        cnl.route("add", dst="0.0.0.0/0", oif=index, scope=RT_SCOPE_LINK)


def move_in(host: Any, src: str, netns: str) -> None:
    index = host.link_lookup(ifname=src)[0]
    fd = os.open(ns.netns_path(netns), os.O_RDONLY)
    try:
        host.link("set", index=index, net_ns_fd=fd, ifname="eth0")
    finally:
        os.close(fd)


class Floor:
    """Raw pyroute2, one socket per namespace: the least a driver can do for the same result."""

    name = "floor"

    @staticmethod
    def available(kind: str) -> str:
        """'' when this face can run here, else why not."""
        return ""

    def __init__(self, lab: Lab, kind: str, mode: str = "l2") -> None:
        self.lab, self.kind, self.mode = lab, kind, mode
        self.host = open_iproute(lab.host)
        self.parent = self.host.link_lookup(ifname=PARENT)[0]

    def setup(self, i: int) -> Handle:
        netns, src, ip = self.lab.container(i), f"bs{i}", address(subnet(self.mode), i)
        ns.create(netns)
        self.host.link("add", ifname=src, link=self.parent, **link_args(self.kind, self.mode))
        move_in(self.host, src, netns)
        cnl = open_iproute(netns)
        try:
            configure_sandbox(cnl, self.mode, ip, str(HOST_ADDR.ip))
        finally:
            cnl.close()  # kept, 1,000 of them would run out of file descriptors (scale)
        return Handle(netns, str(ip))

    def remove(self, handle: Handle) -> None:
        ns.remove(handle.netns)  # the slave goes with its namespace, as with the driver

    def close(self) -> None:
        self.host.close()

    def rss(self) -> dict[str, int]:
        return rss_kb()


class IpCommands:
    """The floor's work as iproute2 commands, one process each (what a shell script would pay)."""

    name = "ip"

    @staticmethod
    def available(kind: str) -> str:
        """'' when this face can run here, else why not."""
        return ""

    def __init__(self, lab: Lab, kind: str, mode: str = "l2") -> None:
        self.lab, self.kind, self.mode = lab, kind, mode

    @staticmethod
    def ip(*argv: str) -> None:
        done = subprocess.run(["ip", *argv], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"`ip {' '.join(argv)}` failed: {done.stderr.strip()}")

    def setup(self, i: int) -> Handle:
        netns, src, ip, host = self.lab.container(i), f"bs{i}", address(subnet(self.mode), i), self.lab.host
        kind = ["type", "ipvlan", "mode", self.mode] if self.kind == "ipvlan" else ["type", "macvlan", "mode", "bridge"]
        self.ip("netns", "add", netns)
        self.ip("-n", host, "link", "add", src, "link", PARENT, *kind)
        self.ip("-n", host, "link", "set", src, "netns", netns, "name", "eth0")
        self.ip("-n", netns, "link", "set", "lo", "up")
        self.ip("-n", netns, "addr", "add", str(ip), "dev", "eth0")
        self.ip("-n", netns, "link", "set", "eth0", "up")
        via = ["via", str(HOST_ADDR.ip)] if self.mode == "l2" else []
        self.ip("-n", netns, "route", "add", "default", *via, "dev", "eth0")
        return Handle(netns, str(ip))

    def remove(self, handle: Handle) -> None:
        self.ip("netns", "del", handle.netns)

    def close(self) -> None:
        pass


def _spec(mode: str) -> Any:
    net = subnet(mode)
    return network_spec(
        "bench",
        subnets=[str(net)],
        gateways=[str(HOST_ADDR.ip)] if mode == "l2" else [],
        options={"parent": PARENT, "ipvlan_mode": mode},
    )


class InProcess:
    """Our driver's verbs called in this process: `Driver.run` / `Driver.remove_container`."""

    name = "driver"

    @staticmethod
    def available(kind: str) -> str:
        return "" if kind == "ipvlan" else f"this kernel has no ipvlan (slaves are {kind})"

    def __init__(self, lab: Lab, kind: str = "ipvlan", mode: str = "l2") -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="bench-driver-")
        config = DriverConfig(state_dir=Path(self.tmp.name), host_netns=lab.host, container_prefix=lab.prefix)
        self.driver = Driver(config)
        self.driver.create_network(_spec(mode))

    def setup(self, i: int) -> Handle:
        c = self.driver.run("bench", name=f"c{i}")
        return Handle(c.netns, str(c.addresses[0]), {"name": c.name})

    def remove(self, handle: Handle) -> None:
        self.driver.remove_container(handle.keep["name"])

    def close(self) -> None:
        for name in self.driver.container_names():
            self.driver.remove_container(name)
        self.driver.delete_network("bench")
        self.tmp.cleanup()

    def rss(self) -> dict[str, int]:
        return rss_kb()


def driver_command() -> list[str]:
    exe = Path(sys.executable).with_name("ipvlan-driver")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ipvlan_driver.cli"]


class Cli:
    """`ipvlan-driver run -d` / `ipvlan-driver rm`: one process per container, as a user would type it."""

    name = "cli"

    @staticmethod
    def available(kind: str) -> str:
        return "" if kind == "ipvlan" else f"this kernel has no ipvlan (slaves are {kind})"

    def __init__(self, lab: Lab, kind: str = "ipvlan", mode: str = "l2") -> None:
        self.lab = lab
        self.tmp = tempfile.TemporaryDirectory(prefix="bench-cli-")
        self.base = [*driver_command(), "--state-dir", self.tmp.name, "--host-netns", lab.host]
        self.base += ["--netns-prefix", lab.prefix]
        gateway = ["--gateway", str(HOST_ADDR.ip)] if mode == "l2" else []
        opts = ["-o", f"parent={PARENT}", "-o", f"ipvlan_mode={mode}"]
        self.cli("network", "create", "-d", "ipvlan", "--subnet", str(subnet(mode)), *gateway, *opts, "bench")

    def cli(self, *argv: str) -> str:
        done = subprocess.run([*self.base, *argv], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"`ipvlan-driver {' '.join(argv)}` failed: {done.stderr.strip()}")
        return done.stdout

    def setup(self, i: int) -> Handle:
        self.cli("run", "-d", "--net", "bench", "--name", f"c{i}")
        return Handle(self.lab.prefix + f"c{i}", "", {"name": f"c{i}"})

    def remove(self, handle: Handle) -> None:
        self.cli("rm", handle.keep["name"])

    def close(self) -> None:
        self.cli("network", "rm", "bench")
        self.tmp.cleanup()


class Plugin:
    """Our `ipvlan-driver serve` in its own process; this side plays libnetwork over the unix socket.

    libnetwork's share of the work (IPAM through the plugin's IpamDriver, the namespace, moving SrcName in
    and configuring it) uses raw sockets like the floor, one host socket per thread: only the plugin's
    own cost separates this face from the floor. Connections are kept alive per thread, as Go's client does.
    """

    name = "plugin"

    @staticmethod
    def available(kind: str) -> str:
        return "" if kind == "ipvlan" else f"this kernel has no ipvlan (slaves are {kind})"

    def __init__(self, lab: Lab, kind: str = "ipvlan", mode: str = "l2", wrap: list[str] | None = None) -> None:
        self.lab, self.mode = lab, mode
        self.tmp = tempfile.TemporaryDirectory(prefix="bench-plugin-")
        self.socket = Path(self.tmp.name) / "plugin.sock"
        # wrap: the command that stands for `ipvlan-driver` (benchmarks/profiling.py's profiled server)
        command = wrap or driver_command()
        argv = [*command, "--state-dir", f"{self.tmp.name}/state", "--host-netns", lab.host]
        argv += ["--netns-prefix", lab.prefix, "serve", "--socket", str(self.socket)]
        self.log = open(Path(self.tmp.name) / "plugin.log", "wb")  # noqa: SIM115 - lives as long as the plugin
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        self.local = threading.local()
        self.sockets: list[Any] = []
        self.connections: list[UnixHTTPConnection] = []
        self.lock = threading.Lock()
        try:
            self._wait_ready()
            net = subnet(mode)
            pool = self.call("IpamDriver.RequestPool", {"AddressSpace": "LocalIpvlan", "Pool": str(net), "V6": False})
            self.pool = pool["PoolID"]
            gateway = str(HOST_ADDR.ip) if mode == "l2" else str(net.network_address + 1)
            self.call(
                "IpamDriver.RequestAddress",
                {
                    "PoolID": self.pool,
                    "Address": gateway,
                    "Options": {"RequestAddressType": "com.docker.network.gateway"},
                },
            )
            self.network = secrets.token_hex(32)
            self.call(
                "NetworkDriver.CreateNetwork",
                {
                    "NetworkID": self.network,
                    "Options": {"com.docker.network.generic": {"parent": PARENT, "ipvlan_mode": mode}},
                    "IPv4Data": [
                        {"AddressSpace": "LocalIpvlan", "Pool": str(net), "Gateway": f"{gateway}/{net.prefixlen}"}
                    ],
                    "IPv6Data": [],
                },
            )
        except BaseException:
            self._stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the plugin exited with {self.proc.returncode}: see {self.log.name}")
            if self.socket.exists():
                try:
                    self.call("Plugin.Activate", {})
                    return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the plugin never answered on {self.socket}")
            time.sleep(0.02)  # polling to a deadline: the plugin is starting

    def _conn(self) -> UnixHTTPConnection:
        conn: UnixHTTPConnection | None = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = UnixHTTPConnection(self.socket, timeout=120)
            with self.lock:  # each thread keeps its own; _stop closes them all, whichever thread made them
                self.connections.append(conn)
        return conn

    def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        for attempt in (1, 2):  # a kept-alive connection the server closed is reopened once
            conn = self._conn()
            try:
                conn.request("POST", f"/{method}", json.dumps(body), {"Content-Type": "application/json"})
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
        reply: dict[str, Any] = json.loads(raw or b"{}")
        if reply.get("Err"):
            raise RuntimeError(f"{method}: {reply['Err']}")
        return reply

    def _host(self) -> Any:
        host = getattr(self.local, "host", None)
        if host is None:
            host = self.local.host = open_iproute(self.lab.host)
            with self.lock:
                self.sockets.append(host)
        return host

    def close_thread(self) -> None:
        """Close this thread's host socket: pyroute2 keeps a socket's event loop and transport per thread, so
        only the thread that used it can close them (from another, they are left to the GC)."""
        host = getattr(self.local, "host", None)
        if host is not None:
            self.local.host = None
            with self.lock:
                self.sockets.remove(host)
            host.close()

    def setup(self, i: int) -> Handle:
        ip = self.call("IpamDriver.RequestAddress", {"PoolID": self.pool, "Options": {}})["Address"]
        endpoint = secrets.token_hex(32)
        ids = {"NetworkID": self.network, "EndpointID": endpoint}
        netns = self.lab.container(i)
        with contextlib.ExitStack() as undo:  # libnetwork's rollback: a failed run leaves nothing behind
            undo.callback(self.call, "IpamDriver.ReleaseAddress", {"PoolID": self.pool, "Address": ip.split("/")[0]})
            self.call("NetworkDriver.CreateEndpoint", {**ids, "Interface": {"Address": ip}, "Options": {}})
            undo.callback(self.call, "NetworkDriver.DeleteEndpoint", ids)
            ns.create(netns)
            undo.callback(ns.remove, netns)
            join = self.call("NetworkDriver.Join", {**ids, "SandboxKey": str(ns.netns_path(netns)), "Options": {}})
            undo.callback(self.call, "NetworkDriver.Leave", ids)
            move_in(self._host(), join["InterfaceName"]["SrcName"], netns)
            cnl = open_iproute(netns)
            try:
                configure_sandbox(cnl, self.mode, ipaddress.ip_interface(ip), join.get("Gateway"))
            finally:
                cnl.close()
            undo.pop_all()
        return Handle(netns, ip, {"ids": ids})

    def remove(self, handle: Handle) -> None:
        # libnetwork's order: Leave, the sandbox goes, DeleteEndpoint, then the address is released
        self.call("NetworkDriver.Leave", handle.keep["ids"])
        ns.remove(handle.netns)
        self.call("NetworkDriver.DeleteEndpoint", handle.keep["ids"])
        self.call("IpamDriver.ReleaseAddress", {"PoolID": self.pool, "Address": handle.address.split("/")[0]})

    def rss(self) -> dict[str, int]:
        return rss_kb(self.proc.pid)

    def _stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        for sock in self.sockets:
            sock.close()
        for conn in self.connections:
            conn.close()

    def close(self) -> None:
        try:
            self.call("NetworkDriver.DeleteNetwork", {"NetworkID": self.network})
        finally:
            self._stop()
            self.tmp.cleanup()


class Cni:
    """The CNI plugin's ADD and DEL (containernetworking-plugins), with host-local IPAM, in the host namespace."""

    name = "cni"

    @staticmethod
    def available(kind: str) -> str:
        """'' when it can run here, else why not."""
        return "" if (CNI_PATH / kind).exists() else f"no CNI {kind} plugin in {CNI_PATH}"

    def __init__(self, lab: Lab, kind: str, mode: str = "l2") -> None:
        self.lab, self.kind = lab, kind
        self.tmp = tempfile.TemporaryDirectory(prefix="bench-cni-")
        net = subnet(mode)
        ipam = {
            "type": "host-local",
            "subnet": str(net),
            "rangeStart": str(address(net, 0).ip),
            "gateway": str(HOST_ADDR.ip),
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": f"{self.tmp.name}/ipam",
        }
        conf: dict[str, Any] = {"cniVersion": "1.0.0", "name": "bench", "type": kind, "master": PARENT, "ipam": ipam}
        conf["mode"] = mode if kind == "ipvlan" else "bridge"
        self.conf = json.dumps(conf).encode()

    def _cni(self, command: str, netns: str) -> dict[str, Any]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": netns,
            "CNI_NETNS": str(ns.netns_path(netns)),
            "CNI_IFNAME": "eth0",
            "CNI_PATH": str(CNI_PATH),
        }
        done = subprocess.run(
            [str(CNI_PATH / self.kind)],
            input=self.conf,
            env=env,
            capture_output=True,
            check=False,
            preexec_fn=ns.exec_preparer(self.lab.host),
        )
        if done.returncode != 0:
            raise RuntimeError(f"CNI {command} failed: {done.stdout.decode()[:300]} {done.stderr.decode()[:300]}")
        return json.loads(done.stdout or b"{}")  # type: ignore[no-any-return]

    def setup(self, i: int) -> Handle:
        netns = self.lab.container(i)
        ns.create(netns)
        result = self._cni("ADD", netns)
        ips = result.get("ips") or [{}]
        return Handle(netns, str(ips[0].get("address", "")))

    def remove(self, handle: Handle) -> None:
        self._cni("DEL", handle.netns)
        ns.remove(handle.netns)

    def close(self) -> None:
        self.tmp.cleanup()


class DockerBuiltin:
    """Docker's built-in ipvlan driver: `docker run -d` / `docker rm -f` through the API, as the conformance
    suite's docker backend drives it (its dockerd, in its own namespace, where this face makes the parent).
    A run here is a whole container (runc, the image's process), not only its network: an upper bound."""

    name = "docker"

    @staticmethod
    def available(kind: str) -> str:
        if kind != "ipvlan":
            return f"this kernel has no ipvlan (slaves are {kind})"
        return "" if shutil.which("dockerd") else "no dockerd here (ci/bench installs Docker in the VM)"

    def __init__(self, lab: Lab, kind: str = "ipvlan", mode: str = "l2") -> None:
        from conformance.backends import docker
        from conformance.backends.base import HostContext
        from conformance.examples import NetworkRequest

        self.docker = docker
        self.tmp = tempfile.TemporaryDirectory(prefix="bench-docker-")
        try:
            docker.DockerBackend.shared_host_netns({})  # starts dockerd in its namespace
            with Netlink(docker.HOST_NETNS) as nl:
                nl.add_veth(PARENT, PARENT + "p")
                nl.set_up(PARENT)
            host = HostContext(netns=docker.HOST_NETNS, workdir=Path(self.tmp.name), prefix=lab.prefix, options={})
            self.backend = docker.DockerBackend(host)
            gateways = (str(HOST_ADDR.ip),) if mode == "l2" else ()
            options = (("parent", PARENT), ("ipvlan_mode", mode))
            self.backend.create_network(NetworkRequest("bench", (str(subnet(mode)),), gateways, options))
        except BaseException:
            docker.DockerBackend.shutdown()  # the daemon and its namespace go with the failed face
            self.tmp.cleanup()
            raise

    def setup(self, i: int) -> Handle:
        from conformance.examples import ContainerRequest

        attached = self.backend.run(ContainerRequest(f"c{i}", "bench"))
        return Handle(attached.netns, "", {"name": attached.name})

    def remove(self, handle: Handle) -> None:
        self.backend.remove(handle.keep["name"])

    def close(self) -> None:
        try:
            for name in list(self.backend.containers):
                self.backend.remove(name)
            self.backend.remove_network("bench")
        finally:
            with Netlink(self.docker.HOST_NETNS) as nl:
                nl.delete_link(PARENT)
            self.docker.DockerBackend.shutdown()
            self.tmp.cleanup()


FACES: dict[str, type[Any]] = {  # each class satisfies Face (a Protocol cannot type a constructor)
    "floor": Floor,
    "ip": IpCommands,
    "driver": InProcess,
    "cli": Cli,
    "plugin": Plugin,
    "cni": Cni,
    "docker": DockerBuiltin,
}
