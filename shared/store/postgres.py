"""The production store: PostgreSQL (ApsaraDB RDS / PolarDB) through psycopg 3.

psycopg is imported when the first connection is made, never at import time. One connection per
instance, opened on first use and reused across warm invocations. Every operation is one
transaction, committed or rolled back before the call returns (no connection is ever left idle in
a transaction): an explicit one, or, for single-statement reads, the two statements of the
event path (``record_event``, ``apply_event``: each one statement made idempotent by the event's
key and state), the claims and the single writes whose second run is a no-op (``_write_one``),
the statement alone in autocommit, which saves the BEGIN and COMMIT round trips: a callback
costs two round trips, a notification delivered right after it two more. The statements of a
reservation (the owner's lock, the guarded insert, its checks) and psycopg's BEGIN go out together
in pipeline mode (:meth:`PostgresStore._together`), so that a create costs three round trips: those,
their COMMIT, and the attach. Threads share the connection under a lock.

``prepare=False`` (``DB_PREPARED_STATEMENTS=false``) says that a transaction-pooling proxy
(PgBouncer, a database proxy) stands between the instance and the server, so that consecutive
transactions of one connection may run on different server sessions. Two things then stay off:

- server-side prepared statements (psycopg prepares a statement once it has run 5 times on a
  connection); a pooler that does not track them answers "prepared statement ... does not
  exist" or "... already exists" (psycopg supports them only through PgBouncer >= 1.22 with
  ``max_prepared_statements`` and libpq >= 17:
  https://www.psycopg.org/psycopg3/docs/advanced/prepare.html#pgbouncer);
- the ``options`` startup parameter that carries our ``statement_timeout``: PgBouncer refuses
  startup parameters it does not track ("unsupported startup parameter: options", unless told
  to ignore them: https://www.pgbouncer.org/config.html#ignore_startup_parameters), and a
  session setting could not follow the client from one server session to the next anyway. The
  statement timeout then comes from the server (``ALTER ROLE ... SET statement_timeout``) and
  the pooler's own ``query_wait_timeout`` / ``query_timeout`` (docs/DEPLOY.md).

Every round trip (each statement, ``COMMIT``, ``ROLLBACK``) runs under a client-side deadline,
``statement_timeout`` + 1 s (:class:`_Deadline`): past it the connection's socket is shut down,
so that whatever the round trip waits for ends at once in :class:`errors.StoreUnavailable` (a
pooler's queue, which no statement timeout covers and a cancel request does not end; a server or
a network that stopped answering) and an instance never hangs until FC's function timeout.
Straight to the server, its own ``statement_timeout`` fires first and the connection is kept.
With ``connect_timeout`` bounding the whole handshake (psycopg enforces it), an operation that
cannot be served fails within ``connect_timeout`` + ``statement_timeout`` + 1 s.

When the server drops the connection (RDS idle kill, failover, ``pg_terminate_backend``) the
failure is a ``psycopg.OperationalError``: the connection is closed and forgotten, and if it
happened on a reused connection before ``COMMIT`` was sent, the transaction is replayed once on
a fresh connection (nothing of it was committed; an autocommit statement may have been, which
is why only statements whose second run is harmless run that way: a claim replayed after it
committed leaves its first rows leased until the lease ends, delayed, never lost). Otherwise
:class:`errors.StoreUnavailable` is raised and the next call reconnects. A failure during
``COMMIT`` is never replayed (its outcome is unknown); such a failure, and an autocommit
statement's lost with its connection, is a :class:`errors.StoreUnavailable` with
``may_have_committed`` set, for the caller to treat the write as possibly done. The schema is
created by :meth:`PostgresStore.migrate` (``vodfc migrate`` at deploy time); it is not migrated
implicitly.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

from shared import errors
from shared.states import KINDS
from shared.store import UPLOAD_COLUMNS, Applied, ApplyResult, InboxEvent, Upload
from shared.store.base import (
    CHECKED_STATUSES,
    EVENT_COLUMNS,
    SqlStore,
    conflict,
    leased_notification,
    redact_url,
)

if TYPE_CHECKING:
    import psycopg

    from shared.store.base import Claim, Cursor, EventApply, EventRecord

__all__ = ["PostgresStore"]

T = TypeVar("T")

# First key of the two-int advisory locks vodfc takes (arbitrary, fixed: "vodf").
_LOCK_NAMESPACE: Final = 0x766F6466
_LOCK_MIGRATE: Final = 0


class _Replay(Exception):
    """Internal: the reused connection died before COMMIT; run the transaction again."""


# What the server's own statement_timeout is given to fire first (it keeps the connection).
_DEADLINE_GRACE: Final = 1.0


class _Deadline:
    """Shuts down the socket of an operation that overran ``seconds`` (see the module docstring).

    ``arm(fd)`` before a round trip, ``disarm()`` after it, both under the store's lock; the
    connection is never closed while armed, so the descriptor the watcher shuts down is the
    connection's own (it shuts it down under the same lock ``disarm`` takes). The watcher is one
    daemon thread, started by the first ``arm`` and ended after a period without one; it never
    waits longer than ``seconds``, so arming needs no wake-up call (an armed deadline is at most
    ``seconds`` away, and the watcher looks again by then).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._cond = threading.Condition(threading.Lock())
        self._fd = -1
        self._until = 0.0
        self._arms = 0
        self._watching = False

    def arm(self, fd: int) -> None:
        with self._cond:
            self._fd, self._until, self.fired = fd, time.monotonic() + self.seconds, False
            self._arms += 1
            if not self._watching:
                self._watching = True
                threading.Thread(target=self._watch, name="vodfc-store-deadline", daemon=True).start()

    def disarm(self) -> None:
        with self._cond:
            self._fd = -1

    def _watch(self) -> None:
        with self._cond:
            seen = -1
            while True:
                if self._fd < 0:
                    if seen == self._arms:  # a whole period without an operation
                        self._watching = False
                        return
                    seen = self._arms
                    self._cond.wait(self.seconds)
                    continue
                left = self._until - time.monotonic()
                if left > 0:
                    seen = -1
                    self._cond.wait(min(left, self.seconds))
                    continue
                self.fired = True  # before the shutdown: the operation may see it at once
                _shutdown(self._fd)
                self._fd = -1


def _require_driver() -> None:
    """Import psycopg (on first use); without it (a deployment without the vodfc-postgres layer,
    docs/DEPLOY.md) every operation is a clear 503 ``MissingDatabaseDriver``, the cause logged."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise errors.ServiceUnavailable(
            "The upload store is not configured on the server.",
            code="MissingDatabaseDriver",
            retry_after=None,
        ) from exc


def _guarded_cursor(deadline: _Deadline) -> type[psycopg.Cursor[Any]]:
    """A psycopg cursor class whose every statement runs under ``deadline``."""
    import psycopg

    class _GuardedCursor(psycopg.Cursor[Any]):
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            deadline.arm(self.connection.pgconn.socket)
            try:
                return super().execute(*args, **kwargs)
            finally:
                deadline.disarm()

    return _GuardedCursor


def _shutdown(fd: int) -> None:
    """End the TCP connection under libpq's feet: its next read sees the end of the stream."""
    import socket

    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=os.dup(fd))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()


class PostgresStore(SqlStore):
    """:class:`shared.store.Store` on PostgreSQL; see the module docstring."""

    dialect = "postgresql"
    # Asynchronous commit for this statement's transaction only (``is_local``: an autocommit
    # statement's implicit transaction; the setting is read when the commit is recorded and reset
    # right after it, so no other statement ever commits lazily). The write is as atomic and as
    # isolated as any; only its flush is not waited for, and a crash may lose it
    # (https://www.postgresql.org/docs/current/wal-async-commit.html). MATERIALIZED: evaluated
    # once, before the update, whatever the plan.
    LAZY_COMMIT: ClassVar[str | None] = (
        "WITH lazy AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true))"
    )

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 3.0,
        statement_timeout: float = 10.0,
        application_name: str = "vodfc",
        notify_types: frozenset[str] | None = None,
        first_check_seconds: float = 600.0,
        prepare: bool = True,
    ) -> None:
        super().__init__(notify_types=notify_types, first_check_seconds=first_check_seconds)
        if not url.lower().startswith(("postgresql://", "postgres://")):
            raise ValueError("a PostgreSQL DATABASE_URL starts with postgresql:// or postgres://")
        self._url = url
        self._connect_timeout = connect_timeout
        self._statement_timeout_ms = max(1, round(statement_timeout * 1000))
        self._application_name = application_name
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.RLock()
        self._prepare = prepare
        self._placeholders: dict[str, str] = {}
        self._deadline = _Deadline(statement_timeout + _DEADLINE_GRACE)

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self._url)!r})"

    # --- connection and transactions ---------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        _require_driver()
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        try:
            session: dict[str, Any] = {}
            if self._prepare:
                # Straight to the server (see the module docstring): a hung query (locks, an
                # overloaded server) fails the statement instead of holding the invocation until
                # FC's function timeout kills it; set in the startup packet, so it costs no round
                # trip. A keyword argument replaces the URL's parameter of the same name: the URL's
                # own options (``?options=-csearch_path%3Dvodfc``) are kept beside our timeout.
                given = conninfo_to_dict(self._url).get("options")
                timeout = f"-c statement_timeout={self._statement_timeout_ms}"
                session["options"] = f"{given} {timeout}" if given else timeout
            return psycopg.connect(
                self._url,
                autocommit=False,
                # psycopg bounds the whole handshake with it, in whole seconds, 2 at least.
                connect_timeout=max(1, round(self._connect_timeout)),
                application_name=self._application_name,
                keepalives=1,
                keepalives_idle=30,
                keepalives_interval=10,
                keepalives_count=3,
                # None: never prepare (transaction pooling); 5 is psycopg's default threshold.
                prepare_threshold=5 if self._prepare else None,
                cursor_factory=_guarded_cursor(self._deadline),
                **session,
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
                try:
                    return self._attempt(fn, may_replay=False, autocommit=autocommit)
                except errors.StoreUnavailable as exc:
                    # The first attempt's autocommit statement may have committed before the
                    # connection went, whatever becomes of the second.
                    exc.may_have_committed = exc.may_have_committed or autocommit
                    raise

    def _attempt(self, fn: Callable[[Cursor], T], *, may_replay: bool, autocommit: bool) -> T:
        fresh = self._conn is None
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        conn = self._conn
        import psycopg  # loaded by _connect

        deadline = self._deadline
        try:
            if conn.autocommit != autocommit:  # idle between calls: a local switch, no round trip
                conn.autocommit = autocommit
            with conn.cursor() as cur:  # a _GuardedCursor: each statement under the deadline
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
            lost = conn.closed or conn.broken
            if lost:
                self._drop()
                # Past the deadline, the time is spent: no second attempt.
                if may_replay and not fresh and not deadline.fired:
                    raise _Replay() from exc
            else:  # e.g. a statement or lock timeout: the connection itself is fine
                self._rollback()
            failure = errors.StoreUnavailable()
            # An autocommit statement whose answer went with the connection may have committed.
            failure.may_have_committed = lost and autocommit
            raise failure from exc
        except psycopg.Error as exc:
            self._rollback()
            raise errors.StoreUnavailable() from exc
        except BaseException:
            self._rollback()
            raise
        if autocommit:
            return result
        try:
            deadline.arm(conn.pgconn.socket)
            try:
                conn.commit()
            finally:
                deadline.disarm()
        except psycopg.Error as exc:
            self._drop()
            failure = errors.StoreUnavailable()
            failure.may_have_committed = True  # the server may have committed before the answer was lost
            raise failure from exc
        return result

    def _rollback(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            self._deadline.arm(conn.pgconn.socket)
            try:
                conn.rollback()
            finally:
                self._deadline.disarm()
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

    def _write_one(self, fn: Callable[[Cursor], T]) -> T:
        return self._run(fn, autocommit=True)

    def _sql(self, sql: str) -> str:
        converted = self._placeholders.get(sql)
        if converted is None:
            # The shared SQL holds no literal "%", so "?" -> "%s" is the whole conversion.
            converted = self._placeholders[sql] = sql.replace("?", "%s")
        return converted

    @contextlib.contextmanager
    def _together(self, cur: Cursor) -> Iterator[bool]:
        # Pipeline mode (https://www.psycopg.org/psycopg3/docs/advanced/pipeline.html): the
        # block's statements, and the BEGIN psycopg queues before the first, are sent with one
        # Sync when it ends, and their results come back in that round trip, under the deadline.
        # The statements still run one after the other, each with its own snapshot. Nothing is
        # committed before the block ends, so a connection lost in it can be replayed as before.
        conn = cur.connection
        block = conn.pipeline()
        block.__enter__()  # local: libpq enters pipeline mode without a round trip
        failed: BaseException | None = None
        try:
            yield True
        except BaseException as exc:
            failed = exc
            raise
        finally:
            self._deadline.arm(conn.pgconn.socket)
            try:
                if failed is None:
                    block.__exit__(None, None, None)
                else:
                    block.__exit__(type(failed), failed, failed.__traceback__)
            finally:
                self._deadline.disarm()

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

    def _record_event(self, record: EventRecord) -> tuple[InboxEvent, bool, Upload | None]:
        params = {
            "key": record.dedupe_key,
            "vid": record.media_id,
            "etype": record.event_type,
            "eat": record.event_time,
            "source": record.source,
            "mid": record.message_id,
            "body": record.body,
            "now": record.now,
            "until": record.until,
        }

        def run(cur: Cursor) -> tuple[InboxEvent, bool, Upload | None]:
            cur.execute(_RECORD_EVENT_SQL, params)
            row = cur.fetchone()
            if row is None:
                # Not owned, and inserted by a transaction that committed after this statement's
                # snapshot was taken (the insert waited for it): a new statement sees it.
                cur.execute(_FIND_EVENT_SQL, params)
                row = cur.fetchone()
            event, owned = self._event(row[:_EVENT_WIDTH]), bool(row[_EVENT_WIDTH])
            upload = None if row[_EVENT_WIDTH + 1] is None else self._upload(row[_EVENT_WIDTH + 1 :])
            return event, owned, upload

        # One statement in autocommit: the insert claims the key, a second delivery finds the row
        # (the conflict locks it, so two deliveries at once are serialised), and the upload comes
        # back in the same round trip. Replaying it after a lost connection finds the row again,
        # not owned: the lease the first attempt took runs out and claim_events finishes it.
        return self._run(run, autocommit=True)

    def _apply_event(self, event: EventApply) -> Applied:
        sql, params = _apply_event_sql(event, self._notify_types)

        def run(cur: Cursor) -> Applied:
            cur.execute(sql, params)
            row = cur.fetchone()
            if row is None or row[0] is None:
                return Applied(ApplyResult.DUPLICATE)
            result, nid, upload_id, seq, kind, body = row
            if nid is None or event.lease_until is None:
                return Applied(ApplyResult(result))
            return Applied(
                ApplyResult(result),
                leased_notification(nid, upload_id, seq, kind, body, event.now, event.lease_until),
            )

        # One statement, one round trip, in autocommit: the statement is its own transaction.
        # Replaying it after a lost connection is safe: had the first attempt committed, the event
        # is no longer pending and the replay is a DUPLICATE that changes nothing.
        return self._run(run, autocommit=True)

    def _claim(self, claim: Claim) -> list[Any]:
        # One statement; concurrent claimers skip each other's locked rows. ``where`` repeats the
        # partial index's predicate, so the planner walks ``index`` in order.
        sql = (
            f"UPDATE {claim.table} SET claimed_until = ? WHERE {claim.key} IN ("  # noqa: S608
            f" SELECT {claim.key} FROM {claim.table} WHERE {claim.where}"
            " AND (claimed_until IS NULL OR claimed_until <= ?)"
            f" ORDER BY {claim.order}, {claim.key} LIMIT ? FOR UPDATE SKIP LOCKED)"
            f" RETURNING {claim.columns}"
        )
        names = claim.columns.split(", ")
        order, key = names.index(claim.order), names.index(claim.key)

        def run(cur: Cursor) -> list[Any]:
            self._exec(cur, sql, (claim.until, *claim.params, claim.limit))
            return sorted(cur.fetchall(), key=lambda r: (r[order], r[key]))

        return self._write_one(run)


_EVENT_WIDTH: Final = len(EVENT_COLUMNS.split(", "))

# record_event: insert the event (its key claimed) or find it, lease it if it is pending and
# unleased, and read its upload, in one statement. ``owned`` says whether this statement took the
# lease: only a row it inserted or updated comes back from RETURNING (comparing lease ends would
# not do: two recorders at the same instant compute the same one).
_UPLOAD_SQL: Final = ", ".join(f"u.{c}" for c in UPLOAD_COLUMNS)
_RECORD_EVENT_SQL: Final = (
    "WITH r AS ("  # noqa: S608
    " INSERT INTO event_inbox (dedupe_key, media_id, event_type, event_time, source, message_id, body,"
    " received_at, state, next_attempt_at, claimed_until)"
    " VALUES (%(key)s, %(vid)s, %(etype)s, %(eat)s, %(source)s, %(mid)s, %(body)s, %(now)s, 'pending',"
    " %(now)s, %(until)s)"
    " ON CONFLICT (dedupe_key) DO UPDATE SET claimed_until = %(until)s"
    " WHERE event_inbox.state = 'pending'"
    " AND (event_inbox.claimed_until IS NULL OR event_inbox.claimed_until <= %(now)s)"
    f" RETURNING {EVENT_COLUMNS}"
    f"), e AS (SELECT {EVENT_COLUMNS}, true AS owned FROM r"
    f" UNION ALL SELECT {EVENT_COLUMNS}, false FROM event_inbox"
    " WHERE dedupe_key = %(key)s AND NOT EXISTS (SELECT FROM r))"
    f" SELECT e.*, {_UPLOAD_SQL} FROM e LEFT JOIN uploads u ON u.video_id = %(vid)s"
)
_FIND_EVENT_SQL: Final = (
    f"SELECT {', '.join(f'e.{c}' for c in EVENT_COLUMNS.split(', '))}, false, {_UPLOAD_SQL}"  # noqa: S608
    " FROM event_inbox e LEFT JOIN uploads u ON u.video_id = %(vid)s WHERE e.dedupe_key = %(key)s"
)


# SQL types of the UPDATABLE_FIELDS columns, for the casts of their bound values.
_FIELD_TYPES: Final = {"duration": "double precision", "size": "bigint", "error": "text"}
_ISO_SECONDS: Final = """'YYYY-MM-DD"T"HH24:MI:SS"Z"'"""
_ISO_MICRO: Final = """'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'"""
# shared.store.notification_type and base.notification_body, written in SQL over the row ``u``.
_TYPE_SQL: Final = (
    "(CASE u.kind "
    + " ".join(f"WHEN '{k}' THEN '{p}'" for k, p in KINDS.items())
    + " END || '.' || u.status)"
)
_BODY_SQL: Final = (
    f"json_build_object('type', {_TYPE_SQL},"
    f" 'timestamp', to_char(%(now)s::timestamptz AT TIME ZONE 'UTC', {_ISO_MICRO}),"
    " 'data', json_build_object("
    " CASE u.kind WHEN 'video' THEN 'VideoId' WHEN 'image' THEN 'ImageId' ELSE 'MediaId' END, u.video_id,"
    " 'Owner', u.owner, 'Status', u.status, 'Title', u.title, 'FileName', u.file_name,"
    " 'Size', u.size, 'Duration', u.duration, 'Error', u.error,"
    f" 'CreatedAt', to_char(u.created_at AT TIME ZONE 'UTC', {_ISO_SECONDS}),"
    f" 'UpdatedAt', to_char(u.updated_at AT TIME ZONE 'UTC', {_ISO_SECONDS}),"
    # NULLIF: notification_body treats an empty Extend as none ('' is not JSON).
    " 'Extend', NULLIF(u.extend, '')::json, 'Sequence', u.notify_seq))::text"
)


def _apply_event_sql(event: EventApply, notify_types: frozenset[str] | None) -> tuple[str, dict[str, object]]:
    """apply_event as one statement: ``plan_event``'s rules, the notification and the inbox, in SQL.

    ``e`` locks the event while it is pending (no row: a duplicate, and nothing else runs); ``c``
    locks the upload (``FOR UPDATE`` returns its latest committed version) and decides ``ok``
    (its status is in ``allowed``); ``u`` writes the changes (a move when ``ok``; for an
    informational event, only fields still NULL); ``n`` writes the move's notification when its
    type is selected, leased until ``lease`` when that is set and no earlier notification of the
    upload is pending; ``f`` finishes the event with its result. The statement returns the result
    and, when ``n`` leased its row, that row's id, upload, sequence, type and body.
    """
    params: dict[str, object] = {
        "eid": event.event_id,
        "vid": event.video_id,
        "etype": event.event_type,
        "eat": event.event_time,
        "now": event.now,
        "allowed": sorted(event.allowed),
        "to": event.to,
        "check": event.check_at,
        "lease": event.lease_until,
    }
    fields = sorted(event.fields.items())
    sets: list[str] = []
    for i, (column, value) in enumerate(fields):
        params[f"f{i}"] = value
        value_sql = f"%(f{i})s::{_FIELD_TYPES[column]}"
        sets.append(
            f"{column} = {value_sql}"
            if event.to is not None
            else f"{column} = coalesce(c.{column}, {value_sql})"
        )
    if event.to is not None:
        sets += [
            "status = %(to)s",
            "claimed_until = NULL",
            "notify_seq = c.notify_seq + 1",
            f"check_at = {'%(check)s' if event.to in CHECKED_STATUSES else 'NULL'}",
            "checks = 0",
        ]
        newer = "c.last_event_at IS NULL" + (
            " OR %(eat)s::timestamptz >= c.last_event_at" if event.event_time else ""
        )
        sets.append(f"last_event = CASE WHEN {newer} THEN %(etype)s ELSE c.last_event END")
        sets.append(f"last_event_at = CASE WHEN {newer} THEN %(eat)s::timestamptz ELSE c.last_event_at END")
        changed = "c.ok"
    else:
        # Informational: only what the upload does not have yet (nothing at all: a stale event).
        changed = " OR ".join(f"c.{column} IS NULL" for column, _ in fields) or "FALSE"
    sets.append("updated_at = %(now)s")
    notify = ""
    leased = "NULL, NULL, NULL, NULL, NULL"
    if notify_types is not None and event.to is not None:
        params["types"] = sorted(notify_types)
        # The same rule as claim_notifications: an upload's notifications go out in order. The
        # statement's snapshot holds no row ``n`` inserts, so EXISTS sees only earlier ones.
        notify = (
            ", n AS ("  # noqa: S608
            " INSERT INTO webhook_outbox (notification_id, upload_id, seq, type, body, created_at, state,"
            " next_attempt_at, claimed_until)"
            f" SELECT 'msg_' || u.upload_id || '_' || u.notify_seq, u.upload_id, u.notify_seq, {_TYPE_SQL},"
            f" {_BODY_SQL}, %(now)s, 'pending', %(now)s,"
            " CASE WHEN NOT EXISTS (SELECT FROM webhook_outbox p WHERE p.upload_id = u.upload_id"
            " AND p.seq < u.notify_seq AND p.state = 'pending') THEN %(lease)s::timestamptz END"
            f" FROM u WHERE {_TYPE_SQL} = ANY(%(types)s::text[])"
            " RETURNING notification_id, upload_id, seq, type, body, claimed_until)"
        )
        leased = ", ".join(
            f"(SELECT {c} FROM n WHERE claimed_until IS NOT NULL)"  # noqa: S608
            for c in ("notification_id", "upload_id", "seq", "type", "body")
        )
    # Data-modifying CTEs run once, to completion, whether or not the final SELECT reads them.
    sql = (
        "WITH e AS ("  # noqa: S608
        " SELECT event_id FROM event_inbox WHERE event_id = %(eid)s AND state = 'pending' FOR UPDATE"
        "), c AS ("
        " SELECT upload_id, status, last_event_at, last_event, notify_seq, duration, size, error,"
        " status = ANY(%(allowed)s::text[]) AS ok FROM uploads"
        " WHERE video_id = %(vid)s AND EXISTS (SELECT FROM e) FOR UPDATE"
        "), u AS ("
        f" UPDATE uploads SET {', '.join(sets)} FROM c"
        f" WHERE uploads.upload_id = c.upload_id AND ({changed}) RETURNING uploads.*"
        f"){notify}, f AS ("
        " UPDATE event_inbox SET state = 'done', done_at = %(now)s, claimed_until = NULL, result = CASE"
        " WHEN NOT EXISTS (SELECT FROM c) THEN 'orphan' WHEN EXISTS (SELECT FROM u) THEN 'applied'"
        " ELSE 'stale' END FROM e WHERE event_inbox.event_id = e.event_id RETURNING event_inbox.result"
        f") SELECT (SELECT result FROM f), {leased}"
    )
    return sql, params
