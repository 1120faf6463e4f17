"""What a container's verbs cost in the state store as a network fills: the part of a verb that could grow
with the containers already there (part 3's last/first), measured without a kernel.

`python -m benchmarks.record_cost [N ...]` (default 1 100 1000): for a network of N endpoints, the mean time
of reserving one more endpoint's address (create_endpoint, records only), releasing it again (delete_endpoint's
records half, its lines taken out of the hosts file), appending a container to the hosts file (run) and rewriting
that file whole (rm, restore). Host figures; the VM's are roughly 25x.
"""

from __future__ import annotations

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
NETWORK = "bench"


def _mean_ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(REPEAT):
        fn()
    return (time.perf_counter() - start) / REPEAT * 1000


def _cycle_ms(driver: Driver) -> tuple[float, float]:
    """Mean reserve and release times of REPEAT endpoints added and taken away, so N stays N."""
    reserve = release = 0.0
    for i in range(REPEAT):
        name = f"probe{i}"
        start = time.perf_counter()
        driver.create_endpoint(NETWORK, name)
        middle = time.perf_counter()
        driver._forget_endpoint(NETWORK, name)
        reserve += middle - start
        release += time.perf_counter() - middle
    return reserve / REPEAT * 1000, release / REPEAT * 1000


def measure(sizes: list[int]) -> list[dict[str, float]]:
    spec = network_spec(NETWORK, subnets=["10.77.0.0/16"], gateways=["10.77.0.1"], options={"parent": "bp0"})
    network = Network(spec, "0" * 64, plan_parent(spec, "0" * 64, lambda _name: True), Ipam(build_pools(spec, None)))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-record-") as tmp:
        driver = Driver(DriverConfig(state_dir=Path(tmp)))
        driver.store.put("networks", NETWORK, network.to_json())  # as create_network leaves it, without a parent
        held = 0
        for size in sorted(sizes):
            while held < size:
                driver.create_endpoint(NETWORK, f"c{held}")
                held += 1
            reserve_ms, release_ms = _cycle_ms(driver)
            addresses = driver.endpoint_addresses(NETWORK, "c0")
            appended = iter(range(REPEAT))
            rows.append(
                {
                    "containers": size,
                    "reserve_ms": reserve_ms,
                    "release_ms": release_ms,
                    "hosts_append_ms": _mean_ms(
                        lambda it=appended, a=addresses: driver._add_to_hosts(NETWORK, f"a{next(it)}", a)  # type: ignore[misc]
                    ),
                    "hosts_rewrite_ms": _mean_ms(lambda: driver._write_hosts(NETWORK, None)),
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
        print(
            f"{r['containers']:>6} containers: reserve {r['reserve_ms']:.2f} ms, release {r['release_ms']:.2f} ms "
            f"(its lines out of the hosts file), hosts append {r['hosts_append_ms']:.2f} ms, "
            f"hosts rewrite {r['hosts_rewrite_ms']:.2f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
