"""What every VOD event model shares (:mod:`shared.events`, :mod:`shared.vod_events_more`): the
tolerant configuration, the value helpers, and the fields and behaviour of every event.

The models are tolerant because VOD's bodies are not type-stable (see the event pages under
https://www.alibabacloud.com/help/en/vod/user-guide/event-notification): extra fields are kept, numbers
may arrive as strings, keys may carry trailing spaces, nested JSON may arrive as a string, and
``EventTime`` comes as ``…ssZ``, ``…ss.SSSZ`` or ``…ss:SSSZ``.
"""

# No ``from __future__ import annotations`` in a module of pydantic models: pydantic would compile
# and eval each field's annotation string as it builds the class (on FC's python3.10, 0.7 ms for
# the settings, 3 ms for the event models: bench/README.md, cold start).
import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from shared.validation import Invalid, loads_json, parse_vod_time

__all__ = [
    "ID_MAX",
    "MEDIA_ID_FIELDS",
    "Event",
    "JsonValue",
    "MediaEvent",
    "MediaId",
    "StrList",
    "Tolerant",
    "VideoEvent",
    "maybe_json",
    "stripped_pairs",
]

# Where each kind of event keeps the id of its media, in the order we look for it.
MEDIA_ID_FIELDS: tuple[str, ...] = ("VideoId", "MediaId", "ImageId", "AttachedMediaId")


# --- helpers ------------------------------------------------------------------------------------


def stripped_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``' object hook: keys without the whitespace around them, as they are decoded."""
    return {k.strip(): v for k, v in pairs}


def _strip_keys(value: Any) -> Any:
    """Strip whitespace around keys at every level (a documented sample has ``"SourceURL "``)."""
    if isinstance(value, dict):
        return {(k.strip() if isinstance(k, str) else k): _strip_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_keys(v) for v in value]
    return value


def maybe_json(value: Any) -> Any:
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
        parsed = maybe_json(value)
        return parsed if isinstance(parsed, dict) else value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _str_list(value: Any) -> Any:
    """A list of ids, or a comma-separated string of them."""
    value = maybe_json(value)
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
JsonValue = Annotated[Any, BeforeValidator(maybe_json)]
StrList = Annotated[list[str], BeforeValidator(_str_list)]

# VOD's media ids are 32 hex characters; anything longer or stranger is not one of ours (and a
# very long one would not fit a database index).
ID_MAX = 64
MediaId = Annotated[str, Field(min_length=1, max_length=ID_MAX, pattern=r"^[A-Za-z0-9_-]+$")]

_TOLERANT = ConfigDict(
    extra="allow",
    defer_build=True,
    coerce_numbers_to_str=True,
    str_strip_whitespace=True,
)


class Tolerant(BaseModel):
    model_config = _TOLERANT

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        data = maybe_json(data)
        return _strip_keys(data) if isinstance(data, dict) else data


# --- events -------------------------------------------------------------------------------------


# VOD's event types are PascalCase words (the catalogue's longest has 27 characters): anything
# else is no event of VOD's, and is refused before it is echoed, logged or stored.
_EventTypeName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9]{0,63}$")]


class Event(Tolerant):
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


class VideoEvent(Event):
    MEDIA_ID_FIELD: ClassVar[str | None] = "VideoId"

    VideoId: MediaId


class MediaEvent(Event):
    MEDIA_ID_FIELD: ClassVar[str | None] = "MediaId"

    MediaId: MediaId
