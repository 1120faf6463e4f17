"""Part 3: many containers on one parent: does the thousandth cost what the first did, and does memory stay flat?

For each mode (one l2 and one l3 network), three faces grow side by side: the in-process driver, the plugin
process, and the floor (whatever the kernel itself slows down by is in its series too). Container i is set
up on each face in turn before container i+1 on any, each face in a lab of its own, so a slow spell of the
host falls on all three alike: `vs_floor` is a face's last/first over the floor's, its growth beyond the
kernel's. Each one's setup time, the resident set every tenth of the way, and the teardown of all of them
are recorded. The driver and the floor share this process, so their resident sets are one figure (the
floor's own share is its few handles).
"""

from __future__ import annotations

import contextlib
import functools
import statistics
from typing import Any

from .common import PREFIX, Lab, reset_peak_rss, timed
from .faces import Floor, InProcess, Plugin

EDGE = 100  # the first and last this-many containers are compared
TARGET = 1.2  # last/first, from the issue
FACES = ((Floor, "f"), (InProcess, "d"), (Plugin, "p"))  # each face's lab prefix: PREFIX + letter + "-"


def grow(faces: dict[str, Any], count: int) -> dict[str, dict[str, Any]]:
    """`count` containers on every face of `faces` (name: face), kept, set up interleaved; then each
    face's containers removed, timed per face."""
    samples: dict[str, list[float]] = {name: [] for name in faces}
    rss: dict[str, list[dict[str, int]]] = {name: [] for name in faces}
    handles: dict[str, list[Any]] = {name: [] for name in faces}
    step = max(1, count // 10)
    for i in range(count):
        for name, face in faces.items():
            took, handle = timed(functools.partial(face.setup, i))
            samples[name].append(took)
            handles[name].append(handle)
            if i % step == 0 or i == count - 1:
                rss[name].append({"containers": i + 1, **face.rss()})
    out: dict[str, dict[str, Any]] = {}
    edge = min(EDGE, max(1, count // 2))
    for name, face in faces.items():
        teardown, _ = timed(functools.partial(_remove_all, face, handles[name]))
        first, last = statistics.median(samples[name][:edge]), statistics.median(samples[name][-edge:])
        out[name] = {
            "count": count,
            "samples_s": samples[name],
            "first_median_ms": first * 1000,
            "last_median_ms": last * 1000,
            "last_vs_first": last / first,
            "target": TARGET,
            "target_met": last / first <= TARGET,
            "rss": rss[name],
            "peak_rss_kb": max(r["peak_kb"] for r in rss[name]),
            "rss_growth_kb": rss[name][-1]["rss_kb"] - rss[name][0]["rss_kb"],
            "teardown_s": teardown,
            "teardown_per_container_ms": teardown / count * 1000,
        }
    return out


def _remove_all(face: Any, handles: list[Any]) -> None:
    for handle in handles:
        face.remove(handle)


def run(count: int, modes: tuple[str, ...] = ("l2", "l3")) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in modes:
        with contextlib.ExitStack() as stack:  # each face closed before its lab goes (last in, first out)
            faces: dict[str, Any] = {}
            for face_type, letter in FACES:
                lab = stack.enter_context(Lab(prefix=f"{PREFIX}{letter}-"))
                face = face_type(lab, "ipvlan", mode)
                stack.callback(face.close)
                faces[f"{face.name}-{mode}"] = face
            reset_peak_rss()  # the previous parts' peak is not this series' (same process)
            grown = grow(faces, count)
        floor = grown[f"floor-{mode}"]["last_vs_first"]
        for name, result in grown.items():
            result["vs_floor"] = result["last_vs_first"] / floor
            out[name] = result
            print(
                f"scale: {name} last/first {result['last_vs_first']:.2f} ({result['vs_floor']:.2f}x the floor's)",
                flush=True,
            )
    return out
