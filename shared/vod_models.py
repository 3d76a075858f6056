"""Pydantic models of VOD's answers: tolerant, because VOD's JSON is not type-stable.

Extra fields are kept, numbers delivered as strings are coerced, and unparsable optional numbers
and times read as ``None`` (the scalar rules are :mod:`shared.validation`'s). Models that carry
secrets (``UploadAuth``) never print them. API reference:
https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-dir

Every model defers building its validator until first use (``defer_build``), so importing this
module stays cheap on a cold start; the answers about images and attached media are in
:mod:`shared.vod_media_models`, imported only by the calls that get them (a video's create,
callback or cleanup never builds those classes: about 3.5 ms of a cold start).
"""

# No ``from __future__ import annotations`` in a module of pydantic models: pydantic would compile
# and eval each field's annotation string as it builds the class (on FC's python3.10, 0.7 ms for
# the settings, 3 ms for the event models: bench/README.md, cold start).
import base64
import binascii
import json
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared import errors
from shared.validation import loose_float, loose_int, loose_time

__all__ = [
    "DEFAULT_CREDENTIAL_SECONDS",
    "DeleteVideoResponse",
    "GetMezzanineInfoResponse",
    "GetVideoInfoResponse",
    "GetVideoInfosResponse",
    "LooseFloat",
    "LooseInt",
    "LooseTime",
    "MediaCredentials",
    "MediaItem",
    "Mezzanine",
    "SearchMediaResponse",
    "UploadAddress",
    "UploadAuth",
    "UploadCredentials",
    "Video",
    "VodErrorBody",
]

DEFAULT_CREDENTIAL_SECONDS = 3000  # VOD: "valid for 3,000 seconds by default"

# Tolerant scalar types: numbers may arrive as strings; garbage reads as None.
LooseInt = Annotated[int | None, BeforeValidator(loose_int)]
LooseFloat = Annotated[float | None, BeforeValidator(loose_float)]
LooseTime = Annotated[datetime | None, BeforeValidator(loose_time)]


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


_TOLERANT = ConfigDict(extra="allow", defer_build=True, coerce_numbers_to_str=True)
# For models that carry secrets: a ValidationError must not print them.
_TOLERANT_SECRET = ConfigDict(
    extra="allow", defer_build=True, coerce_numbers_to_str=True, hide_input_in_errors=True
)


def _decode_b64_json(value: str, what: str) -> dict[str, Any]:
    try:
        text = value.strip()
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        decoded = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        # Not chained: a JSON error keeps the decoded document (secrets, for UploadAuth).
        raise errors.UpstreamError(f"VOD returned an {what} that is not Base64-encoded JSON.") from None
    if not isinstance(decoded, dict):
        raise errors.UpstreamError(f"VOD returned an {what} that is not a JSON object.")
    return decoded


class UploadAddress(BaseModel):
    """Decoded ``UploadAddress``: where the client PUTs the file in OSS."""

    model_config = _TOLERANT

    Endpoint: str
    Bucket: str
    FileName: str

    @classmethod
    def decode(cls, b64: str) -> "UploadAddress":
        """Decode VOD's Base64 JSON; raises :class:`errors.UpstreamError` on garbage."""
        try:
            return cls.model_validate(_decode_b64_json(b64, "UploadAddress"))
        except ValidationError as exc:
            raise errors.UpstreamError("VOD returned an incomplete UploadAddress.") from exc


class UploadAuth(BaseModel):
    """Decoded ``UploadAuth``: the STS credential for the upload (secrets are ``SecretStr``)."""

    model_config = _TOLERANT_SECRET

    AccessKeyId: str
    AccessKeySecret: SecretStr
    SecurityToken: SecretStr
    Expiration: str | None = None  # a string of seconds, e.g. "3600"
    ExpireUTCTime: LooseTime = None
    Region: str | None = None

    @classmethod
    def decode(cls, b64: str) -> "UploadAuth":
        """Decode VOD's Base64 JSON; raises :class:`errors.UpstreamError` on garbage (no secrets
        in the message)."""
        try:
            return cls.model_validate(_decode_b64_json(b64, "UploadAuth"))
        except ValidationError:
            # Not chained: the pydantic error would carry the decoded secrets as its input.
            raise errors.UpstreamError("VOD returned an incomplete UploadAuth.") from None

    def expires_at(self, issued_at: datetime) -> datetime:
        """When the credential expires: ``ExpireUTCTime`` (what VOD's own upload SDKs trust), else
        ``issued_at + Expiration`` seconds, else ``issued_at + 3000 s``."""
        if self.ExpireUTCTime is not None:
            return self.ExpireUTCTime
        if issued_at.tzinfo is None:
            issued_at = issued_at.replace(tzinfo=timezone.utc)
        seconds = loose_int(self.Expiration)
        if seconds is None or seconds <= 0:
            seconds = DEFAULT_CREDENTIAL_SECONDS
        return issued_at + timedelta(seconds=seconds)


_UploadAuth = UploadAuth


class MediaCredentials(BaseModel):
    """What every CreateUpload* answer (and RefreshUploadVideo's) holds: raw Base64 strings.

    ``UploadAuth`` holds an STS secret: it is left out of ``repr``/``str`` and must never be
    logged; only :meth:`to_public_dict` hands it out, for the client's HTTP answer.
    """

    model_config = ConfigDict(
        extra="ignore", defer_build=True, coerce_numbers_to_str=True, hide_input_in_errors=True
    )
    #: The field holding the media id.
    ID_FIELD: ClassVar[str] = ""

    RequestId: str
    UploadAddress: str = Field(min_length=1)
    UploadAuth: str = Field(min_length=1, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, value: Any) -> Any:
        # One 2021 doc sample wraps the answer as {"<Action>Response": {...}}; the SDKs (which parse
        # real answers) read it flat: take the inner object when that is all there is.
        if isinstance(value, dict) and cls.ID_FIELD not in value:
            inner = [v for k, v in value.items() if k.endswith("Response") and isinstance(v, dict)]
            if len(inner) == 1:
                return {**{k: v for k, v in value.items() if not k.endswith("Response")}, **inner[0]}
        return value

    @property
    def media_id(self) -> str:
        """The VideoId, ImageId or MediaId."""
        value: str = getattr(self, self.ID_FIELD)
        return value

    def auth(self) -> _UploadAuth:
        """The decoded credential."""
        return _UploadAuth.decode(self.UploadAuth)

    def expires_at(self, issued_at: datetime) -> datetime:
        """When the credential expires (see :meth:`UploadAuth.expires_at`)."""
        return self.auth().expires_at(issued_at)

    def to_public_dict(self) -> dict[str, str | None]:
        """Exactly VOD's answer, the fields the model declares (the media id first, as VOD lists
        it): the HTTP answer."""
        first = ("RequestId", self.ID_FIELD)
        names = [*first, *(name for name in type(self).model_fields if name not in first)]
        return {name: getattr(self, name) for name in names}


class UploadCredentials(MediaCredentials):
    """The answer of CreateUploadVideo and RefreshUploadVideo."""

    ID_FIELD: ClassVar[str] = "VideoId"

    VideoId: str = Field(min_length=1)


class VodErrorBody(BaseModel):
    """VOD's error body (``Recommend`` is a troubleshooting URL)."""

    model_config = _TOLERANT

    RequestId: str | None = None
    Code: str | None = None
    Message: str | None = None
    HostId: str | None = None
    Recommend: str | None = None


# --- VOD's answers: media -----------------------------------------------------------------------


def _unwrap_list(value: Any, key: str) -> Any:
    """VOD's JSON sometimes keeps the XML wrapper: ``{"Video": [...]}`` instead of ``[...]``."""
    if isinstance(value, dict) and len(value) == 1 and key in value:
        value = value[key]
        return value if isinstance(value, list) else [value]
    if value is None:
        return []
    return value


def _items(key: str) -> BeforeValidator:
    """A list field that also takes VOD's XML-style wrapper (``{key: [...]}``) or one bare item."""
    return BeforeValidator(lambda value: _unwrap_list(value, key))


def _ids(key: str) -> BeforeValidator:
    """``NonExist*Ids``: a list, a comma-separated string (one 2021 sample) or an XML-style wrapper."""

    def parse(value: Any) -> Any:
        value = _unwrap_list(value, key)
        return [part for part in value.split(",") if part] if isinstance(value, str) else value

    return BeforeValidator(parse)


class Video(BaseModel):
    """A video as GetVideoInfo/GetVideoInfos/SearchMedia describe it (tolerant)."""

    model_config = _TOLERANT

    VideoId: str
    Title: str | None = None
    Description: str | None = None
    Status: str | None = None
    Duration: LooseFloat = None
    Size: LooseInt = None
    CreationTime: LooseTime = None
    ModificationTime: LooseTime = None
    ReferenceId: str | None = None
    AppId: str | None = None
    StorageLocation: str | None = None
    StorageClass: str | None = None
    TemplateGroupId: str | None = None
    CateId: LooseInt = None
    CateName: str | None = None
    Tags: str | None = None
    CoverURL: str | None = None
    AuditStatus: str | None = None
    RegionId: str | None = None
    UserData: str | None = None

    @field_validator("UserData", mode="before")
    @classmethod
    def _user_data(cls, value: Any) -> Any:
        return _compact_json(value) if isinstance(value, (dict, list)) else value


_Video = Video


class GetVideoInfoResponse(BaseModel):
    model_config = _TOLERANT

    RequestId: str | None = None
    Video: _Video


class GetVideoInfosResponse(BaseModel):
    model_config = _TOLERANT

    RequestId: str | None = None
    VideoList: Annotated[list[_Video], _items("Video")] = Field(default_factory=list)
    NonExistVideoIds: Annotated[list[str], _ids("VideoId")] = Field(default_factory=list)


class Mezzanine(BaseModel):
    """GetMezzanineInfo's source-file record; ``Status`` ``Normal`` means the upload finished."""

    model_config = _TOLERANT

    VideoId: str
    FileName: str | None = None
    FileURL: str | None = None
    Size: LooseInt = None
    Duration: LooseFloat = None
    Bitrate: LooseFloat = None
    Fps: LooseFloat = None
    Width: LooseInt = None
    Height: LooseInt = None
    CreationTime: LooseTime = None
    Status: str | None = None
    OutputType: str | None = None
    FileMD5: str | None = None
    PreprocessStatus: str | None = None
    StorageClass: str | None = None
    VideoStreamList: list[dict[str, Any]] = Field(default_factory=list)
    AudioStreamList: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("VideoStreamList", "AudioStreamList", mode="before")
    @classmethod
    def _streams(cls, value: Any, info: ValidationInfo) -> Any:
        return _unwrap_list(value, str(info.field_name)[: -len("List")])


_Mezzanine = Mezzanine


class GetMezzanineInfoResponse(BaseModel):
    model_config = _TOLERANT

    RequestId: str | None = None
    Mezzanine: _Mezzanine


class MediaItem(BaseModel):
    """One ``SearchMedia`` hit; ``Video`` is set for ``MediaType`` ``video``."""

    model_config = _TOLERANT

    MediaId: str
    MediaType: str | None = None
    CreationTime: LooseTime = None
    Video: _Video | None = None


class SearchMediaResponse(BaseModel):
    model_config = _TOLERANT

    RequestId: str | None = None
    Total: LooseInt = 0
    ScrollToken: str | None = None
    MediaList: list[MediaItem] = Field(default_factory=list)

    @field_validator("MediaList", mode="before")
    @classmethod
    def _media(cls, value: Any) -> Any:
        return _unwrap_list(value, "Media")


class DeleteVideoResponse(BaseModel):
    model_config = _TOLERANT

    RequestId: str | None = None
