"""The plugin face at this tree against the plugin of another checkout, in one run: a change's effect on the
plugin's setup cost, free of the drift between two runs on a noisy host.

`python -m benchmarks.ab_plugin OTHER_TREE [--count N]` (in the VM, as root): the floor, this tree's plugin
and OTHER_TREE's plugin (its `ipvlan_driver` first on PYTHONPATH; the client side is this tree's), each in
a lab of its own, take turns container by container (set up, removed), so a slow spell of the host falls
on all three alike. Prints each face's setup median and its ratio to the floor's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .common import default_kind
from .faces import Floor, Plugin
from .setup_cost import together


def _other_plugin(tree: Path) -> list[str]:
    """The command that serves `tree`'s ipvlan_driver; -P keeps the working directory, which would put
    this tree's package ahead of PYTHONPATH's, off sys.path."""
    command = ["env", f"PYTHONPATH={tree.resolve()}", sys.executable, "-P"]
    where = subprocess.run(
        [*command, "-c", "import ipvlan_driver; print(ipvlan_driver.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"ab_plugin: the other plugin would import {where}, not {tree}'s")
    return [*command, "-m", "ipvlan_driver.cli"]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ab_plugin", description=__doc__.split("\n\n")[0])
    p.add_argument("other", type=Path, help="a checkout whose ipvlan_driver serves as the other plugin")
    p.add_argument("--count", type=int, default=200, help="containers per face")
    args = p.parse_args(argv)
    if not (args.other / "ipvlan_driver" / "__init__.py").is_file():
        p.error(f"{args.other} has no ipvlan_driver package")
    if default_kind() != "ipvlan":
        print("ab_plugin: this kernel has no ipvlan: run it in the VM (ci/run-in-vm)", file=sys.stderr)
        return 2
    other = _other_plugin(args.other)
    skipped: dict[str, str] = {}
    found = together(
        {
            "floor": lambda lab: Floor(lab, "ipvlan"),
            "this": lambda lab: Plugin(lab, "ipvlan"),
            f"other ({args.other})": lambda lab: Plugin(lab, "ipvlan", wrap=other),
        },
        args.count,
        skipped,
    )
    if skipped:
        print(f"ab_plugin: {skipped}", file=sys.stderr)
        return 1
    floor = found["floor"]["setup"]["median_ms"]
    for name, r in found.items():
        s = r["setup"]
        print(f"{name}: setup median {s['median_ms']:.1f} ms, p95 {s['p95_ms']:.1f} ms, {s['median_ms'] / floor:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
