"""Part 1: what one container's network costs, from request to eth0 up with address and route, then removal.

Each face runs in a fresh lab: set up container i, remove it, repeat; setup and removal are timed apart.
Ratios to the floor are reported against the issue's targets, never asserted.
"""

from __future__ import annotations

import functools
from typing import Any

from .common import Lab, summary, timed
from .faces import FACES

WARMUP = 3  # first calls pay imports and page faults, not the steady cost
SLOW = ("cli", "ip", "cni", "docker")  # a process (or a whole container) per step: --slow-count
TARGETS = {"driver": 1.3, "plugin": 1.5}  # x the floor's median, from the issue


def measure(face: Any, count: int) -> dict[str, Any]:
    setups: list[float] = []
    removes: list[float] = []
    for i in range(count + WARMUP):
        took, handle = timed(functools.partial(face.setup, i))
        gone, _ = timed(functools.partial(face.remove, handle))
        if i >= WARMUP:
            setups.append(took)
            removes.append(gone)
    total = [s + r for s, r in zip(setups, removes, strict=True)]
    return {"setup": summary(setups), "remove": summary(removes), "total": summary(total), "samples_s": setups}


ORDER = ["floor", "ip", "driver", "plugin", "cli", "cni", "docker"]


def run(kind: str, count: int, slow_count: int, faces: list[str] | None = None) -> dict[str, Any]:
    """Each face in turn; one that cannot run here (our driver's need ipvlan), or fails, is named with why,
    and the others still run."""
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name in faces or ORDER:
        face_type = FACES[name]
        why = face_type.available(kind)
        if why:
            skipped[name] = why
            continue
        n = slow_count if name in SLOW else count
        try:
            with Lab() as lab:
                face = face_type(lab, kind)
                try:
                    results[name] = measure(face, n)
                finally:
                    face.close()
        except Exception as exc:  # a benchmark run reports a broken face; it does not lose the others
            skipped[name] = f"failed: {type(exc).__name__}: {str(exc)[:300]}"
            print(f"setup cost: {name} failed: {exc}", flush=True)
            continue
        print(f"setup cost: {name:<7} n={n:<4} median {results[name]['setup']['median_ms']:.2f} ms", flush=True)
    floor = results.get("floor", {}).get("setup", {}).get("median_ms")
    for name, res in results.items():
        if floor:
            res["ratio_to_floor"] = res["setup"]["median_ms"] / floor
        if name in TARGETS and floor:
            res["target"] = TARGETS[name]
            res["target_met"] = res["ratio_to_floor"] <= TARGETS[name]
    return {"kind": kind, "faces": results, "skipped": skipped}
