"""Part 6: where a container's setup goes beyond the floor: cProfile of our driver in-process and of the
plugin's server process, next to the floor timed in the same run.

Each profiled face sets up and removes `count` containers in a fresh lab. The report keeps, per face, the
functions with the most own time and the most cumulative time (ours and the libraries' we call), and writes
the full listing to reports/bench-profile.txt: the explanation of a missed setup target.
"""

from __future__ import annotations

import cProfile
import functools
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import Lab, timed
from .faces import Floor, InProcess, Plugin

TOP = 25  # functions listed per ordering


def _top(stats: pstats.Stats, key: str) -> list[dict[str, Any]]:
    """The TOP entries of `stats` ordered by `key` ('tottime' or 'cumulative'), as JSON rows."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]  # pstats keeps its table here
    index = 2 if key == "tottime" else 3
    rows = sorted(raw.items(), key=lambda kv: -kv[1][index])[:TOP]
    return [
        {"function": f"{Path(f).name}:{line}({name})", "calls": calls, "own_s": round(tt, 4), "cum_s": round(ct, 4)}
        for (f, line, name), (_cc, calls, tt, ct, _callers) in rows
    ]


def split(stats: pstats.Stats) -> dict[str, float]:
    """Own time in C calls (system calls into the kernel, sqlite3, json's C parts) against Python code."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    c_calls = sum(v[2] for (f, _l, _n), v in raw.items() if f == "~")
    python = sum(v[2] for (f, _l, _n), v in raw.items() if f != "~")
    return {"c_calls_s": round(c_calls, 4), "python_s": round(python, 4)}


def _summary(stats: pstats.Stats) -> dict[str, Any]:
    return {**split(stats), "by_own": _top(stats, "tottime"), "by_cumulative": _top(stats, "cumulative")}


def _listing(stats: pstats.Stats, title: str) -> str:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]  # print_stats writes to .stream
    out.write(f"== {title}: by own time ==\n")
    stats.sort_stats("tottime").print_stats(TOP)
    out.write(f"== {title}: by cumulative time ==\n")
    stats.sort_stats("cumulative").print_stats(TOP)
    return out.getvalue()


def _loop(face: Any, count: int) -> float:
    """Set up and remove `count` containers; the wall time of the setups only."""
    total = 0.0
    for i in range(count):
        took, handle = timed(functools.partial(face.setup, i))
        face.remove(handle)
        total += took
    return total


def floor_ms(count: int, mode: str) -> float:
    with Lab() as lab:
        face = Floor(lab, "ipvlan", mode)
        try:
            _loop(face, 3)
            return _loop(face, count) / count * 1000
        finally:
            face.close()


def profile_driver(count: int, mode: str) -> tuple[float, pstats.Stats]:
    with Lab() as lab:
        face = InProcess(lab, "ipvlan", mode)
        try:
            _loop(face, 3)  # imports and first-use costs are not the steady state
            prof = cProfile.Profile()
            setup_s = prof.runcall(_loop, face, count)
        finally:
            face.close()
    return setup_s / count * 1000, pstats.Stats(prof)


def profile_plugin(count: int, mode: str, out: Path) -> tuple[float, pstats.Stats, dict[str, float]]:
    """The plugin's server with its request handling profiled (benchmarks/profiled_serve.py), which writes
    the table when SIGTERM stops the server; also the handling's own wall time per container."""
    with Lab() as lab:
        face = Plugin(lab, "ipvlan", mode, wrap=[sys.executable, "-m", "benchmarks.profiled_serve", str(out)])
        try:
            _loop(face, 3)  # the profile covers these too: a few of count, and said so in the report
            start = time.perf_counter()
            setup_s = _loop(face, count)
            loop_s = time.perf_counter() - start
        finally:
            face.close()
    if not out.exists():
        raise RuntimeError("the plugin's profile was not written (did it stop on SIGTERM?)")
    requests, handled_s = Path(str(out) + ".handled").read_text().split()
    per_container = float(handled_s) / (count + 3)
    handling = {
        "requests": int(requests),
        "handling_per_container_ms": per_container * 1000,
        "client_per_container_ms": loop_s / count * 1000,
    }
    return setup_s / count * 1000, pstats.Stats(str(out)), handling


def run(count: int, reports: Path, mode: str = "l2") -> dict[str, Any]:
    base = floor_ms(count, mode)
    driver_ms, driver_stats = profile_driver(count, mode)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        plugin_ms, plugin_stats, handling = profile_plugin(count, mode, Path(tmp) / "plugin.prof")
    text = [
        f"Profile of {count} container set-ups and removals ({mode}); floor {base:.2f} ms per setup unprofiled,",
        f"driver {driver_ms:.2f} ms (profiled, in-process), plugin {plugin_ms:.2f} ms (its server profiled).",
        "cProfile slows Python code, never the kernel: read the shares, not the absolute times.",
        "",
        _listing(driver_stats, "driver in-process (setup and removal)"),
        f"The plugin's request handling took {handling['handling_per_container_ms']:.2f} ms per container (setup and "
        f"removal, profiled; the network's own few requests spread over them) of the "
        f"{handling['client_per_container_ms']:.2f} ms its client waited and worked.",
        "",
        _listing(plugin_stats, f"plugin request handling (the network and {count + 3} containers' requests)"),
    ]
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "bench-profile.txt").write_text("\n".join(text))
    print(f"profile: floor {base:.2f} ms, driver {driver_ms:.2f} ms, plugin {plugin_ms:.2f} ms (profiled)", flush=True)
    return {
        "count": count,
        "mode": mode,
        "floor_ms": base,
        "driver_profiled_ms": driver_ms,
        "plugin_profiled_ms": plugin_ms,
        "driver": _summary(driver_stats),
        "plugin": {**_summary(plugin_stats), **handling},
        "listing": "reports/bench-profile.txt",
    }


if __name__ == "__main__":  # python -m benchmarks.profiling [count]: this part alone
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 50, Path("reports"))["listing"])
