"""What both store dialects share: the public operations, written once over a few private hooks.

:class:`SqlStore` implements :class:`shared.store.Store` in portable SQL (``?`` placeholders, row
values, partial indexes, ``RETURNING``); a dialect supplies the connection and its transactions
(:meth:`SqlStore._write`, :meth:`SqlStore._read`), how times are stored, how one owner's
reservations are serialised (:meth:`SqlStore._lock_owner`), how rows are claimed
(:meth:`SqlStore._claim`) and the two operations of the event path each dialect writes its own
way (:meth:`SqlStore._record_event`, :meth:`SqlStore._apply_event`: Python on SQLite, one
statement each on PostgreSQL, so that a callback costs two round trips; the differential test in
``tests/store`` keeps the two equal). The model is Powertools' ``BasePersistenceLayer``: the
public API once, backends fill private hooks.
"""

from __future__ import annotations

import base64
import binascii
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Final, NamedTuple, Protocol, TypeVar

from shared import errors, states
from shared.states import KINDS, notification_type
from shared.store import (
    UPDATABLE_FIELDS,
    UPLOAD_COLUMNS,
    Applied,
    ApplyResult,
    InboxEvent,
    Notification,
    NotificationCounts,
    PruneCounts,
    Upload,
)
from shared.validation import check_id, loads_json

__all__ = [
    "CHECKED_SQL",
    "CHECKED_STATUSES",
    "COLUMNS",
    "CONFLICTS",
    "EVENT_COLUMNS",
    "MIGRATIONS",
    "NOTIFICATION_COLUMNS",
    "PENDING_SQL",
    "SCHEMA_TYPES",
    "TIME_COLUMNS",
    "Claim",
    "Cursor",
    "EventApply",
    "EventRecord",
    "SqlStore",
    "check_limit",
    "clean_fields",
    "conflict",
    "decode_cursor",
    "encode_cursor",
    "iso_micro",
    "iso_seconds",
    "lease_end",
    "leased_notification",
    "marks",
    "moved_columns",
    "notification_body",
    "plan_event",
    "redact_url",
    "resolve_allowed",
    "utc",
    "utc_or_none",
]

T = TypeVar("T")

COLUMNS: Final = ", ".join(UPLOAD_COLUMNS)
EVENT_COLUMNS: Final = (
    "event_id, dedupe_key, media_id, event_type, event_time, source, message_id, body, received_at, "
    "state, result, attempts, next_attempt_at, claimed_until, last_error"
)
NOTIFICATION_COLUMNS: Final = (
    "notification_id, upload_id, seq, type, body, created_at, state, attempts, next_attempt_at, "
    "claimed_until, last_status, last_error, finished_at"
)
TIME_COLUMNS: Final = frozenset(
    {"created_at", "updated_at", "credential_expires_at", "last_event_at", "claimed_until", "check_at"}
)
_EVENT_TIMES: Final = frozenset({"event_time", "received_at", "next_attempt_at", "claimed_until"})
_NOTIFICATION_TIMES: Final = frozenset({"created_at", "next_attempt_at", "claimed_until", "finished_at"})
_PENDING: Final = tuple(sorted(states.PENDING_STATUSES))
# Status lists written as SQL literals, the same way in each partial index and in the queries that
# must match its predicate (both planners match the term itself, not bound values).
PENDING_SQL: Final = "(" + ", ".join(f"'{s}'" for s in (states.CREATING, states.CREATED)) + ")"
# Migration 3's index (released: its definition never changes).
_STUCK_SQL: Final = "(" + ", ".join(f"'{s}'" for s in (states.UPLOADED, states.PROCESSING)) + ")"
# Uploads cleanup checks with VOD on RECONCILE_SCHEDULE_SECONDS: a lost event is repaired in
# minutes, whichever status it would have left (an upload VOD finished may still be ``created``).
_CHECKED_ORDER: Final = (states.CREATED, states.UPLOADED, states.PROCESSING)
CHECKED_STATUSES: Final = frozenset(_CHECKED_ORDER)
CHECKED_SQL: Final = "(" + ", ".join(f"'{s}'" for s in _CHECKED_ORDER) + ")"
_STATUS_CHECK: Final = ", ".join(f"'{s}'" for s in states.ALL_STATUSES)
_KIND_CHECK: Final = ", ".join(f"'{k}'" for k in KINDS)

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
        "json_text": "payload",
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "now": "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')",
    },
    "postgresql": {
        "time": "timestamptz",
        "int": "bigint",
        "float": "double precision",
        "json": "jsonb",
        "json_text": "payload::text",
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
        (
            "CREATE INDEX IF NOT EXISTS uploads_stuck ON uploads (updated_at, upload_id) "
            f"WHERE status IN {_STUCK_SQL}",
        ),
    ),
    (
        4,
        "media kinds, notification sequence, check schedule; event inbox; webhook outbox",
        (
            "ALTER TABLE uploads ADD COLUMN kind TEXT NOT NULL DEFAULT 'video' "
            f"CONSTRAINT uploads_kind_check CHECK (kind IN ({_KIND_CHECK}))",
            "ALTER TABLE uploads ADD COLUMN media_type TEXT",
            "ALTER TABLE uploads ADD COLUMN extend TEXT",
            "ALTER TABLE uploads ADD COLUMN notify_seq {int} NOT NULL DEFAULT 0",
            "ALTER TABLE uploads ADD COLUMN check_at {time}",
            "ALTER TABLE uploads ADD COLUMN checks {int} NOT NULL DEFAULT 0",
            # Uploads already waiting (on the client or on VOD) are due at once: the next cleanup
            # run checks them.
            f"UPDATE uploads SET check_at = updated_at WHERE status IN {CHECKED_SQL}",  # noqa: S608
            "DROP INDEX IF EXISTS uploads_stuck",
            "CREATE INDEX IF NOT EXISTS uploads_check ON uploads (check_at, upload_id) "
            f"WHERE status IN {CHECKED_SQL}",
            "DROP INDEX IF EXISTS uploads_owner_created",
            "CREATE INDEX IF NOT EXISTS uploads_owner_kind_created "
            "ON uploads (owner, kind, created_at DESC, upload_id DESC)",
            """CREATE TABLE IF NOT EXISTS event_inbox (
                event_id {serial},
                dedupe_key TEXT NOT NULL CONSTRAINT event_inbox_dedupe_key UNIQUE,
                media_id TEXT,
                event_type TEXT NOT NULL,
                event_time {time},
                source TEXT NOT NULL,
                message_id TEXT,
                body TEXT NOT NULL,
                received_at {time} NOT NULL,
                state TEXT NOT NULL CONSTRAINT event_inbox_state_check CHECK (state IN ('pending', 'done')),
                result TEXT,
                attempts {int} NOT NULL DEFAULT 0,
                next_attempt_at {time},
                claimed_until {time},
                last_error TEXT,
                done_at {time}
            )""",
            "CREATE INDEX IF NOT EXISTS event_inbox_pending ON event_inbox (next_attempt_at, event_id) "
            "WHERE state = 'pending'",
            "CREATE INDEX IF NOT EXISTS event_inbox_received ON event_inbox (received_at)",
            "CREATE INDEX IF NOT EXISTS event_inbox_media ON event_inbox (media_id)",
            # What the two old tables knew moves into the inbox (finished events): orphans keep
            # their bodies, the other keys only stop their events from being applied twice.
            "INSERT INTO event_inbox (dedupe_key, media_id, event_type, event_time, source, body, "
            "received_at, state, result, done_at) SELECT dedupe_key, video_id, event_type, event_time, "
            "'http', {json_text}, received_at, 'done', 'orphan', received_at FROM orphan_events "
            # WHERE true: SQLite reads ON CONFLICT after a bare SELECT as a join's ON otherwise.
            "WHERE true ON CONFLICT (dedupe_key) DO NOTHING",
            "INSERT INTO event_inbox (dedupe_key, media_id, event_type, source, body, received_at, state, "
            "result, done_at) SELECT dedupe_key, video_id, event_type, 'http', '{{}}', received_at, 'done', "
            "'applied', received_at FROM event_dedupe WHERE true ON CONFLICT (dedupe_key) DO NOTHING",
            "DROP TABLE IF EXISTS orphan_events",
            "DROP TABLE IF EXISTS event_dedupe",
            """CREATE TABLE IF NOT EXISTS webhook_outbox (
                notification_id TEXT NOT NULL CONSTRAINT webhook_outbox_pkey PRIMARY KEY,
                upload_id TEXT NOT NULL,
                seq {int} NOT NULL,
                type TEXT NOT NULL,
                body TEXT NOT NULL,
                created_at {time} NOT NULL,
                state TEXT NOT NULL
                    CONSTRAINT webhook_outbox_state_check CHECK (state IN ('pending', 'delivered', 'dead')),
                attempts {int} NOT NULL DEFAULT 0,
                next_attempt_at {time},
                claimed_until {time},
                last_status {int},
                last_error TEXT,
                finished_at {time}
            )""",
            "CREATE INDEX IF NOT EXISTS webhook_outbox_pending "
            "ON webhook_outbox (next_attempt_at, notification_id) WHERE state = 'pending'",
            "CREATE INDEX IF NOT EXISTS webhook_outbox_upload ON webhook_outbox (upload_id, seq)",
            "CREATE INDEX IF NOT EXISTS webhook_outbox_created ON webhook_outbox (created_at)",
            """CREATE TABLE IF NOT EXISTS webhook_endpoints (
                url TEXT NOT NULL CONSTRAINT webhook_endpoints_pkey PRIMARY KEY,
                disabled_reason TEXT,
                changed_at {time} NOT NULL
            )""",
        ),
    ),
)


# No other upload holds the video id being set (parameters: the video id, this upload's id).
_NOT_HELD: Final = "NOT EXISTS (SELECT 1 FROM uploads h WHERE h.video_id = ? AND h.upload_id <> ?)"


class Cursor(Protocol):
    """What :class:`SqlStore` needs of a DB-API cursor (``sqlite3.Cursor``, ``psycopg.Cursor``)."""

    @property
    def connection(self) -> Any: ...  # whose ``cursor()`` gives another cursor in the same transaction

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


def moved_columns(current: Upload, to: str, now: datetime, first_check: timedelta) -> dict[str, object]:
    """What every status change writes besides the status: lease, sequence, check schedule."""
    return {
        "status": to,
        "updated_at": now,
        "claimed_until": None,
        "notify_seq": current.notify_seq + 1,
        "check_at": now + first_check if to in CHECKED_STATUSES else None,
        "checks": 0,
    }


def plan_event(
    current: Upload,
    *,
    to: str | None,
    allowed: frozenset[str],
    fields: Mapping[str, object],
    event_type: str,
    event_time: datetime | None,
    now: datetime,
    first_check: timedelta,
) -> tuple[ApplyResult, dict[str, object]]:
    """The column changes for one (non-duplicate) event on ``current`` (see ``Store.apply_event``)."""
    if to is None:
        fill: dict[str, object] = {k: v for k, v in fields.items() if getattr(current, k) is None}
        if not fill:
            return ApplyResult.STALE, {}
        return ApplyResult.APPLIED, {**fill, "updated_at": now}
    if current.status not in allowed:
        return ApplyResult.STALE, {}
    changes: dict[str, object] = {**fields, **moved_columns(current, to, now, first_check)}
    if current.last_event_at is None or (event_time is not None and event_time >= current.last_event_at):
        changes["last_event"] = event_type
        changes["last_event_at"] = event_time
    return ApplyResult.APPLIED, changes


def iso_seconds(value: datetime | None) -> str | None:
    """``yyyy-MM-ddTHH:mm:ssZ`` (UTC), VOD's own time format, or ``None``."""
    return None if value is None else utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_micro(value: datetime) -> str:
    """``yyyy-MM-ddTHH:mm:ss.ffffffZ`` (UTC): when a notification's change happened."""
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_ID_KEYS: Final[Mapping[str, str]] = {"video": "VideoId", "image": "ImageId", "attached": "MediaId"}


def leased_notification(
    notification_id: str, upload_id: str, seq: int, kind: str, body: str, now: datetime, until: datetime
) -> Notification:
    """A notification just written at ``now`` and leased ``until``, as a claim would return it."""
    return Notification(
        notification_id=notification_id,
        upload_id=upload_id,
        seq=seq,
        type=kind,
        body=body,
        created_at=now,
        state="pending",
        attempts=0,
        next_attempt_at=now,
        claimed_until=until,
        last_status=None,
        last_error=None,
        finished_at=None,
    )


def notification_body(upload: Upload, now: datetime) -> str:
    """The notification of ``upload``'s current status (Standard Webhooks payload conventions:
    ``type``, ``timestamp`` of the change, ``data``). Never a credential, key or token: only the
    record's public fields, the client's own Extend and the sequence number."""
    data = {
        _ID_KEYS[upload.kind]: upload.video_id,
        "Owner": upload.owner,
        "Status": upload.status,
        "Title": upload.title,
        "FileName": upload.file_name,
        "Size": upload.size,
        "Duration": upload.duration,
        "Error": upload.error,
        "CreatedAt": iso_seconds(upload.created_at),
        "UpdatedAt": iso_seconds(upload.updated_at),
        "Extend": json.loads(upload.extend) if upload.extend else None,
        "Sequence": upload.notify_seq,
    }
    body = {"type": notification_type(upload.kind, upload.status), "timestamp": iso_micro(now), "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def encode_cursor(created_at: datetime, upload_id: str) -> str:
    raw = json.dumps([utc(created_at).isoformat(timespec="microseconds"), upload_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """``(created_at, upload_id)`` of a cursor; :class:`errors.InvalidParameter` if malformed."""
    try:
        if len(cursor) > 512 or not cursor.isascii():
            raise ValueError("bad cursor")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, upload_id = loads_json(raw, what="Cursor")
        created_at = datetime.fromisoformat(stamp)
        if not isinstance(upload_id, str):
            raise ValueError("bad cursor")
        check_id("Cursor", upload_id)  # the rule of every id (NUL, controls: never a driver error)
        if created_at.tzinfo is None:
            raise ValueError("bad cursor")
        return utc(created_at), upload_id
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error, UnicodeDecodeError) as exc:
        raise errors.InvalidParameter("The cursor is invalid.", field="Cursor") from exc


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


class EventRecord(NamedTuple):
    """One event as :meth:`SqlStore._record_event` receives it: checked and in UTC."""

    dedupe_key: str
    media_id: str
    event_type: str
    event_time: datetime | None
    source: str
    message_id: str | None
    body: str
    now: datetime
    until: datetime  # the lease the recorder takes


class EventApply(NamedTuple):
    """One event as :meth:`SqlStore._apply_event` receives it: checked, in UTC, fields cleaned."""

    event_id: int
    video_id: str
    event_type: str
    event_time: datetime | None
    to: str | None
    allowed: frozenset[str]
    fields: Mapping[str, object]
    now: datetime
    check_at: datetime  # when an upload that moves to a checked status is due for a check
    lease_until: datetime | None = None  # lease the move's notification to the caller until then


class Claim(NamedTuple):
    """One claim as :meth:`SqlStore._claim` receives it.

    Rows of ``table`` (key column ``key``) match ``where`` (whose placeholders ``params`` fill)
    and have no live lease (``claimed_until IS NULL OR claimed_until <= ?``, the last parameter
    being ``now``); they are walked in ``(order, key)`` along the partial index ``index_name``,
    leased ``until``, and returned as ``columns``.
    """

    table: str
    key: str
    columns: str
    index_name: str
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
    #: What makes one statement commit without waiting for its write to be flushed: a CTE named
    #: ``lazy`` that the statement joins (``FROM lazy``), or ``None`` where commits never wait
    #: for a flush anyway. Only for a write whose loss in a crash costs nothing but a repeat
    #: (:meth:`notification_delivered`: the notification is sent once more, same ``webhook-id``).
    LAZY_COMMIT: ClassVar[str | None] = None

    def __init__(self, *, notify_types: frozenset[str] | None, first_check_seconds: float) -> None:
        self._notify_types = notify_types
        self._first_check = timedelta(seconds=first_check_seconds)

    # --- hooks ----------------------------------------------------------------------------------

    @abstractmethod
    def _write(self, fn: Callable[[Cursor], T]) -> T:
        """Run ``fn`` as one write transaction, committed when it returns, rolled back if it raises."""

    @abstractmethod
    def _read(self, fn: Callable[[Cursor], T]) -> T:
        """Run ``fn``, a single read statement (no transaction of its own needed)."""

    def _write_one(self, fn: Callable[[Cursor], T]) -> T:
        """Run ``fn``, a single write statement that may run twice: atomic on its own, so a
        dialect may spare it an explicit transaction (PostgreSQL: autocommit, no BEGIN and COMMIT
        round trips), and then replay it after a lost answer although it may have committed. Its
        ``WHERE`` must make a second run a no-op (a state it moved out of; the same value set
        again), or, for a claim, at worst keep its first rows leased until the lease ends."""
        return self._write(fn)

    @contextmanager
    def _together(self, cur: Cursor) -> Iterator[bool]:
        """Let the statements run inside the block on ``cur``'s connection be sent together, in
        order, in the current transaction: their results are read only after the block, and one
        that fails raises by its end. Here each runs at once (the block is told ``False``: a
        result may decide what to run next); a dialect may queue them and send them in one round
        trip when the block ends (``True``: PostgreSQL's pipeline mode)."""
        yield False

    @abstractmethod
    def _lock_owner(self, cur: Cursor, owner: str) -> None:
        """Serialise the reservations of ``owner`` until the transaction ends (the quota's lock)."""

    @abstractmethod
    def _lock_migrations(self, cur: Cursor) -> None:
        """Serialise concurrent migrations until the transaction ends."""

    @abstractmethod
    def _claim(self, claim: Claim) -> list[Any]:
        """Lease up to ``claim.limit`` unleased rows matching ``claim.where``; return their rows."""

    @abstractmethod
    def _record_event(self, record: EventRecord) -> tuple[InboxEvent, bool, Upload | None]:
        """Record (or find) one event and claim it (see :meth:`record_event`), in one transaction."""

    @abstractmethod
    def _apply_event(self, event: EventApply) -> Applied:
        """Apply one recorded event (see :meth:`apply_event`) and finish it, in one transaction."""

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

    def _converted(self, columns: Iterable[str], row: Sequence[Any], times: frozenset[str]) -> dict[str, Any]:
        values = dict(zip(columns, row, strict=True))
        for column in times:
            if values.get(column) is not None:
                values[column] = self._from_time(values[column])
        return values

    def _upload(self, row: Sequence[Any]) -> Upload:
        return Upload(**self._converted(UPLOAD_COLUMNS, row, TIME_COLUMNS))

    def _event(self, row: Sequence[Any]) -> InboxEvent:
        return InboxEvent(**self._converted(EVENT_COLUMNS.split(", "), row, _EVENT_TIMES))

    def _notification(self, row: Sequence[Any]) -> Notification:
        return Notification(**self._converted(NOTIFICATION_COLUMNS.split(", "), row, _NOTIFICATION_TIMES))

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

    def _notify(
        self, cur: Cursor, moved: Sequence[Upload], now: datetime, *, lease_until: datetime | None = None
    ) -> Notification | None:
        """Write the notifications of ``moved`` (uploads just changed), in the caller's transaction:
        one statement at most, none when notifications are off or no type is selected.

        With ``lease_until`` (one upload), the notification is leased to the caller until then in
        the same statement, unless an earlier one of its upload is still pending, and returned
        when it was."""
        if self._notify_types is None:
            return None
        notes = [
            (f"msg_{u.upload_id}_{u.notify_seq}", u, kind, notification_body(u, now))
            for u in moved
            if (kind := notification_type(u.kind, u.status)) in self._notify_types
        ]
        if not notes:
            return None
        at = self._time(now)
        rows = [
            (nid, u.upload_id, u.notify_seq, kind, body, at, "pending", at) for nid, u, kind, body in notes
        ]
        columns = "notification_id, upload_id, seq, type, body, created_at, state, next_attempt_at"
        if lease_until is None:
            values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(rows))
            sql = f"INSERT INTO webhook_outbox ({columns}) VALUES {values}"  # noqa: S608
            self._exec(cur, sql, [v for r in rows for v in r])
            return None
        if len(notes) != 1:
            raise ValueError("a leased notification is one upload's")
        (nid, upload, kind, body), row = notes[0], rows[0]
        # The same rule as claim_notifications: an upload's notifications go out in order.
        leased = self._exec(
            cur,
            f"INSERT INTO webhook_outbox ({columns}, claimed_until)"  # noqa: S608
            " SELECT ?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN EXISTS (SELECT 1 FROM webhook_outbox p"
            " WHERE p.upload_id = ? AND p.seq < ? AND p.state = 'pending') THEN NULL ELSE ? END"
            " RETURNING claimed_until",
            [*row, upload.upload_id, upload.notify_seq, self._time(lease_until)],
        ).fetchone()[0]
        if leased is None:
            return None
        return leased_notification(nid, upload.upload_id, upload.notify_seq, kind, body, now, lease_until)

    def _move(
        self,
        cur: Cursor,
        *,
        where: str,
        params: Sequence[object],
        to: str,
        fields: Mapping[str, object],
        now: datetime,
    ) -> list[Upload]:
        """Move every upload matching ``where`` to ``to`` (with ``fields``) and notify; the moved rows."""
        sets = {
            **fields,
            "status": to,
            "updated_at": now,
            "claimed_until": None,
            "check_at": now + self._first_check if to in CHECKED_STATUSES else None,
            "checks": 0,
        }
        assignments = ", ".join([*(f"{c} = ?" for c in sets), "notify_seq = notify_seq + 1"])
        rows = self._exec(
            cur,
            f"UPDATE uploads SET {assignments} WHERE {where} RETURNING {COLUMNS}",  # noqa: S608
            [*(self._value(c, v) for c, v in sets.items()), *params],
        ).fetchall()
        moved = [self._upload(r) for r in rows]
        self._notify(cur, moved, now)
        return moved

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
        if upload.kind not in KINDS:
            raise ValueError(f"unknown media kind {upload.kind!r}")
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

        # The insert happens only if every check passes, in the same statement; the checks then
        # run again on their own, under the same lock (so their answer is the one the insert saw),
        # to say which failed when it did not. After the lock: a statement's snapshot is taken
        # when it starts, and only a snapshot taken under the lock sees every earlier reservation.
        # They are sent together (:meth:`_together`): on PostgreSQL the lock, the insert, the
        # checks (queued whatever the insert does) and psycopg's BEGIN are one round trip, and
        # COMMIT a second; on SQLite the checks run only after an insert that did not happen.
        guarded = (
            f"INSERT INTO uploads ({COLUMNS}) SELECT {marks(len(UPLOAD_COLUMNS))} WHERE NOT EXISTS ("  # noqa: S608
            "SELECT 1 FROM uploads WHERE owner = ? AND idempotency_key = ?)"
            f" AND (SELECT count(*) FROM uploads WHERE owner = ? AND status IN ({marks(len(_PENDING))})) < ?"
            " AND NOT EXISTS (SELECT 1 FROM uploads WHERE upload_id = ?)"
            " AND NOT EXISTS (SELECT 1 FROM uploads WHERE reference_id = ?)"
            " AND NOT EXISTS (SELECT 1 FROM uploads WHERE video_id = ?)"
        )
        guarded_params = [*values, *params[: 2 + len(_PENDING) + 1], max_pending, *params[-3:]]

        def run(cur: Cursor) -> Upload:
            checked = cur.connection.cursor()
            with self._together(cur) as queued:
                self._lock_owner(cur, upload.owner)
                self._exec(cur, guarded, guarded_params)
                if queued or cur.rowcount != 1:  # queued, the checks cost no round trip of their own
                    self._exec(checked, checks, params)
            if cur.rowcount == 1:
                return upload
            key_used, pending, id_used, reference_used, video_used = checked.fetchone()
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
            raise AssertionError("the reservation's checks passed but its insert did not")  # pragma: no cover

        return self._write(run)

    def find_by_idempotency_key(self, owner: str, key: str) -> Upload | None:
        """See :meth:`shared.store.Store.find_by_idempotency_key`."""
        return self._read(lambda cur: self._one(cur, "owner = ? AND idempotency_key = ?", (owner, key)))

    def attach_video(
        self, upload_id: str, video_id: str, credential_expires_at: datetime | None, now: datetime
    ) -> bool:
        """See :meth:`shared.store.Store.attach_video`."""
        now = utc(now)

        def run(cur: Cursor) -> bool:
            moved = self._move(
                cur,
                where=f"upload_id = ? AND status = ? AND {_NOT_HELD}",
                params=(upload_id, states.CREATING, video_id, upload_id),
                to=states.CREATED,
                fields={"video_id": video_id, "credential_expires_at": credential_expires_at},
                now=now,
            )
            if not moved and self._video_held(cur, video_id, upload_id):
                raise conflict("uploads_video_id_key")
            return len(moved) == 1

        if self._writes_created_notifications():
            return self._write(run)  # the move and its notification: one transaction
        # The move alone, one statement: a dialect may run it in autocommit. A replay after it
        # committed finds the row ``created`` and returns False, as for any second attach; the
        # caller tells "already mine" apart by reading the row (services.uploads). An answer lost
        # for good raises StoreUnavailable with ``may_have_committed``, and the service then
        # keeps the media (a committed record may point to it).
        return self._write_one(run)

    def _writes_created_notifications(self) -> bool:
        types = self._notify_types
        return types is not None and any(notification_type(k, states.CREATED) in types for k in KINDS)

    def _video_held(self, cur: Cursor, video_id: str, upload_id: str) -> bool:
        """Whether another upload holds ``video_id``. The writes that set a video id test it
        first, inside their own statement (``_NOT_HELD``: the constraint's violation would be
        reported differently by each dialect), and ask this only when they changed nothing."""
        sql = "SELECT 1 FROM uploads WHERE video_id = ? AND upload_id <> ?"
        return self._exec(cur, sql, (video_id, upload_id)).fetchone() is not None

    def replace_media(
        self, upload_id: str, video_id: str, credential_expires_at: datetime | None, now: datetime
    ) -> bool:
        """See :meth:`shared.store.Store.replace_media`."""
        params = (
            video_id,
            self._time_or_none(credential_expires_at),
            self._time(utc(now)),
            upload_id,
            states.CREATED,
            video_id,
            upload_id,
        )
        sql = (
            "UPDATE uploads SET video_id = ?, credential_expires_at = ?, updated_at = ? "  # noqa: S608
            f"WHERE upload_id = ? AND status = ? AND {_NOT_HELD}"
        )

        def run(cur: Cursor) -> bool:
            if self._exec(cur, sql, params).rowcount == 1:
                return True
            if self._video_held(cur, video_id, upload_id):
                raise conflict("uploads_video_id_key")
            return False

        return self._write(run)

    def discard_reservation(self, upload_id: str) -> bool:
        """See :meth:`shared.store.Store.discard_reservation`."""
        sql = "DELETE FROM uploads WHERE upload_id = ? AND status = ?"
        return self._write_one(lambda cur: self._exec(cur, sql, (upload_id, states.CREATING)).rowcount == 1)

    def get(self, owner: str, video_id: str, *, kind: str = "video") -> Upload | None:
        """See :meth:`shared.store.Store.get`."""
        where = "video_id = ? AND owner = ? AND kind = ?"
        return self._read(lambda cur: self._one(cur, where, (video_id, owner, kind)))

    def get_by_video_id(self, video_id: str) -> Upload | None:
        """See :meth:`shared.store.Store.get_by_video_id`."""
        return self._read(lambda cur: self._one(cur, "video_id = ?", (video_id,)))

    def list_uploads(
        self,
        owner: str,
        *,
        kind: str = "video",
        status: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> tuple[list[Upload], str | None]:
        """See :meth:`shared.store.Store.list_uploads`."""
        check_limit(limit)
        if status is not None and status not in states.PUBLIC_STATUSES:
            raise errors.InvalidParameter("The status filter is not a known upload status.", field="Status")
        where = ["owner = ?", "kind = ?", "status <> ?"]
        params: list[object] = [owner, kind, states.CREATING]
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
        return self._write_one(lambda cur: self._exec(cur, sql, params).rowcount == 1)

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
        clean, now = clean_fields(fields), utc(now)
        if not allowed:
            return False
        where = f"video_id = ? AND status IN ({marks(len(allowed))})"
        params = (video_id, *sorted(allowed))
        return self._write(
            lambda cur: len(self._move(cur, where=where, params=params, to=to, fields=clean, now=now)) == 1
        )

    def expire_created(self, video_ids: Sequence[str], *, now: datetime) -> int:
        """See :meth:`shared.store.Store.expire_created`."""
        if not video_ids:
            return 0
        now = utc(now)
        # Every candidate is 'created': the planner must look the ids up by the unique video_id
        # index (O(batch)), not walk a status index (O(table)); UNINDEXED_STATUS says so.
        where = f"video_id IN ({marks(len(video_ids))}) AND {self.UNINDEXED_STATUS} = ?"
        params = (*video_ids, states.CREATED)
        return self._write(
            lambda cur: len(
                self._move(cur, where=where, params=params, to=states.EXPIRED, fields={}, now=now)
            )
        )

    # --- events -------------------------------------------------------------------------------

    def record_event(
        self,
        *,
        dedupe_key: str,
        media_id: str,
        event_type: str,
        event_time: datetime | None,
        source: str,
        message_id: str | None,
        body: str,
        now: datetime,
        lease_seconds: float,
    ) -> tuple[InboxEvent, bool, Upload | None]:
        """See :meth:`shared.store.Store.record_event`."""
        return self._record_event(
            EventRecord(
                dedupe_key=dedupe_key,
                media_id=media_id,
                event_type=event_type,
                event_time=utc_or_none(event_time),
                source=source,
                message_id=message_id,
                body=body,
                now=utc(now),
                until=lease_end(now, lease_seconds),
            )
        )

    def apply_event(
        self,
        event_id: int,
        *,
        video_id: str,
        event_type: str,
        event_time: datetime | None,
        to: str | None,
        allowed_from: Iterable[str] | None = None,
        fields: Mapping[str, object] | None = None,
        now: datetime,
        lease_seconds: float | None = None,
    ) -> Applied:
        """See :meth:`shared.store.Store.apply_event`."""
        now = utc(now)
        leasing = lease_seconds is not None and self._notify_types is not None
        return self._apply_event(
            EventApply(
                event_id=event_id,
                video_id=video_id,
                event_type=event_type,
                event_time=utc_or_none(event_time),
                to=to,
                allowed=resolve_allowed(to, allowed_from),
                fields=clean_fields(fields),
                now=now,
                check_at=now + self._first_check,
                lease_until=lease_end(now, lease_seconds) if leasing and lease_seconds is not None else None,
            )
        )

    def defer_event(
        self, event_id: int, *, next_attempt_at: datetime, error: str | None, now: datetime
    ) -> bool:
        """See :meth:`shared.store.Store.defer_event`."""
        utc(now)
        sql = (
            "UPDATE event_inbox SET attempts = attempts + 1, claimed_until = NULL, next_attempt_at = ?, "
            "last_error = ? WHERE event_id = ? AND state = 'pending'"
        )
        params = (self._time(utc(next_attempt_at)), error, event_id)
        return self._write(lambda cur: self._exec(cur, sql, params).rowcount == 1)

    def finish_event(self, event_id: int, *, result: str, now: datetime, error: str | None = None) -> bool:
        """See :meth:`shared.store.Store.finish_event`."""
        sql = (
            "UPDATE event_inbox SET state = 'done', result = ?, done_at = ?, claimed_until = NULL, "
            "last_error = coalesce(?, last_error) WHERE event_id = ? AND state = 'pending'"
        )
        params = (result, self._time(utc(now)), error, event_id)
        return self._write_one(lambda cur: self._exec(cur, sql, params).rowcount == 1)

    def claim_events(self, *, limit: int, lease_seconds: float, now: datetime) -> list[InboxEvent]:
        """See :meth:`shared.store.Store.claim_events`."""
        check_limit(limit)
        rows = self._claim(
            Claim(
                table="event_inbox",
                key="event_id",
                columns=EVENT_COLUMNS,
                index_name="event_inbox_pending",
                where="state = 'pending' AND next_attempt_at <= ?",
                params=(self._time(utc(now)), self._time(utc(now))),
                order="next_attempt_at",
                until=self._time(lease_end(now, lease_seconds)),
                limit=limit,
            )
        )
        return [self._event(r) for r in rows]

    # --- cleanup ------------------------------------------------------------------------------

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
        return self._claim_uploads(
            "uploads_stale_pending", where, params, "created_at", now, lease_seconds, limit
        )

    def claim_stuck(self, *, limit: int, lease_seconds: float, now: datetime) -> list[Upload]:
        """See :meth:`shared.store.Store.claim_stuck`."""
        check_limit(limit)
        # Literal statuses, as in the partial index uploads_check.
        where = f"status IN {CHECKED_SQL} AND check_at <= ?"
        return self._claim_uploads(
            "uploads_check", where, [self._time(utc(now))], "check_at", now, lease_seconds, limit
        )

    def _claim_uploads(
        self,
        index: str,
        where: str,
        params: Sequence[object],
        order: str,
        now: datetime,
        lease_seconds: float,
        limit: int,
    ) -> list[Upload]:
        rows = self._claim(
            Claim(
                table="uploads",
                key="upload_id",
                columns=COLUMNS,
                index_name=index,
                where=where,
                params=(*params, self._time(utc(now))),
                order=order,
                until=self._time(lease_end(now, lease_seconds)),
                limit=limit,
            )
        )
        return [self._upload(r) for r in rows]

    def schedule_check(self, upload_id: str, *, check_at: datetime, now: datetime) -> bool:
        """See :meth:`shared.store.Store.schedule_check`."""
        utc(now)
        sql = (
            "UPDATE uploads SET check_at = ?, checks = checks + 1, claimed_until = NULL "  # noqa: S608
            f"WHERE upload_id = ? AND status IN {CHECKED_SQL}"
        )
        return self._write(
            lambda cur: self._exec(cur, sql, (self._time(utc(check_at)), upload_id)).rowcount == 1
        )

    def release_claim(self, upload_id: str) -> bool:
        """See :meth:`shared.store.Store.release_claim`."""
        sql = "UPDATE uploads SET claimed_until = NULL WHERE upload_id = ?"
        return self._write_one(lambda cur: self._exec(cur, sql, (upload_id,)).rowcount == 1)

    def prune(
        self,
        *,
        now: datetime,
        events_before: datetime,
        idempotency_before: datetime,
        orphans_before: datetime,
        notifications_before: datetime | None = None,
    ) -> PruneCounts:
        """See :meth:`shared.store.Store.prune`."""
        utc(now)
        events_cut, idem_cut, orphan_cut = (
            self._time(utc(t)) for t in (events_before, idempotency_before, orphans_before)
        )
        notifications_cut = None if notifications_before is None else self._time(utc(notifications_before))

        def run(cur: Cursor) -> PruneCounts:
            events = self._exec(
                cur,
                "DELETE FROM event_inbox WHERE state = 'done' AND received_at < ? AND result <> 'orphan'",
                (events_cut,),
            ).rowcount
            orphans = self._exec(
                cur,
                "DELETE FROM event_inbox WHERE state = 'done' AND received_at < ? AND result = 'orphan'",
                (orphan_cut,),
            ).rowcount
            idem = self._exec(
                cur,
                "UPDATE uploads SET idempotency_key = NULL, request_hash = NULL "
                "WHERE idempotency_key IS NOT NULL AND created_at < ? AND status <> ?",
                (idem_cut, states.CREATING),
            ).rowcount
            notifications = 0
            if notifications_cut is not None:
                notifications = self._exec(
                    cur,
                    "DELETE FROM webhook_outbox WHERE state <> 'pending' AND finished_at < ?",
                    (notifications_cut,),
                ).rowcount
            return PruneCounts(events=events, idempotency=idem, orphans=orphans, notifications=notifications)

        return self._write(run)

    # --- notifications ------------------------------------------------------------------------

    def claim_notifications(
        self, *, limit: int, lease_seconds: float, now: datetime, upload_id: str | None = None
    ) -> list[Notification]:
        """See :meth:`shared.store.Store.claim_notifications`."""
        check_limit(limit)
        where = (
            "state = 'pending' AND next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM webhook_outbox p"
            " WHERE p.upload_id = webhook_outbox.upload_id AND p.seq < webhook_outbox.seq"
            " AND p.state = 'pending')"
        )
        params: tuple[object, ...] = (self._time(utc(now)),)
        if upload_id is not None:
            where += " AND upload_id = ?"
            params += (upload_id,)
        rows = self._claim(
            Claim(
                table="webhook_outbox",
                key="notification_id",
                columns=NOTIFICATION_COLUMNS,
                index_name="webhook_outbox_pending",
                where=where,
                params=(*params, self._time(utc(now))),
                order="next_attempt_at",
                until=self._time(lease_end(now, lease_seconds)),
                limit=limit,
            )
        )
        return [self._notification(r) for r in rows]

    def notification_delivered(self, notification_id: str, *, status: int, now: datetime) -> bool:
        """See :meth:`shared.store.Store.notification_delivered`."""
        sql = (
            "UPDATE webhook_outbox SET state = 'delivered', attempts = attempts + 1, last_status = ?, "
            "claimed_until = NULL, finished_at = ?{from_lazy} WHERE notification_id = ? AND state = 'pending'"
        )
        # At least once, as Standard Webhooks asks: a mark lost in a crash only means the receiver
        # gets this notification again, under the same webhook-id, which it dedupes on.
        if self.LAZY_COMMIT is None:
            sql = sql.format(from_lazy="")
        else:
            sql = self.LAZY_COMMIT + " " + sql.format(from_lazy=" FROM lazy")
        params = (status, self._time(utc(now)), notification_id)
        return self._write_one(lambda cur: self._exec(cur, sql, params).rowcount == 1)

    def notification_failed(
        self,
        notification_id: str,
        *,
        status: int | None,
        error: str,
        retry_at: datetime | None,
        now: datetime,
    ) -> bool:
        """See :meth:`shared.store.Store.notification_failed`."""
        state = "pending" if retry_at is not None else "dead"
        sql = (
            "UPDATE webhook_outbox SET state = ?, attempts = attempts + 1, last_status = ?, last_error = ?, "
            "claimed_until = NULL, next_attempt_at = ?, finished_at = ? "
            "WHERE notification_id = ? AND state = 'pending'"
        )
        finished = None if retry_at is not None else self._time(utc(now))
        params = (state, status, error[:500], self._time_or_none(retry_at), finished, notification_id)
        return self._write(lambda cur: self._exec(cur, sql, params).rowcount == 1)

    def notification_counts(self) -> NotificationCounts:
        """See :meth:`shared.store.Store.notification_counts`."""
        sql = "SELECT state, count(*) FROM webhook_outbox GROUP BY state"
        counts = dict(self._read(lambda cur: self._exec(cur, sql).fetchall()))
        return NotificationCounts(
            pending=int(counts.get("pending", 0)),
            delivered=int(counts.get("delivered", 0)),
            dead=int(counts.get("dead", 0)),
        )

    def list_notifications(
        self, *, state: str | None = None, since: datetime | None = None, limit: int = 20
    ) -> list[Notification]:
        """See :meth:`shared.store.Store.list_notifications`."""
        check_limit(limit)
        where: list[str] = ["1 = 1"]
        params: list[object] = []
        if state is not None:
            where.append("state = ?")
            params.append(state)
        if since is not None:
            where.append("created_at >= ?")
            params.append(self._time(utc(since)))
        sql = (
            f"SELECT {NOTIFICATION_COLUMNS} FROM webhook_outbox WHERE {' AND '.join(where)} "  # noqa: S608
            "ORDER BY created_at DESC, notification_id DESC LIMIT ?"
        )
        rows = self._read(lambda cur: self._exec(cur, sql, (*params, limit)).fetchall())
        return [self._notification(r) for r in rows]

    def requeue_notifications(
        self, *, now: datetime, notification_id: str | None = None, since: datetime | None = None
    ) -> int:
        """See :meth:`shared.store.Store.requeue_notifications`."""
        if (notification_id is None) == (since is None):
            raise ValueError("requeue one notification by id, or every one since a time")
        where, param = (
            ("notification_id = ?", notification_id)
            if notification_id is not None
            else ("created_at >= ?", self._time(utc(since)))  # type: ignore[arg-type]
        )
        sql = (
            "UPDATE webhook_outbox SET state = 'pending', next_attempt_at = ?, claimed_until = NULL, "  # noqa: S608
            f"finished_at = NULL, attempts = 0 WHERE state <> 'pending' AND {where}"
        )
        return self._write(lambda cur: self._exec(cur, sql, (self._time(utc(now)), param)).rowcount)

    def webhook_endpoint_disabled(self, url: str) -> str | None:
        """See :meth:`shared.store.Store.webhook_endpoint_disabled`."""
        sql = "SELECT disabled_reason FROM webhook_endpoints WHERE url = ?"
        row = self._read(lambda cur: self._exec(cur, sql, (url,)).fetchone())
        return None if row is None else row[0]

    def set_webhook_endpoint(self, url: str, *, disabled_reason: str | None, now: datetime) -> None:
        """See :meth:`shared.store.Store.set_webhook_endpoint`."""
        sql = (
            "INSERT INTO webhook_endpoints (url, disabled_reason, changed_at) VALUES (?, ?, ?) "
            "ON CONFLICT (url) DO UPDATE SET disabled_reason = excluded.disabled_reason, "
            "changed_at = excluded.changed_at"
        )
        self._write(lambda cur: self._exec(cur, sql, (url, disabled_reason, self._time(utc(now)))))
