"""`cni`: the CNI ipvlan plugin (Debian's containernetworking-plugins by default), with host-local IPAM.

Each documented network becomes a CNI 1.0 config (`master`, `mode`, host-local ranges with the docs'
subnets and gateways); each container is a namespace the suite makes and hands to `ADD`. What CNI does
not have is declared unsupported, so the report says so instead of failing: creating `name.vid` or dummy
parents, ipvlan_flag, --internal, a default pool, and name resolution.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import netnsutil as ns

from ..examples import ContainerRequest, NetworkRequest
from ..labnet import Lab
from .base import Attached, BackendRefused, BaseBackend, HostContext, run_in_netns

CNI_PATH = Path(os.environ.get("IPVLAN_CONFORMANCE_CNI_PATH", "/usr/lib/cni"))


@dataclass
class _Net:
    config: dict[str, Any]
    containers: list[str]


class CniBackend(BaseBackend):
    name = "cni"
    capabilities = frozenset({"vlan", "ipv6", "l3s"})

    @staticmethod
    def describe(options: Mapping[str, Any]) -> dict[str, str]:
        """The plugin's own banner, and Debian's package version when that is where it came from."""
        plugin = CNI_PATH / "ipvlan"
        try:
            about = subprocess.run([plugin], capture_output=True, text=True, timeout=10, env={}).stderr.splitlines()
        except OSError:
            return {"driver": f"no CNI ipvlan plugin at {plugin}"}
        found = {"driver": f"{plugin}: {about[0] if about else '?'}"}
        package = subprocess.run(
            ["dpkg-query", "-S", str(plugin)], capture_output=True, text=True, check=False
        ).stdout.split(":")[0]
        if package:
            version = subprocess.run(
                ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True, check=False
            ).stdout
            found["package"] = f"{package} {version}"
        return found

    def __init__(self, host: HostContext) -> None:
        self.host = host
        self.plugin = CNI_PATH / "ipvlan"
        if not self.plugin.exists():
            raise BackendRefused(f"no CNI ipvlan plugin at {self.plugin} (Debian: containernetworking-plugins)")
        self.networks: dict[str, _Net] = {}
        self.containers: dict[str, tuple[str, str]] = {}  # name -> (network, netns)

    def _invoke(
        self, command: str, config: dict[str, Any], container: str, netns: str, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        env = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container,
            "CNI_NETNS": str(ns.netns_path(netns)),
            "CNI_IFNAME": "eth0",
            "CNI_PATH": str(CNI_PATH),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        }
        body = dict(config, **(extra or {}))
        # the plugin finds `master` in the namespace it runs in: the docker host's
        proc = subprocess.run(
            [str(self.plugin)],
            input=json.dumps(body),
            capture_output=True,
            text=True,
            env=env,
            preexec_fn=ns.exec_preparer(self.host.netns),
            check=False,
        )
        if proc.returncode != 0:
            try:
                err = json.loads(proc.stdout)
                raise BackendRefused(f"{err.get('msg', '')} {err.get('details', '')}".strip())
            except ValueError:
                raise BackendRefused(proc.stderr.strip() or proc.stdout.strip()) from None
        return json.loads(proc.stdout) if proc.stdout.strip() else {}

    def create_network(self, req: NetworkRequest) -> None:
        opts = req.opts
        if not opts.get("parent") or req.internal:
            raise BackendRefused("CNI ipvlan needs a master link: it creates no dummy parent")
        if opts.get("ipvlan_flag"):
            raise BackendRefused("CNI ipvlan has no ipvlan_flag")
        mode = opts.get("ipvlan_mode", "l2")
        gateways = [ipaddress.ip_address(g) for g in req.gateways]
        # one range set per family: host-local then gives one address per family, from the first subnet
        # first, as the docs' IPAM does (a range set per subnet would hand out one address per subnet)
        by_family: dict[int, list[dict[str, str]]] = {}
        for cidr in req.subnets:
            subnet = ipaddress.ip_network(cidr)
            entry: dict[str, str] = {"subnet": str(subnet)}
            gw = next((g for g in gateways if g in subnet), None)
            if gw is not None:
                entry["gateway"] = str(gw)
            by_family.setdefault(subnet.version, []).append(entry)
        ranges = [by_family[v] for v in sorted(by_family)]
        routes = [{"dst": "0.0.0.0/0"}] if mode == "l2" else []
        if mode == "l2" and any(":" in s for s in req.subnets):
            routes.append({"dst": "::/0"})
        config = {
            "cniVersion": "1.0.0",
            "name": req.name,
            "type": "ipvlan",
            "master": opts["parent"],
            "mode": mode,
            "ipam": {
                "type": "host-local",
                "ranges": ranges,
                "routes": routes,
                "dataDir": str(self.host.workdir / "cni-ipam"),
            },
        }
        self.networks[req.name] = _Net(config, [])

    def remove_network(self, name: str) -> None:
        if self.networks.pop(name, None) is None:
            raise BackendRefused(f"network {name} not found")

    def run(self, req: ContainerRequest) -> Attached:
        net = self.networks.get(req.network)
        if net is None:
            raise BackendRefused(f"network {req.network} not found")
        netns_name = self.host.prefix + req.name
        ns.create(netns_name)
        ips = [ip for ip in (req.ip, req.ip6) if ip]
        extra = {"args": {"cni": {"ips": ips}}} if ips else None
        try:
            # what a CNI runtime does besides the network's plugin (containerd's CRI runs the
            # `loopback` plugin): lo up. In-process rather than a plugin call: it only sets the link up
            with Lab(netns_name) as nl:
                nl.set_up("lo")
            self._invoke("ADD", net.config, req.name, netns_name, extra)
        except BaseException:
            ns.remove(netns_name)
            raise
        net.containers.append(req.name)
        self.containers[req.name] = (req.network, netns_name)
        return Attached(req.name, netns_name)

    def remove(self, name: str) -> None:
        network, netns_name = self.containers.pop(name)
        net = self.networks[network]
        try:
            self._invoke("DEL", net.config, name, netns_name)
        finally:
            ns.remove(netns_name)
            net.containers.remove(name)

    def exec(self, name: str, argv: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return run_in_netns(self.containers[name][1], argv, timeout)

    def close(self) -> None:
        for name in list(self.containers):
            self.remove(name)
        self.networks.clear()
