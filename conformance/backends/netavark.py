"""`netavark`: Podman's network backend, driven as its own tests drive it (no Podman, no images).

Each documented network becomes the network definition Podman would hand netavark (`driver: ipvlan`,
`network_interface` = the parent, `options.mode` = ipvlan_mode, subnets with gateways); each container is
a namespace the suite makes, given to `netavark setup` and `teardown`. netavark does no IPAM of its own:
Podman fills in `static_ips`, so this backend allocates as Podman's host-local IPAM does (one address per
subnet, the gateway skipped, the next address after the last one handed out). What netavark has no notion
of is declared unsupported: flags, creating `name.vid` or dummy parents, the docs' --internal (no parent),
a default pool and name resolution.

`--netavark-root DIR`: a netavark unpacked from a package (`DIR/usr/lib/podman/netavark`); when DIR also
holds the C library it was built for (`DIR/usr/lib64/ld-linux-x86-64.so.2`), it runs under that loader,
which is how Debian 13's netavark runs on Debian 12.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import netnsutil as ns

from ..examples import ContainerRequest, NetworkRequest
from .base import Attached, BackendRefused, BaseBackend, HostContext, Option, run_in_netns

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network
SYSTEM = Path("/usr/lib/podman/netavark")
LOADER = "usr/lib64/ld-linux-x86-64.so.2"
LIBRARIES = "usr/lib/x86_64-linux-gnu"


def command(root: str | None) -> list[str]:
    """How to start netavark: the system's, or one unpacked under root (with its own libc if it has one)."""
    if not root:
        return [shutil.which("netavark") or str(SYSTEM)]
    base = Path(root)
    binary = base / "usr/lib/podman/netavark"
    if (base / LOADER).exists():
        return [str(base / LOADER), "--library-path", str(base / LIBRARIES), str(binary)]
    return [str(binary)]


@dataclass
class _Pool:
    """One subnet's leases, as Podman keeps them: ip -> container, and the last address handed out."""

    subnet: Subnet
    gateway: Address | None
    leases: dict[Address, str] = field(default_factory=dict)
    last: Address | None = None

    def take(self, container: str, static: Address | None) -> Address:
        if static is not None:
            owner = self.leases.get(static)
            if owner is not None:
                raise BackendRefused(f"IPAM error: requested ip address {static} is already allocated to {owner}")
            self.leases[static] = container
            return static
        # as integers: mypy cannot tell an IPv4 pool's addresses from an IPv6 one's
        first = int(self.subnet.network_address) + 1
        end = int(self.subnet.broadcast_address) - (1 if self.subnet.version == 4 else 0)
        last = int(self.last) if self.last is not None else None
        start = first if last is None or last + 1 > end else last + 1
        candidate = start
        while True:
            address = ipaddress.ip_address(candidate)
            if address != self.gateway and address not in self.leases:
                self.leases[address] = container
                self.last = address
                return address
            candidate = candidate + 1 if candidate < end else first
            if candidate == start:
                low, high = ipaddress.ip_address(first), ipaddress.ip_address(end)
                raise BackendRefused(f"IPAM error: failed to find free IP in range: {low} - {high}")

    def release(self, container: str) -> None:
        for ip in [ip for ip, owner in self.leases.items() if owner == container]:
            del self.leases[ip]


@dataclass
class _Net:
    info: dict[str, Any]
    pools: list[_Pool]
    containers: dict[str, list[Address]] = field(default_factory=dict)  # name -> static_ips


class NetavarkBackend(BaseBackend):
    OPTIONS = (
        Option(
            "--netavark-root",
            "--backend=netavark: a netavark unpacked from its package (DIR/usr/lib/podman/netavark, and its own "
            "libc when DIR has one); default: the system's",
        ),
    )
    name = "netavark"
    capabilities = frozenset({"vlan", "ipv6", "l3s"})

    @staticmethod
    def describe(options: Mapping[str, Any]) -> dict[str, str]:
        argv = command(options.get("netavark_root"))
        try:
            out = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=30, check=False)
        except OSError as exc:
            return {"driver": f"no netavark at {argv[-1]}: {exc}"}
        return {"driver": (out.stdout.strip() or out.stderr.strip() or "?") + f" ({argv[-1]})"}

    def __init__(self, host: HostContext) -> None:
        self.host = host
        self.argv = command(host.options.get("netavark_root"))
        if not Path(self.argv[-1]).exists():
            raise BackendRefused(f"no netavark at {self.argv[-1]} (ci/bootstrap.py --backends=netavark)")
        self.config = host.workdir / "netavark"
        self.networks: dict[str, _Net] = {}
        self.containers: dict[str, tuple[str, str]] = {}  # name -> (network, netns)
        self._lock = threading.Lock()  # Podman serialises its IPAM database; netavark runs unlocked

    def _invoke(self, verb: str, net: _Net, container: str, ips: list[Address], netns: str) -> dict[str, Any]:
        body = {
            "container_id": container,
            "container_name": container,
            "networks": {net.info["name"]: {"static_ips": [str(ip) for ip in ips], "interface_name": "eth0"}},
            "network_info": {net.info["name"]: net.info},
        }
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "NETAVARK_FW": "none",  # ipvlan needs no firewall rules; none keeps netavark off nftables
            "DBUS_SYSTEM_BUS_ADDRESS": "",  # and off firewalld, which lives in another namespace
        }
        argv = [*self.argv, "--config", str(self.config), "--rootless", "false", verb, str(ns.netns_path(netns))]
        # netavark finds the parent in the namespace it runs in: the docker host's
        proc = subprocess.run(
            argv,
            input=json.dumps(body),
            capture_output=True,
            text=True,
            env=env,
            preexec_fn=ns.exec_preparer(self.host.netns),
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            try:
                message = json.loads(proc.stdout)["error"]
            except (ValueError, KeyError, TypeError):
                message = proc.stderr.strip() or proc.stdout.strip() or f"netavark {verb} exited {proc.returncode}"
            raise BackendRefused(str(message))
        try:
            reply = json.loads(proc.stdout) if proc.stdout.strip() else {}
        except ValueError:
            reply = {}
        return reply if isinstance(reply, dict) else {}

    def create_network(self, req: NetworkRequest) -> None:
        """What `podman network create -d ipvlan` would store; netavark itself sees it only at setup."""
        opts = dict(req.opts)
        if req.name in self.networks:
            raise BackendRefused(f"network name {req.name} already used: network already exists")
        if not opts.get("parent") or req.internal:
            raise BackendRefused("netavark ipvlan uses an existing parent link: it creates no dummy parent")
        if opts.get("ipvlan_flag"):
            raise BackendRefused("netavark ipvlan has no ipvlan_flag")
        unknown = sorted(set(opts) - {"parent", "ipvlan_mode"})
        if unknown:
            raise BackendRefused(f"unsupported ipvlan network option {unknown[0]}")
        if not req.subnets:
            raise BackendRefused("netavark ipvlan without a subnet asks a DHCP proxy: the docs give subnets")
        pools: list[_Pool] = []
        gateways = [self._address(g) for g in req.gateways]
        for cidr in req.subnets:
            try:
                subnet = ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise BackendRefused(f"invalid subnet {cidr}: {exc}") from None
            gateway = next((g for g in gateways if g in subnet), None)
            if gateway is None:
                gateway = subnet.network_address + 1  # Podman: the first address, unless --internal
            pools.append(_Pool(subnet, gateway))
        stray = [g for g in gateways if not any(g in p.subnet for p in pools)]
        if stray:
            raise BackendRefused(f"gateway {stray[0]} not in any subnet")
        info = {
            "name": req.name,
            "id": secrets.token_hex(32),
            "driver": "ipvlan",
            "network_interface": opts["parent"],
            "subnets": [{"subnet": str(p.subnet), "gateway": str(p.gateway)} for p in pools],
            "ipv6_enabled": any(p.subnet.version == 6 for p in pools),
            "internal": False,
            "dns_enabled": False,
            "options": {"mode": opts["ipvlan_mode"]} if "ipvlan_mode" in opts else {},
            "ipam_options": {"driver": "host-local"},
        }
        self.networks[req.name] = _Net(info, pools)

    @staticmethod
    def _address(text: str) -> Address:
        try:
            return ipaddress.ip_address(text)
        except ValueError:
            raise BackendRefused(f"{text} is not an IP address") from None

    def remove_network(self, name: str) -> None:
        net = self.networks.get(name)
        if net is None:
            raise BackendRefused(f"unable to find network with name or ID {name}: network not found")
        if net.containers:
            raise BackendRefused(f"network {name} is being used by {sorted(net.containers)}")
        del self.networks[name]

    def run(self, req: ContainerRequest) -> Attached:
        net = self.networks.get(req.network)
        if net is None:
            raise BackendRefused(f"unable to find network with name or ID {req.network}: network not found")
        statics = [self._address(ip) for ip in (req.ip, req.ip6) if ip]
        for static in statics:
            if not any(static in p.subnet for p in net.pools):
                raise BackendRefused(f"requested static ip {static} not in any subnet on network {req.network}")
        with self._lock:
            ips: list[Address] = []
            try:
                for pool in net.pools:
                    ips.append(pool.take(req.name, next((s for s in statics if s in pool.subnet), None)))
            except BackendRefused:
                for pool in net.pools:
                    pool.release(req.name)
                raise
            net.containers[req.name] = ips
        netns_name = self.host.prefix + req.name
        try:
            ns.create(netns_name)
            try:
                self._invoke("setup", net, req.name, ips, netns_name)
            except BaseException:
                ns.remove(netns_name)
                raise
        except BaseException:
            self._release(net, req.name)
            raise
        self.containers[req.name] = (req.network, netns_name)
        return Attached(req.name, netns_name)

    def _release(self, net: _Net, name: str) -> None:
        with self._lock:
            for pool in net.pools:
                pool.release(name)
            net.containers.pop(name, None)

    def remove(self, name: str) -> None:
        network, netns_name = self.containers.pop(name)
        net = self.networks[network]
        try:
            self._invoke("teardown", net, name, net.containers.get(name, []), netns_name)
        finally:
            ns.remove(netns_name)
            self._release(net, name)

    def exec(self, name: str, argv: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return run_in_netns(self.containers[name][1], argv, timeout)

    def close(self) -> None:
        for name in list(self.containers):
            try:
                self.remove(name)
            except BackendRefused:
                continue  # the namespace is gone all the same; the next lab starts clean
        self.networks.clear()
