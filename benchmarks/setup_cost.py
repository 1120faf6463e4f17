"""Part 1: what one container's network costs, from request to eth0 up with address and route, then removal.

Each face runs in a lab of its own: set up container i, remove it, repeat; setup and removal are timed apart.
The floor and the two faces with targets take turns container by container, so a slow spell of the host
falls on all three alike; the process-per-step faces then run one after the other. Ratios to the floor are
reported against the issue's targets, never asserted.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping
from typing import Any

from .common import PREFIX, Lab, summary, timed
from .faces import FACES

WARMUP = 3  # first calls pay imports and page faults, not the steady cost
SLOW = ("cli", "ip", "cni", "docker")  # a process (or a whole container) per step: --slow-count
TARGETS = {"driver": 1.3, "plugin": 1.5}  # x the floor's median, from the issue


TOGETHER = ("floor", "driver", "plugin")  # the faces with targets and the floor they are judged against


def _figures(setups: list[float], removes: list[float]) -> dict[str, Any]:
    total = [s + r for s, r in zip(setups, removes, strict=True)]
    return {"setup": summary(setups), "remove": summary(removes), "total": summary(total), "samples_s": setups}


def measure(face: Any, count: int) -> dict[str, Any]:
    setups: list[float] = []
    removes: list[float] = []
    for i in range(count + WARMUP):
        took, handle = timed(functools.partial(face.setup, i))
        gone, _ = timed(functools.partial(face.remove, handle))
        if i >= WARMUP:
            setups.append(took)
            removes.append(gone)
    return _figures(setups, removes)


def measure_together(faces: dict[str, Any], count: int, skipped: dict[str, str]) -> dict[str, Any]:
    """Container i set up and removed on every face before container i+1 on any. A face that fails is
    named in `skipped` with why and leaves the rotation; the others go on."""
    setups: dict[str, list[float]] = {name: [] for name in faces}
    removes: dict[str, list[float]] = {name: [] for name in faces}
    running = dict(faces)
    for i in range(count + WARMUP):
        for name, face in list(running.items()):
            try:
                took, handle = timed(functools.partial(face.setup, i))
                gone, _ = timed(functools.partial(face.remove, handle))
            except Exception as exc:  # a benchmark run reports a broken face; it does not lose the others
                skipped[name] = f"failed: {type(exc).__name__}: {str(exc)[:300]}"
                print(f"setup cost: {name} failed: {exc}", flush=True)
                del running[name]
                continue
            if i >= WARMUP:
                setups[name].append(took)
                removes[name].append(gone)
    return {name: _figures(setups[name], removes[name]) for name in running}


def _report(name: str, result: dict[str, Any]) -> None:
    print(f"setup cost: {name:<7} n={result['setup']['n']:<4} median {result['setup']['median_ms']:.2f} ms", flush=True)


def _maker(name: str, kind: str) -> Callable[[Lab], Any]:
    face_type = FACES[name]

    def make(lab: Lab) -> Any:
        return face_type(lab, kind)

    return make


def together(makers: Mapping[str, Callable[[Lab], Any]], count: int, skipped: dict[str, str]) -> dict[str, Any]:
    """Each face made in a lab of its own (`makers`: name to constructor), then measure_together."""
    with contextlib.ExitStack() as stack:  # each face closed before its lab goes (last in, first out)
        faces: dict[str, Any] = {}
        for n, (name, make) in enumerate(makers.items()):
            try:
                lab = stack.enter_context(Lab(prefix=f"{PREFIX}s{n}-"))
                faces[name] = make(lab)
            except Exception as exc:
                skipped[name] = f"failed: {type(exc).__name__}: {str(exc)[:300]}"
                print(f"setup cost: {name} failed: {exc}", flush=True)
                continue
            stack.callback(faces[name].close)
        results = measure_together(faces, count, skipped)
    for name, result in results.items():
        _report(name, result)
    return results


ORDER = ["floor", "ip", "driver", "plugin", "cli", "cni", "docker"]


def run(kind: str, count: int, slow_count: int, faces: list[str] | None = None) -> dict[str, Any]:
    """The floor, driver and plugin together, then each other face in turn; one that cannot run here (our
    driver's need ipvlan), or fails, is named with why, and the others still run."""
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    names = []
    for name in faces or ORDER:
        why = FACES[name].available(kind)
        if why:
            skipped[name] = why
        else:
            names.append(name)
    makers = {n: _maker(n, kind) for n in names if n in TOGETHER}
    results.update(together(makers, count, skipped))
    for name in (n for n in names if n not in TOGETHER):
        n = slow_count if name in SLOW else count
        try:
            with Lab() as lab:
                face = FACES[name](lab, kind)
                try:
                    results[name] = measure(face, n)
                finally:
                    face.close()
        except Exception as exc:  # a benchmark run reports a broken face; it does not lose the others
            skipped[name] = f"failed: {type(exc).__name__}: {str(exc)[:300]}"
            print(f"setup cost: {name} failed: {exc}", flush=True)
            continue
        _report(name, results[name])
    floor = results.get("floor", {}).get("setup", {}).get("median_ms")
    for name, res in results.items():
        if floor:
            res["ratio_to_floor"] = res["setup"]["median_ms"] / floor
        if name in TARGETS and floor:
            res["target"] = TARGETS[name]
            res["target_met"] = res["ratio_to_floor"] <= TARGETS[name]
    return {"kind": kind, "faces": results, "skipped": skipped}
