"""Part 1: what one container's network costs, from request to eth0 up with address and route, then removal.

Each face runs in a fresh lab: set up container i, remove it, repeat; setup and removal are timed apart.
Ratios to the floor are reported against the issue's targets, never asserted.
"""

from __future__ import annotations

import functools
from typing import Any

from .common import Lab, summary, timed
from .faces import FACES, Cni, docker_available

WARMUP = 3  # first calls pay imports and page faults, not the steady cost
SLOW = ("cli", "ip", "cni")  # one process per step: counted with --slow-count
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


def faces_for(kind: str) -> list[str]:
    """Our driver's faces need ipvlan; the floor, `ip` and CNI run with whichever slave kind the kernel has."""
    ours = ["driver", "plugin", "cli"] if kind == "ipvlan" else []
    return ["floor", "ip", *ours, "cni"]


def run(kind: str, count: int, slow_count: int, faces: list[str] | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {"docker": docker_available()}
    if kind != "ipvlan":
        skipped.update({f: f"this kernel has no ipvlan (slaves are {kind})" for f in ("driver", "plugin", "cli")})
    for name in faces or faces_for(kind):
        if name == "cni" and Cni.available(kind):
            skipped["cni"] = Cni.available(kind)
            continue
        n = slow_count if name in SLOW else count
        with Lab() as lab:
            face = FACES[name](lab, kind)
            try:
                results[name] = measure(face, n)
            finally:
                face.close()
        print(f"setup cost: {name:<7} n={n:<4} median {results[name]['setup']['median_ms']:.2f} ms", flush=True)
    floor = results.get("floor", {}).get("setup", {}).get("median_ms")
    for name, res in results.items():
        if floor:
            res["ratio_to_floor"] = res["setup"]["median_ms"] / floor
        if name in TARGETS and floor:
            res["target"] = TARGETS[name]
            res["target_met"] = res["ratio_to_floor"] <= TARGETS[name]
    return {"kind": kind, "faces": results, "skipped": skipped}
