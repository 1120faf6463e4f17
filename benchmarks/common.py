"""What every benchmark part shares: the lab (a parent link in namespaces we own), statistics, facts.

The lab is a veth pair: `bp0` in our host namespace is the parent, its peer `bp0u` sits in an upstream
namespace with an address, so "container to upstream" crosses the parent like a real uplink. Nothing
touches the root namespace's links, addresses or routes; every namespace is named with the lab prefix
and removed on exit, even on failure.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import platform
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipvlan_driver import netns as ns
from ipvlan_driver.netlink import Netlink

REPO = Path(__file__).resolve().parent.parent
PREFIX = "bn-"  # every namespace a benchmark makes starts with this (role-first after it)
PARENT, UPLINK = "bp0", "bp0u"
LAB_NET = ipaddress.ip_network("10.77.0.0/16")  # l2 containers and the upstream share it
L3_NET = ipaddress.ip_network("10.78.0.0/16")  # l3 containers: routed through the host's parent address
HOST_ADDR = ipaddress.ip_interface("10.77.0.1/16")
UPSTREAM_ADDR = ipaddress.ip_interface("10.77.0.2/16")
KINDS = ("ipvlan", "macvlan")


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): an observed value, never an interpolated one."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def summary(samples: Sequence[float]) -> dict[str, float]:
    """Seconds in, milliseconds out: what the table and the JSON show for one series."""
    return {
        "n": len(samples),
        "median_ms": statistics.median(samples) * 1000,
        "p95_ms": percentile(samples, 95) * 1000,
        "mean_ms": statistics.fmean(samples) * 1000,
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def kernel_can(kind: str) -> bool:
    """Whether this kernel makes `kind` links: tried in a scratch namespace of ours, then removed."""
    probe = PREFIX + "probe"
    ns.remove(probe)
    ns.create(probe)
    try:
        with Netlink(probe) as nl:
            nl.add_veth("pp0", "pp1")
            ipr = nl._ipr  # a probe of one link kind; Netlink has no verb for "any kind"
            try:
                ipr.link("add", ifname="pp2", kind=kind, link=nl.require("pp0").index)
            except Exception:
                return False
            return True
    finally:
        ns.remove(probe)


def default_kind() -> str:
    """ipvlan where the kernel has it (the VM); macvlan elsewhere, so every raw path still runs."""
    return "ipvlan" if kernel_can("ipvlan") else "macvlan"


def sweep(prefix: str = PREFIX) -> None:
    """Remove every namespace a benchmark left (ours only: the prefix is ours)."""
    for name in ns.list_names():
        if name.startswith(prefix):
            ns.remove(name)


@dataclass
class Lab:
    """The parent and upstream of one benchmark part; containers are made by the part being measured."""

    prefix: str = PREFIX
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def host(self) -> str:
        return self.prefix + "host"

    @property
    def upstream(self) -> str:
        return self.prefix + "up"

    def container(self, i: int) -> str:
        return f"{self.prefix}c{i}"

    def __enter__(self) -> Lab:
        try:
            for name in (self.host, self.upstream):
                # `ip netns add` first makes /run/netns a shared mount of itself; were it to do that later
                # (the `ip` face), it would hide the namespaces made before: made its way from the start
                subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
                self.stack.callback(ns.remove, name)
            with Netlink(self.host) as nl:
                nl.set_up("lo")
                nl.add_veth(PARENT, UPLINK)
                nl.move_to_netns(UPLINK, self.upstream, UPLINK)
                nl.add_address(PARENT, HOST_ADDR)
                nl.set_up(PARENT)
            with Netlink(self.upstream) as nl:
                nl.set_up("lo")
                nl.add_address(UPLINK, UPSTREAM_ADDR)
                nl.set_up(UPLINK)
                # l3 containers' replies go back through the host's parent address
                nl.add_route(L3_NET, UPLINK, str(HOST_ADDR.ip))
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stack.close()
        finally:
            sweep(self.prefix)


def open_iproute(netns: str | None) -> Any:
    """A raw pyroute2 socket bound to `netns`: the calling thread enters, opens it, and comes back.

    No `IPRoute(netns=...)`: pyroute2 forks a helper process for that, which would make the floor
    slower than the driver it bounds. A socket keeps its namespace after the thread leaves.
    """
    from pyroute2 import IPRoute  # the floor is raw pyroute2 on purpose: it bounds our netlink layer

    return ns.run_in(netns, IPRoute)


def address(net: ipaddress.IPv4Network, i: int) -> ipaddress.IPv4Interface:
    """The i-th container address of `net` (0-based), past .0.0-.0.255 which the lab itself uses."""
    return ipaddress.ip_interface(f"{net.network_address + 256 + i}/{net.prefixlen}")  # type: ignore[return-value]


# facts about where the figures come from -------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def virtualization() -> str:
    """What runs us: the virtual machine systemd-detect-virt names, else its container, else the cpuinfo
    hypervisor flag, else 'none'. The VM first: the guest sees the host's root, whose container markers
    (/.dockerenv) would otherwise hide the machine the figures come from."""
    for flag in ("--vm", "--container"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(["systemd-detect-virt", flag], capture_output=True, text=True, timeout=5)
            if done.stdout.strip() not in ("", "none"):
                return done.stdout.strip()
    return "hypervisor" if " hypervisor" in _read("/proc/cpuinfo") else "none"


def emulated() -> bool:
    """True under TCG (no KVM: qemu's own CPU model): figures are slower than hardware, ratios still hold."""
    return "QEMU" in _read("/proc/cpuinfo")


def commit() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10
        )
        return done.stdout.strip()
    return ""


def facts() -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines() if "model name" in line), ""
    )
    return {
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_kb": _meminfo("MemTotal"),
        "virtualization": virtualization(),
        "python": platform.python_version(),
        "commit": commit(),
        "hostname": socket.gethostname(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _meminfo(key: str) -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def rss_kb(pid: int | None = None) -> dict[str, int]:
    """Current (VmRSS) and peak (VmHWM) resident set of a process, in KiB."""
    out = {"rss_kb": 0, "peak_kb": 0}
    for line in _read(f"/proc/{pid or 'self'}/status").splitlines():
        if line.startswith("VmRSS:"):
            out["rss_kb"] = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            out["peak_kb"] = int(line.split()[1])
    return out


def reset_peak_rss(pid: int | None = None) -> None:
    """Start a new VmHWM window (Linux >= 4.0: writing 5 to clear_refs)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid or 'self'}/clear_refs").write_text("5")
