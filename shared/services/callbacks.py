"""VOD event notifications: verify, record, decide by VOD's word, apply exactly once.

Every event takes the same path, whether it came as an HTTP callback or as an MNS queue message:

1. **Verify and parse.** HTTP: ``X-VOD-SIGNATURE`` over the configured URL and the timestamp
   window (``shared.signing.verify_callback``); MNS: the queue is private to the account. A
   signed event that cannot be parsed is acknowledged as ``invalid`` (VOD would only resend it).
2. **Record** it in the store's inbox before anything acts on it: one statement that claims the
   event's dedupe key (a redelivery finds the first row) and reads the upload.
3. **Decide what it proves.** VOD's signature does not cover the body, so the body only says what
   to check: the owner binding inside ``Extend`` must match the record; a final status (``ready``,
   ``failed``, ``deleted``), a finished upload (``uploaded``: a "No Transcoding" video may
   already be ``ready``) and ``processing`` before anything showed the file arrived are confirmed
   with VOD (GetVideoInfo, GetImageInfo or GetAttachedMediaInfo, by the upload's kind), whose
   answer decides the status and supplies the fields; an oversized file (over the kind's maximum)
   is deleted whatever the upload's status (the credential outlives ``ready``). Fields from an
   unconfirmed body are never written over what the record has, and an informational event never
   writes ``error``. A value the database cannot hold makes the event ``invalid``.
4. **Apply** it (one statement that also finishes the event and writes the notification), or
   **keep it pending** when VOD cannot answer in time: the event is safe in the inbox, and the
   ``cleanup`` timer finishes it (:func:`finish_pending_events`), within minutes.

Everything VOD is asked happens within the caller's :class:`Budget` (``CALLBACK_BUDGET_SECONDS``
for an HTTP callback, which VOD gives 5 s to answer), never beyond it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from shared import errors, states
from shared.services import kinds
from shared.services.notifications import deliver_pending, lease_seconds
from shared.signing import EXTEND_SIG_KEY, EXTEND_UPLOAD_KEY, binding_keys, verify_binding, verify_callback

if TYPE_CHECKING:
    from shared.events import VodEvent
    from shared.services.deps import Deps
    from shared.store import InboxEvent, Notification, Upload

__all__ = [
    "Budget",
    "finish_pending_events",
    "handle_callback",
    "handle_queue",
    "target_status",
]

log = logging.getLogger("vodfc.callbacks")

# Events that report a file arriving, with its Size.
_UPLOAD_EVENTS = frozenset(
    {"FileUploadComplete", "VideoUploadComplete", "ImageUploadComplete", "AttachedMediaUploadComplete"}
)
# Events that end their media's processing (VideoUploadComplete: the "No Transcoding" group's).
_FINAL_EVENTS = frozenset(
    {"VideoUploadComplete", "TranscodeComplete", "ImageUploadComplete", "AttachedMediaUploadComplete"}
)
# The media kind each event is about (events not listed apply to any kind: informational).
_EVENT_KINDS: Mapping[str, str] = {
    "FileUploadComplete": "video",
    "VideoUploadComplete": "video",
    "StreamTranscodeComplete": "video",
    "TranscodeComplete": "video",
    "ImageUploadComplete": "image",
    "AttachedMediaUploadComplete": "attached",
}
# Statuses an event may claim only once VOD confirms them (the body is not signed).
_CONFIRMED = frozenset({states.UPLOADED, states.READY, states.FAILED, states.DELETED})
_LEASE_SECONDS = 60.0  # how long one worker holds an event it is processing
_MIN_VOD_SECONDS = 0.3  # less budget than this left: VOD is not asked, the event waits
# When an event VOD could not confirm yet is due again, by attempt (then it is left to cleanup's
# reconciliation of the upload: the event is finished as "unconfirmed").
_RETRY_DELAYS = (30.0, 60.0, 120.0, 300.0, 900.0, 1800.0)
_GONE = "MediaNotFound: VOD no longer has this media"


@dataclass
class Budget:
    """The time an invocation may spend on VOD for its events (monotonic seconds)."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.seconds - (self.clock() - self.started))

    def for_vod(self) -> float:
        """The deadline of the next VOD call; :class:`_Later` when too little is left for one."""
        left = self.remaining()
        if left < _MIN_VOD_SECONDS:
            raise _Later("out of time for VOD", delay=0.0)
        return left


class _Later(Exception):
    """The event cannot be settled now: keep it pending, due again after ``delay`` seconds."""

    def __init__(self, reason: str, *, delay: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class _Plan(NamedTuple):
    """What one event does to its upload: ``apply_event``'s arguments, or a result to finish with."""

    to: str | None = None
    fields: Mapping[str, Any] = kinds.NO_FIELDS
    finish: str | None = None


def target_status(event: VodEvent) -> str | None:
    """The status an event claims for its upload, or None when it is only informational."""
    kind, ok = event.EventType, event.succeeded
    if kind == "FileUploadComplete":
        return states.UPLOADED if ok else states.FAILED
    if kind in (
        "VideoUploadComplete",
        "TranscodeComplete",
        "ImageUploadComplete",
        "AttachedMediaUploadComplete",
    ):
        # VideoUploadComplete: the "No Transcoding" template group's last event.
        return states.READY if ok else states.FAILED
    if kind == "StreamTranscodeComplete":
        return states.PROCESSING
    if kind == "DeleteMediaComplete":
        # Only a deletion of everything removes the upload (mezzanine or stream: part of it).
        delete_type = (_declared(event, "DeleteType") or "all").lower()
        return states.DELETED if ok and delete_type == "all" else None
    return None


def _declared(event: VodEvent, name: str) -> Any:
    """A field the event's model declares (so typed and validated); never an extra body key."""
    return getattr(event, name) if name in type(event).model_fields else None


def _body_fields(event: VodEvent) -> dict[str, Any]:
    """What an event's (unsigned) body says about its upload: written only when nothing better is
    known (confirmation off, or an informational event filling what the record does not have,
    the error excepted)."""
    from shared.events import TranscodeComplete

    fields: dict[str, Any] = {}
    duration = event.duration if isinstance(event, TranscodeComplete) else _declared(event, "Duration")
    if duration is not None:
        fields["duration"] = float(duration)
    size = _declared(event, "Size")
    if size is not None and event.EventType in _UPLOAD_EVENTS | {"VideoAnalysisComplete"}:
        fields["size"] = int(size)
    if not event.succeeded:
        fields.update(_error_field(event))
    return fields


def _error_field(event: VodEvent) -> dict[str, Any]:
    message = _declared(event, "ErrorMessage") or _declared(event, "ErrorCode")
    return {"error": message[:512]} if isinstance(message, str) and message else {}


def _check_binding(deps: Deps, event: VodEvent, upload: Upload) -> None:
    extend = event.extend_dict()
    if not extend or EXTEND_UPLOAD_KEY not in extend:
        return
    signed = verify_binding(
        binding_keys(deps.settings), upload.upload_id, upload.owner, extend.get(EXTEND_SIG_KEY)
    )
    if extend.get(EXTEND_UPLOAD_KEY) != upload.upload_id or not signed:
        raise errors.InvalidSignature(
            "The event's upload binding does not match the record.", code="InvalidSignature.Binding"
        )


def _retry_delay(attempts: int) -> float:
    return _RETRY_DELAYS[min(attempts, len(_RETRY_DELAYS) - 1)]


def _vod_status(deps: Deps, upload: Upload, budget: Budget, attempts: int) -> tuple[str, dict[str, Any]]:
    """VOD's word on the upload: our status for it (``deleted`` when VOD no longer has it) and the
    fields VOD reports. :class:`_Later` when VOD cannot answer now or its status is not known."""
    assert upload.video_id is not None
    try:
        media = kinds.look_up_one(deps.vod, upload.kind, upload.video_id, deadline_seconds=budget.for_vod())
    except errors.NotFound:
        return states.DELETED, {"error": _GONE}
    except errors.VodError as exc:
        raise _Later(f"VOD could not confirm the event ({exc.code})", delay=_retry_delay(attempts)) from exc
    if media.status is None:
        raise _Later(
            f"VOD reports an unknown status {str(media.vod_status)[:32]!r}", delay=_retry_delay(attempts)
        )
    return media.status, dict(media.fields)


def _too_large(deps: Deps, event: VodEvent, upload: Upload, budget: Budget, attempts: int) -> int | None:
    """The stored file's real size when an upload event claims more than the kind's maximum and
    VOD agrees (the event's Size only triggers the check; VOD's answer decides), else None."""
    claimed = _declared(event, "Size")
    limit = kinds.max_size(deps.settings, upload.kind)
    if event.EventType not in _UPLOAD_EVENTS or claimed is None or int(claimed) <= limit:
        return None
    assert upload.video_id is not None
    try:
        real = kinds.stored_size(
            deps.vod, upload.kind, upload.video_id, claimed=int(claimed), deadline_seconds=budget.for_vod()
        )
    except errors.NotFound:
        return None
    except errors.VodError as exc:
        raise _Later(f"VOD could not check the size ({exc.code})", delay=_retry_delay(attempts)) from exc
    return real if real is not None and real > limit else None


def _delete_oversized(deps: Deps, upload: Upload, size: int, budget: Budget, attempts: int) -> _Plan:
    """Delete the oversized media at VOD; the record fails (or, already final, is deleted)."""
    assert upload.video_id is not None
    try:
        kinds.delete(deps.vod, upload.kind, [upload.video_id], deadline_seconds=budget.for_vod())
    except errors.NotFound:
        pass
    except errors.VodError as exc:
        raise _Later(
            f"VOD could not delete an oversized source ({exc.code})", delay=_retry_delay(attempts)
        ) from exc
    log.warning("oversized upload deleted", extra={"video_id": upload.video_id, "size": size})
    error = f"FileTooLarge: {size} bytes exceeds the maximum of {kinds.max_size(deps.settings, upload.kind)}"
    to = states.FAILED if states.can_move(upload.status, states.FAILED) else states.DELETED
    return _Plan(to=to, fields={"error": error})


def _plan(deps: Deps, event: VodEvent, upload: Upload | None, budget: Budget, attempts: int) -> _Plan:
    """What the event proves about its upload (see the module docstring)."""
    if upload is None:
        return _Plan()  # apply_event finishes it as an orphan
    _check_binding(deps, event, upload)
    if _EVENT_KINDS.get(event.EventType, upload.kind) != upload.kind:
        return _Plan(finish="ignored")  # e.g. an ImageUploadComplete naming a video
    if states.is_terminal(upload.status):
        return _Plan(finish="stale")
    too_large = _too_large(deps, event, upload, budget, attempts)
    if too_large is not None:
        return _delete_oversized(deps, upload, too_large, budget, attempts)
    claimed = target_status(event)
    if claimed is None:
        # Informational: fills only what is missing, and never Error: such an event fails nothing,
        # and its unsigned failure text would otherwise land on a finished upload.
        fields = _body_fields(event)
        fields.pop("error", None)
        return _Plan(fields=fields)
    if not states.can_move(upload.status, claimed):
        return _Plan(to=claimed)  # late or repeated: stale, changes nothing
    confirm = deps.settings.callback_confirm_with_vod
    # ``processing`` is confirmed too while nothing has shown the file arrived: from ``created``
    # a forged stream event would strand the upload where VOD's "Uploading" cannot move it back.
    before_the_file = claimed == states.PROCESSING and upload.status == states.CREATED
    if not confirm or (claimed not in _CONFIRMED and not before_the_file):
        # Unconfirmed (``processing`` after ``uploaded``, or confirmation off): the move, and the
        # body's fields only when nothing will confirm them.
        return _Plan(
            to=claimed, fields={} if deps.settings.callback_confirm_with_vod else _body_fields(event)
        )
    actual, fields = _vod_status(deps, upload, budget, attempts)
    if actual == states.READY and fields.get("size", 0) > kinds.max_size(deps.settings, upload.kind):
        return _delete_oversized(deps, upload, int(fields["size"]), budget, attempts)
    if actual == states.READY and upload.kind == "attached" and "size" in _body_fields(event):
        # VOD reports no size for attached media: the event's (checked by _too_large) is all there is.
        fields.setdefault("size", _body_fields(event)["size"])
    if actual == states.FAILED and claimed == states.FAILED:
        fields.update(_error_field(event))
    if actual == claimed or (actual != states.CREATED and states.rank(actual) >= states.rank(claimed)):
        # Confirmed, or VOD is further along (a "No Transcoding" video is ready at upload), or VOD
        # reached the other final status (ready for a "failed" claim): VOD's word, not a wait.
        return _Plan(to=actual, fields=fields) if states.can_move(upload.status, actual) else _Plan(to=actual)
    # VOD is behind the event: move as far as VOD confirms, and ask again later.
    if actual != states.CREATED and states.can_move(upload.status, actual):
        deps.store.transition(upload.video_id or "", to=actual, now=deps.clock(), fields=fields)
    if attempts + 1 >= len(_RETRY_DELAYS):
        log.warning(
            "event never confirmed by VOD",
            extra={"video_id": upload.video_id, "claimed": claimed, "vod_status": actual},
        )
        return _Plan(finish="unconfirmed")
    raise _Later(f"VOD reports {actual}, the event claims {claimed}", delay=_retry_delay(attempts))


def _settle(
    deps: Deps,
    event: VodEvent,
    entry: InboxEvent,
    upload: Upload | None,
    budget: Budget,
    *,
    lease: float | None = None,
) -> tuple[str, Notification | None]:
    """Decide and apply (or finish, or defer) one recorded event the caller holds; its result,
    and the change's notification when ``lease`` is set and the statement leased it."""
    try:
        plan = _plan(deps, event, upload, budget, entry.attempts)
    except _Later as later:
        now = deps.clock()
        deps.store.defer_event(
            entry.event_id, next_attempt_at=now + timedelta(seconds=later.delay), error=later.reason, now=now
        )
        log.info("event kept for later", extra={"event_type": event.EventType, "reason": later.reason})
        return "pending", None
    except errors.InvalidSignature:
        deps.store.finish_event(entry.event_id, result="refused", now=deps.clock())
        raise
    except errors.UnstorableValue:
        return _unstorable(deps, event, entry), None
    if plan.finish is not None:
        deps.store.finish_event(entry.event_id, result=plan.finish, now=deps.clock())
        return plan.finish, None
    try:
        applied = deps.store.apply_event(
            entry.event_id,
            video_id=event.media_id or "",
            event_type=event.EventType,
            event_time=event.event_time,
            to=plan.to,
            fields=plan.fields,
            now=deps.clock(),
            lease_seconds=lease,
        )
    except errors.UnstorableValue:
        return _unstorable(deps, event, entry), None
    return applied.result.value, applied.notification


def _unstorable(deps: Deps, event: VodEvent, entry: InboxEvent | None) -> str:
    """An event holding a value the database refuses: no retry can ever store it, so it is
    finished (when recorded) and acknowledged as ``invalid``, with a log line."""
    log.warning("unstorable event acknowledged", extra={"event_type": event.EventType})
    if entry is not None:
        deps.store.finish_event(entry.event_id, result="invalid", now=deps.clock())
    return "invalid"


def _process(
    deps: Deps, raw: bytes, *, source: str, message_id: str | None, budget: Budget
) -> dict[str, Any]:
    """Parse, record and settle one event body; the answer's fields (``Result`` and what it names)."""
    from shared.events import GenericEvent, parse_event  # not at import: cleanup seldom needs it

    try:
        event = parse_event(raw)
    except (errors.MalformedBody, errors.InvalidParameter) as exc:
        # Verified, but unusable: VOD would only send it again. Acknowledge and log it.
        log.warning("invalid event acknowledged", extra={"reason": exc.message, "source": source})
        return {"Result": "invalid"}
    media_id = event.media_id
    if isinstance(event, GenericEvent) or not media_id:
        log.debug("event acknowledged without effect", extra={"event_type": event.EventType})
        return {"Result": "ignored", "EventType": event.EventType}
    try:
        entry, owned, upload = deps.store.record_event(
            dedupe_key=event.dedupe_key(),
            media_id=media_id,
            event_type=event.EventType,
            event_time=event.event_time,
            source=source,
            message_id=message_id,
            body=raw.decode("utf-8-sig"),
            now=deps.clock(),
            lease_seconds=_LEASE_SECONDS,
        )
    except errors.UnstorableValue:
        return {"Result": _unstorable(deps, event, None)}
    answer: dict[str, Any] = {"EventType": event.EventType, "VideoId": media_id}
    if not owned:
        answer["Result"] = "duplicate" if entry.state == "done" else "pending"
        return answer
    answer["Result"], leased = _settle(deps, event, entry, upload, budget, lease=lease_seconds(deps))
    if upload is not None and answer["Result"] in ("applied", "pending"):
        # The app hears of the change right after its commit, within what the budget leaves.
        deliver_pending(deps, upload_id=upload.upload_id, seconds=budget.remaining(), leased=leased)
    return answer


def handle_callback(deps: Deps, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """POST /callbacks/vod: the answer VOD gets (200 once the signature is good and the event is
    recorded; 503 when it cannot be recorded, so that VOD sends it again)."""
    settings = deps.settings
    if not settings.callback_url or not settings.callback_keys:
        raise errors.ServiceUnavailable(
            "Callbacks are not configured (CALLBACK_URL and CALLBACK_AUTH_KEY).",
            code="CallbackNotConfigured",
        )
    verify_callback(
        headers,
        url=settings.callback_url,
        keys=settings.callback_keys,
        now=deps.clock().timestamp(),
        max_skew_seconds=settings.callback_max_skew_seconds,
    )
    return _process(
        deps, body, source="http", message_id=None, budget=Budget(settings.callback_budget_seconds)
    )


def handle_queue(deps: Deps, messages: list[Any], *, budget: Budget) -> dict[str, Any]:
    """One MNS queue-trigger invocation (``shared.triggers.QueueMessage`` items): every message on
    its own, so one bad message never blocks the others.

    Returns the counts of each result. Raises :class:`errors.ServiceUnavailable` (after every
    message had its turn) when any message could not be settled now — the store was down, or VOD
    could not confirm it — so that the trigger delivers the batch again; settled messages are
    then duplicates, which change nothing.
    """
    counts: dict[str, int] = {}
    retry: list[str] = []
    for message in messages:
        if message.body is None:
            log.warning("unusable queue message acknowledged", extra={"reason": message.problem})
            result = "invalid"
        else:
            try:
                result = _process(
                    deps, message.body, source="mns", message_id=message.message_id, budget=budget
                )["Result"]
            except errors.InvalidSignature as exc:
                log.warning(
                    "queue message refused", extra={"code": exc.code, "message_id": message.message_id}
                )
                result = "refused"
            except (errors.StoreUnavailable, errors.VodError) as exc:
                log.warning(
                    "queue message not recorded", extra={"code": exc.code, "message_id": message.message_id}
                )
                result = "failed"
        counts[result] = counts.get(result, 0) + 1
        if result in ("pending", "failed"):
            retry.append(message.message_id or "?")
    if retry:
        raise errors.ServiceUnavailable(
            f"{len(retry)} of {len(messages)} queue messages must be delivered again.", code="RetryMessages"
        )
    return counts


def finish_pending_events(deps: Deps, budget: Budget, *, limit: int) -> dict[str, int]:
    """Cleanup: settle the inbox's pending events that are due, oldest first, within ``budget``.

    The same code path as a fresh event; concurrent runs never take the same event (leases).
    Returns the counts of each result.
    """
    counts: dict[str, int] = {}
    done = 0
    while done < limit and budget.remaining() >= _MIN_VOD_SECONDS:
        batch = deps.store.claim_events(
            limit=min(20, limit - done), lease_seconds=_LEASE_SECONDS, now=deps.clock()
        )
        if not batch:
            break
        from shared.events import parse_event  # only a run with pending events parses one

        for entry in batch:
            done += 1
            try:
                event = parse_event(entry.body.encode("utf-8"))
            except (errors.MalformedBody, errors.InvalidParameter):
                deps.store.finish_event(entry.event_id, result="invalid", now=deps.clock())
                result = "invalid"
            else:
                upload = deps.store.get_by_video_id(entry.media_id or "")
                try:
                    result, _ = _settle(deps, event, entry, upload, budget)
                except errors.InvalidSignature:
                    result = "refused"
            counts[result] = counts.get(result, 0) + 1
    return counts
