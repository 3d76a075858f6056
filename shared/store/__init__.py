"""The upload store: its types, its contract, and the factory (PostgreSQL in production, SQLite locally).

``open_store(url)`` picks the implementation from the URL scheme and caches one instance per URL
(a warm FC instance reuses its connection); nothing connects until the first operation, and a
connection that failed is replaced on the next call. Importing this package imports neither
sqlite3 nor psycopg. The operations are written once, in :class:`shared.store.base.SqlStore`;
:mod:`shared.store.sqlite` and :mod:`shared.store.postgres` add only what differs per dialect
(connections and transactions, the per-owner lock, claiming, recording and applying events).

Three tables carry the state (``docs/DESIGN.md`` draws the flow):

- ``uploads``: one row per media we issued a credential for (videos, images, attached media:
  ``kind``), with its public status (:mod:`shared.states`), owner and what VOD reported;
- ``event_inbox``: every VOD event that passed verification, recorded before anything acts on
  it (its dedupe key claimed); an event is ``pending`` until it is applied or found stale, so an
  event whose processing was cut short (a budget, an outage, a crash) is finished later;
- ``webhook_outbox``: the notifications of the app (Standard Webhooks), one per state change,
  written in the same transaction as the change itself when notifications are on.

Conventions every implementation keeps:

- every time is timezone-aware and stored as UTC; naive datetimes are refused (``ValueError``);
  time is never read from a clock here, callers pass ``now``;
- driver exceptions never escape: the constraint violations we expect become
  :class:`errors.Conflict` (or :class:`errors.QuotaExceeded`); a value the database cannot hold
  (out of range, not encodable, too long to index) is :class:`errors.UnstorableValue` (the
  caller's data, never worth a retry); everything else is :class:`errors.StoreUnavailable`, with
  the driver's exception chained as ``__cause__``; the database URL and its password never appear
  in a message;
- each operation is one transaction; status changes are conditional updates
  (``... WHERE status IN allowed_from``) so concurrent writers never move an upload backwards,
  and ``allowed_from`` must be a subset of :func:`states.allowed_from` (``ValueError`` otherwise);
- every status change increments the upload's ``notify_seq`` and, when the store was built with
  ``notify_types`` holding the change's type (``upload.ready``, ``image.created``, ...), writes
  its notification to ``webhook_outbox`` in the same transaction
  (:func:`shared.states.notification_type`);
- an upload that reaches ``uploaded`` or ``processing`` is due for a check with VOD at
  ``check_at`` (``now + first_check_seconds``, then as cleanup reschedules it); leaving those
  statuses clears it.

Idempotency (STYLE point 12) lives on the upload row: ``reserve_upload`` claims
``(owner, idempotency_key)`` together with the request hash, ``attach_video`` completes it,
``prune(idempotency_before=...)`` expires it (clears the key) and ``discard_reservation`` releases
it; ``find_by_idempotency_key`` reads it back for a replay.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol

from shared import states
from shared.states import KINDS

if TYPE_CHECKING:
    from pydantic import SecretStr

    from shared.settings import Settings

__all__ = [
    "UPDATABLE_FIELDS",
    "UPLOAD_COLUMNS",
    "Applied",
    "ApplyResult",
    "InboxEvent",
    "Notification",
    "NotificationCounts",
    "PruneCounts",
    "Store",
    "Upload",
    "create_store",
    "get_store",
    "new_reservation",
    "open_store",
    "reset_stores",
]


# The records here and in the services are NamedTuples rather than frozen dataclasses: immutable,
# compared and printed field by field all the same, and built without compiling code. CPython
# 3.10 (FC's runtime) compiles every method a dataclass generates with ``exec`` as the module is
# imported: about 2 ms for Upload alone, against 0.25 ms as a NamedTuple (bench/README.md, cold
# start). Classes that are mutable, hide a field from ``repr`` or are ``dataclasses.replace``d
# stay dataclasses.
class Upload(NamedTuple):
    """One upload as stored. ``video_id`` is VOD's media id (VideoId, ImageId or attached MediaId);
    it is ``None`` while the row is ``creating``.

    ``claimed_until`` is the cleanup lease (see :meth:`Store.claim_stale`), ``None`` when unclaimed;
    ``media_type`` is an image's ImageType or attached media's BusinessType; ``extend`` the
    client's ``UserData.Extend`` as compact JSON; ``notify_seq`` counts the upload's status
    changes (each notification carries it); ``check_at`` / ``checks`` schedule the check of a
    ``created``/``uploaded``/``processing`` upload with VOD (set on every move to one of them).
    """

    upload_id: str
    owner: str
    video_id: str | None
    reference_id: str
    title: str
    file_name: str
    file_size: int | None
    status: str
    created_at: datetime
    updated_at: datetime
    credential_expires_at: datetime | None = None
    last_event: str | None = None
    last_event_at: datetime | None = None
    duration: float | None = None
    size: int | None = None
    error: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    claimed_until: datetime | None = None
    kind: str = "video"
    media_type: str | None = None
    extend: str | None = None
    notify_seq: int = 0
    check_at: datetime | None = None
    checks: int = 0


#: Column order of ``uploads``, equal to the field order of :class:`Upload`.
UPLOAD_COLUMNS: Final[tuple[str, ...]] = Upload._fields

#: Columns that ``transition`` and ``apply_event`` may set through ``fields``, with their type.
UPDATABLE_FIELDS: Final[Mapping[str, type]] = {"duration": float, "size": int, "error": str}


class ApplyResult(Enum):
    """What :meth:`Store.apply_event` did with one recorded event."""

    APPLIED = "applied"  # the upload moved (or an informational event filled empty fields)
    DUPLICATE = "duplicate"  # the event was already finished; nothing changed
    STALE = "stale"  # the upload is past the event: nothing changed
    ORPHAN = "orphan"  # no upload has this media id; the event stays in the inbox as an orphan


class Applied(NamedTuple):
    """What :meth:`Store.apply_event` did, and the change's notification when the call leased it
    (``lease_seconds``): the caller sends it without claiming it first."""

    result: ApplyResult
    notification: Notification | None = None


class InboxEvent(NamedTuple):
    """One recorded VOD event (``event_inbox``); ``body`` is its JSON exactly as received."""

    event_id: int
    dedupe_key: str
    media_id: str | None
    event_type: str
    event_time: datetime | None
    source: str  # "http" or "mns"
    message_id: str | None
    body: str
    received_at: datetime
    state: str  # "pending" or "done"
    result: str | None
    attempts: int
    next_attempt_at: datetime | None
    claimed_until: datetime | None
    last_error: str | None


class Notification(NamedTuple):
    """One notification of the app (``webhook_outbox``): ``body`` is the exact JSON to sign and send.

    ``notification_id`` (``msg_<upload_id>_<seq>``) is the Standard Webhooks ``webhook-id``: stable
    across retries, never chosen by a client, without ``.``.
    """

    notification_id: str
    upload_id: str
    seq: int
    type: str
    body: str
    created_at: datetime
    state: str  # "pending", "delivered" or "dead"
    attempts: int
    next_attempt_at: datetime | None
    claimed_until: datetime | None
    last_status: int | None
    last_error: str | None
    finished_at: datetime | None


class NotificationCounts(NamedTuple):
    """How many notifications are in each state, for ``vodfc webhooks list``."""

    pending: int
    delivered: int
    dead: int


class PruneCounts(NamedTuple):
    """Rows removed (or, for idempotency keys, cleared) by :meth:`Store.prune`."""

    events: int
    idempotency: int
    orphans: int
    notifications: int = 0


def new_reservation(
    *,
    upload_id: str,
    owner: str,
    reference_id: str,
    title: str,
    file_name: str,
    file_size: int | None,
    now: datetime,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    kind: str = "video",
    media_type: str | None = None,
    extend: str | None = None,
) -> Upload:
    """The ``creating`` row that :meth:`Store.reserve_upload` inserts before VOD is asked."""
    if kind not in KINDS:
        raise ValueError(f"unknown media kind {kind!r}")
    return Upload(
        upload_id=upload_id,
        owner=owner,
        video_id=None,
        reference_id=reference_id,
        title=title,
        file_name=file_name,
        file_size=file_size,
        status=states.CREATING,
        created_at=now,
        updated_at=now,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        kind=kind,
        media_type=media_type,
        extend=extend,
    )


class Store(Protocol):
    """The operations of the upload store; see the module docstring for shared conventions."""

    #: ``"sqlite"`` or ``"postgresql"``.
    @property
    def dialect(self) -> str: ...

    def migrate(self) -> int:
        """Create or upgrade the schema; idempotent and safe to run concurrently.

        Returns the schema version now in place (recorded in table ``schema_version``).
        """
        ...

    def close(self) -> None:
        """Close the connection; the next operation opens a new one."""
        ...

    # --- uploads ----------------------------------------------------------------------------

    def reserve_upload(self, upload: Upload, *, max_pending: int) -> Upload:
        """Insert ``upload`` (status ``creating`` or ``created``) if the owner's quota allows it.

        Atomic per owner: the check "fewer than ``max_pending`` uploads (of any kind) in
        ``creating`` or ``created``" and the insert happen under one lock (PostgreSQL: a
        transaction holding ``pg_advisory_xact_lock(<ns>, hashtext(owner))``; SQLite:
        ``BEGIN IMMEDIATE``), so N concurrent reservations for one owner succeed exactly
        ``max_pending - pending`` times. Order of checks: idempotency key, quota, uniqueness of
        ``upload_id`` / ``reference_id`` / ``video_id``.

        Raises :class:`errors.Conflict` ``IdempotencyKeyInUse`` if the owner already has an upload
        with this ``idempotency_key`` (whatever its status), :class:`errors.QuotaExceeded`,
        :class:`errors.Conflict` ``UploadIdInUse`` / ``ReferenceIdInUse`` / ``VideoIdInUse``.
        """
        ...

    def find_by_idempotency_key(self, owner: str, key: str) -> Upload | None:
        """The owner's upload made with this Idempotency-Key (any kind and status)."""
        ...

    def attach_video(
        self, upload_id: str, video_id: str, credential_expires_at: datetime | None, now: datetime
    ) -> bool:
        """Record VOD's answer: ``creating`` → ``created`` with the media id and credential expiry.

        Returns ``False`` (nothing changed) if the row is gone or no longer ``creating``.
        Raises :class:`errors.Conflict` ``VideoIdInUse`` if another upload holds ``video_id``, and
        :class:`errors.StoreUnavailable` with ``may_have_committed`` set when the store cannot
        tell whether the attach committed (its answer was lost with the connection).
        """
        ...

    def replace_media(
        self, upload_id: str, video_id: str, credential_expires_at: datetime | None, now: datetime
    ) -> bool:
        """Point a ``created`` upload at a new media id (an image or attached media asked again:
        VOD cannot refresh their credentials, it issues a new media). Returns ``False`` if the
        upload is not ``created``; :class:`errors.Conflict` ``VideoIdInUse`` as for attach."""
        ...

    def discard_reservation(self, upload_id: str) -> bool:
        """Delete a reservation that is still ``creating`` (VOD refused or the call failed).

        Returns whether a row was deleted; rows past ``creating`` are never deleted.
        """
        ...

    def get(self, owner: str, video_id: str, *, kind: str = "video") -> Upload | None:
        """The owner's upload of ``kind`` with ``video_id``; another owner's (or another kind's)
        upload is ``None``, like a missing one."""
        ...

    def get_by_video_id(self, video_id: str) -> Upload | None:
        """The upload with ``video_id``, whoever owns it and of any kind (callbacks, cleanup)."""
        ...

    def list_uploads(
        self,
        owner: str,
        *,
        kind: str = "video",
        status: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> tuple[list[Upload], str | None]:
        """One page of the owner's uploads of ``kind``, newest first, never ``creating`` ones.

        Keyset pagination on ``(created_at, upload_id)`` descending: ``cursor`` is the opaque
        ``next_cursor`` of the previous page (URL-safe base64), stable under concurrent inserts.
        ``next_cursor`` is ``None`` on the last page. ``status`` filters on one public status.
        Raises :class:`errors.InvalidParameter` (field ``Cursor`` / ``Status``) for a malformed
        cursor or an unknown status; ``ValueError`` if ``limit < 1``.
        """
        ...

    def set_credential_expiry(self, video_id: str, expires_at: datetime, now: datetime) -> bool:
        """Record refreshed upload credentials; only while the upload is ``created``.

        Returns ``False`` if there is no such upload or it is past ``created``.
        """
        ...

    def transition(
        self,
        video_id: str,
        *,
        to: str,
        allowed_from: Iterable[str] | None = None,
        now: datetime,
        fields: Mapping[str, object] | None = None,
    ) -> bool:
        """Move the upload to ``to`` if its status is in ``allowed_from``; one conditional update.

        ``allowed_from`` defaults to :func:`states.allowed_from` ``(to)``. ``fields`` (keys of
        :data:`UPDATABLE_FIELDS`; ``None`` values are ignored) are written with the move, the
        cleanup lease is cleared and the move's notification written. Returns whether it moved.
        """
        ...

    def expire_created(self, video_ids: Sequence[str], *, now: datetime) -> int:
        """Mark every listed upload that is still ``created`` as ``expired``, in one transaction.

        Cleanup's batch form of ``transition(to="expired", allowed_from={"created"})``; returns
        how many moved. Leases are cleared; each move writes its notification.
        """
        ...

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
        """Record one verified event in the inbox, before anything acts on it, and claim it.

        The insert claims ``dedupe_key``: a second delivery of the same event finds the first
        row. Returns ``(event, owned, upload)``: ``owned`` is true when this caller holds the
        event's lease (``claimed_until = now + lease_seconds``) and must process it — the event
        is ``pending`` and nobody else holds a live lease on it; ``upload`` is the upload with
        ``media_id`` (or ``None``), read in the same round trip.
        """
        ...

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
        """Apply one recorded event to its upload and finish it, in one transaction.

        1. The event is no longer ``pending`` → ``DUPLICATE`` and nothing changes.
        2. No upload has ``video_id`` → the event is finished as an orphan → ``ORPHAN``.
        3. ``to`` is set and the upload's status is in ``allowed_from`` (default
           :func:`states.allowed_from` ``(to)``) → ``APPLIED``: status set to ``to``, ``fields``
           written (``None`` values ignored), ``last_event``/``last_event_at`` set unless a newer
           event was already recorded, the move's notification written.
        4. ``to`` is ``None`` (an informational event) → ``fields`` fill only what the upload does
           not have yet; ``APPLIED`` if anything was filled, else ``STALE``.
        5. Otherwise → ``STALE``: the event is too late (it would go backwards or leave a final
           state) and changes nothing at all.

        The event is finished (``done``, with the result) in every case but the first.

        With ``lease_seconds``, the move's notification (when one is written) is leased to the
        caller for that long in the same statement, unless an earlier notification of its upload
        is still pending (that one goes first, through :meth:`claim_notifications`); a leased
        one comes back in :attr:`Applied.notification`, so the caller sends it right after the
        commit without a claim of its own.
        """
        ...

    def defer_event(
        self, event_id: int, *, next_attempt_at: datetime, error: str | None, now: datetime
    ) -> bool:
        """Keep a pending event for later (VOD unavailable, not confirmed yet, out of budget).

        Counts the attempt, drops the lease, and makes the event due at ``next_attempt_at``.
        Returns ``False`` if the event is no longer pending.
        """
        ...

    def finish_event(self, event_id: int, *, result: str, now: datetime, error: str | None = None) -> bool:
        """Finish a pending event without applying it (ignored, invalid, no upload to act on).

        Returns ``False`` if the event was no longer pending.
        """
        ...

    def claim_events(self, *, limit: int, lease_seconds: float, now: datetime) -> list[InboxEvent]:
        """Claim up to ``limit`` pending events that are due (``next_attempt_at <= now``) and not
        leased, oldest first; concurrent claimers (PostgreSQL ``SKIP LOCKED``) never share one."""
        ...

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
        """Claim up to ``limit`` abandoned uploads (any kind) for cleanup, oldest first.

        Candidates: status ``creating`` or ``created``, ``created_at < created_before``, no
        upload credential still alive at ``credential_expired_before`` (when given: a client
        that refreshed its credential may still be uploading), and no live lease
        (``claimed_until`` is ``NULL`` or ``<= now``). Each returned upload gets
        ``claimed_until = now + lease_seconds``, so concurrent claimers (PostgreSQL
        ``FOR UPDATE SKIP LOCKED``; SQLite ``BEGIN IMMEDIATE``) never get the same upload while
        its lease lives. Calling again with the same arguments returns the next page (claimed
        rows drop out), so a cleanup run walks any backlog in constant memory. A claim ends with
        a transition, :meth:`discard_reservation`, :meth:`release_claim` or the lease expiring.
        """
        ...

    def claim_stuck(self, *, limit: int, lease_seconds: float, now: datetime) -> list[Upload]:
        """Claim up to ``limit`` ``created``/``uploaded``/``processing`` uploads due for a check with VOD
        (``check_at <= now``), soonest due first; leasing, concurrency and paging as for
        :meth:`claim_stale`. A claim ends with a transition, :meth:`schedule_check`,
        :meth:`release_claim` or the lease expiring."""
        ...

    def schedule_check(self, upload_id: str, *, check_at: datetime, now: datetime) -> bool:
        """VOD is not done with the upload yet: check it again at ``check_at`` (counted in
        ``checks``), and end its claim. Returns ``False`` if the upload is no longer
        ``created``/``uploaded``/``processing``."""
        ...

    def release_claim(self, upload_id: str) -> bool:
        """Clear the cleanup lease of one upload; returns whether the upload exists."""
        ...

    def prune(
        self,
        *,
        now: datetime,
        events_before: datetime,
        idempotency_before: datetime,
        orphans_before: datetime,
        notifications_before: datetime | None = None,
    ) -> PruneCounts:
        """Forget old bookkeeping in one transaction.

        Deletes finished events received before ``events_before`` (orphans: before
        ``orphans_before``) and finished (delivered or dead) notifications before
        ``notifications_before``; clears ``idempotency_key``/``request_hash`` of uploads created
        before ``idempotency_before`` unless still ``creating`` (so the key can be reused).
        Pending events and notifications are never pruned.
        """
        ...

    # --- notifications ------------------------------------------------------------------------

    def claim_notifications(
        self, *, limit: int, lease_seconds: float, now: datetime, upload_id: str | None = None
    ) -> list[Notification]:
        """Claim up to ``limit`` pending notifications that are due and not leased, oldest first,
        each only once every earlier notification of its upload is delivered or dead (a receiver
        sees one upload's changes in order). ``upload_id`` limits the claim to one upload (the
        delivery right after a change)."""
        ...

    def notification_delivered(self, notification_id: str, *, status: int, now: datetime) -> bool:
        """Mark a claimed notification delivered (the receiver answered ``status``, a 2xx)."""
        ...

    def notification_failed(
        self,
        notification_id: str,
        *,
        status: int | None,
        error: str,
        retry_at: datetime | None,
        now: datetime,
    ) -> bool:
        """Count a failed attempt: due again at ``retry_at``, or ``dead`` when it is ``None``."""
        ...

    def notification_counts(self) -> NotificationCounts:
        """How many notifications are pending, delivered and dead."""
        ...

    def list_notifications(
        self, *, state: str | None = None, since: datetime | None = None, limit: int = 20
    ) -> list[Notification]:
        """The newest notifications (optionally of one state, created at or after ``since``)."""
        ...

    def requeue_notifications(
        self, *, now: datetime, notification_id: str | None = None, since: datetime | None = None
    ) -> int:
        """Make delivered or dead notifications pending again (``vodfc webhooks replay``): one by
        id, or every one created at or after ``since``. They keep their id and start the retry
        schedule afresh (``attempts`` back to 0). Returns how many."""
        ...

    def webhook_endpoint_disabled(self, url: str) -> str | None:
        """Why notifications to ``url`` are off (a receiver answered 410 Gone), or ``None``."""
        ...

    def set_webhook_endpoint(self, url: str, *, disabled_reason: str | None, now: datetime) -> None:
        """Turn notifications to ``url`` off (with the reason) or, with ``None``, on again."""
        ...


# --- factories -----------------------------------------------------------------------------------

_stores: dict[tuple[Any, ...], Store] = {}
_stores_lock = threading.Lock()


def _plain(url: str | SecretStr) -> str:
    getter = getattr(url, "get_secret_value", None)
    return str(getter()) if callable(getter) else str(url)


def create_store(
    database_url: str | SecretStr,
    *,
    connect_timeout: float = 3.0,
    statement_timeout: float = 10.0,
    notify_types: frozenset[str] | None = None,
    first_check_seconds: float = 600.0,
    prepare: bool = True,
) -> Store:
    """A new, not yet connected store for ``database_url`` (uncached; tests and tools).

    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:``,
    ``postgresql://…`` or ``postgres://…``. Raises ``ValueError`` for other schemes (the message
    names the scheme only, never the URL). ``notify_types``: the notification types written to
    the outbox (``None``: notifications are off). ``prepare=False`` says a transaction-pooling
    proxy stands before PostgreSQL: no server-side prepared statements, no startup ``options``
    (:mod:`shared.store.postgres`).
    """
    url = _plain(database_url)
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        from shared.store.sqlite import SqliteStore

        return SqliteStore(
            url,
            busy_timeout=max(connect_timeout, 1.0),
            notify_types=notify_types,
            first_check_seconds=first_check_seconds,
        )
    if scheme in ("postgresql", "postgres"):
        from shared.store.postgres import PostgresStore

        return PostgresStore(
            url,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout,
            notify_types=notify_types,
            first_check_seconds=first_check_seconds,
            prepare=prepare,
        )
    raise ValueError(f"DATABASE_URL scheme {scheme!r} is not supported (use sqlite:// or postgresql://)")


def open_store(database_url: str | SecretStr, **options: Any) -> Store:
    """The instance's store for ``database_url`` and :func:`create_store`'s ``options``: built
    once, reused across warm invocations."""
    url = _plain(database_url)
    key = (url, *sorted(options.items()))
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = create_store(url, **options)
        return store


def get_store(settings: Settings) -> Store:
    """:func:`open_store` as the settings say (``DATABASE_URL``, ``DB_*``, webhooks, reconciling)."""
    return open_store(
        settings.database_url,
        connect_timeout=settings.db_connect_timeout,
        statement_timeout=settings.db_statement_timeout,
        notify_types=settings.notification_types,
        first_check_seconds=float(settings.reconcile_schedule_seconds[0]),
        prepare=settings.db_prepared_statements,
    )


def reset_stores() -> None:
    """Close and forget every cached store (tests)."""
    with _stores_lock:
        stores = list(_stores.values())
        _stores.clear()
    for store in stores:
        store.close()
