"""Part 2: the plugin under a burst of concurrent requests, against its own serial figure.

`--concurrency` containers (50) are requested at once, each from its own thread with its own connection;
throughput is containers per second of wall time, and every address handed out must be distinct (read
back from the kernel, not from the replies).
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .common import Lab, open_iproute, summary, timed
from .faces import Handle, Plugin


def kernel_address(netns: str) -> str:
    """eth0's IPv4 address as the container's own namespace sees it."""
    ipr = open_iproute(netns)
    try:
        index = ipr.link_lookup(ifname="eth0")[0]
        msgs = ipr.addr("dump", index=index, family=2)
        return f"{msgs[0].get('address')}/{msgs[0].get('prefixlen')}"
    finally:
        ipr.close()


def run(concurrency: int, serial_count: int) -> dict[str, Any]:
    with Lab() as lab:
        face = Plugin(lab, "ipvlan")
        try:
            serial = []
            for i in range(serial_count):
                took, handle = timed(functools.partial(face.setup, i))
                serial.append(took)
                face.remove(handle)
            barrier = threading.Barrier(concurrency)

            def one(i: int) -> tuple[float, Handle]:
                barrier.wait()  # every request leaves together: a burst, not a trickle
                try:
                    return timed(lambda: face.setup(serial_count + i))
                finally:
                    face.close_thread()  # before the pool's thread ends (pyroute2's sockets are per thread)

            with ThreadPoolExecutor(concurrency) as pool:
                wall, done = timed(lambda: list(pool.map(one, range(concurrency))))
            latencies = [t for t, _ in done]
            handles = [h for _, h in done]
            seen = [kernel_address(h.netns) for h in handles]
            with ThreadPoolExecutor(concurrency) as pool:
                teardown, _ = timed(lambda: list(pool.map(face.remove, handles)))
        finally:
            face.close()
    s, c = summary(serial), summary(latencies)
    return {
        "concurrency": concurrency,
        "serial": s,
        "concurrent": c,
        "wall_s": wall,
        "throughput_per_s": concurrency / wall,
        "serial_throughput_per_s": 1000 / s["median_ms"],
        "p95_vs_serial": c["p95_ms"] / s["p95_ms"],
        "addresses_distinct": len(set(seen)) == len(seen) == concurrency,
        "addresses_match_replies": sorted(seen) == sorted(h.address for h in handles),
        "teardown_s": teardown,
    }
