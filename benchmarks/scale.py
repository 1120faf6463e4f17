"""Part 3: many containers on one parent: does the thousandth cost what the first did, and does memory stay flat?

For each mode (one l2 and one l3 network) and each face (the in-process driver, the plugin process, and
the floor: whatever the kernel itself slows down by is in its series too),
`--scale-count` containers are added and kept; each one's setup time, the resident set every tenth of
the way, and the teardown of all of them are recorded.
"""

from __future__ import annotations

import functools
import statistics
from typing import Any

from .common import Lab, reset_peak_rss, timed
from .faces import Floor, InProcess, Plugin

EDGE = 100  # the first and last this-many containers are compared


def grow(face: Any, count: int) -> dict[str, Any]:
    samples: list[float] = []
    rss: list[dict[str, int]] = []
    handles = []
    step = max(1, count // 10)
    for i in range(count):
        took, handle = timed(functools.partial(face.setup, i))
        samples.append(took)
        handles.append(handle)
        if i % step == 0 or i == count - 1:
            rss.append({"containers": i + 1, **face.rss()})
    teardown, _ = timed(lambda: [face.remove(h) for h in handles])
    edge = min(EDGE, max(1, count // 2))
    first, last = statistics.median(samples[:edge]), statistics.median(samples[-edge:])
    return {
        "count": count,
        "samples_s": samples,
        "first_median_ms": first * 1000,
        "last_median_ms": last * 1000,
        "last_vs_first": last / first,
        "target": 1.2,
        "target_met": last / first <= 1.2,
        "rss": rss,
        "peak_rss_kb": max(r["peak_kb"] for r in rss),
        "rss_growth_kb": rss[-1]["rss_kb"] - rss[0]["rss_kb"],
        "teardown_s": teardown,
        "teardown_per_container_ms": teardown / count * 1000,
    }


def run(count: int, modes: tuple[str, ...] = ("l2", "l3")) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in modes:
        for face_type in (Floor, InProcess, Plugin):
            with Lab() as lab:
                face: Any = face_type(lab, "ipvlan", mode)
                try:
                    if face_type is not Plugin:
                        reset_peak_rss()  # the previous parts' peak is not this series' (same process)
                    out[f"{face.name}-{mode}"] = result = grow(face, count)
                finally:
                    face.close()
            print(f"scale: {face.name}-{mode} last/first {result['last_vs_first']:.2f}", flush=True)
    return out
