"""The embedded store: SQLite through the standard library (local runs, ``vodfc serve``, tests).

One connection per instance, shared by threads under a lock (``vodfc serve`` is multi-threaded);
several processes may share the file: WAL journal, ``busy_timeout``, and every write transaction
starts with ``BEGIN IMMEDIATE``, so the check-then-write operations (quota, claims, events) hold
the database's write lock from their first read (which is also what serialises one owner's
reservations). Times are stored as fixed-width ISO-8601 UTC text
(``2024-05-01T12:00:00.000000+00:00``), which sorts like the instants themselves. The schema is
migrated automatically when the connection opens.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, ClassVar, TypeVar

from shared import errors
from shared.store import ApplyResult, Upload
from shared.store.base import COLUMNS, Claim, Cursor, EventChange, SqlStore, conflict, marks, plan_event

__all__ = ["SqliteStore", "parse_sqlite_url"]

T = TypeVar("T")

# "UNIQUE constraint failed: <columns>" names columns, not constraints: map them back.
_UNIQUE_COLUMNS = {
    "uploads.upload_id": "uploads_pkey",
    "uploads.reference_id": "uploads_reference_id_key",
    "uploads.video_id": "uploads_video_id_key",
    "uploads.owner, uploads.idempotency_key": "uploads_owner_idempotency_key",
}


def parse_sqlite_url(url: str) -> str:
    """The database path of a ``sqlite:///…`` URL (``:memory:`` for the in-memory database)."""
    prefix = "sqlite:///"
    if not url.lower().startswith(prefix):
        raise ValueError("a SQLite DATABASE_URL looks like sqlite:///relative.db or sqlite:////abs.db")
    path = url[len(prefix) :].split("?", 1)[0]
    if not path:
        raise ValueError("the SQLite DATABASE_URL has no path")
    return path


class SqliteStore(SqlStore):
    """:class:`shared.store.Store` on SQLite; see the module docstring."""

    dialect = "sqlite"
    # Unary + keeps SQLite's planner off the status indexes.
    UNINDEXED_STATUS: ClassVar[str] = "+status"

    def __init__(self, url: str, *, busy_timeout: float = 5.0) -> None:
        self._path = parse_sqlite_url(url)
        self._memory = self._path == ":memory:"
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"SqliteStore({self._path!r})"

    # --- connection and transactions ---------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if not self._memory:
            parent = os.path.dirname(self._path)
            if parent:
                os.makedirs(parent, exist_ok=True)
        conn = sqlite3.connect(
            self._path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            if not self._memory:
                self._use_wal(conn)
                conn.execute("PRAGMA synchronous = NORMAL")
            self._transaction(conn, self._apply_migrations)
        except BaseException:
            conn.close()
            raise
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        # Switching to WAL needs an exclusive lock, and SQLite answers SQLITE_BUSY at once (no
        # busy handler) when another connection opening the same new file holds one, so retry
        # briefly. The mode is persistent: only the very first openers of a file ever race here.
        attempts = max(1, int(self._busy_timeout / 0.02))
        for attempt in range(attempts):
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                    return
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.02)

    def _drop(self) -> None:
        if self._conn is not None and not self._memory:
            conn, self._conn = self._conn, None
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    @contextmanager
    def _session(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the instance lock, with driver errors translated."""
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._connect()
                yield self._conn
            except errors.VodfcError:
                raise
            except sqlite3.IntegrityError as exc:
                message = str(exc)
                if message.startswith("UNIQUE constraint failed: "):
                    columns = message.removeprefix("UNIQUE constraint failed: ")
                    raise conflict(_UNIQUE_COLUMNS.get(columns)) from exc
                raise errors.UnstorableValue() from exc
            except (OverflowError, UnicodeEncodeError, sqlite3.DataError) as exc:
                # An integer beyond 64 bits, a lone surrogate: the value's fault, not the store's.
                raise errors.UnstorableValue() from exc
            except (sqlite3.Error, OSError) as exc:
                self._drop()
                raise errors.StoreUnavailable() from exc

    @staticmethod
    def _transaction(conn: sqlite3.Connection, fn: Callable[[Cursor], T]) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn.cursor())
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        conn.commit()
        return result

    def _write(self, fn: Callable[[Cursor], T]) -> T:
        with self._session() as conn:
            return self._transaction(conn, fn)

    def _read(self, fn: Callable[[Cursor], T]) -> T:
        with self._session() as conn:
            return fn(conn.cursor())

    def _lock_owner(self, cur: Cursor, owner: str) -> None:
        return None  # BEGIN IMMEDIATE already holds the database's write lock

    def _lock_migrations(self, cur: Cursor) -> None:
        return None  # likewise

    def _time(self, value: datetime) -> object:
        return value.isoformat(timespec="microseconds")

    def _from_time(self, value: Any) -> datetime:
        return datetime.fromisoformat(value).astimezone(timezone.utc)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                conn.close()

    # --- dialect-specific operations ----------------------------------------------------------

    def _apply_event(self, event: EventChange) -> ApplyResult:
        video_id, dedupe_key, event_type = event.video_id, event.dedupe_key, event.event_type
        received = self._time(event.now)

        def run(cur: Cursor) -> ApplyResult:
            inserted = self._exec(
                cur,
                "INSERT INTO event_dedupe (dedupe_key, video_id, event_type, received_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
                (dedupe_key, video_id, event_type, received),
            ).rowcount
            if inserted == 0:
                return ApplyResult.DUPLICATE
            current = self._one(cur, "video_id = ?", (video_id,))
            if current is None:
                self._exec(
                    cur,
                    "INSERT INTO orphan_events "
                    "(video_id, dedupe_key, event_type, event_time, payload, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        video_id,
                        dedupe_key,
                        event_type,
                        self._time_or_none(event.event_time),
                        event.payload,
                        received,
                    ),
                )
                return ApplyResult.ORPHAN
            result, changes = plan_event(
                current,
                to=event.to,
                allowed=event.allowed,
                fields=event.fields,
                event_type=event_type,
                event_time=event.event_time,
                now=event.now,
            )
            if changes:
                sets = ", ".join(f"{c} = ?" for c in changes)
                self._exec(
                    cur,
                    f"UPDATE uploads SET {sets} WHERE upload_id = ?",  # noqa: S608
                    [*(self._value(c, v) for c, v in changes.items()), current.upload_id],
                )
            return result

        return self._write(run)

    def _claim(self, claim: Claim) -> list[Upload]:
        order = claim.order
        # INDEXED BY: without ANALYZE statistics SQLite prefers uploads_status_created and sorts
        # every candidate; the partial indexes always exist (connections migrate on open).
        select = (
            f"SELECT upload_id FROM uploads INDEXED BY {claim.index} WHERE {claim.where}"  # noqa: S608
            f" AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY {order}, upload_id LIMIT ?"
        )

        def run(cur: Cursor) -> list[Upload]:
            ids = [r[0] for r in self._exec(cur, select, (*claim.params, claim.limit)).fetchall()]
            if not ids:
                return []
            in_ids = f"upload_id IN ({marks(len(ids))})"
            self._exec(cur, f"UPDATE uploads SET claimed_until = ? WHERE {in_ids}", (claim.until, *ids))  # noqa: S608
            claimed = self._exec(
                cur,
                f"SELECT {COLUMNS} FROM uploads WHERE {in_ids} ORDER BY {order}, upload_id",  # noqa: S608
                ids,
            ).fetchall()
            return [self._upload(r) for r in claimed]

        return self._write(run)
