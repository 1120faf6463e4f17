"""Does one driver operation cost the same with 5 or 100 networks (and containers) already there?

Prints per-operation times at a small and a large population and their ratio, measured in one run (the
docs sell L3 for massive scale; a driver that re-reads every record per call shows a ratio that grows).
Needs root and an ipvlan kernel: `ci/run-in-vm -- .venv/bin/python benchmarks/bench_scale.py`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ipvlan_driver import netns as ns
from ipvlan_driver.driver import Driver, DriverConfig
from ipvlan_driver.options import network_spec


def _timed(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure(driver: Driver, population: int, repeat: int, counter: list[int]) -> dict[str, float]:
    """Grow to `population` networks and containers, then time one of each verb."""
    while len(driver.network_names()) < population:
        i = counter[0] = counter[0] + 1
        driver.create_network(network_spec(f"n{i}", subnets=[f"10.{i // 250}.{i % 250}.0/24"], internal=True))
    fill = driver.network_names()[0]
    while len(driver.container_names()) < population:
        driver.run(fill)
    probe = driver.network_names()[-1]
    results: dict[str, float] = {}

    def create_delete() -> None:
        driver.create_network(network_spec("probe", subnets=["10.250.0.0/24"], internal=True))
        driver.delete_network("probe")

    results["network create+rm"] = _timed(create_delete, repeat)

    def run_rm() -> None:
        c = driver.run(probe)
        driver.remove_container(c.name)

    results["run+rm container"] = _timed(run_rm, repeat)
    results["network inspect"] = _timed(lambda: driver.get_network(probe), repeat * 5)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=5)
    parser.add_argument("--large", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    host = "bench-host"
    ns.create(host)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            driver = Driver(DriverConfig(state_dir=Path(tmp), host_netns=host, container_prefix="bench-"))
            counter = [0]
            small = measure(driver, args.small, args.repeat, counter)
            start = time.perf_counter()
            large = measure(driver, args.large, args.repeat, counter)
            grow = time.perf_counter() - start
            print(f"population grown from {args.small} to {args.large} networks + containers in {grow:.1f} s")
            print(f"{'operation':<22}{'at ' + str(args.small):>12}{'at ' + str(args.large):>12}{'ratio':>8}")
            for op in small:
                print(f"{op:<22}{small[op] * 1000:>10.1f}ms{large[op] * 1000:>10.1f}ms{large[op] / small[op]:>8.2f}")
            for name in driver.container_names():
                driver.remove_container(name)
            for name in driver.network_names():
                driver.delete_network(name)
    finally:
        for name in ns.list_names():
            if name.startswith("bench-"):
                ns.remove(name)
        ns.remove(host)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
