"""Part 5: the data plane: TCP throughput (iperf3) and ping RTT, container to container and to upstream.

ipvlan l2, ipvlan l3, macvlan bridge and veth + a Linux bridge, each on the same veth parent in one run.
Under an emulated VM (TCG) every packet is emulated: the absolute figures say little about hardware,
only the ordering between variants measured side by side does.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from typing import Any

from ipvlan_driver import netns as ns

from .common import HOST_ADDR, PARENT, UPSTREAM_ADDR, Lab, address, open_iproute
from .faces import configure_sandbox, link_args, move_in, subnet

VARIANTS = ("ipvlan-l2", "ipvlan-l3", "macvlan-bridge", "veth-bridge")
BRIDGE = "bbr0"
IPERF_DEADLINE_S = 30
_RTT = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")


def build(lab: Lab, variant: str, count: int = 2) -> list[tuple[str, str]]:
    """`count` containers of `variant` on the lab's parent: (namespace, address) each."""
    kind, _, mode = variant.partition("-")
    mode = mode if kind == "ipvlan" else "l2"
    host = open_iproute(lab.host)
    out = []
    try:
        parent = host.link_lookup(ifname=PARENT)[0]
        if kind == "veth":
            host.link("add", ifname=BRIDGE, kind="bridge")
            bridge = host.link_lookup(ifname=BRIDGE)[0]
            host.link("set", index=parent, master=bridge)
            host.link("set", index=bridge, state="up")
        for i in range(count):
            netns, ip = lab.container(i), address(subnet(mode), i)
            ns.create(netns)
            if kind == "veth":
                host.link("add", ifname=f"bv{i}", kind="veth", peer=f"bw{i}")
                port = host.link_lookup(ifname=f"bv{i}")[0]
                host.link("set", index=port, master=host.link_lookup(ifname=BRIDGE)[0], state="up")
                move_in(host, f"bw{i}", netns)
            else:
                host.link("add", ifname=f"bs{i}", link=parent, **link_args(kind, mode))
                move_in(host, f"bs{i}", netns)
            cnl = open_iproute(netns)
            try:
                configure_sandbox(cnl, mode, ip, str(HOST_ADDR.ip))
            finally:
                cnl.close()
            out.append((netns, str(ip.ip)))
    finally:
        host.close()
    return out


def ping(netns: str, target: str, count: int) -> dict[str, float]:
    argv = ["ping", "-c", str(count), "-i", "0.01", "-q", "-W", "2", target]
    done = subprocess.run(argv, capture_output=True, text=True, preexec_fn=ns.exec_preparer(netns), check=False)
    found = _RTT.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"ping {target} from {netns} failed: {done.stdout[-300:]} {done.stderr[-300:]}")
    low, avg, high, mdev = (float(v) for v in found.groups())
    return {"min_ms": low, "avg_ms": avg, "max_ms": high, "mdev_ms": mdev}


def iperf(client: str, server: str, target: str, seconds: int) -> float:
    """Gbit/s received, client to server; the server is ours, started here and stopped by its handle."""
    proc = subprocess.Popen(
        ["iperf3", "-s"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=ns.exec_preparer(server)
    )
    try:
        deadline = time.monotonic() + IPERF_DEADLINE_S
        while True:
            argv = ["iperf3", "-c", target, "-t", str(seconds), "-J"]
            done = subprocess.run(
                argv, capture_output=True, text=True, preexec_fn=ns.exec_preparer(client), check=False
            )
            received = _received(done.stdout) if done.returncode == 0 else None
            if received is not None:
                return received / 1e9
            if time.monotonic() > deadline:
                raise RuntimeError(f"iperf3 to {target} from {client} failed: {done.stdout[-300:]}{done.stderr[-300:]}")
            time.sleep(0.05)  # polling to a deadline: the server is still binding its port
    finally:
        proc.terminate()
        proc.wait(10)


def _received(output: str) -> float | None:
    """Bits per second the server received; None when the report has none (seen once in 50 host runs with
    exit status 0, the server just started): the caller retries to its deadline."""
    try:
        return float(json.loads(output)["end"]["sum_received"]["bits_per_second"])
    except (ValueError, KeyError, TypeError):
        return None


def measure(variant: str, iperf_seconds: int, pings: int) -> dict[str, Any]:
    with Lab() as lab:
        (c1, _), (c2, ip2) = build(lab, variant)
        result: dict[str, Any] = {
            "rtt_container": ping(c1, ip2, pings),
            "rtt_upstream": ping(c1, str(UPSTREAM_ADDR.ip), pings),
        }
        if shutil.which("iperf3") and iperf_seconds > 0:
            result["gbps_container"] = iperf(c1, c2, ip2, iperf_seconds)
            result["gbps_upstream"] = iperf(c1, lab.upstream, str(UPSTREAM_ADDR.ip), iperf_seconds)
        return result


def run(variants: tuple[str, ...], iperf_seconds: int, pings: int = 50) -> dict[str, Any]:
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    if not shutil.which("iperf3"):
        skipped["iperf3"] = "iperf3 is not installed: RTT only"
    for variant in variants:
        results[variant] = measure(variant, iperf_seconds, pings)
        print(f"dataplane: {variant:<15} {results[variant]}", flush=True)
    return {"variants": results, "skipped": skipped, "caveat": CAVEAT}


CAVEAT = (
    "measured in one run on one veth parent; under an emulated VM (no KVM) every packet is emulated, "
    "so only the ordering of the variants means something, not the absolute figures"
)
