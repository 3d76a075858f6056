"""The embedded store: SQLite through the standard library (local runs, ``vodfc serve``, tests).

One connection per instance, shared by threads under a lock (``vodfc serve`` is multi-threaded);
several processes may share the file: WAL journal, ``busy_timeout``, and every write transaction
starts with ``BEGIN IMMEDIATE`` so the check-then-write operations (quota, claims, events) hold
the database's write lock from their first read. Times are stored as fixed-width ISO-8601 UTC
text (``2024-05-01T12:00:00.000000+00:00``), which sorts like the instants themselves.
The schema is migrated automatically when the connection opens.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Final, TypeVar

from shared import errors, states
from shared.store import (
    UPLOAD_COLUMNS,
    ApplyResult,
    PruneCounts,
    Upload,
    check_limit,
    check_new_upload,
    check_status_filter,
    clean_fields,
    decode_cursor,
    encode_cursor,
    lease_end,
    plan_event,
    resolve_allowed,
    utc,
    utc_or_none,
)

__all__ = ["SqliteStore"]

T = TypeVar("T")

_COLS: Final = ", ".join(UPLOAD_COLUMNS)
_TIME_COLUMNS: Final = frozenset(
    {"created_at", "updated_at", "credential_expires_at", "last_event_at", "claimed_until"}
)
_PENDING: Final = tuple(sorted(states.PENDING_STATUSES))
# The pending statuses as SQL literals, written the same way in the partial index and in the
# query that must match its predicate (SQLite matches the term textually, not bound values).
_PENDING_SQL: Final = "(" + ", ".join(f"'{s}'" for s in (states.CREATING, states.CREATED)) + ")"
# Likewise for the statuses claim_stuck looks at (partial index uploads_stuck).
_STUCK_SQL: Final = "(" + ", ".join(f"'{s}'" for s in (states.UPLOADED, states.PROCESSING)) + ")"
_STATUS_CHECK: Final = ", ".join(f"'{s}'" for s in states.ALL_STATUSES)

MIGRATIONS: Final[tuple[tuple[int, str, tuple[str, ...]], ...]] = (
    (
        1,
        "uploads, event dedupe keys, orphan events",
        (
            f"""CREATE TABLE IF NOT EXISTS uploads (
                upload_id TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                video_id TEXT UNIQUE,
                reference_id TEXT NOT NULL UNIQUE,
                title TEXT NOT NULL,
                file_name TEXT NOT NULL,
                file_size INTEGER,
                status TEXT NOT NULL CHECK (status IN ({_STATUS_CHECK})),
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                credential_expires_at TEXT,
                last_event TEXT,
                last_event_at TEXT,
                duration REAL,
                size INTEGER,
                error TEXT,
                idempotency_key TEXT,
                request_hash TEXT,
                claimed_until TEXT,
                UNIQUE (owner, idempotency_key)
            )""",
            "CREATE INDEX IF NOT EXISTS uploads_owner_created "
            "ON uploads (owner, created_at DESC, upload_id DESC)",
            "CREATE INDEX IF NOT EXISTS uploads_status_created ON uploads (status, created_at, upload_id)",
            "CREATE INDEX IF NOT EXISTS uploads_pending_owner ON uploads (owner) "
            "WHERE status IN ('creating', 'created')",
            """CREATE TABLE IF NOT EXISTS event_dedupe (
                dedupe_key TEXT PRIMARY KEY,
                video_id TEXT NOT NULL,
                event_type TEXT NOT NULL,
                received_at TEXT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS event_dedupe_received ON event_dedupe (received_at)",
            """CREATE TABLE IF NOT EXISTS orphan_events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                video_id TEXT NOT NULL,
                dedupe_key TEXT NOT NULL,
                event_type TEXT NOT NULL,
                event_time TEXT,
                payload TEXT NOT NULL,
                received_at TEXT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS orphan_events_received ON orphan_events (received_at)",
            "CREATE INDEX IF NOT EXISTS orphan_events_video ON orphan_events (video_id)",
        ),
    ),
    (
        2,
        "partial index for claim_stale: pending uploads, oldest first",
        # claim_stale walks it in order and stops after `limit` rows (no sort of every pending
        # upload). SQLite uses a partial index only when the query repeats its WHERE term.
        (
            "CREATE INDEX IF NOT EXISTS uploads_stale_pending ON uploads (created_at, upload_id) "
            f"WHERE status IN {_PENDING_SQL}",
        ),
    ),
    (
        3,
        "partial index for claim_stuck: uploaded/processing uploads, least recently updated first",
        # claim_stuck walks it in order, like claim_stale walks uploads_stale_pending; uploads
        # that reached a final status drop out of it.
        (
            "CREATE INDEX IF NOT EXISTS uploads_stuck ON uploads (updated_at, upload_id) "
            f"WHERE status IN {_STUCK_SQL}",
        ),
    ),
)


def _t(value: datetime) -> str:
    return utc(value).isoformat(timespec="microseconds")


def _t_or_none(value: datetime | None) -> str | None:
    return None if value is None else _t(value)


def _from_t(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(timezone.utc)


def _db_value(column: str, value: object) -> object:
    if column in _TIME_COLUMNS and isinstance(value, datetime):
        return _t(value)
    return value


def _row_to_upload(row: Sequence[Any]) -> Upload:
    values = dict(zip(UPLOAD_COLUMNS, row, strict=True))
    for column in _TIME_COLUMNS:
        values[column] = _from_t(values[column])
    return Upload(**values)


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def parse_sqlite_url(url: str) -> str:
    """The database path of a ``sqlite:///…`` URL (``:memory:`` for the in-memory database)."""
    prefix = "sqlite:///"
    if not url.lower().startswith(prefix):
        raise ValueError("a SQLite DATABASE_URL looks like sqlite:///relative.db or sqlite:////abs.db")
    path = url[len(prefix) :].split("?", 1)[0]
    if not path:
        raise ValueError("the SQLite DATABASE_URL has no path")
    return path


class SqliteStore:
    """:class:`shared.store.Store` on SQLite; see the module docstring."""

    dialect = "sqlite"

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
            self._migrate(conn)
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
            except sqlite3.IntegrityError as exc:  # unexpected: the operations check before writing
                raise errors.StoreUnavailable() from exc
            except (sqlite3.Error, OSError) as exc:
                self._drop()
                raise errors.StoreUnavailable() from exc

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a ``BEGIN IMMEDIATE`` transaction; commit, or roll back on any error."""
        with self._session() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
            conn.commit()
            return result

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._session() as conn:
            return fn(conn)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                conn.close()

    # --- schema ------------------------------------------------------------------------------

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> int:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            (current,) = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
            for version, description, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, description, applied_at) "
                    "VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))",
                    (version, description),
                )
                current = version
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
        return int(current)

    def migrate(self) -> int:
        with self._session() as conn:
            return self._migrate(conn)

    # --- uploads -----------------------------------------------------------------------------

    @staticmethod
    def _one(conn: sqlite3.Connection, where: str, params: Sequence[object]) -> Upload | None:
        row = conn.execute(f"SELECT {_COLS} FROM uploads WHERE {where}", params).fetchone()  # noqa: S608
        return None if row is None else _row_to_upload(row)

    def reserve_upload(self, upload: Upload, *, max_pending: int) -> Upload:
        check_new_upload(upload, max_pending)

        def run(conn: sqlite3.Connection) -> Upload:
            if upload.idempotency_key is not None and self._one(
                conn, "owner = ? AND idempotency_key = ?", (upload.owner, upload.idempotency_key)
            ):
                raise errors.Conflict("The Idempotency-Key is already in use.", code="IdempotencyKeyInUse")
            (pending,) = conn.execute(
                f"SELECT count(*) FROM uploads WHERE owner = ? AND status IN ({_marks(len(_PENDING))})",  # noqa: S608
                (upload.owner, *_PENDING),
            ).fetchone()
            if pending >= max_pending:
                raise errors.QuotaExceeded()
            if self._one(conn, "upload_id = ?", (upload.upload_id,)):
                raise errors.Conflict("The upload id is already in use.", code="UploadIdInUse")
            if self._one(conn, "reference_id = ?", (upload.reference_id,)):
                raise errors.Conflict("The reference id is already in use.", code="ReferenceIdInUse")
            if upload.video_id is not None and self._one(conn, "video_id = ?", (upload.video_id,)):
                raise errors.Conflict("The video id is already in use.", code="VideoIdInUse")
            values = [_db_value(c, getattr(upload, c)) for c in UPLOAD_COLUMNS]
            conn.execute(
                f"INSERT INTO uploads ({_COLS}) VALUES ({_marks(len(UPLOAD_COLUMNS))})",  # noqa: S608
                values,
            )
            return upload

        return self._write(run)

    def find_by_idempotency_key(self, owner: str, key: str) -> Upload | None:
        return self._read(lambda conn: self._one(conn, "owner = ? AND idempotency_key = ?", (owner, key)))

    def attach_video(
        self, upload_id: str, video_id: str, credential_expires_at: datetime | None, now: datetime
    ) -> bool:
        params = (
            states.CREATED,
            video_id,
            _t_or_none(credential_expires_at),
            _t(now),
            upload_id,
            states.CREATING,
        )

        def run(conn: sqlite3.Connection) -> bool:
            holder = self._one(conn, "video_id = ?", (video_id,))
            if holder is not None and holder.upload_id != upload_id:
                raise errors.Conflict("The video id is already in use.", code="VideoIdInUse")
            cur = conn.execute(
                "UPDATE uploads SET status = ?, video_id = ?, credential_expires_at = ?, updated_at = ? "
                "WHERE upload_id = ? AND status = ?",
                params,
            )
            return cur.rowcount == 1

        return self._write(run)

    def discard_reservation(self, upload_id: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "DELETE FROM uploads WHERE upload_id = ? AND status = ?", (upload_id, states.CREATING)
            )
            return cur.rowcount == 1

        return self._write(run)

    def get(self, owner: str, video_id: str) -> Upload | None:
        return self._read(lambda conn: self._one(conn, "video_id = ? AND owner = ?", (video_id, owner)))

    def get_by_video_id(self, video_id: str) -> Upload | None:
        return self._read(lambda conn: self._one(conn, "video_id = ?", (video_id,)))

    def list_uploads(
        self, owner: str, *, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[Upload], str | None]:
        check_limit(limit)
        check_status_filter(status)
        where = ["owner = ?", "status <> ?"]
        params: list[object] = [owner, states.CREATING]
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if cursor is not None:
            created_at, upload_id = decode_cursor(cursor)
            where.append("(created_at, upload_id) < (?, ?)")
            params += [_t(created_at), upload_id]
        sql = (
            f"SELECT {_COLS} FROM uploads WHERE {' AND '.join(where)} "  # noqa: S608
            "ORDER BY created_at DESC, upload_id DESC LIMIT ?"
        )
        params.append(limit + 1)
        rows = self._read(lambda conn: conn.execute(sql, params).fetchall())
        uploads = [_row_to_upload(r) for r in rows[:limit]]
        more = len(rows) > limit
        next_cursor = encode_cursor(uploads[-1].created_at, uploads[-1].upload_id) if more else None
        return uploads, next_cursor

    def count_pending(self, owner: str) -> int:
        sql = f"SELECT count(*) FROM uploads WHERE owner = ? AND status IN ({_marks(len(_PENDING))})"  # noqa: S608
        return int(self._read(lambda conn: conn.execute(sql, (owner, *_PENDING)).fetchone()[0]))

    def set_credential_expiry(self, video_id: str, expires_at: datetime, now: datetime) -> bool:
        params = (_t(expires_at), _t(now), video_id, states.CREATED)

        def run(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE uploads SET credential_expires_at = ?, updated_at = ? "
                "WHERE video_id = ? AND status = ?",
                params,
            )
            return cur.rowcount == 1

        return self._write(run)

    def transition(
        self,
        video_id: str,
        *,
        to: str,
        allowed_from: Iterable[str] | None = None,
        now: datetime,
        fields: Mapping[str, object] | None = None,
    ) -> bool:
        allowed = resolve_allowed(to, allowed_from)
        changes: dict[str, object] = {
            **clean_fields(fields),
            "status": to,
            "updated_at": now,
            "claimed_until": None,
        }
        if not allowed:
            return False
        sets = ", ".join(f"{c} = ?" for c in changes)
        sql = f"UPDATE uploads SET {sets} WHERE video_id = ? AND status IN ({_marks(len(allowed))})"  # noqa: S608
        params = [_db_value(c, v) for c, v in changes.items()] + [video_id, *sorted(allowed)]
        return self._write(lambda conn: conn.execute(sql, params).rowcount == 1)

    def expire_created(self, video_ids: Sequence[str], *, now: datetime) -> int:
        if not video_ids:
            return 0
        sql = (
            "UPDATE uploads SET status = ?, updated_at = ?, claimed_until = NULL "  # noqa: S608
            # Unary + keeps SQLite off the status indexes (every candidate row is 'created'),
            # so it looks the ids up by the unique video_id index: O(batch), not O(table).
            f"WHERE video_id IN ({_marks(len(video_ids))}) AND +status = ?"
        )
        params = [states.EXPIRED, _t(now), *video_ids, states.CREATED]
        return self._write(lambda conn: int(conn.execute(sql, params).rowcount))

    def apply_event(
        self,
        video_id: str,
        *,
        dedupe_key: str,
        event_type: str,
        event_time: datetime | None,
        to: str | None,
        allowed_from: Iterable[str] | None = None,
        fields: Mapping[str, object] | None = None,
        now: datetime,
        payload: Mapping[str, Any] | None = None,
    ) -> ApplyResult:
        allowed = resolve_allowed(to, allowed_from)
        clean = clean_fields(fields)
        event_at = utc_or_none(event_time)
        received = _t(now)
        body = json.dumps(dict(payload) if payload is not None else clean, default=str, sort_keys=True)

        def run(conn: sqlite3.Connection) -> ApplyResult:
            cur = conn.execute(
                "INSERT INTO event_dedupe (dedupe_key, video_id, event_type, received_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
                (dedupe_key, video_id, event_type, received),
            )
            if cur.rowcount == 0:
                return ApplyResult.DUPLICATE
            current = self._one(conn, "video_id = ?", (video_id,))
            if current is None:
                conn.execute(
                    "INSERT INTO orphan_events "
                    "(video_id, dedupe_key, event_type, event_time, payload, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (video_id, dedupe_key, event_type, _t_or_none(event_at), body, received),
                )
                return ApplyResult.ORPHAN
            result, changes = plan_event(
                current,
                to=to,
                allowed=allowed,
                fields=clean,
                event_type=event_type,
                event_time=event_at,
                now=now,
            )
            if changes:
                sets = ", ".join(f"{c} = ?" for c in changes)
                conn.execute(
                    f"UPDATE uploads SET {sets} WHERE upload_id = ?",  # noqa: S608
                    [*(_db_value(c, v) for c, v in changes.items()), current.upload_id],
                )
            return result

        return self._write(run)

    def claim_stale(
        self,
        *,
        created_before: datetime,
        limit: int,
        lease_seconds: float,
        now: datetime,
        credential_expired_before: datetime | None = None,
    ) -> list[Upload]:
        check_limit(limit)
        params: list[object] = [_t(created_before)]
        # Literal statuses, as in the partial index uploads_stale_pending (see MIGRATIONS).
        where = f"status IN {_PENDING_SQL} AND created_at < ?"
        if credential_expired_before is not None:
            where += " AND (credential_expires_at IS NULL OR credential_expires_at < ?)"
            params.append(_t(credential_expired_before))
        return self._claim(
            index="uploads_stale_pending",
            where=where,
            params=params,
            order="created_at",
            now=now,
            lease_seconds=lease_seconds,
            limit=limit,
        )

    def claim_stuck(
        self,
        *,
        updated_before: datetime,
        limit: int,
        lease_seconds: float,
        now: datetime,
    ) -> list[Upload]:
        check_limit(limit)
        # Literal statuses, as in the partial index uploads_stuck.
        return self._claim(
            index="uploads_stuck",
            where=f"status IN {_STUCK_SQL} AND updated_at < ?",
            params=[_t(updated_before)],
            order="updated_at",
            now=now,
            lease_seconds=lease_seconds,
            limit=limit,
        )

    def _claim(
        self,
        *,
        index: str,
        where: str,
        params: Sequence[object],
        order: str,
        now: datetime,
        lease_seconds: float,
        limit: int,
    ) -> list[Upload]:
        """Lease up to ``limit`` unleased rows matching ``where``, walking ``index`` in ``order``."""
        until = _t(lease_end(now, lease_seconds))
        # INDEXED BY: without ANALYZE statistics SQLite prefers uploads_status_created and sorts
        # every candidate; the partial indexes always exist (connections migrate on open).
        select = (
            f"SELECT upload_id FROM uploads INDEXED BY {index} WHERE {where}"  # noqa: S608
            f" AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY {order}, upload_id LIMIT ?"
        )

        def run(conn: sqlite3.Connection) -> list[Upload]:
            ids = [r[0] for r in conn.execute(select, (*params, _t(now), limit)).fetchall()]
            if not ids:
                return []
            marks = _marks(len(ids))
            conn.execute(f"UPDATE uploads SET claimed_until = ? WHERE upload_id IN ({marks})", (until, *ids))  # noqa: S608
            claimed = conn.execute(
                f"SELECT {_COLS} FROM uploads WHERE upload_id IN ({marks}) ORDER BY {order}, upload_id",  # noqa: S608
                ids,
            ).fetchall()
            return [_row_to_upload(r) for r in claimed]

        return self._write(run)

    def release_claim(self, upload_id: str) -> bool:
        return self._write(
            lambda conn: (
                conn.execute(
                    "UPDATE uploads SET claimed_until = NULL WHERE upload_id = ?", (upload_id,)
                ).rowcount
                == 1
            )
        )

    def prune(
        self,
        *,
        now: datetime,
        dedupe_before: datetime,
        idempotency_before: datetime,
        orphans_before: datetime,
    ) -> PruneCounts:
        utc(now)
        cutoffs = (_t(dedupe_before), _t(idempotency_before), _t(orphans_before))

        def run(conn: sqlite3.Connection) -> PruneCounts:
            dedupe = conn.execute("DELETE FROM event_dedupe WHERE received_at < ?", (cutoffs[0],)).rowcount
            idem = conn.execute(
                "UPDATE uploads SET idempotency_key = NULL, request_hash = NULL "
                "WHERE idempotency_key IS NOT NULL AND created_at < ? AND status <> ?",
                (cutoffs[1], states.CREATING),
            ).rowcount
            orphans = conn.execute("DELETE FROM orphan_events WHERE received_at < ?", (cutoffs[2],)).rowcount
            return PruneCounts(dedupe=dedupe, idempotency=idem, orphans=orphans)

        return self._write(run)
