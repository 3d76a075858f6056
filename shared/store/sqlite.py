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
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from shared import errors
from shared.store import Applied, ApplyResult, InboxEvent, Upload
from shared.store.base import (
    COLUMNS,
    EVENT_COLUMNS,
    SqlStore,
    conflict,
    marks,
    plan_event,
)

if TYPE_CHECKING:
    from shared.store.base import Claim, Cursor, EventApply, EventRecord

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

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: float = 5.0,
        notify_types: frozenset[str] | None = None,
        first_check_seconds: float = 600.0,
    ) -> None:
        super().__init__(notify_types=notify_types, first_check_seconds=first_check_seconds)
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

    def _record_event(self, record: EventRecord) -> tuple[InboxEvent, bool, Upload | None]:
        now, until = self._time(record.now), self._time(record.until)
        insert = (
            "INSERT INTO event_inbox (dedupe_key, media_id, event_type, event_time, source, message_id, "
            "body, received_at, state, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?) "
            "ON CONFLICT (dedupe_key) DO NOTHING"
        )
        values = (
            record.dedupe_key,
            record.media_id,
            record.event_type,
            self._time_or_none(record.event_time),
            record.source,
            record.message_id,
            record.body,
            now,
            now,
        )
        claim = (
            "UPDATE event_inbox SET claimed_until = ? WHERE dedupe_key = ? AND state = 'pending' "
            "AND (claimed_until IS NULL OR claimed_until <= ?)"
        )

        def run(cur: Cursor) -> tuple[InboxEvent, bool, Upload | None]:
            self._exec(cur, insert, values)
            owned = self._exec(cur, claim, (until, record.dedupe_key, now)).rowcount == 1
            row = self._exec(
                cur,
                f"SELECT {EVENT_COLUMNS} FROM event_inbox WHERE dedupe_key = ?",  # noqa: S608
                (record.dedupe_key,),
            ).fetchone()
            return self._event(row), owned, self._one(cur, "video_id = ?", (record.media_id,))

        return self._write(run)

    def _apply_event(self, event: EventApply) -> Applied:
        def run(cur: Cursor) -> Applied:
            pending = self._exec(
                cur, "SELECT 1 FROM event_inbox WHERE event_id = ? AND state = 'pending'", (event.event_id,)
            ).fetchone()
            if pending is None:
                return Applied(ApplyResult.DUPLICATE)
            leased = None
            current = self._one(cur, "video_id = ?", (event.video_id,))
            if current is None:
                result = ApplyResult.ORPHAN
            else:
                result, changes = plan_event(
                    current,
                    to=event.to,
                    allowed=event.allowed,
                    fields=event.fields,
                    event_type=event.event_type,
                    event_time=event.event_time,
                    now=event.now,
                    first_check=event.check_at - event.now,
                )
                if changes:
                    sets = ", ".join(f"{c} = ?" for c in changes)
                    row = self._exec(
                        cur,
                        f"UPDATE uploads SET {sets} WHERE upload_id = ? RETURNING {COLUMNS}",  # noqa: S608
                        [*(self._value(c, v) for c, v in changes.items()), current.upload_id],
                    ).fetchone()
                    if "status" in changes:
                        leased = self._notify(
                            cur, [self._upload(row)], event.now, lease_until=event.lease_until
                        )
            self._exec(
                cur,
                "UPDATE event_inbox SET state = 'done', result = ?, done_at = ?, claimed_until = NULL "
                "WHERE event_id = ?",
                (result.value, self._time(event.now), event.event_id),
            )
            return Applied(result, leased)

        return self._write(run)

    def _claim(self, claim: Claim) -> list[Any]:
        table, key, order = claim.table, claim.key, claim.order
        # INDEXED BY: without ANALYZE statistics SQLite may prefer another index and sort every
        # candidate; the partial indexes always exist (connections migrate on open).
        select = (
            f"SELECT {key} FROM {table} INDEXED BY {claim.index_name} WHERE {claim.where}"  # noqa: S608
            f" AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY {order}, {key} LIMIT ?"
        )

        def run(cur: Cursor) -> list[Any]:
            keys = [r[0] for r in self._exec(cur, select, (*claim.params, claim.limit)).fetchall()]
            if not keys:
                return []
            in_keys = f"{key} IN ({marks(len(keys))})"
            self._exec(cur, f"UPDATE {table} SET claimed_until = ? WHERE {in_keys}", (claim.until, *keys))  # noqa: S608
            return self._exec(
                cur,
                f"SELECT {claim.columns} FROM {table} WHERE {in_keys} ORDER BY {order}, {key}",  # noqa: S608
                keys,
            ).fetchall()

        return self._write(run)
