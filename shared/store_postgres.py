"""The production store: PostgreSQL (ApsaraDB RDS / PolarDB) through psycopg 3.

psycopg is imported when the first connection is made, never at import time. One connection per
instance, opened on first use and reused across warm invocations. Every operation is one
transaction, committed or rolled back before the call returns (no connection is ever left idle in
a transaction): an explicit one, or, for single-statement reads and ``apply_event`` (one statement
made idempotent by its dedupe key), the statement alone in autocommit, which saves the BEGIN and
COMMIT round trips (a callback costs two: ``get_by_video_id`` and ``apply_event``). Threads share
the connection under a lock.

When the server drops the connection (RDS idle kill, failover, ``pg_terminate_backend``) the
failure is a ``psycopg.OperationalError``: the connection is closed and forgotten, and if it
happened on a reused connection before ``COMMIT`` was sent, the transaction is replayed once on
a fresh connection (nothing of it was committed; an autocommit statement may have been, which
is why only reads and the idempotent ``apply_event`` run that way). Otherwise
:class:`errors.StoreUnavailable` is raised and the next call reconnects. A failure during
``COMMIT`` is never replayed (its outcome is unknown). The schema is created by
:meth:`PostgresStore.migrate` (``vodfc migrate`` at deploy time); it is not migrated implicitly.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final, TypeVar

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
    redact_url,
    resolve_allowed,
    utc,
    utc_or_none,
)

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresStore"]

T = TypeVar("T")

_COLS: Final = ", ".join(UPLOAD_COLUMNS)
_PENDING: Final = sorted(states.PENDING_STATUSES)
# The pending statuses as SQL literals, written the same way in the partial index and in the
# queries that must match its predicate (a bound array would not let the planner use it).
_PENDING_SQL: Final = "(" + ", ".join(f"'{s}'" for s in (states.CREATING, states.CREATED)) + ")"
# Likewise for the statuses claim_stuck looks at (partial index uploads_stuck).
_STUCK_SQL: Final = "(" + ", ".join(f"'{s}'" for s in (states.UPLOADED, states.PROCESSING)) + ")"
_STATUS_CHECK: Final = ", ".join(f"'{s}'" for s in states.ALL_STATUSES)
_TIME_COLUMNS: Final = frozenset(
    {"created_at", "updated_at", "credential_expires_at", "last_event_at", "claimed_until"}
)

# First key of the two-int advisory locks vodfc takes (arbitrary, fixed: "vodf").
_LOCK_NAMESPACE: Final = 0x766F6466
_LOCK_MIGRATE: Final = 0

# Unique constraints we expect to hit, and what a violation means to the caller.
_CONFLICTS: Final[dict[str, tuple[str, str]]] = {
    "uploads_pkey": ("UploadIdInUse", "The upload id is already in use."),
    "uploads_reference_id_key": ("ReferenceIdInUse", "The reference id is already in use."),
    "uploads_video_id_key": ("VideoIdInUse", "The video id is already in use."),
    "uploads_owner_idempotency_key": ("IdempotencyKeyInUse", "The Idempotency-Key is already in use."),
}

MIGRATIONS: Final[tuple[tuple[int, str, tuple[str, ...]], ...]] = (
    (
        1,
        "uploads, event dedupe keys, orphan events",
        (
            f"""CREATE TABLE IF NOT EXISTS uploads (
                upload_id text NOT NULL,
                owner text NOT NULL,
                video_id text,
                reference_id text NOT NULL,
                title text NOT NULL,
                file_name text NOT NULL,
                file_size bigint,
                status text NOT NULL CONSTRAINT uploads_status_check CHECK (status IN ({_STATUS_CHECK})),
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL,
                credential_expires_at timestamptz,
                last_event text,
                last_event_at timestamptz,
                duration double precision,
                size bigint,
                error text,
                idempotency_key text,
                request_hash text,
                claimed_until timestamptz,
                CONSTRAINT uploads_pkey PRIMARY KEY (upload_id),
                CONSTRAINT uploads_video_id_key UNIQUE (video_id),
                CONSTRAINT uploads_reference_id_key UNIQUE (reference_id),
                CONSTRAINT uploads_owner_idempotency_key UNIQUE (owner, idempotency_key)
            )""",
            "CREATE INDEX IF NOT EXISTS uploads_owner_created "
            "ON uploads (owner, created_at DESC, upload_id DESC)",
            "CREATE INDEX IF NOT EXISTS uploads_status_created ON uploads (status, created_at, upload_id)",
            "CREATE INDEX IF NOT EXISTS uploads_pending_owner ON uploads (owner) "
            "WHERE status IN ('creating', 'created')",
            """CREATE TABLE IF NOT EXISTS event_dedupe (
                dedupe_key text PRIMARY KEY,
                video_id text NOT NULL,
                event_type text NOT NULL,
                received_at timestamptz NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS event_dedupe_received ON event_dedupe (received_at)",
            """CREATE TABLE IF NOT EXISTS orphan_events (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                video_id text NOT NULL,
                dedupe_key text NOT NULL,
                event_type text NOT NULL,
                event_time timestamptz,
                payload jsonb NOT NULL,
                received_at timestamptz NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS orphan_events_received ON orphan_events (received_at)",
            "CREATE INDEX IF NOT EXISTS orphan_events_video ON orphan_events (video_id)",
        ),
    ),
    (
        2,
        "partial index for claim_stale: pending uploads, oldest first",
        # claim_stale reads it in order and stops after `limit` rows (no sort of every pending
        # upload). Built inside the migration transaction: it blocks writes to uploads while it
        # builds, which is brief at the sizes vodfc keeps (terminal uploads are not indexed).
        (
            "CREATE INDEX IF NOT EXISTS uploads_stale_pending ON uploads (created_at, upload_id) "
            f"WHERE status IN {_PENDING_SQL}",
        ),
    ),
    (
        3,
        "partial index for claim_stuck: uploaded/processing uploads, least recently updated first",
        # claim_stuck reads it in order, like claim_stale reads uploads_stale_pending; uploads
        # that reached a final status drop out of it. Built in the migration transaction too.
        (
            "CREATE INDEX IF NOT EXISTS uploads_stuck ON uploads (updated_at, upload_id) "
            f"WHERE status IN {_STUCK_SQL}",
        ),
    ),
)


class _Replay(Exception):
    """Internal: the reused connection died before COMMIT; run the transaction again."""


def _row_to_upload(row: Sequence[Any]) -> Upload:
    values = dict(zip(UPLOAD_COLUMNS, row, strict=True))
    for column in _TIME_COLUMNS:
        if values[column] is not None:
            values[column] = values[column].astimezone(timezone.utc)
    return Upload(**values)


def _db_value(column: str, value: object) -> object:
    if column in _TIME_COLUMNS and isinstance(value, datetime):
        return utc(value)
    return value


class PostgresStore:
    """:class:`shared.store.Store` on PostgreSQL; see the module docstring."""

    dialect = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 3.0,
        statement_timeout: float = 10.0,
        application_name: str = "vodfc",
    ) -> None:
        if not url.lower().startswith(("postgresql://", "postgres://")):
            raise ValueError("a PostgreSQL DATABASE_URL starts with postgresql:// or postgres://")
        self._url = url
        self._connect_timeout = connect_timeout
        self._statement_timeout_ms = max(1, round(statement_timeout * 1000))
        self._application_name = application_name
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self._url)!r})"

    # --- connection and transactions ---------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        try:
            return psycopg.connect(
                self._url,
                autocommit=False,
                # libpq takes whole seconds (and treats 1 as 2).
                connect_timeout=max(1, round(self._connect_timeout)),
                application_name=self._application_name,
                # A hung query (locks, an overloaded server) fails the statement instead of
                # holding the invocation until FC's function timeout kills it.
                options=f"-c statement_timeout={self._statement_timeout_ms}",
                keepalives=1,
                keepalives_idle=30,
                keepalives_interval=10,
                keepalives_count=3,
            )
        except psycopg.Error as exc:
            # libpq's message names host and port, never the password; we still keep it out.
            raise errors.StoreUnavailable("The upload store cannot be reached; retry later.") from exc

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a dead connection may fail; it is gone anyway
                conn.close()

    def _run(self, fn: Callable[[psycopg.Cursor[Any]], T], *, autocommit: bool = False) -> T:
        """Run ``fn`` as one transaction (see the module docstring for failures).

        ``autocommit=True`` is for ``fn`` that runs a single statement which is safe to replay
        (a read, or a write made idempotent by a key): the statement is its own transaction, so
        no BEGIN and COMMIT round trips are spent on it.
        """
        with self._lock:
            try:
                return self._attempt(fn, may_replay=True, autocommit=autocommit)
            except _Replay:
                return self._attempt(fn, may_replay=False, autocommit=autocommit)

    def _attempt(self, fn: Callable[[psycopg.Cursor[Any]], T], *, may_replay: bool, autocommit: bool) -> T:
        import psycopg

        fresh = self._conn is None
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        conn = self._conn
        try:
            if conn.autocommit != autocommit:  # idle between calls: a local switch, no round trip
                conn.autocommit = autocommit
            with conn.cursor() as cur:
                result = fn(cur)
        except errors.VodfcError:
            self._rollback()
            raise
        except psycopg.errors.UniqueViolation as exc:
            self._rollback()
            code, message = _CONFLICTS.get(exc.diag.constraint_name or "", ("Conflict", "Conflict."))
            raise errors.Conflict(message, code=code) from exc
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if conn.closed or conn.broken:
                self._drop()
                if may_replay and not fresh:
                    raise _Replay() from exc
            else:  # e.g. a statement or lock timeout: the connection itself is fine
                self._rollback()
            raise errors.StoreUnavailable() from exc
        except psycopg.Error as exc:
            self._rollback()
            raise errors.StoreUnavailable() from exc
        except BaseException:
            self._rollback()
            raise
        if autocommit:
            return result
        try:
            conn.commit()
        except psycopg.Error as exc:
            self._drop()
            raise errors.StoreUnavailable() from exc
        return result

    def _rollback(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            conn.rollback()
        except Exception:
            self._drop()
        else:
            if conn.broken:
                self._drop()

    def close(self) -> None:
        with self._lock:
            self._drop()

    # --- schema ------------------------------------------------------------------------------

    def migrate(self) -> int:
        def run(cur: psycopg.Cursor[Any]) -> int:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_NAMESPACE, _LOCK_MIGRATE))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
                "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur.execute("SELECT coalesce(max(version), 0) FROM schema_version")
            current = int(_fetch1(cur))
            for version, description, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    cur.execute(statement)
                cur.execute(
                    "INSERT INTO schema_version (version, description) VALUES (%s, %s)",
                    (version, description),
                )
                current = version
            return current

        return self._run(run)

    # --- uploads -----------------------------------------------------------------------------

    @staticmethod
    def _one(
        cur: psycopg.Cursor[Any], where: str, params: Sequence[object], *, lock: bool = False
    ) -> Upload | None:
        suffix = " FOR UPDATE" if lock else ""
        cur.execute(f"SELECT {_COLS} FROM uploads WHERE {where}{suffix}", params)  # noqa: S608
        row = cur.fetchone()
        return None if row is None else _row_to_upload(row)

    def reserve_upload(self, upload: Upload, *, max_pending: int) -> Upload:
        check_new_upload(upload, max_pending)
        values = [_db_value(c, getattr(upload, c)) for c in UPLOAD_COLUMNS]
        insert = f"INSERT INTO uploads ({_COLS}) VALUES ({', '.join(['%s'] * len(UPLOAD_COLUMNS))})"  # noqa: S608

        def run(cur: psycopg.Cursor[Any]) -> Upload:
            cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE, upload.owner))
            if upload.idempotency_key is not None and self._one(
                cur, "owner = %s AND idempotency_key = %s", (upload.owner, upload.idempotency_key)
            ):
                raise errors.Conflict("The Idempotency-Key is already in use.", code="IdempotencyKeyInUse")
            cur.execute(
                "SELECT count(*) FROM uploads WHERE owner = %s AND status = ANY(%s)", (upload.owner, _PENDING)
            )
            if int(_fetch1(cur)) >= max_pending:
                raise errors.QuotaExceeded()
            cur.execute(insert, values)
            return upload

        return self._run(run)

    def find_by_idempotency_key(self, owner: str, key: str) -> Upload | None:
        return self._run(
            lambda cur: self._one(cur, "owner = %s AND idempotency_key = %s", (owner, key)), autocommit=True
        )

    def attach_video(
        self, upload_id: str, video_id: str, credential_expires_at: datetime | None, now: datetime
    ) -> bool:
        params = (
            states.CREATED,
            video_id,
            utc_or_none(credential_expires_at),
            utc(now),
            upload_id,
            states.CREATING,
        )
        return self._run(
            lambda cur: (
                _rowcount(
                    cur,
                    "UPDATE uploads SET status = %s, video_id = %s, credential_expires_at = %s, "
                    "updated_at = %s WHERE upload_id = %s AND status = %s",
                    params,
                )
                == 1
            )
        )

    def discard_reservation(self, upload_id: str) -> bool:
        return self._run(
            lambda cur: (
                _rowcount(
                    cur,
                    "DELETE FROM uploads WHERE upload_id = %s AND status = %s",
                    (upload_id, states.CREATING),
                )
                == 1
            )
        )

    def get(self, owner: str, video_id: str) -> Upload | None:
        return self._run(
            lambda cur: self._one(cur, "video_id = %s AND owner = %s", (video_id, owner)), autocommit=True
        )

    def get_by_video_id(self, video_id: str) -> Upload | None:
        return self._run(lambda cur: self._one(cur, "video_id = %s", (video_id,)), autocommit=True)

    def list_uploads(
        self, owner: str, *, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[Upload], str | None]:
        check_limit(limit)
        check_status_filter(status)
        where = ["owner = %s", "status <> %s"]
        params: list[object] = [owner, states.CREATING]
        if status is not None:
            where.append("status = %s")
            params.append(status)
        if cursor is not None:
            created_at, upload_id = decode_cursor(cursor)
            where.append("(created_at, upload_id) < (%s, %s)")
            params += [created_at, upload_id]
        sql = (
            f"SELECT {_COLS} FROM uploads WHERE {' AND '.join(where)} "  # noqa: S608
            "ORDER BY created_at DESC, upload_id DESC LIMIT %s"
        )
        params.append(limit + 1)

        def run(cur: psycopg.Cursor[Any]) -> list[Any]:
            cur.execute(sql, params)
            return cur.fetchall()

        rows = self._run(run, autocommit=True)
        uploads = [_row_to_upload(r) for r in rows[:limit]]
        more = len(rows) > limit
        next_cursor = encode_cursor(uploads[-1].created_at, uploads[-1].upload_id) if more else None
        return uploads, next_cursor

    def count_pending(self, owner: str) -> int:
        def run(cur: psycopg.Cursor[Any]) -> int:
            cur.execute(
                "SELECT count(*) FROM uploads WHERE owner = %s AND status = ANY(%s)", (owner, _PENDING)
            )
            return int(_fetch1(cur))

        return self._run(run, autocommit=True)

    def set_credential_expiry(self, video_id: str, expires_at: datetime, now: datetime) -> bool:
        params = (utc(expires_at), utc(now), video_id, states.CREATED)
        return self._run(
            lambda cur: (
                _rowcount(
                    cur,
                    "UPDATE uploads SET credential_expires_at = %s, updated_at = %s "
                    "WHERE video_id = %s AND status = %s",
                    params,
                )
                == 1
            )
        )

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
        sets = ", ".join(f"{c} = %s" for c in changes)
        sql = f"UPDATE uploads SET {sets} WHERE video_id = %s AND status = ANY(%s)"  # noqa: S608
        params = [*(_db_value(c, v) for c, v in changes.items()), video_id, sorted(allowed)]
        return self._run(lambda cur: _rowcount(cur, sql, params) == 1)

    def expire_created(self, video_ids: Sequence[str], *, now: datetime) -> int:
        if not video_ids:
            return 0
        sql = (
            "UPDATE uploads SET status = %s, updated_at = %s, claimed_until = NULL "
            "WHERE status = %s AND video_id = ANY(%s)"
        )
        params = (states.EXPIRED, utc(now), states.CREATED, list(video_ids))
        return self._run(lambda cur: _rowcount(cur, sql, params))

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
        received = utc(now)
        body = json.dumps(dict(payload) if payload is not None else clean, default=str, sort_keys=True)

        sql, params = _apply_event_sql(
            video_id=video_id,
            dedupe_key=dedupe_key,
            event_type=event_type,
            event_at=event_at,
            received=received,
            to=to,
            allowed=allowed,
            fields=clean,
            body=body,
        )

        def run(cur: psycopg.Cursor[Any]) -> ApplyResult:
            cur.execute(sql, params)
            row = cur.fetchone()
            if row is None or not row[0]:
                return ApplyResult.DUPLICATE
            if row[1] is None:
                return ApplyResult.ORPHAN
            return ApplyResult.APPLIED if row[1] else ApplyResult.STALE

        # One statement, one round trip, in autocommit: the statement is its own transaction.
        # Replaying it after a lost connection is safe: had the first attempt committed, its
        # dedupe key makes the replay a DUPLICATE that changes nothing.
        return self._run(run, autocommit=True)

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
        params: list[object] = [utc(created_before)]
        # The status list is literal, as in the partial index uploads_stale_pending, so that the
        # planner walks that index in (created_at, upload_id) order and stops after `limit` rows.
        where = f"status IN {_PENDING_SQL} AND created_at < %s"
        if credential_expired_before is not None:
            where += " AND (credential_expires_at IS NULL OR credential_expires_at < %s)"
            params.append(utc(credential_expired_before))
        return self._claim(
            where=where, params=params, order="created_at", now=now, lease_seconds=lease_seconds, limit=limit
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
        # Literal statuses, as in the partial index uploads_stuck (see claim_stale).
        return self._claim(
            where=f"status IN {_STUCK_SQL} AND updated_at < %s",
            params=[utc(updated_before)],
            order="updated_at",
            now=now,
            lease_seconds=lease_seconds,
            limit=limit,
        )

    def _claim(
        self,
        *,
        where: str,
        params: Sequence[object],
        order: str,
        now: datetime,
        lease_seconds: float,
        limit: int,
    ) -> list[Upload]:
        """Lease up to ``limit`` unleased rows matching ``where``, in ``order``; claimers skip locked rows."""
        sql = (
            f"UPDATE uploads SET claimed_until = %s WHERE upload_id IN ("  # noqa: S608
            f" SELECT upload_id FROM uploads WHERE {where}"
            " AND (claimed_until IS NULL OR claimed_until <= %s)"
            f" ORDER BY {order}, upload_id LIMIT %s FOR UPDATE SKIP LOCKED)"
            f" RETURNING {_COLS}"
        )

        def run(cur: psycopg.Cursor[Any]) -> list[Upload]:
            cur.execute(sql, (lease_end(now, lease_seconds), *params, utc(now), limit))
            claimed = [_row_to_upload(r) for r in cur.fetchall()]
            return sorted(claimed, key=lambda u: (getattr(u, order), u.upload_id))

        return self._run(run)

    def release_claim(self, upload_id: str) -> bool:
        return self._run(
            lambda cur: (
                _rowcount(cur, "UPDATE uploads SET claimed_until = NULL WHERE upload_id = %s", (upload_id,))
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
        cutoffs = (utc(dedupe_before), utc(idempotency_before), utc(orphans_before))

        def run(cur: psycopg.Cursor[Any]) -> PruneCounts:
            dedupe = _rowcount(cur, "DELETE FROM event_dedupe WHERE received_at < %s", (cutoffs[0],))
            idem = _rowcount(
                cur,
                "UPDATE uploads SET idempotency_key = NULL, request_hash = NULL "
                "WHERE idempotency_key IS NOT NULL AND created_at < %s AND status <> %s",
                (cutoffs[1], states.CREATING),
            )
            orphans = _rowcount(cur, "DELETE FROM orphan_events WHERE received_at < %s", (cutoffs[2],))
            return PruneCounts(dedupe=dedupe, idempotency=idem, orphans=orphans)

        return self._run(run)


# SQL types of the UPDATABLE_FIELDS columns, for the casts of their bound values.
_FIELD_TYPES: Final = {"duration": "double precision", "size": "bigint", "error": "text"}


def _apply_event_sql(
    *,
    video_id: str,
    dedupe_key: str,
    event_type: str,
    event_at: datetime | None,
    received: datetime,
    to: str | None,
    allowed: frozenset[str],
    fields: Mapping[str, object],
    body: str,
) -> tuple[str, dict[str, object]]:
    """apply_event as one statement: plan_event's rules written in SQL.

    ``d`` records the dedupe key (no row: a duplicate, and nothing else runs); ``c`` locks the
    upload (``FOR UPDATE`` returns its latest committed version) and decides ``ok`` (its status
    is in ``allowed``: applied, else stale); ``u`` writes the changes (the fields; on stale only
    those still NULL); ``o`` keeps the event as an orphan when there is no upload. The row
    returned is (dedupe key new, ``ok`` or NULL when there is no upload).
    """
    params: dict[str, object] = {
        "vid": video_id,
        "key": dedupe_key,
        "etype": event_type,
        "eat": event_at,
        "now": received,
        "allowed": sorted(allowed),
        "body": body,
    }
    sets: list[str] = []
    fill: list[str] = []
    for i, (column, value) in enumerate(sorted(fields.items())):
        params[f"f{i}"] = value
        value_sql = f"%(f{i})s::{_FIELD_TYPES[column]}"
        sets.append(f"{column} = CASE WHEN c.ok THEN {value_sql} ELSE coalesce(c.{column}, {value_sql}) END")
        fill.append(f"c.{column} IS NULL")
    if to is not None:
        params["to"] = to
        sets.append("status = CASE WHEN c.ok THEN %(to)s ELSE c.status END")
        sets.append(
            "claimed_until = CASE WHEN c.ok AND c.status <> %(to)s THEN NULL ELSE c.claimed_until END"
        )
    newer = "c.last_event_at IS NULL"
    if event_at is not None:
        newer += " OR %(eat)s::timestamptz >= c.last_event_at"
    newer = f"c.ok AND ({newer})"
    sets.append(f"last_event = CASE WHEN {newer} THEN %(etype)s ELSE c.last_event END")
    sets.append(f"last_event_at = CASE WHEN {newer} THEN %(eat)s::timestamptz ELSE c.last_event_at END")
    sets.append("updated_at = %(now)s")
    # Stale with nothing to fill in: no write at all.
    changed = " OR ".join(["c.ok", *fill])
    columns = ", ".join(
        ["upload_id", "status", "claimed_until", "last_event", "last_event_at", *_FIELD_TYPES]
    )
    # Data-modifying CTEs run once, to completion, whether or not the final SELECT reads them.
    sql = (
        "WITH d AS ("  # noqa: S608
        " INSERT INTO event_dedupe (dedupe_key, video_id, event_type, received_at)"
        " VALUES (%(key)s, %(vid)s, %(etype)s, %(now)s) ON CONFLICT (dedupe_key) DO NOTHING RETURNING 1"
        "), c AS ("
        f" SELECT {columns}, status = ANY(%(allowed)s::text[]) AS ok FROM uploads"
        " WHERE video_id = %(vid)s AND EXISTS (SELECT FROM d) FOR UPDATE"
        "), u AS ("
        f" UPDATE uploads SET {', '.join(sets)} FROM c"
        f" WHERE uploads.upload_id = c.upload_id AND ({changed}) RETURNING 1"
        "), o AS ("
        " INSERT INTO orphan_events (video_id, dedupe_key, event_type, event_time, payload, received_at)"
        " SELECT %(vid)s, %(key)s, %(etype)s, %(eat)s::timestamptz, %(body)s::jsonb, %(now)s"
        " WHERE EXISTS (SELECT FROM d) AND NOT EXISTS (SELECT FROM c) RETURNING 1"
        ") SELECT EXISTS (SELECT FROM d), (SELECT ok FROM c)"
    )
    return sql, params


def _fetch1(cur: psycopg.Cursor[Any]) -> Any:
    row = cur.fetchone()
    if row is None:  # pragma: no cover - aggregates always return a row
        raise errors.StoreUnavailable("The upload store returned no row.")
    return row[0]


def _rowcount(cur: psycopg.Cursor[Any], sql: str, params: Sequence[object]) -> int:
    cur.execute(sql, params)
    return cur.rowcount
