"""State records: atomic, keyed, safe under concurrent writers."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from ipvlan_driver.errors import StateError
from ipvlan_driver.state import StateStore


def test_round_trip_and_keys(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.put("networks", "db_net", {"name": "db_net", "n": 1})
    store.put("parents", "eth0.20", {"network": "ipvlan20"})
    assert store.get("networks", "db_net") == {"name": "db_net", "n": 1}
    assert store.get("networks", "missing") is None
    assert store.keys("networks") == ["db_net"]
    assert store.keys("parents") == ["eth0.20"]
    store.delete("networks", "db_net")
    store.delete("networks", "db_net")  # deleting what is gone is success
    assert store.keys("networks") == []


def test_keys_with_path_characters(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.put("parents", "a/b:c", {"x": 1})
    assert store.keys("parents") == ["a/b:c"]
    assert store.get("parents", "a/b:c") == {"x": 1}


def test_unreadable_record_is_a_state_error(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    (tmp_path / "networks").mkdir()
    (tmp_path / "networks" / "bad.json").write_text("{not json")
    with pytest.raises(StateError, match="unreadable"):
        store.get("networks", "bad")


def test_unknown_kind_refused(tmp_path: Path) -> None:
    with pytest.raises(StateError):
        StateStore(tmp_path).get("nope", "x")


def _bump(root: str, rounds: int) -> None:
    store = StateStore(Path(root))
    for _ in range(rounds):
        with store.lock():
            rec = store.get("networks", "counter") or {"n": 0}
            rec["n"] += 1
            store.put("networks", "counter", rec)


def test_lock_serialises_concurrent_writers(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_bump, args=(str(tmp_path), 50)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert StateStore(tmp_path).get("networks", "counter") == {"n": 200}
    assert not list((tmp_path / "networks").glob(".*tmp")), "no temporary files are left"


def test_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    with store.lock(), store.lock():
        store.put("networks", "n", {"ok": True})
    assert store.get("networks", "n") == {"ok": True}
