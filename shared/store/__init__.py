"""The upload store: its types, its contract, and the factory (PostgreSQL in production, SQLite locally).

``open_store(url)`` picks the implementation from the URL scheme and caches one instance per URL
(a warm FC instance reuses its connection); nothing connects until the first operation, and a
connection that failed is replaced on the next call. Importing this package imports neither
sqlite3 nor psycopg. The operations are written once, in :class:`shared.store.base.SqlStore`;
:mod:`shared.store.sqlite` and :mod:`shared.store.postgres` add only what differs per dialect
(connections and transactions, the per-owner lock, claiming, ``apply_event``).

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
  and ``allowed_from`` must be a subset of :func:`states.allowed_from` (``ValueError`` otherwise).

Idempotency (STYLE point 12) lives on the upload row: ``reserve_upload`` claims
``(owner, idempotency_key)`` together with the request hash, ``attach_video`` completes it,
``prune(idempotency_before=...)`` expires it (clears the key) and ``discard_reservation`` releases
it; ``find_by_idempotency_key`` reads it back for a replay.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Final, Protocol

from shared import states

if TYPE_CHECKING:
    from pydantic import SecretStr

    from shared.settings import Settings

__all__ = [
    "UPDATABLE_FIELDS",
    "UPLOAD_COLUMNS",
    "ApplyResult",
    "PruneCounts",
    "Store",
    "Upload",
    "create_store",
    "get_store",
    "new_reservation",
    "open_store",
    "reset_stores",
]


@dataclass(frozen=True)
class Upload:
    """One upload as stored. ``video_id`` is ``None`` while the row is ``creating``.

    ``claimed_until`` is the cleanup lease (see :meth:`Store.claim_stale`), ``None`` when unclaimed.
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


#: Column order of ``uploads``, equal to the field order of :class:`Upload`.
UPLOAD_COLUMNS: Final[tuple[str, ...]] = tuple(Upload.__dataclass_fields__)

#: Columns that ``transition`` and ``apply_event`` may set through ``fields``, with their type.
UPDATABLE_FIELDS: Final[Mapping[str, type]] = {"duration": float, "size": int, "error": str}


class ApplyResult(Enum):
    """What :meth:`Store.apply_event` did with one callback event."""

    APPLIED = "applied"  # the upload moved (or, with ``to=None``, recorded the event)
    DUPLICATE = "duplicate"  # the dedupe key was seen before; nothing changed
    STALE = "stale"  # the upload is past the event; status kept, missing fields filled in
    ORPHAN = "orphan"  # no upload has this video id; the event was kept in orphan_events


@dataclass(frozen=True)
class PruneCounts:
    """Rows removed (or, for idempotency keys, cleared) by :meth:`Store.prune`."""

    dedupe: int
    idempotency: int
    orphans: int


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
) -> Upload:
    """The ``creating`` row that :meth:`Store.reserve_upload` inserts before VOD is asked."""
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

    def reserve_upload(self, upload: Upload, *, max_pending: int) -> Upload:
        """Insert ``upload`` (status ``creating`` or ``created``) if the owner's quota allows it.

        Atomic per owner: the check "fewer than ``max_pending`` uploads in ``creating`` or
        ``created``" and the insert happen under one lock (PostgreSQL: a transaction holding
        ``pg_advisory_xact_lock(<ns>, hashtext(owner))``; SQLite: ``BEGIN IMMEDIATE``), so N
        concurrent reservations for one owner succeed exactly ``max_pending - pending`` times.
        ``upload.created_at`` is the reservation time. Order of checks: idempotency key, quota,
        uniqueness of ``upload_id`` / ``reference_id``.

        Raises :class:`errors.Conflict` ``IdempotencyKeyInUse`` if the owner already has an upload
        with this ``idempotency_key`` (whatever its status), :class:`errors.QuotaExceeded`,
        :class:`errors.Conflict` ``UploadIdInUse`` / ``ReferenceIdInUse`` on a duplicate id.
        """
        ...

    def find_by_idempotency_key(self, owner: str, key: str) -> Upload | None:
        """The owner's upload made with this Idempotency-Key (any status, ``creating`` included)."""
        ...

    def attach_video(
        self, upload_id: str, video_id: str, credential_expires_at: datetime | None, now: datetime
    ) -> bool:
        """Record VOD's answer: ``creating`` → ``created`` with ``video_id`` and credential expiry.

        Returns ``False`` (nothing changed) if the row is gone or no longer ``creating``.
        Raises :class:`errors.Conflict` ``VideoIdInUse`` if another upload holds ``video_id``.
        """
        ...

    def discard_reservation(self, upload_id: str) -> bool:
        """Delete a reservation that is still ``creating`` (VOD refused or the call failed).

        Returns whether a row was deleted; rows past ``creating`` are never deleted.
        """
        ...

    def get(self, owner: str, video_id: str) -> Upload | None:
        """The owner's upload with ``video_id``; another owner's upload is ``None``, like a missing one."""
        ...

    def get_by_video_id(self, video_id: str) -> Upload | None:
        """The upload with ``video_id``, whoever owns it (callbacks, cleanup)."""
        ...

    def list_uploads(
        self, owner: str, *, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[Upload], str | None]:
        """One page of the owner's uploads, newest first, never ``creating`` ones.

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
        :data:`UPDATABLE_FIELDS`; ``None`` values are ignored) are written with the move, and the
        cleanup lease is cleared. Returns whether the upload moved.
        """
        ...

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
        """Apply one VOD callback event exactly once, in one transaction.

        1. Insert ``dedupe_key``; if it exists → ``DUPLICATE`` and nothing else changes.
        2. No upload has ``video_id`` → the event (``payload``, default ``fields``) is kept in
           ``orphan_events`` → ``ORPHAN``.
        3. The upload's status is in ``allowed_from`` (default: :func:`states.allowed_from`
           ``(to)``, or every public status when ``to`` is ``None``) → ``APPLIED``: status set to
           ``to`` (unchanged when ``None``), ``fields`` written (``None`` values ignored),
           ``last_event``/``last_event_at`` set unless a newer event was already recorded.
        4. Otherwise → ``STALE``: the event is too late to move the status (it would go
           backwards or leave a final state); the status and ``last_event`` stay, but fields the
           upload does not have yet (e.g. ``duration``, ``size`` from a late analysis event) are
           filled in. The dedupe key stays recorded, so a retry is a ``DUPLICATE``.
        """
        ...

    def claim_stale(
        self,
        *,
        created_before: datetime,
        limit: int,
        lease_seconds: float,
        now: datetime,
        credential_expired_before: datetime | None = None,
    ) -> list[Upload]:
        """Claim up to ``limit`` abandoned uploads for cleanup, oldest first.

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

    def claim_stuck(
        self,
        *,
        updated_before: datetime,
        limit: int,
        lease_seconds: float,
        now: datetime,
    ) -> list[Upload]:
        """Claim up to ``limit`` uploads whose final callback may have been lost, oldest first.

        Candidates: status ``uploaded`` or ``processing``, ``updated_at < updated_before``, and
        no live lease (``claimed_until`` is ``NULL`` or ``<= now``); ordered by
        ``(updated_at, upload_id)``. Leasing, concurrency and paging are as for
        :meth:`claim_stale`: each returned upload gets ``claimed_until = now + lease_seconds``,
        concurrent claimers never get the same upload while its lease lives, and calling again
        returns the next page. ``updated_at`` is not touched by the claim, so an upload that
        cleanup confirmed but could not move (VOD still transcoding) is a candidate again once
        its lease ends. A claim ends with a transition, :meth:`release_claim` or the lease
        expiring.
        """
        ...

    def expire_created(self, video_ids: Sequence[str], *, now: datetime) -> int:
        """Mark every listed upload that is still ``created`` as ``expired``, in one transaction.

        Cleanup's batch form of ``transition(to="expired", allowed_from={"created"})`` (one
        commit per 20 uploads, not 20); returns how many moved. Leases are cleared.
        """
        ...

    def release_claim(self, upload_id: str) -> bool:
        """Clear the cleanup lease of one upload; returns whether the upload exists."""
        ...

    def prune(
        self,
        *,
        now: datetime,
        dedupe_before: datetime,
        idempotency_before: datetime,
        orphans_before: datetime,
    ) -> PruneCounts:
        """Forget old bookkeeping in one transaction.

        Deletes dedupe keys received before ``dedupe_before`` and orphan events received before
        ``orphans_before``; clears ``idempotency_key``/``request_hash`` of uploads created before
        ``idempotency_before`` unless still ``creating`` (so the key can be reused). ``now`` is
        the time of the run (reserved for bookkeeping; nothing is compared with it yet).
        """
        ...


# --- factories -----------------------------------------------------------------------------------

_stores: dict[tuple[str, float, float], Store] = {}
_stores_lock = threading.Lock()


def _plain(url: str | SecretStr) -> str:
    getter = getattr(url, "get_secret_value", None)
    return str(getter()) if callable(getter) else str(url)


def create_store(
    database_url: str | SecretStr, *, connect_timeout: float = 3.0, statement_timeout: float = 10.0
) -> Store:
    """A new, not yet connected store for ``database_url`` (uncached; tests and tools).

    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:``,
    ``postgresql://…`` or ``postgres://…``. Raises ``ValueError`` for other schemes (the message
    names the scheme only, never the URL).
    """
    url = _plain(database_url)
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        from shared.store.sqlite import SqliteStore

        return SqliteStore(url, busy_timeout=max(connect_timeout, 1.0))
    if scheme in ("postgresql", "postgres"):
        from shared.store.postgres import PostgresStore

        return PostgresStore(url, connect_timeout=connect_timeout, statement_timeout=statement_timeout)
    raise ValueError(f"DATABASE_URL scheme {scheme!r} is not supported (use sqlite:// or postgresql://)")


def open_store(
    database_url: str | SecretStr, *, connect_timeout: float = 3.0, statement_timeout: float = 10.0
) -> Store:
    """The instance's store for ``database_url``: built once, reused across warm invocations."""
    url = _plain(database_url)
    key = (url, connect_timeout, statement_timeout)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = create_store(
                url, connect_timeout=connect_timeout, statement_timeout=statement_timeout
            )
        return store


def get_store(settings: Settings) -> Store:
    """:func:`open_store` with ``DATABASE_URL`` and the ``DB_*`` timeouts from ``settings``."""
    return open_store(
        settings.database_url,
        connect_timeout=settings.db_connect_timeout,
        statement_timeout=settings.db_statement_timeout,
    )


def reset_stores() -> None:
    """Close and forget every cached store (tests)."""
    with _stores_lock:
        stores = list(_stores.values())
        _stores.clear()
    for store in stores:
        store.close()
