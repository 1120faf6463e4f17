"""Writes a benchmark run out: reports/bench.json (every figure), bench.md (the tables), bench.png (setup
latency and the scale curves), and the README's table between its bench markers."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
SCHEMA = 1
PROFILE_ROWS = 6  # per process, in the table; the listing has the rest


def _f(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _rows(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows)]


def tables(results: dict[str, Any]) -> str:
    """Markdown: one table per part that ran, under a line saying where the figures come from."""
    meta, parts = results.get("meta", {}), results.get("parts", {})
    lines = [
        f"Kernel {meta.get('kernel', '?')}, {meta.get('cpus', '?')} CPUs, virtualization "
        f"{meta.get('virtualization', '?')}, commit {meta.get('commit', '?')}, {meta.get('when', '')}.",
        "",
    ]
    if meta.get("emulated"):
        lines += ["Emulated VM (no KVM): compare the ratios and the ordering, not the absolute figures.", ""]
    for part, why in results.get("skipped", {}).items():
        lines += [f"Not measured: {part}: {why}.", ""]
    setup = parts.get("setup_cost")
    if setup:
        lines += [f"**Setup cost per container** ({setup['kind']} slaves; ms)", ""]
        rows = []
        for name, r in setup["faces"].items():
            target = f"<= {r['target']}x: {'met' if r['target_met'] else 'MISSED'}" if "target" in r else ""
            rows.append(
                [
                    name,
                    str(r["setup"]["n"]),
                    _f(r["setup"]["median_ms"]),
                    _f(r["setup"]["p95_ms"]),
                    _f(r["remove"]["median_ms"]),
                    _f(r.get("ratio_to_floor")),
                    target,
                ]
            )
        rows += [[name, "-", "-", "-", "-", "-", why] for name, why in setup.get("skipped", {}).items()]
        head = ["face", "n", "setup median", "setup p95", "removal median", "x floor", "target"]
        lines += [*_rows(head, rows), ""]
    conc = parts.get("concurrency")
    if conc:
        lines += [f"**{conc['concurrency']} concurrent requests to the plugin**", ""]
        head = ["serial median ms", "serial p95 ms", "concurrent p95 ms", "p95 vs serial", "containers/s"]
        head += ["serial containers/s", "addresses distinct"]
        row = [_f(conc["serial"]["median_ms"]), _f(conc["serial"]["p95_ms"]), _f(conc["concurrent"]["p95_ms"])]
        row += [_f(conc["p95_vs_serial"]), _f(conc["throughput_per_s"], 1), _f(conc["serial_throughput_per_s"], 1)]
        row += ["yes" if conc["addresses_distinct"] else "NO"]
        lines += [*_rows(head, [row]), ""]
    scale = parts.get("scale")
    if scale:
        lines += ["**Scale: containers kept on one network** (the faces grown side by side; vs floor's: a face's"]
        lines += ["last/first over the floor's, its growth beyond the kernel's; the floor and the driver share"]
        lines += ["one process, so their resident sets are one figure)", ""]
        head = ["series", "count", "first median ms", "last median ms", "last/first", "vs floor's", "peak RSS MiB"]
        head += ["RSS growth MiB", "teardown s"]
        rows = [
            [
                name,
                str(r["count"]),
                _f(r["first_median_ms"]),
                _f(r["last_median_ms"]),
                _f(r["last_vs_first"]),
                _f(r["vs_floor"]) if "vs_floor" in r else "",  # runs before the faces grew side by side
                _f(r["peak_rss_kb"] / 1024, 1),
                _f(r["rss_growth_kb"] / 1024, 1),
                _f(r["teardown_s"], 1),
            ]
            for name, r in scale.items()
        ]
        lines += [*_rows(head, rows), ""]
    data = parts.get("dataplane")
    if data:
        lines += ["**Data plane** (" + data["caveat"] + ")", ""]
        head = ["variant", "to container Gbit/s", "to upstream Gbit/s", "to container RTT ms", "to upstream RTT ms"]
        rows = [
            [
                name,
                _f(r.get("gbps_container")),
                _f(r.get("gbps_upstream")),
                _f(r["rtt_container"]["avg_ms"], 3),
                _f(r["rtt_upstream"]["avg_ms"], 3),
            ]
            for name, r in data["variants"].items()
        ]
        lines += [*_rows(head, rows), ""]
    prof = parts.get("profile")
    if prof:
        lines += [
            f"**Profile** ({prof['count']} containers, {prof['mode']}; reports/bench-profile.txt has the listing): "
            f"floor {_f(prof['floor_ms'])} ms, driver {_f(prof['driver_profiled_ms'])} ms and plugin "
            f"{_f(prof['plugin_profiled_ms'])} ms under the profiler",
            "",
        ]
        rows = []
        for face in ("driver", "plugin"):
            for r in prof[face]["by_own"][:PROFILE_ROWS]:
                rows.append([face, r["function"], str(r["calls"]), _f(r["own_s"], 3), _f(r["cum_s"], 3)])
        lines += [*_rows(["process", "function (most own time)", "calls", "own s", "cumulative s"], rows), ""]
    suite = parts.get("suite_cost")
    if suite:
        lines += ["**The suite's own cost** (s)", ""]
        rows = []
        for name, c in suite.get("columns", {}).items():
            p = c["phases"]
            rows.append(
                [name, str(c["tests"]), _f(p.get("wall_s"), 1), _f(p.get("setup_s"), 1), _f(p.get("call_s"), 1)]
            )
        modes = suite.get("modes")
        if modes:
            for mode, r in modes["runs"].items():
                p = r["phases"]
                label = f"{modes['column']} {mode}" + (f" -k {modes['select']}" if modes["select"] else "")
                rows.append(
                    [label, str(r["tests"]), _f(r["wall_s"], 1), _f(p.get("setup_s"), 1), _f(p.get("call_s"), 1)]
                )
        if rows:
            lines += [*_rows(["column", "tests", "wall", "topology set-up", "assertions"], rows), ""]
        else:
            lines += ["No finished column under reports/ records its phases yet (run ci/conformance first).", ""]
    return "\n".join(lines).rstrip() + "\n"


def chart(results: dict[str, Any], path: Path) -> None:
    """Two panels: setup latency per face (median and p95), and each scale series' per-container time."""
    import matplotlib

    matplotlib.use("Agg")  # no display in the VM
    import matplotlib.pyplot as plt

    parts = results.get("parts", {})
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    faces = parts.get("setup_cost", {}).get("faces", {})
    names = list(faces)
    xs = range(len(names))
    left.bar([x - 0.2 for x in xs], [faces[n]["setup"]["median_ms"] for n in names], 0.4, label="median")
    left.bar([x + 0.2 for x in xs], [faces[n]["setup"]["p95_ms"] for n in names], 0.4, label="p95")
    for x, name in zip(xs, names, strict=True):
        ratio = faces[name].get("ratio_to_floor")
        if ratio is not None:
            left.annotate(f"{ratio:.2f}x", (x, faces[name]["setup"]["p95_ms"]), ha="center", va="bottom", fontsize=8)
    left.set_xticks(list(xs), names)
    left.set_yscale("log")  # the process-per-step faces cost 10-100x the in-process ones
    left.set_ylabel("ms per container (setup, log scale; labels: x floor)")
    left.set_title("Setup cost per container")
    left.legend()
    for name, series in parts.get("scale", {}).items():
        samples = [s * 1000 for s in series["samples_s"]]
        window = max(1, len(samples) // 50)
        smooth = [sorted(samples[i : i + window])[len(samples[i : i + window]) // 2] for i in range(len(samples))]
        right.plot(range(1, len(samples) + 1), smooth, label=name)
    right.set_xlabel("containers already on the network")
    right.set_ylabel("ms per container (running median)")
    right.set_title("Scale")
    if parts.get("scale"):
        right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def rewrite_readme(text: str, table: str, command: str) -> str:
    """The README with the table between the markers replaced; the markers must be there exactly once."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"the README needs one {BEGIN} ... {END} block")
    block = f"{BEGIN}\nProduced by `{command}`:\n\n{table}{END}"
    return re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)


def write(results: dict[str, Any], out: Path, readme: Path | None, png: bool = True) -> str:
    out.mkdir(parents=True, exist_ok=True)
    results = {"schema": SCHEMA, **results}
    (out / "bench.json").write_text(json.dumps(results, indent=1) + "\n")
    table = tables(results)
    (out / "bench.md").write_text("# Benchmarks\n\n" + table)
    if png:
        chart(results, out / "bench.png")
    if readme is not None:
        readme.write_text(rewrite_readme(readme.read_text(), table, results.get("meta", {}).get("command", "")))
    return table


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.chart [reports/bench.json]`: draw bench.png next to it from its figures.

    ci/bench draws on the host: matplotlib's numpy dies of SIGILL in the VM (its CPU model lacks the
    instructions numpy's wheels are built for).
    """
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "reports/bench.json")
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        print(f"benchmarks.chart: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    chart(results, path.with_name("bench.png"))
    print(f"benchmarks.chart: wrote {path.with_name('bench.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
