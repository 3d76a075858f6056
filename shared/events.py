"""VOD event notifications (HTTP callback bodies and MNS message bodies).

One model per ``EventType`` of VOD's catalogue, joined in the :data:`VodEvent` union; types we do
not know become :class:`GenericEvent` (acknowledged and logged, never rejected). The models are
tolerant (:mod:`shared.event_base`); what makes an event unusable (no media id, a non-object
body) is an error. The events of an upload's life are modelled here; the informational ones, in
:mod:`shared.vod_events_more`, are imported when one arrives (:func:`event_model`).

``parse_event(raw)`` is the entry point; it raises :class:`errors.MalformedBody` for a body that
is not a JSON object and :class:`errors.InvalidParameter` for a known event that lacks what it
needs (``field`` names the VOD field).
"""

# No ``from __future__ import annotations`` in a module of pydantic models: pydantic would compile
# and eval each field's annotation string as it builds the class (on FC's python3.10, 0.7 ms for
# the settings, 3 ms for the event models: bench/README.md, cold start).
import json
from typing import TYPE_CHECKING, Any, ClassVar, ForwardRef, Literal, Union, get_args

from pydantic import (
    Field,
    ValidationError,
    field_validator,
)

from shared import errors
from shared.event_base import (
    Event,
    MediaEvent,
    MediaId,
    StrList,
    Tolerant,
    VideoEvent,
    maybe_json,
    stripped_pairs,
)
from shared.validation import MAX_DEPTH, bad_text, too_deep
from shared.vod_models import LooseFloat, LooseInt, LooseTime

if TYPE_CHECKING:
    from shared.vod_events_more import (
        AddLiveRecordVideoComplete,
        AIMediaAuditComplete,
        AIMediaDNAComplete,
        AIVideoTagComplete,
        CreateAuditComplete,
        DynamicImageComplete,
        LiveRecordVideoComposeStart,
        MediaBaseChangeComplete,
        ProduceMediaComplete,
        SnapshotComplete,
        UploadByURLComplete,
    )

__all__ = [
    "EVENT_TYPES",
    "AttachedMediaUploadComplete",
    "DeleteMediaComplete",
    "FileUploadComplete",
    "GenericEvent",
    "ImageUploadComplete",
    "StreamInfo",
    "StreamTranscodeComplete",
    "TranscodeComplete",
    "VideoAnalysisComplete",
    "VideoUploadComplete",
    "VodEvent",
    "event_model",
    "parse_event",
]


# --- nested structures --------------------------------------------------------------------------


class StreamInfo(Tolerant):
    """One transcoded stream (a StreamTranscodeComplete body, or a TranscodeComplete entry)."""

    Status: str | None = None
    Bitrate: LooseFloat = None  # Kbit/s
    Definition: str | None = None  # FD, LD, SD, HD, OD, 2K, 4K, AUTO; may carry a suffix (HD-MP4)
    Duration: LooseFloat = None  # seconds
    Codec: str | None = None
    Encrypt: bool | None = None
    EncryptType: str | None = None
    ErrorCode: str | None = None
    ErrorMessage: str | None = None
    FileUrl: str | None = None
    Format: str | None = None
    Fps: LooseFloat = None
    Height: LooseInt = None
    Width: LooseInt = None
    Size: LooseInt = None  # bytes
    JobId: str | None = None
    WatermarkId: str | None = None
    IsAudio: bool | None = None
    StartTime: LooseTime = None
    FinishTime: LooseTime = None

    @field_validator("Encrypt", "IsAudio", mode="before")
    @classmethod
    def _bool(cls, value: Any) -> Any:
        if isinstance(value, str):
            lowered = value.strip().lower()
            return True if lowered == "true" else False if lowered == "false" else None
        return value if isinstance(value, bool) or value is None else None


# --- the events of an upload's life ---------------------------------------------------------------


class FileUploadComplete(VideoEvent):
    """The source file of a video or audio reached VOD (no event is sent on failure)."""

    EventType: Literal["FileUploadComplete"]
    Size: LooseInt = None
    FileUrl: str | None = None


class VideoUploadComplete(VideoEvent):
    """Upload done with the "No Transcoding" template group (instead of TranscodeComplete)."""

    EventType: Literal["VideoUploadComplete"]
    Size: LooseInt = None
    FileUrl: str | None = None


class ImageUploadComplete(Event):
    """An image reached VOD (EventTime may carry milliseconds after a colon)."""

    MEDIA_ID_FIELD: ClassVar[str | None] = "ImageId"

    EventType: Literal["ImageUploadComplete"]
    ImageId: MediaId
    Size: LooseInt = None
    FileURL: str | None = None
    AppId: str | None = None


class AttachedMediaUploadComplete(Event):
    """An attached media file (watermark, subtitle, material) reached VOD."""

    MEDIA_ID_FIELD: ClassVar[str | None] = "AttachedMediaId"

    EventType: Literal["AttachedMediaUploadComplete"]
    AttachedMediaId: MediaId
    Size: LooseInt = None
    FileURL: str | None = None


class StreamTranscodeComplete(StreamInfo, VideoEvent):
    """One definition and format of a video is transcoded (playable from the first one)."""

    EventType: Literal["StreamTranscodeComplete"]
    Status: str | None = None


class TranscodeComplete(VideoEvent):
    """All streams of a video are transcoded; ``success`` if at least one stream is."""

    EventType: Literal["TranscodeComplete"]
    StreamInfos: list[StreamInfo] = Field(default_factory=list)
    ErrorCode: str | None = None
    ErrorMessage: str | None = None

    @field_validator("StreamInfos", mode="before")
    @classmethod
    def _streams(cls, value: Any) -> Any:
        value = maybe_json(value)
        return [] if value is None else value

    @property
    def duration(self) -> float | None:
        """The longest duration among the successful streams, in seconds."""
        values = [s.Duration for s in self.StreamInfos if s.Duration is not None and s.Status != "fail"]
        return max(values) if values else None

    @property
    def streams_size(self) -> int | None:
        """The total size of the successful streams, in bytes (not the source file's size)."""
        values = [s.Size for s in self.StreamInfos if s.Size is not None and s.Status != "fail"]
        return sum(values) if values else None


class VideoAnalysisComplete(VideoEvent):
    """VOD analysed the source file (duration, resolution, bitrate, frame rate)."""

    EventType: Literal["VideoAnalysisComplete"]
    Width: LooseInt = None
    Height: LooseInt = None
    Duration: LooseFloat = None
    Bitrate: LooseFloat = None
    Fps: LooseFloat = None
    Size: LooseInt = None
    ErrorCode: str | None = None
    ErrorMessage: str | None = None


class DeleteMediaComplete(MediaEvent):
    """DeleteVideo finished (``DeleteType``: all, mezzanine or stream)."""

    EventType: Literal["DeleteMediaComplete"]
    MediaType: str | None = None
    DeleteType: str | None = None
    JobIds: StrList = Field(default_factory=list)
    ErrorCode: str | None = None
    ErrorMessage: str | None = None


class GenericEvent(Event):
    """Any event type we do not model: acknowledged and logged, never rejected."""


#: Every VOD event model, the type the services see; the informational ones are named (they are
#: modelled in :mod:`shared.vod_events_more`, imported only when one arrives).
VodEvent = Union[
    FileUploadComplete,
    VideoUploadComplete,
    ImageUploadComplete,
    AttachedMediaUploadComplete,
    StreamTranscodeComplete,
    TranscodeComplete,
    VideoAnalysisComplete,
    DeleteMediaComplete,
    "SnapshotComplete",
    "DynamicImageComplete",
    "AIMediaAuditComplete",
    "AIMediaDNAComplete",
    "AIVideoTagComplete",
    "CreateAuditComplete",
    "AddLiveRecordVideoComplete",
    "LiveRecordVideoComposeStart",
    "UploadByURLComplete",
    "MediaBaseChangeComplete",
    "ProduceMediaComplete",
    GenericEvent,
]

#: The models of this module, by ``EventType``; :func:`event_model` adds the others as they arrive.
_MODELS: dict[str, type[Event]] = {
    m.__name__: m for m in get_args(VodEvent) if isinstance(m, type) and m is not GenericEvent
}
#: The informational event types (the union's names).
_INFORMATIONAL: frozenset[str] = frozenset(
    m.__forward_arg__ for m in get_args(VodEvent) if isinstance(m, ForwardRef)
)
#: Every ``EventType`` with a model of its own (every member of :data:`VodEvent` but GenericEvent).
EVENT_TYPES: frozenset[str] = frozenset(_MODELS) | _INFORMATIONAL


def event_model(event_type: str) -> type[Event]:
    """The model of ``event_type``: its own (importing :mod:`shared.vod_events_more` the first
    time an informational one arrives), or :class:`GenericEvent` for a type we do not model."""
    model = _MODELS.get(event_type)
    if model is None:
        if event_type not in _INFORMATIONAL:
            return GenericEvent
        from shared import vod_events_more

        model = _MODELS[event_type] = getattr(vod_events_more, event_type)
    return model


# --- parse_event --------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _translate(exc: ValidationError, event_type: str) -> errors.InvalidParameter:
    err = exc.errors(include_url=False, include_input=False)[0]
    loc = tuple(err["loc"])
    field = str(loc[0])[:64] if loc else None
    path = ".".join(str(part) for part in loc)[:128] or "The event"
    if err["type"] == "missing":
        return errors.MissingParameter(f"{event_type} event lacks {path}.", field=field)
    if err["type"] == "value_error":
        message = str(err.get("ctx", {}).get("error", "")) or f"{path} is invalid."
        return errors.InvalidParameter(message, field=field)
    return errors.InvalidParameter(f"{event_type} event has an invalid {path}.", field=field)


def parse_event(raw: bytes | str) -> VodEvent:
    """Parse one VOD event body into its model (GenericEvent for unknown types).

    Raises :class:`errors.MalformedBody` when the body is not UTF-8 JSON holding an object, and
    :class:`errors.InvalidParameter` (``field`` = the VOD field) when a known event is unusable.
    """
    decoded = not isinstance(raw, str)
    try:
        text = raw if isinstance(raw, str) else raw.decode("utf-8-sig")
        # Keys are stripped (a documented sample has "SourceURL ") as each object is decoded.
        data = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=stripped_pairs)
    except UnicodeDecodeError as exc:
        raise errors.MalformedBody("The event body is not valid UTF-8.") from exc
    except (ValueError, RecursionError) as exc:
        raise errors.MalformedBody("The event body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise errors.MalformedBody("The event body must be a JSON object.")
    # Nesting deeper than MAX_DEPTH takes more than MAX_DEPTH brackets: with fewer in the whole
    # text (VOD's bodies have a handful), the walk cannot find any and is skipped.
    if text.count("{") + text.count("[") > MAX_DEPTH and too_deep(data):  # validation recurses
        raise errors.MalformedBody("The event body is nested too deeply.")
    # A NUL or a lone surrogate can reach a decoded string only through a \u escape: JSON escapes
    # control characters (RFC 8259, section 7; json.loads refuses them raw) and text decoded
    # from UTF-8 holds no surrogates. Without one (at any level: nested JSON in a string escapes
    # its own backslashes), the walk cannot find any and is skipped.
    found = bad_text(data) if "\\u" in text or not decoded else None
    if found is not None:
        raise errors.MalformedBody(f"The event body holds {found[0]}.")
    event_type = data.get("EventType")
    if not isinstance(event_type, str) or not event_type.strip():
        raise errors.MissingParameter("The event has no EventType.", field="EventType")
    data["EventType"] = event_type = event_type.strip()
    cls = event_model(event_type)
    try:
        event = cls.model_validate(data)
    except ValidationError as exc:
        raise _translate(exc, event_type if cls is not GenericEvent else "The") from exc
    return event  # type: ignore[return-value]  # cls is one of the union's members
