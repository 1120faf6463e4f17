"""Persistent driver state: records in one SQLite database (WAL), changed in transactions.

Three guarantees, each with its mechanism:
- one verb at a time: `lock()` serialises threads (a re-entrant lock) and processes (flock), for the
  whole of a verb, so a check and the write it guards cannot interleave with another verb;
- all or nothing: `transaction()` is one SQLite transaction (`BEGIN IMMEDIATE`); records changed
  together commit together, and a crash at any instant leaves the old state or the new one;
- nothing half-made in the kernel is forgotten: a verb that touches the kernel first commits an
  *intent* naming what it is about to make or remove, and deletes it in the same transaction as its
  result. An intent found later belongs to a verb that died; the driver finishes or undoes it.

A record the driver cannot read is moved aside (the `quarantine` table) with one warning, and the
rest of the state keeps working. The schema is versioned with `PRAGMA user_version`.

A verb reads and writes only the records it touches: a network's endpoints and the addresses its pools
hand out are records of their own, keyed under the network (`child_key`), never fields of one record that
grows with every container (schema 1 kept them so, and the thousandth container cost 1.4x the first).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from .errors import StateError

DEFAULT_STATE_DIR = Path("/var/lib/ipvlan-driver")
# pools: the IPAM plugin's. Under a network or a pool ("address scope"): endpoints (a network's), addresses
# (held, by owner), holders (an owner's addresses), free (released below a pool's low mark), lows (the mark).
KINDS = ("networks", "containers", "parents", "pools", "endpoints", "addresses", "holders", "free", "lows")
DB_NAME = "state.db"
SCHEMA_VERSION = 2
SEPARATOR = "\x1f"  # ASCII unit separator: in no network, endpoint, container or pool name
BUSY_TIMEOUT_S = 60.0

Record = dict[str, Any]
T = TypeVar("T")
log = logging.getLogger("ipvlan_driver.state")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL, pid INTEGER NOT NULL, started REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL,
    reason TEXT NOT NULL, at REAL NOT NULL
);
"""


def child_key(parent: str, child: str) -> str:
    """The key of a record kept under `parent` (an endpoint under its network, an address under its scope)."""
    return parent + SEPARATOR + child


def _children_range(parent: str) -> tuple[str, str]:
    # every key that starts with parent + SEPARATOR sorts in [parent + SEPARATOR, parent + next char)
    return parent + SEPARATOR, parent + chr(ord(SEPARATOR) + 1)


def address_child(version: int, value: int) -> str:
    """An address as a child key: fixed width, so that keys sort as the addresses do within a family."""
    return f"{version}{value:032x}"


def prepare_dir(root: Path) -> Path:
    """The state directory, made 0700 if missing; a clear error if it cannot be one."""
    if str(root) in ("", "."):
        raise StateError("the state directory must be named (--state-dir DIR): an empty path means the current one")
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise StateError(f"state directory {root} exists and is not a directory") from None
    except NotADirectoryError:
        raise StateError(f"state directory {root}: a part of the path is not a directory") from None
    except OSError as exc:
        raise StateError(f"cannot create state directory {root}: {exc.strerror}") from None
    if not root.is_dir():
        raise StateError(f"state directory {root} exists and is not a directory")
    with contextlib.suppress(PermissionError):
        if root.stat().st_mode & 0o077:
            root.chmod(0o700)  # networks, addresses and namespaces are root's business only
    return root


class StateStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._thread_lock = threading.RLock()
        self._local = threading.local()
        self._ready = False
        self._ready_lock = threading.Lock()

    # connections -------------------------------------------------------------------------

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    def _connect(self) -> sqlite3.Connection:
        old = os.umask(0o077)  # the database, its WAL and its shared memory are born 0600
        try:
            conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # a committed verb survives a power cut too
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state database {self.db_path} cannot be opened: {exc}") from None
        finally:
            os.umask(old)
        return conn

    def _open(self) -> sqlite3.Connection:
        """A connection for this thread; the first one creates or migrates the database (under the
        process lock: migrations are writes). A current database costs one connection and no lock:
        under emulation every command's start-up counts."""
        with self._ready_lock:
            if self._ready:
                return self._connect()
            prepare_dir(self.root)
            conn = self._current_connection()
            if conn is None:
                with self._flock():
                    self._migrate()
                conn = self._connect()
            self._ready = True
            return conn

    def _current_connection(self) -> sqlite3.Connection | None:
        if not self.db_path.exists():
            return None
        try:
            conn = self._connect()
        except StateError:
            return None
        try:
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) == SCHEMA_VERSION:
                return conn
        except sqlite3.DatabaseError:
            pass
        conn.close()
        return None

    def _migrate(self) -> None:
        try:
            conn = self._connect()
        except StateError:
            self._move_database_aside("it cannot be opened")
            conn = self._connect()
        try:
            try:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            except sqlite3.DatabaseError as exc:
                conn.close()
                self._move_database_aside(str(exc))
                conn = self._connect()
                version = 0
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"state database {self.db_path} has schema version {version}; this ipvlan-driver "
                    f"understands versions up to {SCHEMA_VERSION}: use a newer ipvlan-driver"
                )
            if version < SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                imported = split = 0
                if version < 1:
                    for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                        conn.execute(statement)
                    imported = self._import_json_files(conn)
                if version < 2:
                    split = _split_grown_records(conn)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.execute("COMMIT")
                if imported:
                    log.warning("state: imported %d records from the JSON files of an older release", imported)
                if split:
                    log.warning(
                        "state: split %d network and pool records into one record per endpoint and address", split
                    )
            for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
                with contextlib.suppress(FileNotFoundError, PermissionError):
                    (self.root / name).chmod(0o600)
        finally:
            conn.close()

    def _move_database_aside(self, why: str) -> None:
        aside = self.root / f"{DB_NAME}.unreadable-{int(time.time())}"
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(str(self.db_path) + suffix, str(aside) + suffix)
        log.warning(
            "state: database %s is unreadable (%s): moved aside to %s; starting empty", self.db_path, why, aside
        )

    def _import_json_files(self, conn: sqlite3.Connection) -> int:
        """Migration 0 -> 1: releases before 0.2 kept one JSON file per record under <kind>/."""
        count = 0
        for kind in KINDS:
            directory = self.root / kind
            if not directory.is_dir():
                continue
            for path in sorted(directory.glob("*.json")):
                key = unquote(path.name[: -len(".json")])
                text = path.read_text(errors="replace")
                try:
                    data = json.loads(text)
                    if not isinstance(data, dict):
                        raise ValueError("not a JSON object")
                except ValueError as exc:
                    self._quarantine(conn, kind, key, text, f"unreadable JSON file {path.name}: {exc}")
                else:
                    conn.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", (kind, key, json.dumps(data)))
                    count += 1
            aside = self.root / f"legacy-json-{kind}"
            os.replace(directory, aside)
        return count

    # serialisation and transactions ---------------------------------------------------------

    @contextlib.contextmanager
    def _flock(self) -> Iterator[None]:
        old = os.umask(0o077)
        try:
            fh = open(self.root / "lock", "a")  # noqa: SIM115 - held for the block below
        finally:
            os.umask(old)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield
        finally:
            fh.close()  # closing drops the flock

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive for the whole of one driver verb: one thread of this process, one process on the host.

        Re-entrant within a thread (verbs compose: run = create_endpoint + join).
        """
        with self._thread_lock:
            depth = getattr(self._local, "depth", 0)
            if depth:
                self._local.depth = depth + 1
                try:
                    yield
                finally:
                    self._local.depth -= 1
                return
            self._conn()  # the directory and the database exist before the lock file is made
            with self._flock():
                self._local.depth = 1
                try:
                    yield
                finally:
                    self._local.depth = 0

    def lock_depth(self) -> int:
        """How deep this thread is inside lock(): 1 in the outermost verb, 0 outside any."""
        return int(getattr(self._local, "depth", 0))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One SQLite transaction; nested blocks join the outermost one, which commits or rolls back."""
        conn = self._conn()
        if getattr(self._local, "tx", 0):
            self._local.tx += 1
            try:
                yield
            finally:
                self._local.tx -= 1
            return
        conn.execute("BEGIN IMMEDIATE")
        self._local.tx = 1
        try:
            yield
        except BaseException:
            self._local.tx = 0
            conn.execute("ROLLBACK")
            raise
        self._local.tx = 0
        conn.execute("COMMIT")

    def in_transaction(self) -> bool:
        return bool(getattr(self._local, "tx", 0))

    def _execute(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        try:
            return self._conn().execute(sql, args)
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state database {self.db_path}: {exc}") from None

    # records -----------------------------------------------------------------------------

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in KINDS:
            raise StateError(f"unknown state kind {kind!r}")

    def get(self, kind: str, key: str) -> Record | None:
        """The record, or None; one that cannot be read is moved aside (a warning says so) and is None."""
        self._check_kind(kind)
        row = self._execute("SELECT data FROM records WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        if row is None:
            return None
        try:
            data = json.loads(row[0])
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            self.quarantine(kind, key, f"unreadable: {exc}")
            return None
        return data

    def load(self, kind: str, key: str, parse: Callable[[Record], T]) -> T | None:
        """get() and parse; a record of the wrong shape is moved aside like an unreadable one."""
        rec = self.get(kind, key)
        if rec is None:
            return None
        try:
            return parse(rec)
        except (StateError, KeyError, TypeError, ValueError, AttributeError) as exc:
            self.quarantine(kind, key, f"malformed: {exc}")
            return None

    def put(self, kind: str, key: str, record: Record) -> None:
        self._check_kind(kind)
        data = json.dumps(record, sort_keys=True)
        self._execute("INSERT OR REPLACE INTO records (kind, key, data) VALUES (?, ?, ?)", (kind, key, data))

    def delete(self, kind: str, key: str) -> None:
        self._check_kind(kind)
        self._execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))

    def keys(self, kind: str) -> list[str]:
        self._check_kind(kind)
        return [r[0] for r in self._execute("SELECT key FROM records WHERE kind = ? ORDER BY key", (kind,))]

    # records under a parent (child_key): read without reading the parent's other children -------------

    def children(self, kind: str, parent: str) -> list[tuple[str, Record]]:
        """Every readable record of `kind` under `parent`, as (child, record), in key order."""
        self._check_kind(kind)
        low, high = _children_range(parent)
        rows = self._execute(
            "SELECT key, data FROM records WHERE kind = ? AND key >= ? AND key < ? ORDER BY key", (kind, low, high)
        ).fetchall()
        try:  # one parse for them all: a network's endpoints are read whole on every rm
            records = json.loads("[" + ",".join(data for _key, data in rows) + "]")
            if all(isinstance(rec, dict) for rec in records):
                return [(key[len(low) :], rec) for (key, _data), rec in zip(rows, records, strict=True)]
        except ValueError:
            pass
        out: list[tuple[str, Record]] = []
        for key, data in rows:
            try:
                rec = json.loads(data)
                if not isinstance(rec, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                self.quarantine(kind, key, f"unreadable: {exc}")
                continue
            out.append((key[len(low) :], rec))
        return out

    def first_child(self, kind: str, parent: str, low: str = "", high: str | None = None) -> str | None:
        """The lowest child of `parent` in [low, high] (any child without bounds), without reading the rest."""
        self._check_kind(kind)
        start, end = _children_range(parent)
        args: tuple[str, ...] = (kind, start + low, end) if high is None else (kind, start + low, start + high)
        sql = "SELECT key FROM records WHERE kind = ? AND key >= ? AND key " + ("<" if high is None else "<=")
        row = self._execute(sql + " ? ORDER BY key LIMIT 1", args).fetchone()
        return None if row is None else str(row[0])[len(start) :]

    def delete_children(self, kind: str, parent: str) -> None:
        self._check_kind(kind)
        low, high = _children_range(parent)
        self._execute("DELETE FROM records WHERE kind = ? AND key >= ? AND key < ?", (kind, low, high))

    def quarantine(self, kind: str, key: str, reason: str) -> None:
        """Move one record aside so that it blocks nothing else; say so once, naming it."""
        with self.transaction():
            row = self._execute("SELECT data FROM records WHERE kind = ? AND key = ?", (kind, key)).fetchone()
            if row is None:
                return
            self._quarantine(self._conn(), kind, key, row[0], reason)
            self._execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))
        log.warning(
            "state: %s record %r is %s; moved aside (see `quarantine` in %s), the rest is unaffected",
            kind.rstrip("s"),
            key,
            reason,
            self.db_path,
        )

    @staticmethod
    def _quarantine(conn: sqlite3.Connection, kind: str, key: str, data: str, reason: str) -> None:
        conn.execute(
            "INSERT INTO quarantine (kind, key, data, reason, at) VALUES (?, ?, ?, ?, ?)",
            (kind, key, data, reason, time.time()),
        )

    def quarantined(self) -> list[tuple[str, str, str]]:
        return [(r[0], r[1], r[2]) for r in self._execute("SELECT kind, key, reason FROM quarantine ORDER BY id")]

    # intents: what a verb is about to do in the kernel -----------------------------------------

    def begin_intent(self, intent: Record) -> int:
        """Commit, before any kernel change, what a verb is about to make or remove."""
        if self.in_transaction():
            raise StateError("an intent must be committed before the verb's transaction starts")
        cur = self._execute(
            "INSERT INTO intents (data, pid, started) VALUES (?, ?, ?)",
            (json.dumps(intent, sort_keys=True), os.getpid(), time.time()),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def end_intent(self, intent_id: int) -> None:
        """Inside the verb's final transaction: the intent goes with the result it promised."""
        self._execute("DELETE FROM intents WHERE id = ?", (intent_id,))

    def pending_intents(self) -> list[tuple[int, Record]]:
        rows = self._execute("SELECT id, data FROM intents ORDER BY id").fetchall()
        out: list[tuple[int, Record]] = []
        for intent_id, data in rows:
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = {"op": "unreadable", "data": data}
            out.append((int(intent_id), parsed if isinstance(parsed, dict) else {"op": "unreadable"}))
        return out


def _split_grown_records(conn: sqlite3.Connection) -> int:
    """Migration 1 -> 2: a network's `containers` and every pool's `allocated` addresses leave the network's
    (or the IPAM pool's) record for records of their own. A record of the wrong shape is quarantined."""
    count = 0
    rows = conn.execute("SELECT kind, key, data FROM records WHERE kind IN ('networks', 'pools')").fetchall()
    for kind, key, data in rows:
        try:
            rec = json.loads(data)
            out = _split_one(kind, key, rec)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            StateStore._quarantine(conn, kind, key, data, f"not splittable into schema 2: {exc}")
            conn.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))
            continue
        for child_kind, child, child_rec in out:
            conn.execute(
                "INSERT OR REPLACE INTO records VALUES (?, ?, ?)",
                (child_kind, child, json.dumps(child_rec, sort_keys=True)),
            )
        conn.execute(
            "UPDATE records SET data = ? WHERE kind = ? AND key = ?", (json.dumps(rec, sort_keys=True), kind, key)
        )
        count += 1
    return count


def _split_one(kind: str, key: str, rec: dict[str, Any]) -> list[tuple[str, str, Record]]:
    """What schema 2 keeps apart from `rec` (which loses those fields); rec's addresses are not re-checked
    here: the driver checks each one as it reads it."""
    scope = f"{kind}:{key}"
    out: list[tuple[str, str, Record]] = []
    if kind == "networks":
        for endpoint, addresses in dict(rec.pop("containers", {})).items():
            out.append(("endpoints", child_key(key, str(endpoint)), {"addresses": [str(a) for a in addresses]}))
    held: dict[str, list[str]] = {}
    for pool in rec.get("pools", []):
        for text, owner in dict(pool.pop("allocated", {})).items():
            addr = ipaddress.ip_address(text)
            child = child_key(scope, address_child(addr.version, int(addr)))
            out.append(("addresses", child, {"address": str(addr), "owner": str(owner)}))
            held.setdefault(str(owner), []).append(str(addr))
    out.extend(("holders", child_key(scope, owner), {"addresses": texts}) for owner, texts in held.items())
    return out
