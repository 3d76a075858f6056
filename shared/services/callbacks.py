"""VOD event notifications: verify, validate, and apply to the upload record idempotently.

VOD's callback signature covers the URL, the timestamp and the key, not the body. So:
- the signature and its timestamp window are checked first (shared.signing);
- our owner binding inside ``Extend`` (an HMAC over upload id and owner) must match the record;
- an event that would make an upload ``ready`` or ``failed`` is confirmed with VOD
  (GetVideoInfo) before it is applied (``CALLBACK_CONFIRM_WITH_VOD``), and VOD's own answer
  decides the status.
Events carry no id, so the dedupe key is derived from their content; a replay changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared import errors
from shared.events import GenericEvent, TranscodeComplete, parse_event
from shared.signing import EXTEND_SIG_KEY, EXTEND_UPLOAD_KEY, binding_keys, verify_binding, verify_callback
from shared.states import allowed_from, can_move, status_from_vod

if TYPE_CHECKING:
    from shared.events import VodEvent
    from shared.services.deps import Deps
    from shared.store import Upload

__all__ = ["handle_callback", "target_status"]

log = logging.getLogger("vodfc.callbacks")

_FINAL = frozenset({"ready", "failed"})
# Statuses an event may claim only once VOD confirms them (the body is not signed).
_CONFIRMED = _FINAL | {"deleted"}
_UPLOAD_EVENTS = frozenset({"FileUploadComplete", "VideoUploadComplete"})


def target_status(event: VodEvent) -> str | None:
    """The status an event claims for its upload, or None when it only gets recorded."""
    kind = event.EventType
    ok = event.succeeded
    if kind == "FileUploadComplete":
        return "uploaded" if ok else "failed"
    if kind == "VideoUploadComplete":
        # "No Transcoding" template group: this replaces TranscodeComplete.
        return "ready" if ok else "failed"
    if kind == "StreamTranscodeComplete":
        return "processing"
    if kind == "TranscodeComplete":
        return "ready" if ok else "failed"
    if kind == "DeleteMediaComplete":
        return "deleted" if ok else None
    return None


def _declared(event: VodEvent, name: str) -> Any:
    """A field the event's model declares (so typed and validated); never an extra body key."""
    return getattr(event, name) if name in type(event).model_fields else None


def _fields(event: VodEvent) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    duration = event.duration if isinstance(event, TranscodeComplete) else _declared(event, "Duration")
    if duration is not None:
        fields["duration"] = float(duration)
    size = _declared(event, "Size")
    if size is not None and event.EventType in _UPLOAD_EVENTS:
        fields["size"] = int(size)
    if not event.succeeded:
        message = _declared(event, "ErrorMessage") or _declared(event, "ErrorCode")
        if isinstance(message, str) and message:
            fields["error"] = message[:512]
    return fields


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


def _confirm(deps: Deps, video_id: str, claimed: str, fields: dict[str, Any]) -> str | None:
    """Ask VOD for the media's real status; VOD's answer decides what is applied."""
    try:
        video = deps.vod.get_video_info(video_id)
    except errors.NotFound:
        return "deleted"
    actual = status_from_vod(video.Status or "")
    if video.Duration is not None:
        fields["duration"] = float(video.Duration)
    if video.Size is not None:
        fields["size"] = int(video.Size)
    if actual != claimed:
        log.warning(
            "callback not confirmed by VOD",
            extra={"video_id": video_id, "claimed": claimed, "vod_status": video.Status},
        )
    return actual


def _oversized(deps: Deps, event: VodEvent, video_id: str, fields: dict[str, Any]) -> int | None:
    """The stored file's real size when it breaks ``MAX_FILE_SIZE``, else None.

    A client declares FileSize but uploads with its own credential, so only VOD knows what
    arrived. The event's Size (an unsigned body) only triggers the check; VOD's mezzanine record
    decides, and its size is the one recorded.
    """
    claimed = _declared(event, "Size")
    limit = deps.settings.max_file_size
    if event.EventType not in _UPLOAD_EVENTS or claimed is None or int(claimed) <= limit:
        return None
    try:
        real = deps.vod.get_mezzanine_info(video_id).Size
    except errors.NotFound:
        return None
    if real is None:
        fields.pop("size", None)
        return None
    fields["size"] = int(real)
    return int(real) if int(real) > limit else None


def handle_callback(deps: Deps, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """POST /callbacks/vod: the answer VOD gets (always 200 once the signature is good)."""
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
    event = parse_event(body)
    if isinstance(event, GenericEvent):
        log.debug("unknown event type acknowledged", extra={"event_type": event.EventType})
        return {"Result": "ignored", "EventType": event.EventType}
    video_id = event.media_id
    if not video_id:
        return {"Result": "ignored", "EventType": event.EventType}

    to = target_status(event)
    fields = _fields(event)
    dedupe_key = event.dedupe_key()
    upload = deps.store.get_by_video_id(video_id)
    if upload is not None:
        _check_binding(deps, event, upload)
        too_big = _oversized(deps, event, video_id, fields) if can_move(upload.status, "failed") else None
        if too_big is not None:
            # Over the operator's limit: the media goes (no storage bill for it), the record fails.
            deps.vod.delete_videos([video_id])
            to = "failed"
            fields["error"] = (
                f"FileTooLarge: {too_big} bytes exceeds the maximum of {deps.settings.max_file_size}"
            )
            log.warning("oversized upload deleted", extra={"video_id": video_id, "size": too_big})
        elif to in _CONFIRMED and settings.callback_confirm_with_vod and can_move(upload.status, to):
            # VOD may say "not finished yet": then we move only as far as VOD confirms.
            confirmed = _confirm(deps, video_id, to, fields)
            if confirmed != to:
                # What is applied is VOD's status, not the event's: record it under a key of its
                # own, so that this event's redelivery, once VOD's API has caught up with its own
                # callback, is applied instead of being dropped as a duplicate.
                dedupe_key = f"{dedupe_key}|vod={confirmed or 'unknown'}"
            to = confirmed
    result = deps.store.apply_event(
        video_id,
        dedupe_key=dedupe_key,
        event_type=event.EventType,
        event_time=event.event_time,
        to=to,
        # No status change (informational events): record it on any upload (store default).
        allowed_from=allowed_from(to) if to else None,
        fields=fields,
        payload=event.model_dump(mode="json"),
        now=deps.clock(),
    )
    # The handler puts EventType and Result on the invocation's one INFO line.
    log.debug(
        "callback applied",
        extra={"video_id": video_id, "event_type": event.EventType, "result": str(result.value)},
    )
    return {"Result": result.value, "EventType": event.EventType, "VideoId": video_id}
