"""Pydantic v2 models of VOD's API: our request validation and VOD's answers.

Strict for our API (:class:`CreateUploadVideoRequest` forbids unknown fields, takes VOD's
parameter names and enforces VOD's documented limits before VOD sees the request), tolerant for
VOD's answers (extra fields kept, numbers delivered as strings coerced, unparsable optional
numbers and times read as ``None``).

Every model defers building its validator until first use (``defer_build``), so importing this
module stays cheap on a cold start.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from shared import errors
from shared.settings import DEFAULT_EXTENSIONS

__all__ = [
    "DEFAULT_APP_ID",
    "DEFAULT_CREDENTIAL_SECONDS",
    "AccelerateConfig",
    "CreateUploadVideoRequest",
    "DeleteVideoResponse",
    "GetMezzanineInfoResponse",
    "GetVideoInfoResponse",
    "GetVideoInfosResponse",
    "LooseFloat",
    "LooseInt",
    "LooseTime",
    "MediaItem",
    "MessageCallback",
    "Mezzanine",
    "SearchMediaResponse",
    "UploadAddress",
    "UploadAuth",
    "UploadCredentials",
    "UserData",
    "Video",
    "VodErrorBody",
    "find_emoji",
    "parse_request",
    "parse_vod_time",
]

DEFAULT_APP_ID = "app-1000000"
DEFAULT_CREDENTIAL_SECONDS = 3000  # VOD: "valid for 3,000 seconds by default"

# VOD's documented limits (reference C.1, C.12). Lengths are UTF-8 bytes: the tables say
# "characters" but VOD's error says "...exceeded $MaxLength bytes", so we take the stricter reading.
TITLE_MAX_BYTES = 128
DESCRIPTION_MAX_BYTES = 1024
TAGS_MAX_COUNT = 16
TAG_MAX_BYTES = 32
FILE_NAME_MAX_BYTES = 255  # of the basename we keep (a common file-system limit)
FILE_PATH_MAX_BYTES = 1024  # of the path the client sent, before we reduce it to its basename
COVER_URL_MAX_CHARS = 1024
CALLBACK_URL_MAX_BYTES = 256  # VOD's limit on callback URLs (reference D.1)
EXTEND_MAX_BYTES = 512  # UserData.Extend, as compact JSON (reference C.12)
REFERENCE_ID_MIN, REFERENCE_ID_MAX = 6, 64
ID_MAX_CHARS = 64
STORAGE_LOCATION_MAX_CHARS = 128
INT64_MAX = 2**63 - 1

_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_HOST_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-")
_EXTENSIONS = frozenset(DEFAULT_EXTENSIONS)

# "Emoji" as VOD's IllegalCharacters check sees them. VOD stores these fields in a 3-byte UTF-8
# column, so every character outside the Basic Multilingual Plane (U+10000 and up: nearly all
# emoji, and 4 bytes in UTF-8) is refused. Inside the BMP we also refuse the blocks whose
# characters render as emoji (U+2600-U+27BF misc symbols and dingbats, a few U+23xx and U+2Bxx
# pictographs, U+3030/U+303D), the keycap combiner U+20E3 and the variation selectors
# U+FE0E/U+FE0F that switch text symbols (e.g. (c) U+00A9) to emoji presentation.
_BMP_EMOJI_RANGES: tuple[tuple[int, int], ...] = (
    (0x20E3, 0x20E3),
    (0x231A, 0x231B),
    (0x2328, 0x2328),
    (0x23CF, 0x23CF),
    (0x23E9, 0x23F3),
    (0x23F8, 0x23FA),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25AB),
    (0x25B6, 0x25B6),
    (0x25C0, 0x25C0),
    (0x25FB, 0x25FE),
    (0x2600, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B07),
    (0x2B1B, 0x2B1C),
    (0x2B50, 0x2B50),
    (0x2B55, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0xFE0E, 0xFE0F),
)
# Bidirectional overrides/isolates make "evil\u202Egpj.mp4" display as "evil4pm.jpg": never
# useful in a title or a file name, so they count as control characters.
_BIDI_CONTROLS = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A))

T = TypeVar("T", bound=BaseModel)


# --- character checks ---------------------------------------------------------------------------


def _is_emoji(code: int) -> bool:
    if code > 0xFFFF:
        return True
    if code < 0x20E3:
        return False
    return any(lo <= code <= hi for lo, hi in _BMP_EMOJI_RANGES)


def find_emoji(text: str) -> int | None:
    """Index of the first character VOD would refuse as an emoji, or ``None``."""
    for index, char in enumerate(text):
        if _is_emoji(ord(char)):
            return index
    return None


def _is_control(code: int, *, allow_newlines: bool) -> bool:
    if code < 0x20:
        return not (allow_newlines and code in (0x09, 0x0A, 0x0D))
    return 0x7F <= code <= 0x9F or code in (0x2028, 0x2029) or code in _BIDI_CONTROLS


def _invalid(code: str, message: str) -> PydanticCustomError:
    # The error type carries VOD's error code; parse_request turns it into InvalidParameter.code.
    return PydanticCustomError(f"vod:{code}", message)


def _check_text(name: str, value: str, *, max_bytes: int | None, allow_newlines: bool = False) -> None:
    """The checks shared by Title, Description, each tag and FileName."""
    for char in value:
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF:
            raise _invalid("InvalidParameter", f"{name} is not valid UTF-8 text.")
        if _is_control(code, allow_newlines=allow_newlines):
            raise _invalid("IllegalCharacters", f"{name} must not contain control characters.")
        if _is_emoji(code):
            raise _invalid("IllegalCharacters", f"{name} must not contain emoji.")
    if max_bytes is not None:
        size = len(value.encode("utf-8"))
        if size > max_bytes:
            raise _invalid(
                "LengthExceededMax",
                f"{name} is too long: at most {max_bytes} bytes in UTF-8 (got {size}).",
            )


def _check_url(name: str, value: str, *, max_bytes: int) -> str:
    """An absolute http(s) URL with a host, no credentials, no whitespace or control characters."""
    if len(value.encode("utf-8", "surrogatepass")) > max_bytes:
        raise _invalid("LengthExceededMax", f"{name} is too long: at most {max_bytes} bytes.")
    if any(ord(c) <= 0x20 or 0x7F <= ord(c) <= 0x9F or c == "\\" for c in value):
        raise _invalid(
            "InvalidParameter", f"{name} must not contain spaces, backslashes or control characters."
        )
    try:
        parts = urlsplit(value)
    except ValueError:
        raise _invalid("InvalidParameter", f"{name} is not a valid URL.") from None
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme.lower() not in ("http", "https"):
        raise _invalid("InvalidParameter", f"{name} must be an absolute http or https URL.")
    if "@" in parts.netloc:
        raise _invalid("InvalidParameter", f"{name} must not contain a user name or password.")
    if not parts.hostname:
        raise _invalid("InvalidParameter", f"{name} must name a host.")
    if not port_ok:
        raise _invalid("InvalidParameter", f"{name} has an invalid port.")
    return value


def _check_id(
    name: str, value: str, *, chars: frozenset[str] = _ID_CHARS, max_chars: int = ID_MAX_CHARS
) -> str:
    if not value or len(value) > max_chars or not set(value) <= chars:
        raise _invalid(
            "InvalidParameter",
            f"{name} must be 1 to {max_chars} characters of letters, digits"
            + (", '.' and '-'." if chars is _HOST_CHARS else ", '-' and '_'."),
        )
    return value


def _optional_text(value: Any) -> Any:
    """Optional string parameters: an empty string means "not given" (HTML forms send "")."""
    if isinstance(value, str) and value == "":
        return None
    return value


# --- time ---------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _time_pattern() -> re.Pattern[str]:
    return re.compile(
        r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.:](\d{1,9}))?\s*(Z|[+-]\d{2}:?\d{2})?",
        re.IGNORECASE,
    )


def parse_vod_time(value: str) -> datetime:
    """Parse VOD's UTC times leniently: ``…ssZ``, ``…ss.SSSZ``, ``…ss:SSSZ`` (ImageUploadComplete's
    colon before the milliseconds), offsets, or no zone (read as UTC). Raises ``ValueError``."""
    match = _time_pattern().fullmatch(value.strip())
    if match is None:
        raise ValueError("not a VOD time")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tz = timezone.utc
    if zone and zone.upper() != "Z":
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        tz = timezone(-offset if zone[0] == "-" else offset)
    parsed = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
    return parsed.astimezone(timezone.utc)


def _loose_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str) and value.strip():
        try:
            return parse_vod_time(value)
        except ValueError:
            return None
    return None


def _loose_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number == number and abs(number) != float("inf") else None


def _loose_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


# Tolerant scalar types for VOD's answers: numbers may arrive as strings; garbage reads as None.
LooseInt = Annotated[int | None, BeforeValidator(_loose_int)]
LooseFloat = Annotated[float | None, BeforeValidator(_loose_float)]
LooseTime = Annotated[datetime | None, BeforeValidator(_loose_time)]


# --- our API: CreateUploadVideo -----------------------------------------------------------------

# hide_input_in_errors: a chained ValidationError must not echo what the client sent.
_STRICT = ConfigDict(extra="forbid", defer_build=True, hide_input_in_errors=True)


def _json_object(name: str, value: Any) -> Any:
    """Accept a JSON object, or a string holding one (VOD's UserData is a JSON *string*)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _invalid("InvalidParameter", f"{name} must be a JSON object.") from None
    if not isinstance(value, dict):
        raise _invalid("InvalidParameter", f"{name} must be a JSON object.")
    return value


class MessageCallback(BaseModel):
    """``UserData.MessageCallback``: a per-media callback address."""

    model_config = _STRICT

    CallbackURL: Annotated[str, Strict()]
    CallbackType: Annotated[str, Strict(), Field(max_length=16, pattern=r"^[A-Za-z]+$")] | None = None

    @field_validator("CallbackURL")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url("UserData.MessageCallback.CallbackURL", value, max_bytes=CALLBACK_URL_MAX_BYTES)


_MessageCallback = MessageCallback


class AccelerateConfig(BaseModel):
    """``UserData.AccelerateConfig``: upload acceleration (needs a ticket with Alibaba)."""

    model_config = _STRICT

    Type: Annotated[str, Strict(), Field(min_length=1, max_length=16)]
    Domain: Annotated[str, Strict()]

    @field_validator("Domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return _check_url("UserData.AccelerateConfig.Domain", value, max_bytes=CALLBACK_URL_MAX_BYTES)


_AccelerateConfig = AccelerateConfig


class UserData(BaseModel):
    """VOD's ``UserData``: sent as compact JSON; ``Extend`` is echoed back in callbacks."""

    model_config = _STRICT

    MessageCallback: _MessageCallback | None = None
    Extend: dict[str, Any] | None = None
    AccelerateConfig: _AccelerateConfig | None = None

    @field_validator("Extend", mode="before")
    @classmethod
    def _extend(cls, value: Any) -> Any:
        if value is None:
            return None
        value = _json_object("UserData.Extend", value)
        size = len(_compact_json(value).encode("utf-8"))
        if size > EXTEND_MAX_BYTES:
            raise _invalid(
                "LengthExceededMax",
                f"UserData.Extend is too long: at most {EXTEND_MAX_BYTES} bytes as JSON (got {size}).",
            )
        return value

    def to_json(self) -> str:
        """Compact JSON without empty members, as VOD's ``UserData`` parameter."""
        return _compact_json(self.model_dump(exclude_none=True))


_UserData = UserData


def _compact_json(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        raise _invalid("InvalidParameter", "The value is not representable as JSON.") from None


class CreateUploadVideoRequest(BaseModel):
    """The client's CreateUploadVideo request, with VOD's parameter names and limits.

    ``FileName``: VOD calls it "the path to the source file", but a client's local path leaks its
    directory layout (user names) and we never trust it: only the basename is kept (directories
    split on ``/`` and ``\\``), it must be at most 255 UTF-8 bytes, have a name before a supported
    extension, and hold no control characters. The operator's narrower ``ALLOWED_EXTENSIONS`` is
    applied by the service, not here.
    """

    model_config = _STRICT

    Title: Annotated[str, Strict()]
    FileName: Annotated[str, Strict()]
    FileSize: Annotated[int, Strict(), Field(ge=0, le=INT64_MAX)] | None = None
    Description: Annotated[str, Strict()] | None = None
    CoverURL: Annotated[str, Strict()] | None = None
    CateId: Annotated[int, Strict(), Field(gt=0, le=INT64_MAX)] | None = None
    Tags: Annotated[str, Strict()] | None = None
    UserData: _UserData | None = None
    TemplateGroupId: Annotated[str, Strict()] | None = None
    WorkflowId: Annotated[str, Strict()] | None = None
    StorageLocation: Annotated[str, Strict()] | None = None
    AppId: Annotated[str, Strict()] | None = None
    ReferenceId: Annotated[str, Strict()] | None = None

    @field_validator("Title", "FileName", mode="before")
    @classmethod
    def _required_not_blank(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise PydanticCustomError(
                "vod:MissingParameter", f"{info.field_name} is required and must not be blank."
            )
        return value

    @field_validator("Title")
    @classmethod
    def _title(cls, value: str) -> str:
        _check_text("Title", value, max_bytes=TITLE_MAX_BYTES)
        return value

    @field_validator("FileName")
    @classmethod
    def _file_name(cls, value: str) -> str:
        if len(value.encode("utf-8", "surrogatepass")) > FILE_PATH_MAX_BYTES:
            raise _invalid("LengthExceededMax", f"FileName is too long: at most {FILE_PATH_MAX_BYTES} bytes.")
        _check_text("FileName", value, max_bytes=None)
        base = value.replace("\\", "/").rsplit("/", 1)[-1]
        size = len(base.encode("utf-8"))
        if size > FILE_NAME_MAX_BYTES:
            raise _invalid(
                "LengthExceededMax",
                f"FileName is too long: at most {FILE_NAME_MAX_BYTES} bytes in UTF-8 (got {size}).",
            )
        stem, dot, ext = base.rpartition(".")
        if not dot or not ext:
            raise _invalid(
                "InvalidFileName.Extension", "FileName must end with a file extension such as .mp4."
            )
        if not stem.strip():
            raise _invalid("InvalidFileName.Extension", "FileName must have a name before its extension.")
        if ext.lower() not in _EXTENSIONS:
            # Echo the extension only when it is short and plain (never the client's markup).
            shown = f" '.{ext}'" if len(ext) <= 16 and ext.isascii() and ext.isalnum() else ""
            raise _invalid(
                "InvalidFileName.Extension",
                f"FileName has an unsupported extension{shown}; VOD takes video and audio files.",
            )
        return base

    @field_validator(
        "Description",
        "CoverURL",
        "Tags",
        "TemplateGroupId",
        "WorkflowId",
        "StorageLocation",
        "AppId",
        "ReferenceId",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return _optional_text(value)

    @field_validator("Description")
    @classmethod
    def _description(cls, value: str | None) -> str | None:
        if value is not None:
            _check_text("Description", value, max_bytes=DESCRIPTION_MAX_BYTES, allow_newlines=True)
        return value

    @field_validator("CoverURL")
    @classmethod
    def _cover_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) > COVER_URL_MAX_CHARS:
            raise _invalid(
                "LengthExceededMax", f"CoverURL is too long: at most {COVER_URL_MAX_CHARS} characters."
            )
        return _check_url("CoverURL", value, max_bytes=4 * COVER_URL_MAX_CHARS)

    @field_validator("Tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            items = value.split(",")
        elif isinstance(value, (list, tuple)):
            if not value:
                return None
            if not all(isinstance(item, str) for item in value):
                raise _invalid(
                    "InvalidParameter", "Tags must be a comma-separated string or a list of strings."
                )
            if any("," in item for item in value):
                raise _invalid("InvalidParameter", "A tag in the Tags list must not contain a comma.")
            items = list(value)
        else:
            raise _invalid("InvalidParameter", "Tags must be a comma-separated string or a list of strings.")
        tags = [item.strip() for item in items]
        if len(tags) > TAGS_MAX_COUNT:
            raise _invalid("TagsExceededMax", f"Tags takes at most {TAGS_MAX_COUNT} tags (got {len(tags)}).")
        for number, tag in enumerate(tags, start=1):
            if not tag:
                raise _invalid("InvalidParameter", "Tags must not contain empty tags.")
            _check_text(f"Tag {number}", tag, max_bytes=TAG_MAX_BYTES)
        return ",".join(tags)

    @field_validator("UserData", mode="before")
    @classmethod
    def _user_data(cls, value: Any) -> Any:
        if value is None or isinstance(value, _UserData):
            return value
        return _json_object("UserData", value)

    @field_validator("TemplateGroupId", "WorkflowId", "AppId")
    @classmethod
    def _ids(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _check_id(str(info.field_name), value)

    @field_validator("StorageLocation")
    @classmethod
    def _storage_location(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _check_id("StorageLocation", value, chars=_HOST_CHARS, max_chars=STORAGE_LOCATION_MAX_CHARS)

    @field_validator("ReferenceId")
    @classmethod
    def _reference_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not REFERENCE_ID_MIN <= len(value) <= REFERENCE_ID_MAX or not set(value) <= _ID_CHARS:
            raise _invalid(
                "InvalidParameter",
                f"ReferenceId must be {REFERENCE_ID_MIN} to {REFERENCE_ID_MAX} characters of letters, "
                "digits, '-' and '_'.",
            )
        return value

    # --- derived ------------------------------------------------------------------------------
    @property
    def extension(self) -> str:
        """The file extension, lower-case, without the dot."""
        return self.FileName.rpartition(".")[2].lower()

    @property
    def effective_processing(self) -> tuple[Literal["WorkflowId", "TemplateGroupId"], str] | None:
        """The processing VOD will apply: ``WorkflowId`` wins over ``TemplateGroupId`` (as in VOD)."""
        if self.WorkflowId:
            return ("WorkflowId", self.WorkflowId)
        if self.TemplateGroupId:
            return ("TemplateGroupId", self.TemplateGroupId)
        return None

    def to_vod_params(self) -> dict[str, str]:
        """CreateUploadVideo's query parameters: no ``None``s, UserData as compact JSON, only the
        effective one of WorkflowId/TemplateGroupId, ``AppId`` defaulting to ``app-1000000``."""
        params: dict[str, str] = {"Title": self.Title, "FileName": self.FileName}
        for name in ("Description", "CoverURL", "Tags", "StorageLocation", "ReferenceId"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        if self.FileSize is not None:
            params["FileSize"] = str(self.FileSize)
        if self.CateId is not None:
            params["CateId"] = str(self.CateId)
        processing = self.effective_processing
        if processing is not None:
            params[processing[0]] = processing[1]
        if self.UserData is not None:
            user_data = self.UserData.to_json()
            if user_data != "{}":
                params["UserData"] = user_data
        params["AppId"] = self.AppId or DEFAULT_APP_ID
        return params


# --- parse_request: pydantic errors → our typed errors -------------------------------------------

_TYPE_WORDS = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "list_type": "must be a list",
    "string_too_short": "is too short",
    "string_too_long": "is too long",
    "string_pattern_mismatch": "has characters that are not allowed",
    "literal_error": "has a value that is not allowed",
}


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            shown = _shorten(part)
            path = f"{path}.{shown}" if path else shown
    return path


def _shorten(name: str, limit: int = 64) -> str:
    """A field name safe to put in a message: printable ASCII-ish, bounded."""
    cleaned = "".join(c if c.isprintable() else "?" for c in name[:limit])
    return cleaned + ("..." if len(name) > limit else "")


def _translate(exc: ValidationError) -> errors.InvalidParameter:
    err = exc.errors(include_url=False, include_input=False)[0]
    loc = tuple(err["loc"])
    field = _shorten(str(loc[0])) if loc else None
    path = _field_path(loc) or "The request"
    kind = err["type"]
    if kind.startswith("vod:"):
        code = kind[4:]
        if code == "MissingParameter":
            return errors.MissingParameter(err["msg"], field=field)
        return errors.InvalidParameter(err["msg"], code=code, field=field)
    if kind == "missing":
        return errors.MissingParameter(f"{path} is required.", field=field)
    if kind == "extra_forbidden":
        return errors.InvalidParameter(f"{path} is not a known parameter.", field=field)
    ctx = err.get("ctx") or {}
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        if "ge" in ctx:
            words = f"must be at least {ctx['ge']}"
        elif "gt" in ctx:
            words = "must be a positive integer" if ctx["gt"] == 0 else f"must be greater than {ctx['gt']}"
        elif "le" in ctx:
            words = f"must be at most {ctx['le']}"
        else:
            words = f"must be less than {ctx.get('lt')}"
        return errors.InvalidParameter(f"{path} {words}.", field=field)
    words = _TYPE_WORDS.get(kind, "is invalid")
    return errors.InvalidParameter(f"{path} {words}.", field=field)


def parse_request(model_cls: type[T], data: Any) -> T:
    """Validate a client request: ``data`` is the decoded JSON (a dict) or the raw JSON body.

    Raises :class:`errors.MalformedBody` for a body that is not a JSON object, and
    :class:`errors.InvalidParameter` / :class:`errors.MissingParameter` naming the first invalid
    VOD parameter in ``field``, with a plain-words message (no input echoed).
    """
    if isinstance(data, (bytes, bytearray, str)):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise errors.MalformedBody() from exc
    if not isinstance(data, Mapping):
        raise errors.MalformedBody("The request body must be a JSON object.")
    try:
        return model_cls.model_validate(dict(data))
    except ValidationError as exc:
        raise _translate(exc) from exc


# --- VOD's answers: upload address and credentials -----------------------------------------------

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
    def decode(cls, b64: str) -> UploadAddress:
        """Decode VOD's Base64 JSON; raises :class:`errors.UpstreamError` on garbage."""
        try:
            return cls.model_validate(_decode_b64_json(b64, "UploadAddress"))
        except ValidationError as exc:
            raise errors.UpstreamError("VOD returned an incomplete UploadAddress.") from exc

    def bucket_url(self) -> str:
        """``<scheme>://<Bucket>.<endpoint host>`` (the OSS virtual-hosted bucket address)."""
        parts = urlsplit(self.Endpoint if "://" in self.Endpoint else f"https://{self.Endpoint}")
        return f"{parts.scheme}://{self.Bucket}.{parts.netloc}"


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
    def decode(cls, b64: str) -> UploadAuth:
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
        seconds = _loose_int(self.Expiration)
        if seconds is None or seconds <= 0:
            seconds = DEFAULT_CREDENTIAL_SECONDS
        return issued_at + timedelta(seconds=seconds)


_UploadAddress = UploadAddress
_UploadAuth = UploadAuth


class UploadCredentials(BaseModel):
    """The answer of CreateUploadVideo and RefreshUploadVideo (raw Base64 strings).

    ``UploadAuth`` holds an STS secret: it is left out of ``repr``/``str`` and must never be
    logged; only :meth:`to_public_dict` hands it out, for the client's HTTP answer.
    """

    model_config = ConfigDict(
        extra="ignore", defer_build=True, coerce_numbers_to_str=True, hide_input_in_errors=True
    )

    RequestId: str
    VideoId: str = Field(min_length=1)
    UploadAddress: str = Field(min_length=1)
    UploadAuth: str = Field(min_length=1, repr=False)

    def address(self) -> _UploadAddress:
        """The decoded upload address."""
        return _UploadAddress.decode(self.UploadAddress)

    def auth(self) -> _UploadAuth:
        """The decoded credential."""
        return _UploadAuth.decode(self.UploadAuth)

    def expires_at(self, issued_at: datetime) -> datetime:
        """When the credential expires (see :meth:`UploadAuth.expires_at`)."""
        return self.auth().expires_at(issued_at)

    def to_public_dict(self) -> dict[str, str]:
        """Exactly ``RequestId``, ``VideoId``, ``UploadAddress``, ``UploadAuth``: the HTTP answer."""
        return {
            "RequestId": self.RequestId,
            "VideoId": self.VideoId,
            "UploadAddress": self.UploadAddress,
            "UploadAuth": self.UploadAuth,
        }


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
    VideoList: list[_Video] = Field(default_factory=list)
    NonExistVideoIds: list[str] = Field(default_factory=list)

    @field_validator("VideoList", mode="before")
    @classmethod
    def _videos(cls, value: Any) -> Any:
        return _unwrap_list(value, "Video")

    @field_validator("NonExistVideoIds", mode="before")
    @classmethod
    def _missing(cls, value: Any) -> Any:
        value = _unwrap_list(value, "VideoId")
        if isinstance(value, str):
            return [part for part in value.split(",") if part]
        return value


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
