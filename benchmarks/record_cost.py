"""What reading and writing one network's state costs as it fills: the part of a container's verb that grows
with the containers already there (part 3's last/first), measured without a kernel.

`python -m benchmarks.record_cost [N ...]` (default 1 100 1000): for a network of N containers, the mean time
of one read of its record (JSON and the IPAM index), one write, and one rewrite of its hosts file, which
each run and rm does once. Host figures; the VM's are roughly 25x.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ipvlan_driver.driver import Driver, DriverConfig, Network
from ipvlan_driver.ipam import Ipam, build_pools
from ipvlan_driver.options import network_spec
from ipvlan_driver.parents import plan_parent

REPEAT = 50


def _mean_ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(REPEAT):
        fn()
    return (time.perf_counter() - start) / REPEAT * 1000


def measure(sizes: list[int]) -> list[dict[str, float]]:
    spec = network_spec("bench", subnets=["10.77.0.0/16"], gateways=["10.77.0.1"], options={"parent": "bp0"})
    network = Network(spec, "0" * 64, plan_parent(spec, "0" * 64, lambda _name: True), Ipam(build_pools(spec, None)))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-record-") as tmp:
        driver = Driver(DriverConfig(state_dir=Path(tmp)))
        for size in sorted(sizes):
            while len(network.containers) < size:
                name = f"c{len(network.containers)}"
                network.containers[name] = [str(network.pools.allocate(name, 4))]
            record = json.dumps(network.to_json())
            rows.append(
                {
                    "containers": size,
                    "record_bytes": len(record),
                    "read_ms": _mean_ms(lambda text=record: Network.from_json(json.loads(text))),  # type: ignore[misc]
                    "write_ms": _mean_ms(lambda: json.dumps(network.to_json())),
                    "hosts_ms": _mean_ms(lambda: driver._write_hosts(network, None)),
                }
            )
    return rows


def main(argv: list[str]) -> int:
    try:
        sizes = [int(a) for a in argv] or [1, 100, 1000]
    except ValueError:
        print("benchmarks.record_cost: sizes are container counts (integers)", file=sys.stderr)
        return 2
    for r in measure(sizes):
        total = r["read_ms"] + r["write_ms"] + r["hosts_ms"]
        print(
            f"{r['containers']:>6} containers: record {r['record_bytes']:>7} bytes; read {r['read_ms']:.2f} ms, "
            f"write {r['write_ms']:.2f} ms, hosts file {r['hosts_ms']:.2f} ms; {total:.2f} ms in all"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
