"""The plugin face at this tree against the plugin of another checkout, interleaved in one run: a change's
effect on the plugin's setup cost, free of the drift between two runs on a noisy host.

`python -m benchmarks.ab_plugin OTHER_TREE [--count N] [--rounds R]` (in the VM, as root): R rounds, each
the floor, this tree's plugin and OTHER_TREE's plugin (its `ipvlan_driver` first on PYTHONPATH; the client
side is this tree's), N containers each. Prints each round's medians and the medians' ratios to the floor.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .common import Lab, default_kind
from .faces import Floor, Plugin
from .setup_cost import measure


def _median_ms(make: Callable[[Lab], Floor | Plugin], count: int) -> float:
    with Lab() as lab:
        face = make(lab)
        try:
            return float(measure(face, count)["setup"]["median_ms"])
        finally:
            face.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ab_plugin", description=__doc__.split("\n\n")[0])
    p.add_argument("other", type=Path, help="a checkout whose ipvlan_driver serves as the other plugin")
    p.add_argument("--count", type=int, default=100, help="containers per face and round")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    if not (args.other / "ipvlan_driver" / "__init__.py").is_file():
        p.error(f"{args.other} has no ipvlan_driver package")
    if default_kind() != "ipvlan":
        print("ab_plugin: this kernel has no ipvlan: run it in the VM (ci/run-in-vm)", file=sys.stderr)
        return 2
    # -P: no working directory on sys.path, which would put this tree's package ahead of PYTHONPATH's
    other = ["env", f"PYTHONPATH={args.other.resolve()}", sys.executable, "-P"]
    where = subprocess.run(
        [*other, "-c", "import ipvlan_driver; print(ipvlan_driver.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(args.other.resolve()):
        p.error(f"the other plugin would import {where}, not {args.other}'s")
    other += ["-m", "ipvlan_driver.cli"]
    rows: dict[str, list[float]] = {"floor": [], "this": [], "other": []}
    for r in range(1, args.rounds + 1):
        rows["floor"].append(_median_ms(lambda lab: Floor(lab, "ipvlan"), args.count))
        rows["this"].append(_median_ms(lambda lab: Plugin(lab, "ipvlan"), args.count))
        rows["other"].append(_median_ms(lambda lab: Plugin(lab, "ipvlan", wrap=other), args.count))
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.1f} ms" for k, v in rows.items()), flush=True)
    floor = statistics.median(rows["floor"])
    for name in ("this", "other"):
        median = statistics.median(rows[name])
        print(f"{name}: median of rounds {median:.1f} ms, {median / floor:.2f}x the floor ({floor:.1f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
