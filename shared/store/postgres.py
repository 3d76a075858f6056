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
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final, TypeVar

from shared import errors
from shared.store import ApplyResult, Upload
from shared.store.base import COLUMNS, Claim, Cursor, EventChange, SqlStore, conflict, redact_url

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresStore"]

T = TypeVar("T")

# First key of the two-int advisory locks vodfc takes (arbitrary, fixed: "vodf").
_LOCK_NAMESPACE: Final = 0x766F6466
_LOCK_MIGRATE: Final = 0


class _Replay(Exception):
    """Internal: the reused connection died before COMMIT; run the transaction again."""


class PostgresStore(SqlStore):
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
        self._converted: dict[str, str] = {}

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

    def _run(self, fn: Callable[[Cursor], T], *, autocommit: bool = False) -> T:
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

    def _attempt(self, fn: Callable[[Cursor], T], *, may_replay: bool, autocommit: bool) -> T:
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
            raise conflict(exc.diag.constraint_name) from exc
        except (psycopg.DataError, psycopg.errors.ProgramLimitExceeded, UnicodeEncodeError) as exc:
            # Out of range, NUL or an unencodable character, an index row too long: the value's
            # fault, and no retry can ever succeed (never StoreUnavailable).
            self._rollback()
            raise errors.UnstorableValue() from exc
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

    def _write(self, fn: Callable[[Cursor], T]) -> T:
        return self._run(fn)

    def _read(self, fn: Callable[[Cursor], T]) -> T:
        # A single read in autocommit: no BEGIN and COMMIT round trips, and safe to replay.
        return self._run(fn, autocommit=True)

    def _sql(self, sql: str) -> str:
        converted = self._converted.get(sql)
        if converted is None:
            # The shared SQL holds no literal "%", so "?" -> "%s" is the whole conversion.
            converted = self._converted[sql] = sql.replace("?", "%s")
        return converted

    def _lock_owner(self, cur: Cursor, owner: str) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE, owner))

    def _lock_migrations(self, cur: Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_NAMESPACE, _LOCK_MIGRATE))

    def _time(self, value: datetime) -> object:
        return value

    def _from_time(self, value: Any) -> datetime:
        result: datetime = value.astimezone(timezone.utc)
        return result

    # --- dialect-specific operations ----------------------------------------------------------

    def _apply_event(self, event: EventChange) -> ApplyResult:
        sql, params = _apply_event_sql(event)

        def run(cur: Cursor) -> ApplyResult:
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

    def _claim(self, claim: Claim) -> list[Upload]:
        # One statement; concurrent claimers skip each other's locked rows. ``where`` repeats the
        # partial index's predicate, so the planner walks ``index`` in order.
        sql = (
            "UPDATE uploads SET claimed_until = ? WHERE upload_id IN ("  # noqa: S608
            f" SELECT upload_id FROM uploads WHERE {claim.where}"
            " AND (claimed_until IS NULL OR claimed_until <= ?)"
            f" ORDER BY {claim.order}, upload_id LIMIT ? FOR UPDATE SKIP LOCKED)"
            f" RETURNING {COLUMNS}"
        )

        def run(cur: Cursor) -> list[Upload]:
            self._exec(cur, sql, (claim.until, *claim.params, claim.limit))
            claimed = [self._upload(r) for r in cur.fetchall()]
            return sorted(claimed, key=lambda u: (getattr(u, claim.order), u.upload_id))

        return self._run(run)


# SQL types of the UPDATABLE_FIELDS columns, for the casts of their bound values.
_FIELD_TYPES: Final = {"duration": "double precision", "size": "bigint", "error": "text"}


def _apply_event_sql(event: EventChange) -> tuple[str, dict[str, object]]:
    """apply_event as one statement: plan_event's rules written in SQL.

    ``d`` records the dedupe key (no row: a duplicate, and nothing else runs); ``c`` locks the
    upload (``FOR UPDATE`` returns its latest committed version) and decides ``ok`` (its status
    is in ``allowed``: applied, else stale); ``u`` writes the changes (the fields; on stale only
    those still NULL); ``o`` keeps the event as an orphan when there is no upload. The row
    returned is (dedupe key new, ``ok`` or NULL when there is no upload).
    """
    to, event_at, fields = event.to, event.event_time, event.fields
    params: dict[str, object] = {
        "vid": event.video_id,
        "key": event.dedupe_key,
        "etype": event.event_type,
        "eat": event_at,
        "now": event.now,
        "allowed": sorted(event.allowed),
        "body": event.payload,
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
