"""The upload state machine: which status may follow which (pure, no I/O).

Target status ← the statuses it may be reached from::

    created     ← creating, uploaded            (VOD answered CreateUploadVideo; or VOD says a
                                                 source that an unconfirmed event called
                                                 uploaded is in fact still Uploading)
    uploaded    ← created                       (FileUploadComplete)
    processing  ← created, uploaded             (transcoding or review started)
    ready       ← created, uploaded, processing (TranscodeComplete, Normal)
    failed      ← created, uploaded, processing (upload/transcode failed, blocked)
    expired     ← created                       (cleanup: nothing was ever uploaded)
    deleted     ← created, uploaded, processing, ready, failed   (the owner deletes)
    creating    ← (nothing: it is only ever inserted)

Moves are monotonic but for one: a status never goes back to an earlier one, so callbacks that
arrive late or twice cannot undo progress. The exception is ``uploaded → created``, taken only when
cleanup asks VOD and VOD still reports the source as ``Uploading`` (an upload that an unsigned,
unconfirmed FileUploadComplete moved forward becomes refreshable and expirable again).
``ready`` and ``failed`` are both final for processing: VOD reports
a failed stream and a finished video through separate events, and a ``TranscodeComplete`` that
arrives after ``failed`` is treated as stale rather than resurrecting the upload (the owner sees
the first outcome, ``GetVideoInfo`` stays the authority). Their only way out is ``deleted``.
``expired`` (cleanup abandoned the upload before anything was uploaded) and ``deleted`` are
terminal. ``creating`` is internal: the row is reserved while VOD has not answered yet; it only
becomes ``created`` (or is discarded by removing the row).

Images and attached media use a subset: ``created → ready | failed``, ``expired``, ``deleted``
(:data:`KIND_STATUSES`); their events never claim ``uploaded`` or ``processing``.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ALL_STATUSES",
    "CREATED",
    "CREATING",
    "DELETED",
    "EXPIRED",
    "FAILED",
    "KINDS",
    "KIND_STATUSES",
    "NOTIFICATION_TYPES",
    "PENDING_STATUSES",
    "PROCESSING",
    "PUBLIC_STATUSES",
    "READY",
    "TERMINAL_STATUSES",
    "UPLOADED",
    "allowed_from",
    "can_move",
    "is_terminal",
    "notification_type",
    "rank",
    "status_from_vod",
]

CREATING: Final = "creating"
CREATED: Final = "created"
UPLOADED: Final = "uploaded"
PROCESSING: Final = "processing"
READY: Final = "ready"
FAILED: Final = "failed"
EXPIRED: Final = "expired"
DELETED: Final = "deleted"

#: Every status, internal ``creating`` first, in rank order.
ALL_STATUSES: Final[tuple[str, ...]] = (
    CREATING,
    CREATED,
    UPLOADED,
    PROCESSING,
    READY,
    FAILED,
    EXPIRED,
    DELETED,
)
#: The statuses an owner can see (everything but ``creating``).
PUBLIC_STATUSES: Final[tuple[str, ...]] = ALL_STATUSES[1:]
#: Statuses that count against the per-owner quota of pending uploads.
PENDING_STATUSES: Final[frozenset[str]] = frozenset({CREATING, CREATED})
#: Statuses nothing can leave.
TERMINAL_STATUSES: Final[frozenset[str]] = frozenset({EXPIRED, DELETED})

_RANK: Final[dict[str, int]] = {
    CREATING: 0,
    CREATED: 1,
    UPLOADED: 2,
    PROCESSING: 3,
    READY: 4,
    FAILED: 4,
    EXPIRED: 5,
    DELETED: 5,
}

_ALLOWED_FROM: Final[dict[str, frozenset[str]]] = {
    CREATING: frozenset(),
    CREATED: frozenset({CREATING, UPLOADED}),
    UPLOADED: frozenset({CREATED}),
    PROCESSING: frozenset({CREATED, UPLOADED}),
    READY: frozenset({CREATED, UPLOADED, PROCESSING}),
    FAILED: frozenset({CREATED, UPLOADED, PROCESSING}),
    EXPIRED: frozenset({CREATED}),
    DELETED: frozenset({CREATED, UPLOADED, PROCESSING, READY, FAILED}),
}

#: The media kinds one store holds, and the prefix of their notification types.
KINDS: Final[dict[str, str]] = {"video": "upload", "image": "image", "attached": "attached_media"}
#: The public statuses each kind can have.
KIND_STATUSES: Final[dict[str, tuple[str, ...]]] = {
    "video": PUBLIC_STATUSES,
    "image": (CREATED, READY, FAILED, EXPIRED, DELETED),
    "attached": (CREATED, READY, FAILED, EXPIRED, DELETED),
}
#: Every notification type (``upload.created`` ... ``attached_media.deleted``).
NOTIFICATION_TYPES: Final[tuple[str, ...]] = tuple(
    f"{prefix}.{status}" for kind, prefix in KINDS.items() for status in KIND_STATUSES[kind]
)


def notification_type(kind: str, status: str) -> str:
    """The notification of an upload of ``kind`` reaching ``status`` (``upload.ready``, ...)."""
    return f"{KINDS[kind]}.{status}"


# VOD's video ``Status`` values (GetVideoInfo / SearchMedia), mapped to ours. ``Uploading`` means
# VOD issued credentials and waits for the file, which is our ``created``.
_FROM_VOD: Final[dict[str, str]] = {
    "uploading": CREATED,
    "uploadsucc": UPLOADED,
    "transcoding": PROCESSING,
    "checking": PROCESSING,
    "normal": READY,
    "uploadfail": FAILED,
    "transcodefail": FAILED,
    "producefail": FAILED,
    "blocked": FAILED,
}


def _check(status: str) -> None:
    if status not in _RANK:
        raise ValueError(f"unknown upload status: {status!r}")


def allowed_from(to: str) -> frozenset[str]:
    """The statuses an upload may be in to move to ``to`` (empty for ``creating``)."""
    _check(to)
    return _ALLOWED_FROM[to]


def can_move(frm: str, to: str) -> bool:
    """Whether an upload in ``frm`` may move to ``to`` (never to itself; backwards only as above)."""
    _check(frm)
    return frm in allowed_from(to)


def rank(status: str) -> int:
    """Progress rank: every allowed move but ``uploaded → created`` goes to a strictly higher rank."""
    _check(status)
    return _RANK[status]


def is_terminal(status: str) -> bool:
    """Whether nothing can follow ``status`` (``expired``, ``deleted``)."""
    _check(status)
    return status in TERMINAL_STATUSES


def status_from_vod(vod_status: str | None) -> str | None:
    """Our status for a VOD video ``Status`` (case-insensitive); ``None`` if VOD's is unknown."""
    if not vod_status:
        return None
    return _FROM_VOD.get(vod_status.strip().lower())
