"""What both store dialects share: the public operations, written once over a few private hooks.

:class:`SqlStore` implements :class:`shared.store.Store` in portable SQL (``?`` placeholders, row
values, partial indexes); a dialect supplies the connection and its transactions
(:meth:`SqlStore._write`, :meth:`SqlStore._read`), how times are stored, how one owner's
reservations are serialised (:meth:`SqlStore._lock_owner`), how rows are claimed
(:meth:`SqlStore._claim`) and :meth:`~shared.store.Store.apply_event`, the one operation each
dialect writes its own way (a Python plan on SQLite, one statement on PostgreSQL; the
differential test in ``tests/store`` keeps the two equal). The model is Powertools'
``BasePersistenceLayer``: the public API once, backends fill private hooks.
"""

from __future__ import annotations

import base64
import binascii
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Final, Protocol, TypeVar

from shared import errors, states
from shared.store import UPDATABLE_FIELDS, UPLOAD_COLUMNS, ApplyResult, PruneCounts, Upload

__all__ = [
    "COLUMNS",
    "CONFLICTS",
    "MIGRATIONS",
    "PENDING_SQL",
    "SCHEMA_TYPES",
    "STUCK_SQL",
    "TIME_COLUMNS",
    "Claim",
    "Cursor",
    "EventChange",
    "SqlStore",
    "check_limit",
    "clean_fields",
    "conflict",
    "decode_cursor",
    "encode_cursor",
    "event_payload",
    "lease_end",
    "marks",
    "plan_event",
    "redact_url",
    "resolve_allowed",
    "utc",
    "utc_or_none",
]

T = TypeVar("T")

COLUMNS: Final = ", ".join(UPLOAD_COLUMNS)
TIME_COLUMNS: Final = frozenset(
    {"created_at", "updated_at", "credential_expires_at", "last_event_at", "claimed_until"}
)
_PENDING: Final = tuple(sorted(states.PENDING_STATUSES))
# Status lists written as SQL literals, the same way in each partial index and in the queries that
# must match its predicate (both planners match the term itself, not bound values).
PENDING_SQL: Final = "(" + ", ".join(f"'{s}'" for s in (states.CREATING, states.CREATED)) + ")"
STUCK_SQL: Final = "(" + ", ".join(f"'{s}'" for s in (states.UPLOADED, states.PROCESSING)) + ")"
_STATUS_CHECK: Final = ", ".join(f"'{s}'" for s in states.ALL_STATUSES)

# Unique constraints we expect to hit, and what a violation means to the caller.
CONFLICTS: Final[dict[str, tuple[str, str]]] = {
    "uploads_pkey": ("UploadIdInUse", "The upload id is already in use."),
    "uploads_reference_id_key": ("ReferenceIdInUse", "The reference id is already in use."),
    "uploads_video_id_key": ("VideoIdInUse", "The video id is already in use."),
    "uploads_owner_idempotency_key": ("IdempotencyKeyInUse", "The Idempotency-Key is already in use."),
}

#: The type names (and the current-time expression) each dialect substitutes into MIGRATIONS.
SCHEMA_TYPES: Final[Mapping[str, Mapping[str, str]]] = {
    "sqlite": {
        "time": "TEXT",
        "int": "INTEGER",
        "float": "REAL",
        "json": "TEXT",
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "now": "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')",
    },
    "postgresql": {
        "time": "timestamptz",
        "int": "bigint",
        "float": "double precision",
        "json": "jsonb",
        "serial": "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "now": "now()",
    },
}

#: The schema, version by version, with the dialect's type names as ``{time}``, ``{int}``,
#: ``{float}``, ``{json}`` and ``{serial}`` (an auto-numbered primary key); ``{now}`` is the
#: current time as an SQL expression (see :data:`SCHEMA_TYPES`).
MIGRATIONS: Final[tuple[tuple[int, str, tuple[str, ...]], ...]] = (
    (
        1,
        "uploads, event dedupe keys, orphan events",
        (
            f"""CREATE TABLE IF NOT EXISTS uploads (
                upload_id TEXT NOT NULL,
                owner TEXT NOT NULL,
                video_id TEXT,
                reference_id TEXT NOT NULL,
                title TEXT NOT NULL,
                file_name TEXT NOT NULL,
                file_size {{int}},
                status TEXT NOT NULL CONSTRAINT uploads_status_check CHECK (status IN ({_STATUS_CHECK})),
                created_at {{time}} NOT NULL,
                updated_at {{time}} NOT NULL,
                credential_expires_at {{time}},
                last_event TEXT,
                last_event_at {{time}},
                duration {{float}},
                size {{int}},
                error TEXT,
                idempotency_key TEXT,
                request_hash TEXT,
                claimed_until {{time}},
                CONSTRAINT uploads_pkey PRIMARY KEY (upload_id),
                CONSTRAINT uploads_video_id_key UNIQUE (video_id),
                CONSTRAINT uploads_reference_id_key UNIQUE (reference_id),
                CONSTRAINT uploads_owner_idempotency_key UNIQUE (owner, idempotency_key)
            )""",
            "CREATE INDEX IF NOT EXISTS uploads_owner_created "
            "ON uploads (owner, created_at DESC, upload_id DESC)",
            "CREATE INDEX IF NOT EXISTS uploads_status_created ON uploads (status, created_at, upload_id)",
            "CREATE INDEX IF NOT EXISTS uploads_pending_owner ON uploads (owner) "
            f"WHERE status IN {PENDING_SQL}",
            """CREATE TABLE IF NOT EXISTS event_dedupe (
                dedupe_key TEXT PRIMARY KEY,
                video_id TEXT NOT NULL,
                event_type TEXT NOT NULL,
                received_at {time} NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS event_dedupe_received ON event_dedupe (received_at)",
            """CREATE TABLE IF NOT EXISTS orphan_events (
                id {serial},
                video_id TEXT NOT NULL,
                dedupe_key TEXT NOT NULL,
                event_type TEXT NOT NULL,
                event_time {time},
                payload {json} NOT NULL,
                received_at {time} NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS orphan_events_received ON orphan_events (received_at)",
            "CREATE INDEX IF NOT EXISTS orphan_events_video ON orphan_events (video_id)",
        ),
    ),
    (
        2,
        "partial index for claim_stale: pending uploads, oldest first",
        # claim_stale walks it in order and stops after `limit` rows (no sort of every pending
        # upload). On PostgreSQL it is built inside the migration transaction, which blocks writes
        # to uploads while it builds: brief at the sizes vodfc keeps (terminal uploads are not in it).
        (
            "CREATE INDEX IF NOT EXISTS uploads_stale_pending ON uploads (created_at, upload_id) "
            f"WHERE status IN {PENDING_SQL}",
        ),
    ),
    (
        3,
        "partial index for claim_stuck: uploaded/processing uploads, least recently updated first",
        # Walked in order like uploads_stale_pending; uploads that reach a final status drop out.
        (
            "CREATE INDEX IF NOT EXISTS uploads_stuck ON uploads (updated_at, upload_id) "
            f"WHERE status IN {STUCK_SQL}",
        ),
    ),
)


class Cursor(Protocol):
    """What :class:`SqlStore` needs of a DB-API cursor (``sqlite3.Cursor``, ``psycopg.Cursor``)."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: Any, params: Any = ..., /) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


# --- argument checks and conversions (every dialect) --------------------------------------------


def utc(value: datetime) -> datetime:
    """``value`` in UTC; naive datetimes are a programming error."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError("datetimes given to the store must be timezone-aware")
    return value.astimezone(timezone.utc)


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def lease_end(now: datetime, lease_seconds: float) -> datetime:
    if lease_seconds <= 0:
        raise ValueError("lease_seconds must be positive")
    return utc(now) + timedelta(seconds=lease_seconds)


def check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError("limit must be at least 1")


def clean_fields(fields: Mapping[str, object] | None) -> dict[str, object]:
    """Validated ``fields`` without ``None`` values, coerced to the column types."""
    out: dict[str, object] = {}
    for name, value in (fields or {}).items():
        kind = UPDATABLE_FIELDS.get(name)
        if kind is None:
            raise ValueError(f"field {name!r} cannot be updated (allowed: {sorted(UPDATABLE_FIELDS)})")
        if value is None:
            continue
        if kind is str:
            out[name] = str(value)
        elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
            try:
                out[name] = kind(float(value)) if kind is int else kind(value)
            except ValueError as exc:
                raise ValueError(f"field {name!r} must be a number") from exc
        else:
            raise ValueError(f"field {name!r} must be a number")
    return out


def resolve_allowed(to: str | None, allowed: Iterable[str] | None) -> frozenset[str]:
    """The statuses a move to ``to`` may start from, checked against the state machine."""
    if to is None:
        chosen = frozenset(states.PUBLIC_STATUSES if allowed is None else allowed)
        for status in chosen:
            states.rank(status)  # ValueError for unknown names
        return chosen
    legal = states.allowed_from(to)
    if allowed is None:
        return legal
    chosen = frozenset(allowed)
    illegal = chosen - legal
    if illegal:
        raise ValueError(f"cannot move to {to!r} from {sorted(illegal)}")
    return chosen


def plan_event(
    current: Upload,
    *,
    to: str | None,
    allowed: frozenset[str],
    fields: Mapping[str, object],
    event_type: str,
    event_time: datetime | None,
    now: datetime,
) -> tuple[ApplyResult, dict[str, object]]:
    """The column changes for one (non-duplicate) event on ``current``: applied or stale."""
    if current.status in allowed:
        changes: dict[str, object] = dict(fields)
        if to is not None and to != current.status:
            changes["status"] = to
            changes["claimed_until"] = None
        newer = current.last_event_at is None or (
            event_time is not None and event_time >= current.last_event_at
        )
        if newer:
            changes["last_event"] = event_type
            changes["last_event_at"] = event_time
        changes["updated_at"] = now
        return ApplyResult.APPLIED, changes
    fill: dict[str, object] = {k: v for k, v in fields.items() if getattr(current, k) is None}
    if fill:
        fill["updated_at"] = now
    return ApplyResult.STALE, fill


def event_payload(payload: Mapping[str, Any] | None, fields: Mapping[str, object]) -> str:
    """The JSON kept for an orphan event: its body, else the fields it carried."""
    return json.dumps(dict(payload) if payload is not None else dict(fields), default=str, sort_keys=True)


def encode_cursor(created_at: datetime, upload_id: str) -> str:
    raw = json.dumps([utc(created_at).isoformat(timespec="microseconds"), upload_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """``(created_at, upload_id)`` of a cursor; :class:`errors.InvalidParameter` if malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, upload_id = json.loads(raw)
        created_at = datetime.fromisoformat(stamp)
        if not isinstance(upload_id, str) or created_at.tzinfo is None:
            raise ValueError("bad cursor")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise errors.InvalidParameter("The cursor is invalid.", field="Cursor") from exc
    return utc(created_at), upload_id


def redact_url(url: str) -> str:
    """``url`` without its password, for ``repr`` (never for messages that reach clients)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    userinfo, _, hostpart = rest.partition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}" if ":" in userinfo else url


def conflict(constraint: str | None) -> errors.Conflict:
    """The error for a violated unique constraint (see :data:`CONFLICTS`)."""
    code, message = CONFLICTS.get(constraint or "", ("Conflict", "Conflict."))
    return errors.Conflict(message, code=code)


def marks(n: int) -> str:
    return ", ".join("?" * n)


@dataclass(frozen=True)
class EventChange:
    """One event as :meth:`SqlStore._apply_event` receives it: checked, in UTC, fields cleaned."""

    video_id: str
    dedupe_key: str
    event_type: str
    event_time: datetime | None
    to: str | None
    allowed: frozenset[str]
    fields: Mapping[str, object]
    now: datetime
    payload: str  # the JSON kept if the event is an orphan


@dataclass(frozen=True)
class Claim:
    """One claim as :meth:`SqlStore._claim` receives it.

    Rows match ``where`` (whose placeholders ``params`` fill) and have no live lease
    (``claimed_until IS NULL OR claimed_until <= ?``, the last parameter being ``now``); they are
    walked in ``(order, upload_id)`` along the partial ``index`` and leased ``until``.
    """

    index: str
    where: str
    params: tuple[object, ...]
    order: str
    until: object
    limit: int


# --- the operations ------------------------------------------------------------------------------


class SqlStore(ABC):
    """:class:`shared.store.Store` in SQL both dialects run; see the module docstring for the hooks."""

    dialect: ClassVar[str]
    #: ``status`` as a term the planner cannot use an index for (see :meth:`expire_created`).
    UNINDEXED_STATUS: ClassVar[str] = "status"

    # --- hooks ----------------------------------------------------------------------------------

    @abstractmethod
    def _write(self, fn: Callable[[Cursor], T]) -> T:
        """Run ``fn`` as one write transaction, committed when it returns, rolled back if it raises."""

    @abstractmethod
    def _read(self, fn: Callable[[Cursor], T]) -> T:
        """Run ``fn``, a single read statement (no transaction of its own needed)."""

    @abstractmethod
    def _lock_owner(self, cur: Cursor, owner: str) -> None:
        """Serialise the reservations of ``owner`` until the transaction ends (the quota's lock)."""

    @abstractmethod
    def _lock_migrations(self, cur: Cursor) -> None:
        """Serialise concurrent migrations until the transaction ends."""

    @abstractmethod
    def _claim(self, claim: Claim) -> list[Upload]:
        """Lease up to ``claim.limit`` unleased rows matching ``claim.where`` in ``claim.order``."""

    @abstractmethod
    def _apply_event(self, event: EventChange) -> ApplyResult:
        """Apply one normalised event (see :meth:`apply_event`) in one transaction."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection; the next operation opens a new one."""

    def _sql(self, sql: str) -> str:
        """``sql`` (``?`` placeholders) in the driver's parameter style."""
        return sql

    @abstractmethod
    def _time(self, value: datetime) -> object:
        """A UTC time as the driver stores it."""

    @abstractmethod
    def _from_time(self, value: Any) -> datetime:
        """A stored time back as an aware UTC datetime."""

    # --- helpers ------------------------------------------------------------------------------

    def _exec(self, cur: Cursor, sql: str, params: Sequence[object] = ()) -> Cursor:
        cur.execute(self._sql(sql), params)
        return cur

    def _time_or_none(self, value: datetime | None) -> object:
        return None if value is None else self._time(utc(value))

    def _value(self, column: str, value: object) -> object:
        if column in TIME_COLUMNS and isinstance(value, datetime):
            return self._time(utc(value))
        return value

    def _upload(self, row: Sequence[Any]) -> Upload:
        values = dict(zip(UPLOAD_COLUMNS, row, strict=True))
        for column in TIME_COLUMNS:
            if values[column] is not None:
                values[column] = self._from_time(values[column])
        return Upload(**values)

    def _one(self, cur: Cursor, where: str, params: Sequence[object]) -> Upload | None:
        row = self._exec(cur, f"SELECT {COLUMNS} FROM uploads WHERE {where}", params).fetchone()  # noqa: S608
        return None if row is None else self._upload(row)

    def _apply_migrations(self, cur: Cursor) -> int:
        types = SCHEMA_TYPES[self.dialect]
        self._exec(
            cur,
            "CREATE TABLE IF NOT EXISTS schema_version (version {int} PRIMARY KEY, "
            "description TEXT NOT NULL, applied_at {time} NOT NULL)".format(**types),
        )
        current = int(self._exec(cur, "SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0])
        for version, description, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                self._exec(cur, statement.format(**types))
            self._exec(
                cur,
                "INSERT INTO schema_version (version, description, applied_at) "  # noqa: S608
                f"VALUES (?, ?, {types['now']})",
                (version, description),
            )
            current = version
        return current

    # --- schema -------------------------------------------------------------------------------

    def migrate(self) -> int:
        """See :meth:`shared.store.Store.migrate`."""

        def run(cur: Cursor) -> int:
            self._lock_migrations(cur)
            return self._apply_migrations(cur)

        return self._write(run)

    # --- uploads ------------------------------------------------------------------------------

    def reserve_upload(self, upload: Upload, *, max_pending: int) -> Upload:
        """See :meth:`shared.store.Store.reserve_upload`."""
        if upload.status not in states.PENDING_STATUSES:
            raise ValueError("reserve_upload inserts uploads in 'creating' or 'created' only")
        if (upload.status == states.CREATING) != (upload.video_id is None):
            raise ValueError("a 'creating' upload has no video_id; a 'created' one has one")
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        values = [self._value(c, getattr(upload, c)) for c in UPLOAD_COLUMNS]

        # Every check in one statement, answered in the documented order (the constraints would
        # catch the duplicates too, but each dialect reports the first violation its own way).
        checks = (
            "SELECT EXISTS (SELECT 1 FROM uploads WHERE owner = ? AND idempotency_key = ?),"  # noqa: S608
            f" (SELECT count(*) FROM uploads WHERE owner = ? AND status IN ({marks(len(_PENDING))})),"
            " EXISTS (SELECT 1 FROM uploads WHERE upload_id = ?),"
            " EXISTS (SELECT 1 FROM uploads WHERE reference_id = ?),"
            " EXISTS (SELECT 1 FROM uploads WHERE video_id = ?)"
        )
        params = (
            upload.owner,
            upload.idempotency_key,
            upload.owner,
            *_PENDING,
            upload.upload_id,
            upload.reference_id,
            upload.video_id,
        )

        def run(cur: Cursor) -> Upload:
            self._lock_owner(cur, upload.owner)
            key_used, pending, id_used, reference_used, video_used = self._exec(
                cur, checks, params
            ).fetchone()
            if key_used:
                raise conflict("uploads_owner_idempotency_key")
            if pending >= max_pending:
                raise errors.QuotaExceeded()
            for used, constraint in (
                (id_used, "uploads_pkey"),
                (reference_used, "uploads_reference_id_key"),
                (video_used, "uploads_video_id_key"),
            ):
                if used:
                    raise conflict(constraint)
            self._exec(cur, f"INSERT INTO uploads ({COLUMNS}) VALUES ({marks(len(UPLOAD_COLUMNS))})", values)  # noqa: S608
            return upload

        return self._write(run)

    def find_by_idempotency_key(self, owner: str, key: str) -> Upload | None:
        """See :meth:`shared.store.Store.find_by_idempotency_key`."""
        return self._read(lambda cur: self._one(cur, "owner = ? AND idempotency_key = ?", (owner, key)))

    def attach_video(
        self, upload_id: str, video_id: str, credential_expires_at: datetime | None, now: datetime
    ) -> bool:
        """See :meth:`shared.store.Store.attach_video`."""
        params = (
            states.CREATED,
            video_id,
            self._time_or_none(credential_expires_at),
            self._time(utc(now)),
            upload_id,
            states.CREATING,
        )
        sql = (
            "UPDATE uploads SET status = ?, video_id = ?, credential_expires_at = ?, updated_at = ? "
            "WHERE upload_id = ? AND status = ?"
        )
        return self._write(lambda cur: self._exec(cur, sql, params).rowcount == 1)

    def discard_reservation(self, upload_id: str) -> bool:
        """See :meth:`shared.store.Store.discard_reservation`."""
        sql = "DELETE FROM uploads WHERE upload_id = ? AND status = ?"
        return self._write(lambda cur: self._exec(cur, sql, (upload_id, states.CREATING)).rowcount == 1)

    def get(self, owner: str, video_id: str) -> Upload | None:
        """See :meth:`shared.store.Store.get`."""
        return self._read(lambda cur: self._one(cur, "video_id = ? AND owner = ?", (video_id, owner)))

    def get_by_video_id(self, video_id: str) -> Upload | None:
        """See :meth:`shared.store.Store.get_by_video_id`."""
        return self._read(lambda cur: self._one(cur, "video_id = ?", (video_id,)))

    def list_uploads(
        self, owner: str, *, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[Upload], str | None]:
        """See :meth:`shared.store.Store.list_uploads`."""
        check_limit(limit)
        if status is not None and status not in states.PUBLIC_STATUSES:
            raise errors.InvalidParameter("The status filter is not a known upload status.", field="Status")
        where = ["owner = ?", "status <> ?"]
        params: list[object] = [owner, states.CREATING]
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if cursor is not None:
            created_at, upload_id = decode_cursor(cursor)
            where.append("(created_at, upload_id) < (?, ?)")
            params += [self._time(created_at), upload_id]
        sql = (
            f"SELECT {COLUMNS} FROM uploads WHERE {' AND '.join(where)} "  # noqa: S608
            "ORDER BY created_at DESC, upload_id DESC LIMIT ?"
        )
        params.append(limit + 1)
        rows = self._read(lambda cur: self._exec(cur, sql, params).fetchall())
        uploads = [self._upload(r) for r in rows[:limit]]
        more = len(rows) > limit
        next_cursor = encode_cursor(uploads[-1].created_at, uploads[-1].upload_id) if more else None
        return uploads, next_cursor

    def set_credential_expiry(self, video_id: str, expires_at: datetime, now: datetime) -> bool:
        """See :meth:`shared.store.Store.set_credential_expiry`."""
        params = (self._time(utc(expires_at)), self._time(utc(now)), video_id, states.CREATED)
        sql = "UPDATE uploads SET credential_expires_at = ?, updated_at = ? WHERE video_id = ? AND status = ?"
        return self._write(lambda cur: self._exec(cur, sql, params).rowcount == 1)

    def transition(
        self,
        video_id: str,
        *,
        to: str,
        allowed_from: Iterable[str] | None = None,
        now: datetime,
        fields: Mapping[str, object] | None = None,
    ) -> bool:
        """See :meth:`shared.store.Store.transition`."""
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
        sql = f"UPDATE uploads SET {sets} WHERE video_id = ? AND status IN ({marks(len(allowed))})"  # noqa: S608
        params = [*(self._value(c, v) for c, v in changes.items()), video_id, *sorted(allowed)]
        return self._write(lambda cur: self._exec(cur, sql, params).rowcount == 1)

    def expire_created(self, video_ids: Sequence[str], *, now: datetime) -> int:
        """See :meth:`shared.store.Store.expire_created`."""
        if not video_ids:
            return 0
        # Every candidate is 'created': the planner must look the ids up by the unique video_id
        # index (O(batch)), not walk a status index (O(table)); UNINDEXED_STATUS says so.
        sql = (
            "UPDATE uploads SET status = ?, updated_at = ?, claimed_until = NULL "  # noqa: S608
            f"WHERE video_id IN ({marks(len(video_ids))}) AND {self.UNINDEXED_STATUS} = ?"
        )
        params = [states.EXPIRED, self._time(utc(now)), *video_ids, states.CREATED]
        return self._write(lambda cur: int(self._exec(cur, sql, params).rowcount))

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
        """See :meth:`shared.store.Store.apply_event`."""
        clean = clean_fields(fields)
        return self._apply_event(
            EventChange(
                video_id=video_id,
                dedupe_key=dedupe_key,
                event_type=event_type,
                event_time=utc_or_none(event_time),
                to=to,
                allowed=resolve_allowed(to, allowed_from),
                fields=clean,
                now=utc(now),
                payload=event_payload(payload, clean),
            )
        )

    def claim_stale(
        self,
        *,
        created_before: datetime,
        limit: int,
        lease_seconds: float,
        now: datetime,
        credential_expired_before: datetime | None = None,
    ) -> list[Upload]:
        """See :meth:`shared.store.Store.claim_stale`."""
        check_limit(limit)
        params: list[object] = [self._time(utc(created_before))]
        # Literal statuses, as in the partial index uploads_stale_pending (see MIGRATIONS).
        where = f"status IN {PENDING_SQL} AND created_at < ?"
        if credential_expired_before is not None:
            where += " AND (credential_expires_at IS NULL OR credential_expires_at < ?)"
            params.append(self._time(utc(credential_expired_before)))
        return self._claim(
            Claim(
                index="uploads_stale_pending",
                where=where,
                params=(*params, self._time(utc(now))),
                order="created_at",
                until=self._time(lease_end(now, lease_seconds)),
                limit=limit,
            )
        )

    def claim_stuck(
        self, *, updated_before: datetime, limit: int, lease_seconds: float, now: datetime
    ) -> list[Upload]:
        """See :meth:`shared.store.Store.claim_stuck`."""
        check_limit(limit)
        return self._claim(
            Claim(
                index="uploads_stuck",  # literal statuses, as in the partial index
                where=f"status IN {STUCK_SQL} AND updated_at < ?",
                params=(self._time(utc(updated_before)), self._time(utc(now))),
                order="updated_at",
                until=self._time(lease_end(now, lease_seconds)),
                limit=limit,
            )
        )

    def release_claim(self, upload_id: str) -> bool:
        """See :meth:`shared.store.Store.release_claim`."""
        sql = "UPDATE uploads SET claimed_until = NULL WHERE upload_id = ?"
        return self._write(lambda cur: self._exec(cur, sql, (upload_id,)).rowcount == 1)

    def prune(
        self,
        *,
        now: datetime,
        dedupe_before: datetime,
        idempotency_before: datetime,
        orphans_before: datetime,
    ) -> PruneCounts:
        """See :meth:`shared.store.Store.prune`."""
        utc(now)
        dedupe_cut, idem_cut, orphan_cut = (
            self._time(utc(t)) for t in (dedupe_before, idempotency_before, orphans_before)
        )

        def run(cur: Cursor) -> PruneCounts:
            dedupe = self._exec(cur, "DELETE FROM event_dedupe WHERE received_at < ?", (dedupe_cut,)).rowcount
            idem = self._exec(
                cur,
                "UPDATE uploads SET idempotency_key = NULL, request_hash = NULL "
                "WHERE idempotency_key IS NOT NULL AND created_at < ? AND status <> ?",
                (idem_cut, states.CREATING),
            ).rowcount
            orphans = self._exec(
                cur, "DELETE FROM orphan_events WHERE received_at < ?", (orphan_cut,)
            ).rowcount
            return PruneCounts(dedupe=dedupe, idempotency=idem, orphans=orphans)

        return self._write(run)
