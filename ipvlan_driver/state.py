"""Persistent driver state: one JSON record per key, written atomically, guarded by one lock.

Records live in `<root>/<kind>/<key>.json`, so every lookup is by key and no operation reads
records it does not need, however many networks and containers exist.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from .errors import StateError

DEFAULT_STATE_DIR = Path("/var/lib/ipvlan-driver")
KINDS = ("networks", "containers", "parents", "pools")  # pools: the IPAM plugin's

Record = dict[str, Any]


def _filename(key: str) -> str:
    # keys may hold '/' (subnets) or ':' (IPv6); quote them into one safe path component
    return quote(key, safe="") + ".json"


class StateStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._depth = 0  # verbs compose (run = create_endpoint + join): the lock is re-entrant

    def _dir(self, kind: str) -> Path:
        if kind not in KINDS:
            raise StateError(f"unknown state kind {kind!r}")
        return self.root / kind

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive for the whole of one driver verb, across processes (CLI calls, plugin)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0
                fcntl.flock(fh, fcntl.LOCK_UN)

    def get(self, kind: str, key: str) -> Record | None:
        path = self._dir(kind) / _filename(key)
        try:
            with open(path) as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StateError(f"state record {path} is unreadable: {exc}") from exc
        if not isinstance(data, dict):
            raise StateError(f"state record {path} is not an object")
        return data

    def put(self, kind: str, key: str, record: Record) -> None:
        directory = self._dir(kind)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / _filename(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as fh:
            json.dump(record, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def delete(self, kind: str, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self._dir(kind) / _filename(key)).unlink()

    def keys(self, kind: str) -> list[str]:
        directory = self._dir(kind)
        if not directory.is_dir():
            return []
        return sorted(unquote(p.name[: -len(".json")]) for p in directory.glob("*.json"))
