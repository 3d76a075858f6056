"""VOD's informational events: snapshots, animated images, AI jobs, reviews, live recordings, URL
pulls, changes of a media's base information and online editing (see :mod:`shared.events`). None
of them moves an upload; :func:`shared.events.parse_event` imports this module only when one of
them arrives, so that the events of an upload's own life never build these classes.
"""

# No ``from __future__ import annotations`` in a module of pydantic models: pydantic would compile
# and eval each field's annotation string as it builds the class (on FC's python3.10, 0.7 ms for
# the settings, 3 ms for the event models: bench/README.md, cold start).
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from shared.event_base import ID_MAX, Event, JsonValue, MediaEvent, MediaId, Tolerant, VideoEvent, maybe_json
from shared.vod_models import LooseFloat, LooseInt, LooseTime

__all__ = [
    "AIMediaAuditComplete",
    "AIMediaDNAComplete",
    "AIVideoTagComplete",
    "AddLiveRecordVideoComplete",
    "CreateAuditComplete",
    "DynamicImageComplete",
    "DynamicImageJobInfo",
    "LiveRecordVideoComposeStart",
    "MediaBaseChangeComplete",
    "ProduceMediaComplete",
    "SnapshotComplete",
    "SnapshotInfo",
    "UploadByURLComplete",
]


class SnapshotInfo(Tolerant):
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


class DynamicImageJobInfo(Tolerant):
    """A DynamicImageComplete result (delivered by VOD as a JSON string)."""

    JobId: str | None = None
    Status: str | None = None
    FileURL: str | None = None
    FileSize: LooseInt = None
    Fps: LooseFloat = None
    Height: LooseInt = None
    Width: LooseInt = None


class SnapshotComplete(VideoEvent):
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
        value = maybe_json(value)
        return [] if value is None else value

    @property
    def job_id(self) -> str | None:
        jobs = sorted(info.JobId for info in self.SnapshotInfos if info.JobId)
        return ",".join(jobs) or None


_DynamicImageJobInfo = DynamicImageJobInfo


class DynamicImageComplete(VideoEvent):
    """An animated image (GIF) of a video is made."""

    EventType: Literal["DynamicImageComplete"]
    JobId: str | None = None
    ErrorCode: str | None = None
    ErrorMessage: str | None = None
    DynamicImageJobInfo: _DynamicImageJobInfo | None = None

    @field_validator("DynamicImageJobInfo", mode="before")
    @classmethod
    def _info(cls, value: Any) -> Any:
        value = maybe_json(value)
        if isinstance(value, list):  # documented as an array type, sent as one object
            value = value[0] if value else None
        return value if isinstance(value, dict) else None


class _AIEvent(MediaEvent):
    JobId: str | None = None
    Code: str | None = None
    Message: str | None = None
    Data: JsonValue = None  # the result: a JSON string in the docs' table, an object in a sample


class AIMediaAuditComplete(_AIEvent):
    """Automated review finished."""

    EventType: Literal["AIMediaAuditComplete"]


class AIMediaDNAComplete(_AIEvent):
    """Video DNA (duplicate detection) finished."""

    EventType: Literal["AIMediaDNAComplete"]


class AIVideoTagComplete(_AIEvent):
    """Smart tagging finished."""

    EventType: Literal["AIVideoTagComplete"]


class CreateAuditComplete(MediaEvent):
    """Manual review done: ``AuditStatus`` ``Normal`` or ``Blocked``."""

    EventType: Literal["CreateAuditComplete"]
    SubType: str | None = None
    AuditStatus: str | None = None
    CreationTime: LooseTime = None
    Auditor: str | None = None
    Reason: str | None = None


class AddLiveRecordVideoComplete(VideoEvent):
    """A live stream was recorded as a video."""

    EventType: Literal["AddLiveRecordVideoComplete"]
    StreamName: str | None = None
    DomainName: str | None = None
    AppName: str | None = None
    RecordStartTime: LooseTime = None
    RecordEndTime: LooseTime = None


class LiveRecordVideoComposeStart(VideoEvent):
    """Production of a recorded live stream started."""

    EventType: Literal["LiveRecordVideoComposeStart"]
    StreamName: str | None = None
    DomainName: str | None = None
    AppName: str | None = None


class UploadByURLComplete(Event):
    """UploadMediaByURL finished; a failed pull has a JobId but no VideoId."""

    MEDIA_ID_FIELD: ClassVar[str | None] = "VideoId"

    EventType: Literal["UploadByURLComplete"]
    VideoId: MediaId | None = None
    JobId: str = Field(min_length=1, max_length=ID_MAX)
    SourceURL: str | None = None
    Size: LooseInt = None
    ErrorCode: str | None = None
    ErrorMessage: str | None = None
    FileType: str | None = None
    StreamFileURL: str | None = None


class MediaBaseChangeComplete(MediaEvent):
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
        value = maybe_json(value)
        if value is None:
            return {}
        if isinstance(value, dict):
            return {key: maybe_json(item) for key, item in value.items()}
        return value


class ProduceMediaComplete(MediaEvent):
    """Online editing produced a media."""

    EventType: Literal["ProduceMediaComplete"]
    ProjectId: str | None = None
    ErrorCode: str | None = None
    ErrorMessage: str | None = None
