"""The suite's own hands: make the links, addresses, routes and sysctls of a lab, over netlink.

Labs are built by the suite, not by the driver under test, so building them shares no code with it.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

import netnsutil

from .observe import KernelError, Observer, sysctl_path

RT_SCOPE_LINK = 253
BRPORT_HAIRPIN_ON = 1  # IFLA_BRPORT_MODE; pyroute2 calls it `mode`
IPVLAN_MODE_NUMBERS = {"l2": 0, "l3": 1, "l3s": 2}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Lab(Observer):
    """A netlink socket in one lab namespace that can change what it sees as well as read it."""

    def add_veth(self, name: str, peer: str) -> None:
        self._request(
            f"create veth pair {name!r}/{peer!r}", lambda: self._ipr.link("add", ifname=name, kind="veth", peer=peer)
        )

    def add_bridge(self, name: str) -> None:
        self._request(f"create bridge {name!r}", lambda: self._ipr.link("add", ifname=name, kind="bridge"))

    def add_vlan(self, name: str, base: str, vlan_id: int) -> None:
        link = self.require(base).index
        self._request(
            f"create 802.1q link {name!r} (vlan {vlan_id}) on {base!r}",
            lambda: self._ipr.link("add", ifname=name, kind="vlan", link=link, vlan_id=vlan_id),
        )

    def add_ipvlan(self, name: str, parent: str, mode: str) -> None:
        """An ipvlan link with the default flag (bridge): the suite only makes one to probe the kernel."""
        link = self.require(parent).index
        self._request(
            f"create ipvlan link {name!r} on {parent!r}",
            lambda: self._ipr.link("add", ifname=name, kind="ipvlan", link=link, ipvlan_mode=IPVLAN_MODE_NUMBERS[mode]),
        )

    def move_to_netns(self, name: str, target: str, new_name: str) -> None:
        index = self.require(name).index
        try:
            fd = os.open(netnsutil.netns_path(target), os.O_RDONLY)
        except (OSError, netnsutil.NetnsError) as exc:
            raise KernelError(f"cannot open namespace {target!r} to move {name!r} into it: {exc}") from exc
        try:
            self._request(
                f"move link {name!r} into namespace {target!r} as {new_name!r}",
                lambda: self._ipr.link("set", index=index, net_ns_fd=fd, ifname=new_name),
            )
        finally:
            os.close(fd)

    def set_up(self, name: str) -> None:
        index = self.require(name).index
        self._request(f"bring up link {name!r}", lambda: self._ipr.link("set", index=index, state="up"))

    def set_master(self, name: str, master: str) -> None:
        index, master_index = self.require(name).index, self.require(master).index
        self._request(
            f"enslave {name!r} to {master!r}", lambda: self._ipr.link("set", index=index, master=master_index)
        )

    def set_hairpin(self, port: str, on: bool) -> None:
        index = self.require(port).index
        mode = BRPORT_HAIRPIN_ON if on else 0
        self._request(f"set hairpin on bridge port {port!r}", lambda: self._ipr.brport("set", index=index, mode=mode))

    def delete_link(self, name: str) -> bool:
        """Delete a link; one already gone (or gone with its base meanwhile) is success: False."""
        found = self.link(name)
        if found is None:
            return False
        try:
            self._ipr.link("del", index=found.index)
        except NetlinkError as exc:
            if exc.code in (errno.ENODEV, errno.ENOENT):
                return False
            raise KernelError(f"failed to delete link {name!r}{self._where()}: {exc}") from exc
        return True

    def add_address(self, ifname: str, cidr: str) -> None:
        """Add `cidr` (`192.168.1.1/24`); IPv6 skips duplicate detection so it is usable at once."""
        interface = ipaddress.ip_interface(cidr)
        index = self.require(ifname).index
        flags = 0x02 if interface.version == 6 else 0  # IFA_F_NODAD
        self._request(
            f"add address {cidr} to {ifname!r}",
            lambda: self._ipr.addr(
                "add", index=index, address=str(interface.ip), prefixlen=interface.network.prefixlen, flags=flags
            ),
        )

    def add_route(self, dst: str | Network, ifname: str, gateway: str | None = None) -> None:
        """`ip route add <dst> [via <gateway>] dev <ifname>`; `dst` may be `default` (IPv4)."""
        network = ipaddress.ip_network("0.0.0.0/0" if dst == "default" else dst)
        family = socket.AF_INET if network.version == 4 else socket.AF_INET6
        request: dict[str, Any] = {"dst": str(network), "oif": self.require(ifname).index, "family": family}
        if gateway:
            request["gateway"] = gateway
        elif family == socket.AF_INET:
            request["scope"] = RT_SCOPE_LINK  # a connected route, as `ip route add ... dev` makes it
        via = f" via {gateway}" if gateway else ""
        label = "default" if network.prefixlen == 0 else str(network)
        self._request(f"add route {label}{via} dev {ifname!r}", lambda: self._ipr.route("add", **request))

    def set_sysctl(self, key: str, value: str) -> None:
        def write() -> None:
            # /proc/sys/net answers for the namespace of the thread that opens it
            with open(sysctl_path(key), "w") as fh:
                fh.write(value)

        netnsutil.run_in(self.netns, write)
