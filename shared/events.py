"""VOD event notifications (HTTP callback bodies and MNS message bodies).

One model per ``EventType`` of VOD's catalogue, joined in the :data:`VodEvent` union; types we do
not know become :class:`GenericEvent` (acknowledged and logged, never rejected). The models are
tolerant because VOD's bodies are not type-stable (see the event pages under
https://www.alibabacloud.com/help/en/vod/user-guide/event-notification): extra fields are kept, numbers
may arrive as strings, keys may carry trailing spaces, nested JSON may arrive as a string, and
``EventTime`` comes as ``…ssZ``, ``…ss.SSSZ`` or ``…ss:SSSZ``. What makes an event unusable (no
media id, a non-object body) is an error.

``parse_event(raw)`` is the entry point; it raises :class:`errors.MalformedBody` for a body that
is not a JSON object and :class:`errors.InvalidParameter` for a known event that lacks what it
needs (``field`` names the VOD field).
"""

# No ``from __future__ import annotations`` in a module of pydantic models: pydantic would compile
# and eval each field's annotation string as it builds the class (on FC's python3.10, 0.7 ms for
# the settings, 3 ms for the event models: bench/README.md, cold start).
import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Union, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from shared import errors
from shared.validation import MAX_DEPTH, Invalid, bad_text, loads_json, parse_vod_time, too_deep
from shared.vod_models import LooseFloat, LooseInt, LooseTime

__all__ = [
    "EVENT_TYPES",
    "MEDIA_ID_FIELDS",
    "AIMediaAuditComplete",
    "AIMediaDNAComplete",
    "AIVideoTagComplete",
    "AddLiveRecordVideoComplete",
    "AttachedMediaUploadComplete",
    "CreateAuditComplete",
    "DeleteMediaComplete",
    "DynamicImageComplete",
    "DynamicImageJobInfo",
    "FileUploadComplete",
    "GenericEvent",
    "ImageUploadComplete",
    "LiveRecordVideoComposeStart",
    "MediaBaseChangeComplete",
    "ProduceMediaComplete",
    "SnapshotComplete",
    "SnapshotInfo",
    "StreamInfo",
    "StreamTranscodeComplete",
    "TranscodeComplete",
    "UploadByURLComplete",
    "VideoAnalysisComplete",
    "VideoUploadComplete",
    "VodEvent",
    "parse_event",
]

# Where each kind of event keeps the id of its media, in the order we look for it.
MEDIA_ID_FIELDS: tuple[str, ...] = ("VideoId", "MediaId", "ImageId", "AttachedMediaId")


# --- helpers ------------------------------------------------------------------------------------


def _stripped(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``' object hook: keys without the whitespace around them, as they are decoded."""
    return {k.strip(): v for k, v in pairs}


def _strip_keys(value: Any) -> Any:
    """Strip whitespace around keys at every level (a documented sample has ``"SourceURL "``)."""
    if isinstance(value, dict):
        return {(k.strip() if isinstance(k, str) else k): _strip_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_keys(v) for v in value]
    return value


def _maybe_json(value: Any) -> Any:
    """A JSON object or array delivered as a string becomes the object; anything else stays."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                parsed = loads_json(text, what="A field")
            except Invalid:
                return value  # not JSON after all (or too deep, or not storable): it stays text
            return _strip_keys(parsed)
    return value


def _extend(value: Any) -> Any:
    """``Extend``: a JSON string (as VOD sends it) or an object → dict; a plain string stays."""
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str):
        parsed = _maybe_json(value)
        return parsed if isinstance(parsed, dict) else value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _str_list(value: Any) -> Any:
    """A list of ids, or a comma-separated string of them."""
    value = _maybe_json(value)
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _event_time(value: Any) -> Any:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return parse_vod_time(value)
        except ValueError:
            raise ValueError("EventTime is not a time VOD sends (yyyy-MM-ddTHH:mm:ssZ).") from None
    raise ValueError("EventTime must be a string.")


_EventTime = Annotated[datetime | None, BeforeValidator(_event_time)]
_Extend = Annotated[dict[str, Any] | str | None, BeforeValidator(_extend)]
_JsonValue = Annotated[Any, BeforeValidator(_maybe_json)]
_StrList = Annotated[list[str], BeforeValidator(_str_list)]

# VOD's media ids are 32 hex characters; anything longer or stranger is not one of ours (and a
# very long one would not fit a database index).
_ID_MAX = 64
_MediaId = Annotated[str, Field(min_length=1, max_length=_ID_MAX, pattern=r"^[A-Za-z0-9_-]+$")]

_TOLERANT = ConfigDict(
    extra="allow",
    defer_build=True,
    coerce_numbers_to_str=True,
    str_strip_whitespace=True,
)


class _Tolerant(BaseModel):
    model_config = _TOLERANT

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        data = _maybe_json(data)
        return _strip_keys(data) if isinstance(data, dict) else data


# --- nested structures --------------------------------------------------------------------------


class StreamInfo(_Tolerant):
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


class SnapshotInfo(_Tolerant):
    """One snapshot job of a SnapshotComplete event."""

    Status: str | None = None
    SnapshotType: str | None = None  # CoverSnapshot, NormalSnapshot, SpriteSnapshot
    SnapshotCount: LooseInt = None
    SnapshotFormat: str | None = None
    SnapshotRegular: str | None = None  # URL template; {SnapshotCount} → 5-digit, zero-padded
    JobId: str | None = None

    def urls(self) -> list[str]:
        """The snapshot URLs the ``SnapshotRegular`` template describes."""
        if not self.SnapshotRegular or not self.SnapshotCount:
            return []
        count = min(self.SnapshotCount, 10_000)
        return [self.SnapshotRegular.replace("{SnapshotCount}", f"{n:05d}") for n in range(1, count + 1)]


class DynamicImageJobInfo(_Tolerant):
    """A DynamicImageComplete result (delivered by VOD as a JSON string)."""

    JobId: str | None = None
    Status: str | None = None
    FileURL: str | None = None
    FileSize: LooseInt = None
    Fps: LooseFloat = None
    Height: LooseInt = None
    Width: LooseInt = None


# --- events -------------------------------------------------------------------------------------


# VOD's event types are PascalCase words (the catalogue's longest has 27 characters): anything
# else is no event of VOD's, and is refused before it is echoed, logged or stored.
_EventTypeName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9]{0,63}$")]


class _Event(_Tolerant):
    """Fields every VOD event has, and the behaviour every event model shares."""

    EventType: _EventTypeName
    EventTime: _EventTime = None
    Status: str | None = None
    Extend: _Extend = None

    # The field holding the media id, for the id-carrying event types.
    MEDIA_ID_FIELD: ClassVar[str | None] = None

    @property
    def media_id(self) -> str | None:
        """The VideoId / MediaId / ImageId / AttachedMediaId the event is about."""
        names = (self.MEDIA_ID_FIELD,) if self.MEDIA_ID_FIELD else MEDIA_ID_FIELDS
        for name in names:
            value = getattr(self, name, None)
            if isinstance(value, str) and value:
                return value
        return None

    @property
    def job_id(self) -> str | None:
        """The job the event reports on, when it has one."""
        value = getattr(self, "JobId", None)
        return value if isinstance(value, str) and value else None

    @property
    def succeeded(self) -> bool:
        """``Status == "success"`` (case-insensitive); an event without ``Status`` (the older
        FileUploadComplete shape, sent only when the upload worked) counts as a success."""
        return self.Status is None or self.Status.lower() == "success"

    @property
    def event_time(self) -> datetime | None:
        """``EventTime`` as an aware UTC datetime (``None`` when absent)."""
        return self.EventTime

    def extend_dict(self) -> dict[str, Any]:
        """``Extend`` as a dict; ``{}`` when absent or not a JSON object."""
        return dict(self.Extend) if isinstance(self.Extend, dict) else {}

    def dedupe_key(self) -> str:
        """The key of this event: ``EventType|media id (or JobId)|digest of the whole event``.

        VOD (and an MNS redelivery) sends the same body again, which gives the same key; any two
        events that differ in anything (a second FileUploadComplete for a re-upload with the same
        credential, in the same second, with another Size or FileUrl) get different keys. Events
        carry no id of their own, so the content is the only identity there is.
        """
        content = json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        digest = hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"{self.EventType}|{self.media_id or self.job_id or ''}|{digest}"


class _VideoEvent(_Event):
    MEDIA_ID_FIELD: ClassVar[str | None] = "VideoId"

    VideoId: _MediaId


class _MediaEvent(_Event):
    MEDIA_ID_FIELD: ClassVar[str | None] = "MediaId"

    MediaId: _MediaId


class FileUploadComplete(_VideoEvent):
    """The source file of a video or audio reached VOD (no event is sent on failure)."""

    EventType: Literal["FileUploadComplete"]
    Size: LooseInt = None
    FileUrl: str | None = None


class VideoUploadComplete(_VideoEvent):
    """Upload done with the "No Transcoding" template group (instead of TranscodeComplete)."""

    EventType: Literal["VideoUploadComplete"]
    Size: LooseInt = None
    FileUrl: str | None = None


class ImageUploadComplete(_Event):
    """An image reached VOD (EventTime may carry milliseconds after a colon)."""

    MEDIA_ID_FIELD: ClassVar[str | None] = "ImageId"

    EventType: Literal["ImageUploadComplete"]
    ImageId: _MediaId
    Size: LooseInt = None
    FileURL: str | None = None
    AppId: str | None = None


class AttachedMediaUploadComplete(_Event):
    """An attached media file (watermark, subtitle, material) reached VOD."""

    MEDIA_ID_FIELD: ClassVar[str | None] = "AttachedMediaId"

    EventType: Literal["AttachedMediaUploadComplete"]
    AttachedMediaId: _MediaId
    Size: LooseInt = None
    FileURL: str | None = None


class StreamTranscodeComplete(StreamInfo, _VideoEvent):
    """One definition and format of a video is transcoded (playable from the first one)."""

    EventType: Literal["StreamTranscodeComplete"]
    Status: str | None = None


class TranscodeComplete(_VideoEvent):
    """All streams of a video are transcoded; ``success`` if at least one stream is."""

    EventType: Literal["TranscodeComplete"]
    StreamInfos: list[StreamInfo] = Field(default_factory=list)
    ErrorCode: str | None = None
    ErrorMessage: str | None = None

    @field_validator("StreamInfos", mode="before")
    @classmethod
    def _streams(cls, value: Any) -> Any:
        value = _maybe_json(value)
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


class SnapshotComplete(_VideoEvent):
    """Snapshots (cover, normal, sprite) of a video are taken."""

    EventType: Literal["SnapshotComplete"]
    SubType: str | None = None
    CoverUrl: str | None = None
    ErrorCode: str | None = None
    ErrorMessage: str | None = None
    SnapshotInfos: list[SnapshotInfo] = Field(default_factory=list)

    @field_validator("SnapshotInfos", mode="before")
    @classmethod
    def _infos(cls, value: Any) -> Any:
        value = _maybe_json(value)
        return [] if value is None else value

    @property
    def job_id(self) -> str | None:
        jobs = sorted(info.JobId for info in self.SnapshotInfos if info.JobId)
        return ",".join(jobs) or None


_DynamicImageJobInfo = DynamicImageJobInfo


class DynamicImageComplete(_VideoEvent):
    """An animated image (GIF) of a video is made."""

    EventType: Literal["DynamicImageComplete"]
    JobId: str | None = None
    ErrorCode: str | None = None
    ErrorMessage: str | None = None
    DynamicImageJobInfo: _DynamicImageJobInfo | None = None

    @field_validator("DynamicImageJobInfo", mode="before")
    @classmethod
    def _info(cls, value: Any) -> Any:
        value = _maybe_json(value)
        if isinstance(value, list):  # documented as an array type, sent as one object
            value = value[0] if value else None
        return value if isinstance(value, dict) else None


class VideoAnalysisComplete(_VideoEvent):
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


class _AIEvent(_MediaEvent):
    JobId: str | None = None
    Code: str | None = None
    Message: str | None = None
    Data: _JsonValue = None  # the result: a JSON string in the docs' table, an object in a sample


class AIMediaAuditComplete(_AIEvent):
    """Automated review finished."""

    EventType: Literal["AIMediaAuditComplete"]


class AIMediaDNAComplete(_AIEvent):
    """Video DNA (duplicate detection) finished."""

    EventType: Literal["AIMediaDNAComplete"]


class AIVideoTagComplete(_AIEvent):
    """Smart tagging finished."""

    EventType: Literal["AIVideoTagComplete"]


class CreateAuditComplete(_MediaEvent):
    """Manual review done: ``AuditStatus`` ``Normal`` or ``Blocked``."""

    EventType: Literal["CreateAuditComplete"]
    SubType: str | None = None
    AuditStatus: str | None = None
    CreationTime: LooseTime = None
    Auditor: str | None = None
    Reason: str | None = None


class AddLiveRecordVideoComplete(_VideoEvent):
    """A live stream was recorded as a video."""

    EventType: Literal["AddLiveRecordVideoComplete"]
    StreamName: str | None = None
    DomainName: str | None = None
    AppName: str | None = None
    RecordStartTime: LooseTime = None
    RecordEndTime: LooseTime = None


class LiveRecordVideoComposeStart(_VideoEvent):
    """Production of a recorded live stream started."""

    EventType: Literal["LiveRecordVideoComposeStart"]
    StreamName: str | None = None
    DomainName: str | None = None
    AppName: str | None = None


class UploadByURLComplete(_Event):
    """UploadMediaByURL finished; a failed pull has a JobId but no VideoId."""

    MEDIA_ID_FIELD: ClassVar[str | None] = "VideoId"

    EventType: Literal["UploadByURLComplete"]
    VideoId: _MediaId | None = None
    JobId: str = Field(min_length=1, max_length=_ID_MAX)
    SourceURL: str | None = None
    Size: LooseInt = None
    ErrorCode: str | None = None
    ErrorMessage: str | None = None
    FileType: str | None = None
    StreamFileURL: str | None = None


class DeleteMediaComplete(_MediaEvent):
    """DeleteVideo finished (``DeleteType``: all, mezzanine or stream)."""

    EventType: Literal["DeleteMediaComplete"]
    MediaType: str | None = None
    DeleteType: str | None = None
    JobIds: _StrList = Field(default_factory=list)
    ErrorCode: str | None = None
    ErrorMessage: str | None = None


class MediaBaseChangeComplete(_MediaEvent):
    """A media's base information was created, updated or deleted.

    ``MediaContent`` maps a field (Title, Description, CoverURL, CateId, Tags) to
    ``{"OldValue", "NewValue"}``; VOD sends the map and each value as JSON strings, or as objects.
    """

    EventType: Literal["MediaBaseChangeComplete"]
    MediaType: str | None = None
    OperateMode: str | None = None
    MediaContent: dict[str, Any] = Field(default_factory=dict)

    @field_validator("MediaContent", mode="before")
    @classmethod
    def _content(cls, value: Any) -> Any:
        value = _maybe_json(value)
        if value is None:
            return {}
        if isinstance(value, dict):
            return {key: _maybe_json(item) for key, item in value.items()}
        return value


class ProduceMediaComplete(_MediaEvent):
    """Online editing produced a media."""

    EventType: Literal["ProduceMediaComplete"]
    ProjectId: str | None = None
    ErrorCode: str | None = None
    ErrorMessage: str | None = None


class GenericEvent(_Event):
    """Any event type we do not model: acknowledged and logged, never rejected."""


#: Every VOD event model. Parsing dispatches on ``EventType`` through :data:`EVENT_TYPES` (one
#: dict lookup, then one model); this union is the type the services see.
VodEvent = Union[  # noqa: UP007  (one member per line; the | form does not wrap)
    FileUploadComplete,
    VideoUploadComplete,
    ImageUploadComplete,
    AttachedMediaUploadComplete,
    StreamTranscodeComplete,
    TranscodeComplete,
    SnapshotComplete,
    DynamicImageComplete,
    VideoAnalysisComplete,
    AIMediaAuditComplete,
    AIMediaDNAComplete,
    AIVideoTagComplete,
    CreateAuditComplete,
    AddLiveRecordVideoComplete,
    LiveRecordVideoComposeStart,
    UploadByURLComplete,
    DeleteMediaComplete,
    MediaBaseChangeComplete,
    ProduceMediaComplete,
    GenericEvent,
]
#: The model of each known ``EventType`` (every member of :data:`VodEvent` but GenericEvent).
EVENT_TYPES: dict[str, type[_Event]] = {
    cls.__name__: cls for cls in get_args(VodEvent) if cls is not GenericEvent
}


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
        data = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_stripped)
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
    cls = EVENT_TYPES.get(event_type, GenericEvent)
    try:
        event = cls.model_validate(data)
    except ValidationError as exc:
        raise _translate(exc, event_type if cls is not GenericEvent else "The") from exc
    return event  # type: ignore[return-value]  # cls is one of the union's members
