"""Every benchmark part in one run, side by side, then the report: `python -m benchmarks.all` (needs root).

`ci/bench` runs this in the VM (ipvlan); on a host without ipvlan the raw paths (floor, `ip`, CNI) use
macvlan slaves, the driver's own faces are skipped, and the data plane measures macvlan and the bridge.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import chart, common, concurrency, dataplane, profiling, scale, setup_cost, suite_cost

PARTS = ("setup_cost", "concurrency", "scale", "dataplane", "suite_cost", "profile")
NEEDS_IPVLAN = ("concurrency", "scale", "profile")  # our driver's faces only make ipvlan slaves
SKIP_NO_IPVLAN = "needs ipvlan (our driver's faces); this kernel has none"


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="benchmarks.all", description=__doc__)
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {', '.join(PARTS)}")
    p.add_argument("--kind", choices=[*common.KINDS, "auto"], default="auto", help="slave kind of the raw paths")
    p.add_argument("--setup-count", type=int, default=200, help="containers per fast face (part 1)")
    p.add_argument("--slow-count", type=int, default=30, help="containers per process-per-step face (cli, ip, cni)")
    p.add_argument("--scale-count", type=int, default=1000, help="containers kept per scale series (part 3)")
    p.add_argument("--concurrency", type=int, default=50, help="concurrent requests to the plugin (part 2)")
    p.add_argument("--iperf-seconds", type=int, default=5, help="seconds per iperf3 run (0: RTT only)")
    p.add_argument("--profile-count", type=int, default=50, help="containers per profiled face (part 6)")
    p.add_argument("--pings", type=int, default=50, help="pings per RTT figure")
    p.add_argument("--reports", type=Path, default=common.REPO / "reports", help="where bench.* are written")
    p.add_argument("--readme", type=Path, default=common.REPO / "README.md", help="README whose table is rewritten")
    p.add_argument("--no-readme", action="store_true", help="leave the README alone")
    p.add_argument("--no-chart", action="store_true", help="no bench.png (ci/bench draws it on the host)")
    p.add_argument("--suite-column", default="native", help="column timed by --suite-modes")
    p.add_argument("--suite-modes", default="", help="e.g. serial,2,auto: time that column per mode (full runs)")
    p.add_argument("--suite-select", default=None, help="a -k expression for --suite-modes runs")
    p.add_argument("--as-command", default="", help=argparse.SUPPRESS)  # what ci/bench was called as
    args = p.parse_args(argv)
    args.parts = [x for x in args.only.split(",") if x]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        p.error(f"unknown part(s) {', '.join(sorted(unknown))}: choose from {', '.join(PARTS)}")
    return args


def run_part(part: str, args: argparse.Namespace, kind: str) -> dict[str, Any]:
    if part == "setup_cost":
        return setup_cost.run(kind, args.setup_count, args.slow_count)
    if part == "concurrency":
        return concurrency.run(args.concurrency, min(args.setup_count, 100))
    if part == "scale":
        return scale.run(args.scale_count)
    if part == "profile":
        return profiling.run(args.profile_count, args.reports)
    if part == "dataplane":
        variants = dataplane.VARIANTS if kind == "ipvlan" else ("macvlan-bridge", "veth-bridge")
        return dataplane.run(variants, args.iperf_seconds, args.pings)
    modes = [m for m in args.suite_modes.split(",") if m]
    return suite_cost.run(args.reports, args.suite_column, modes, args.suite_select)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    kind = common.default_kind() if args.kind == "auto" else args.kind
    meta: dict[str, Any] = {**common.facts(), "emulated": common.emulated(), "kind": kind}
    meta["command"] = args.as_command or shlex.join(["python", "-m", "benchmarks.all", *argv])
    parts: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    common.sweep()  # a killed earlier run's namespaces (ours only)
    try:
        for part in args.parts:
            if part in NEEDS_IPVLAN and kind != "ipvlan":
                skipped[part] = SKIP_NO_IPVLAN
                continue
            try:
                parts[part] = run_part(part, args, kind)
            except Exception as exc:  # one broken part is reported; the others' figures are kept
                skipped[part] = f"failed: {type(exc).__name__}: {str(exc)[:300]}"
                print(f"{part} failed: {exc}", flush=True)
                common.sweep()
    finally:
        common.sweep()
    results = {"meta": meta, "parts": parts, "skipped": skipped}
    table = chart.write(results, args.reports, None if args.no_readme else args.readme, png=not args.no_chart)
    print("\n" + table + f"\nreports: {args.reports}/bench.json, bench.md" + ("" if args.no_chart else ", bench.png"))
    failed = [why for why in (*skipped.values(), *parts.get("setup_cost", {}).get("skipped", {}).values())]
    return 1 if any(why.startswith("failed:") for why in failed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
