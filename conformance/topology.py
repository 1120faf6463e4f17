"""Turn an example's data into namespaces: docker hosts, the upstream ToR/router, a remote host.

```
  dh1 (docker host)        up (ToR / router)                     rem (remote host)
  eth0 192.168.1.250 ---- p1 [trunk; p1.<vid> per VLAN] --+
                           br0 192.168.1.1 (untagged)     |  rem0 10.250.0.1 ---- eth0 10.250.0.2
  dh2 eth0 192.168.1.251 - p2 ----------------------------+
```
Every namespace is registered for removal the moment it exists; `Topology.close` undoes in reverse.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import netnsutil as ns

from .labnet import Lab

HOST_ADDR = "192.168.1.250/24"
HOST2_ADDR = "192.168.1.251/24"
UPSTREAM_ADDR = "192.168.1.1/24"
REMOTE_ADDR = "10.250.0.2/24"
REMOTE_GW = "10.250.0.1/24"
DOCKER0_ADDR = "172.17.0.1/16"


class SetupCommandError(ValueError):
    pass


@dataclass
class Topology:
    prefix: str
    host_name: str | None = None
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def host(self) -> str:
        return self.host_name or f"{self.prefix}-dh1"

    @property
    def host2(self) -> str:
        return f"{self.prefix}-dh2"

    @property
    def upstream(self) -> str:
        return f"{self.prefix}-up"

    @property
    def remote(self) -> str:
        return f"{self.prefix}-rem"

    def netns(self, name: str) -> str:
        ns.create(name)
        self.stack.callback(ns.remove, name)
        return name

    def close(self) -> None:
        self.stack.close()

    # manual steps the docs run on the docker host ------------------------------------------

    def host_command(self, command: str) -> None:
        """Run one of the docs' `ip link` lines on the docker host, through netlink."""
        argv = shlex.split(command)
        with Lab(self.host) as nl:
            match argv:
                case ["ip", "link", "add", "link", base, "name", name, "type", "vlan", "id", vid]:
                    nl.add_vlan(name, base, int(vid))
                case ["ip", "link", "set", name, "up"]:
                    nl.set_up(name)
                case ["ip", "link", "del", name] | ["ip", "link", "delete", name]:
                    nl.delete_link(name)
                case _:
                    raise SetupCommandError(f"the suite does not know how to run {command!r}")


def _veth(a_ns: str, a_name: str, b_ns: str, b_name: str) -> None:
    # made inside a_ns and moved: nothing is ever created in the root namespace
    tmp = "vtmp" + os.urandom(3).hex()
    with Lab(a_ns) as nl:
        nl.add_veth(a_name, tmp)
        nl.move_to_netns(tmp, b_ns, b_name)


def _scrub(netns: str) -> None:
    """Return a long-lived docker-host namespace to bare: every link but lo goes, routes with them."""
    with Lab(netns) as nl:
        for link in nl.links():
            if link.name != "lo":
                nl.delete_link(link.name)  # sub-interfaces may already be gone with their base: fine


@contextlib.contextmanager
def build(prefix: str, upstream: dict[str, Any] | None = None, host: str | None = None) -> Iterator[Topology]:
    """Build the documented lab; tear all of it down however the block ends.

    `host` names an existing namespace to play the docker host (a daemon already running there, as
    Docker's is); it is scrubbed back to bare instead of being removed.
    """
    upstream = upstream or {}
    topo = Topology(prefix, host_name=host)
    try:
        if host is None:
            topo.netns(topo.host)
        else:
            topo.stack.callback(_scrub, host)
        for name in (topo.host2, topo.upstream, topo.remote):
            topo.netns(name)
        _veth(topo.host, "eth0", topo.upstream, "p1")
        _veth(topo.host2, "eth0", topo.upstream, "p2")
        _veth(topo.remote, "eth0", topo.upstream, "rem0")
        with Lab(topo.upstream) as up:
            up.set_up("lo")
            up.add_bridge("br0")
            for port in ("p1", "p2"):
                up.set_master(port, "br0")
                up.set_up(port)
            if upstream.get("hairpin"):
                up.set_hairpin("p1", True)
            up.set_up("br0")
            for cidr in dict.fromkeys([UPSTREAM_ADDR, *(upstream.get("untagged") or [])]):
                up.add_address("br0", str(cidr))
            for vid, cidrs in sorted((upstream.get("vlans") or {}).items()):
                sub = f"p1.{int(vid)}"
                up.add_vlan(sub, "p1", int(vid))
                up.set_up(sub)
                for cidr in cidrs:
                    up.add_address(sub, str(cidr))
            up.set_up("rem0")
            up.add_address("rem0", REMOTE_GW)
            # like a switch's SVIs, answer ARP only for addresses of the receiving interface
            up.set_sysctl("net.ipv4.conf.all.arp_ignore", "1")
            forwarding = "1" if upstream.get("forwarding") else "0"
            up.set_sysctl("net.ipv4.ip_forward", forwarding)
            up.set_sysctl("net.ipv6.conf.all.forwarding", forwarding)
        for host, cidr in ((topo.host, HOST_ADDR), (topo.host2, HOST2_ADDR)):
            with Lab(host) as nl:
                nl.set_up("lo")
                nl.set_up("eth0")
                nl.add_address("eth0", cidr)
                nl.add_route("default", "eth0", "192.168.1.1")
        with Lab(topo.host2) as nl:
            for cidr in upstream.get("second_host") or []:
                nl.add_address("eth0", str(cidr))
        with Lab(topo.host) as nl:
            # docker0's address is why the docs' default pool comes out as 172.18.0.0/16
            nl.add_bridge("docker0")
            nl.add_address("docker0", DOCKER0_ADDR)
        with Lab(topo.remote) as nl:
            nl.set_up("lo")
            nl.set_up("eth0")
            nl.add_address("eth0", REMOTE_ADDR)
            nl.add_route("default", "eth0", "10.250.0.1")
        yield topo
    finally:
        topo.close()
