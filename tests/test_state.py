"""The state store: transactions, serialised verbs across threads and processes, crashes, bad records."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from ipvlan_driver.errors import StateError
from ipvlan_driver.state import DB_NAME, SCHEMA_VERSION, StateStore


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
    store.put("pools", "LocalIpvlan/10.0.0.0/24", {"x": 1})
    store.put("parents", "a/b:c", {"x": 2})
    assert store.keys("pools") == ["LocalIpvlan/10.0.0.0/24"]
    assert store.get("parents", "a/b:c") == {"x": 2}


def test_unknown_kind_refused(tmp_path: Path) -> None:
    with pytest.raises(StateError):
        StateStore(tmp_path).get("nope", "x")


def test_permissions_are_root_only(tmp_path: Path) -> None:
    root = tmp_path / "state"
    old = os.umask(0o022)
    try:
        StateStore(root).put("networks", "n", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for name in (DB_NAME, DB_NAME + "-wal"):
        if (root / name).exists():
            assert stat.S_IMODE((root / name).stat().st_mode) == 0o600, name


def test_transaction_is_all_or_nothing(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.put("networks", "keep", {"v": 1})
    with pytest.raises(RuntimeError), store.transaction():
        store.put("networks", "keep", {"v": 2})
        store.put("parents", "eth0.20", {"network": "keep"})
        raise RuntimeError("the verb failed half-way")
    assert store.get("networks", "keep") == {"v": 1}
    assert store.get("parents", "eth0.20") is None


def _die_inside_transaction(root: str) -> None:
    store = StateStore(Path(root))
    with store.transaction():
        store.put("networks", "net", {"v": 2})
        store.put("parents", "eth0.20", {"network": "net"})
        os.kill(os.getpid(), signal.SIGKILL)


def test_sigkill_inside_a_transaction_leaves_the_old_state(tmp_path: Path) -> None:
    StateStore(tmp_path).put("networks", "net", {"v": 1})
    proc = multiprocessing.get_context("fork").Process(target=_die_inside_transaction, args=(str(tmp_path),))
    proc.start()
    proc.join()
    assert proc.exitcode == -signal.SIGKILL
    store = StateStore(tmp_path)
    assert store.get("networks", "net") == {"v": 1}
    assert store.get("parents", "eth0.20") is None


def _bump(store: StateStore, rounds: int) -> None:
    for _ in range(rounds):
        with store.lock():
            rec = store.get("networks", "counter") or {"n": 0}
            rec["n"] += 1
            store.put("networks", "counter", rec)


def test_lock_serialises_threads_sharing_one_store(tmp_path: Path) -> None:
    """The plugin's threads share one store: 8 x 200 locked increments must give 1600 (a8b8e6e: 621)."""
    store = StateStore(tmp_path)
    threads = [threading.Thread(target=_bump, args=(store, 200)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("networks", "counter") == {"n": 1600}
    assert store.lock_depth() == 0


def _bump_process(root: str, rounds: int) -> None:
    _bump(StateStore(Path(root)), rounds)


def test_lock_serialises_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_bump_process, args=(str(tmp_path), 50)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert StateStore(tmp_path).get("networks", "counter") == {"n": 200}


def test_lock_is_reentrant_within_a_thread(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    with store.lock(), store.lock():
        assert store.lock_depth() == 2
        store.put("networks", "n", {"ok": True})
    assert store.get("networks", "n") == {"ok": True}


def test_unreadable_record_is_moved_aside_and_blocks_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = StateStore(tmp_path)
    store.put("networks", "good", {"name": "good"})
    store.put("networks", "bad", {"name": "bad"})
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.execute("UPDATE records SET data = '{\"name\": \"ba' WHERE key = 'bad'")
    caplog.set_level("WARNING")
    assert store.get("networks", "bad") is None
    assert store.keys("networks") == ["good"]
    assert [(k, key) for k, key, _ in store.quarantined()] == [("networks", "bad")]
    assert sum("moved aside" in r.getMessage() for r in caplog.records) == 1
    assert store.get("networks", "good") == {"name": "good"}


def test_malformed_record_is_moved_aside_by_load(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.put("networks", "odd", {"name": 5})

    def parse(rec: dict[str, object]) -> str:
        if not isinstance(rec["name"], str):
            raise StateError("name is not a string")
        return rec["name"]

    assert store.load("networks", "odd", parse) is None
    assert store.keys("networks") == []


def test_json_files_of_the_old_layout_are_imported(tmp_path: Path) -> None:
    (tmp_path / "networks").mkdir()
    (tmp_path / "networks" / "db_net.json").write_text(json.dumps({"name": "db_net"}))
    (tmp_path / "networks" / "torn.json").write_text('{"name": "to')
    (tmp_path / "pools").mkdir()
    (tmp_path / "pools" / "LocalIpvlan%2F10.0.0.0%2F24.json").write_text(json.dumps({"pools": []}))
    store = StateStore(tmp_path)
    assert store.keys("networks") == ["db_net"]
    assert store.keys("pools") == ["LocalIpvlan/10.0.0.0/24"]
    assert [key for _, key, _ in store.quarantined()] == ["torn"]
    assert not (tmp_path / "networks").exists()
    assert (tmp_path / "legacy-json-networks" / "db_net.json").exists()


def test_future_schema_is_refused_by_name(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StateError, match=f"schema version {SCHEMA_VERSION + 1}.*newer ipvlan-driver"):
        StateStore(tmp_path).keys("networks")


def test_a_database_that_is_not_one_is_moved_aside(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    store = StateStore(tmp_path)
    assert store.keys("networks") == []
    store.put("networks", "n", {})
    assert list(tmp_path.glob(f"{DB_NAME}.unreadable-*"))


def test_state_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(StateError, match="not a directory"):
        StateStore(target).keys("networks")


def test_intents_commit_before_and_end_with_the_result(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    intent = store.begin_intent({"op": "run", "container": "c1"})
    assert store.pending_intents() == [(intent, {"op": "run", "container": "c1"})]
    with store.transaction():
        store.put("containers", "c1", {})
        store.end_intent(intent)
    assert store.pending_intents() == []
    with store.transaction(), pytest.raises(StateError, match="before the verb's transaction"):
        store.begin_intent({"op": "late"})
