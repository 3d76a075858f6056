"""Our API's request models: what a client may send, checked against every rule of VOD's API.

Strict (unknown fields are refused, VOD's parameter names, VOD's documented limits enforced before
VOD sees the request); the character, identifier and URL rules themselves are
:mod:`shared.validation`'s. :func:`parse_request` turns pydantic's errors into our typed errors,
naming the VOD parameter and never echoing the input.

Every model defers building its validator until first use (``defer_build``), so importing this
module stays cheap on a cold start. CreateUploadVideo's rules:
https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-createuploadvideo
(CreateUploadImage's and CreateUploadAttachedMedia's models are :mod:`shared.api_media_models`,
imported only by those routes).
"""

# No ``from __future__ import annotations`` in a module of pydantic models: pydantic would compile
# and eval each field's annotation string as it builds the class (on FC's python3.10, 0.7 ms for
# the settings, 3 ms for the event models: bench/README.md, cold start).
import json
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from shared import errors
from shared.settings import DEFAULT_EXTENSIONS
from shared.validation import (
    HOST_CHARS,
    ID_CHARS,
    INT64_MAX,
    Invalid,
    check_id,
    check_text,
    check_url,
    loads_json,
)

__all__ = [
    "CALLBACK_URL_MAX_BYTES",
    "CATE_IDS_MAX_COUNT",
    "COVER_URL_MAX_CHARS",
    "DESCRIPTION_MAX_BYTES",
    "EXTEND_MAX_BYTES",
    "FILE_NAME_MAX_BYTES",
    "FILE_PATH_MAX_BYTES",
    "IMAGE_TYPES",
    "REFERENCE_ID_MAX",
    "REFERENCE_ID_MIN",
    "STORAGE_LOCATION_MAX_CHARS",
    "TAGS_MAX_COUNT",
    "TAG_MAX_BYTES",
    "TITLE_MAX_BYTES",
    "AccelerateConfig",
    "CreateUploadVideoRequest",
    "MessageCallback",
    "UserData",
    "parse_request",
]

# VOD's documented limits. Lengths are UTF-8 bytes: the tables say "characters" but VOD's error
# says "...exceeded $MaxLength bytes", so we take the stricter reading.
TITLE_MAX_BYTES = 128
DESCRIPTION_MAX_BYTES = 1024
TAGS_MAX_COUNT = 16
TAG_MAX_BYTES = 32
FILE_NAME_MAX_BYTES = 255  # of the basename we keep (a common file-system limit)
FILE_PATH_MAX_BYTES = 1024  # of the path the client sent, before we reduce it to its basename
COVER_URL_MAX_CHARS = 1024
CALLBACK_URL_MAX_BYTES = 256  # VOD's limit on callback URLs
EXTEND_MAX_BYTES = 512  # UserData.Extend, as compact JSON
REFERENCE_ID_MIN, REFERENCE_ID_MAX = 6, 64
STORAGE_LOCATION_MAX_CHARS = 128
CATE_IDS_MAX_COUNT = 5  # CreateUploadAttachedMedia's CateIds
IMAGE_TYPES = ("default", "cover")  # CreateUploadImage's ImageType

_EXTENSIONS = frozenset(DEFAULT_EXTENSIONS)
T = TypeVar("T", bound=BaseModel)


def _optional_text(value: Any) -> Any:
    """Optional string parameters: an empty string means "not given" (HTML forms send "")."""
    if isinstance(value, str) and value == "":
        return None
    return value


# hide_input_in_errors: a chained ValidationError must not echo what the client sent.
_STRICT = ConfigDict(extra="forbid", defer_build=True, hide_input_in_errors=True)


def _json_object(name: str, value: Any) -> Any:
    """Accept a JSON object, or a string holding one (VOD's UserData is a JSON *string*)."""
    if isinstance(value, str):
        value = loads_json(value, what=name)
    if not isinstance(value, dict):
        raise Invalid("InvalidParameter", f"{name} must be a JSON object.")
    return value


class MessageCallback(BaseModel):
    """``UserData.MessageCallback``: a per-media callback address."""

    model_config = _STRICT

    CallbackURL: Annotated[str, Strict()]
    CallbackType: Annotated[str, Strict(), Field(max_length=16, pattern=r"^[A-Za-z]+$")] | None = None

    @field_validator("CallbackURL")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url("UserData.MessageCallback.CallbackURL", value, max_bytes=CALLBACK_URL_MAX_BYTES)


_MessageCallback = MessageCallback


class AccelerateConfig(BaseModel):
    """``UserData.AccelerateConfig``: upload acceleration (needs a ticket with Alibaba)."""

    model_config = _STRICT

    Type: Annotated[str, Strict(), Field(min_length=1, max_length=16)]
    Domain: Annotated[str, Strict()]

    @field_validator("Domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return check_url("UserData.AccelerateConfig.Domain", value, max_bytes=CALLBACK_URL_MAX_BYTES)


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
            raise Invalid(
                "LengthExceededMax",
                f"UserData.Extend is too long: at most {EXTEND_MAX_BYTES} bytes as JSON (got {size}).",
            )
        return value


_UserData = UserData


def _compact_json(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        raise Invalid("InvalidParameter", "The value is not representable as JSON.") from None


def _base_name(name: str, value: str) -> str:
    """A client's file name reduced to its basename.

    VOD calls FileName "the path to the source file", but a client's local path leaks its directory
    layout (user names) and is never trusted: only the basename is kept (directories split on ``/``
    and ``\\``); it must be at most 255 UTF-8 bytes and hold no control characters.
    """
    if len(value.encode("utf-8", "surrogatepass")) > FILE_PATH_MAX_BYTES:
        raise Invalid("LengthExceededMax", f"{name} is too long: at most {FILE_PATH_MAX_BYTES} bytes.")
    check_text(name, value, max_bytes=None)
    base = value.replace("\\", "/").rsplit("/", 1)[-1]
    size = len(base.encode("utf-8"))
    if size > FILE_NAME_MAX_BYTES:
        raise Invalid(
            "LengthExceededMax",
            f"{name} is too long: at most {FILE_NAME_MAX_BYTES} bytes in UTF-8 (got {size}).",
        )
    return base


def _extension(base: str) -> str:
    """A basename's extension, lower-case; ``""`` without one (``.srt`` alone has a name, no extension)."""
    stem, dot, ext = base.rpartition(".")
    return ext.lower() if dot and ext and stem.strip() else ""


def _shown(ext: str) -> str:
    """An extension echoed in a message only when it is short and plain (never the client's markup)."""
    return f" '.{ext}'" if len(ext) <= 16 and ext.isascii() and ext.isalnum() else ""


def _tags(value: Any) -> Any:
    """VOD's ``Tags``: a comma-separated string (or a list), at most 16 tags of 32 bytes each."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        if not value:
            return None
        if not all(isinstance(item, str) for item in value):
            raise Invalid("InvalidParameter", "Tags must be a comma-separated string or a list of strings.")
        if any("," in item for item in value):
            raise Invalid("InvalidParameter", "A tag in the Tags list must not contain a comma.")
        items = list(value)
    else:
        raise Invalid("InvalidParameter", "Tags must be a comma-separated string or a list of strings.")
    tags = [item.strip() for item in items]
    if len(tags) > TAGS_MAX_COUNT:
        raise Invalid("TagsExceededMax", f"Tags takes at most {TAGS_MAX_COUNT} tags (got {len(tags)}).")
    for number, tag in enumerate(tags, start=1):
        if not tag:
            raise Invalid("InvalidParameter", "Tags must not contain empty tags.")
        check_text(f"Tag {number}", tag, max_bytes=TAG_MAX_BYTES)
    return ",".join(tags)


class _CreateUpload(BaseModel):
    """The rules of the parameters that CreateUploadVideo, CreateUploadImage and
    CreateUploadAttachedMedia share; each request model declares its own fields."""

    model_config = _STRICT

    @field_validator(
        "Title",
        "Description",
        "Tags",
        "StorageLocation",
        "AppId",
        "FileName",
        "OriginalFileName",
        "ImageExt",
        "MediaExt",
        "CoverURL",
        "TemplateGroupId",
        "WorkflowId",
        "ReferenceId",
        mode="before",
        check_fields=False,
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return _optional_text(value)

    @field_validator("Title", check_fields=False)
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        if value is not None:
            check_text("Title", value, max_bytes=TITLE_MAX_BYTES)
        return value

    @field_validator("Description", check_fields=False)
    @classmethod
    def _description(cls, value: str | None) -> str | None:
        if value is not None:
            check_text("Description", value, max_bytes=DESCRIPTION_MAX_BYTES, allow_newlines=True)
        return value

    @field_validator("Tags", mode="before", check_fields=False)
    @classmethod
    def _tags(cls, value: Any) -> Any:
        return _tags(value)

    @field_validator("UserData", mode="before", check_fields=False)
    @classmethod
    def _user_data(cls, value: Any) -> Any:
        if value is None or isinstance(value, _UserData):
            return value
        return _json_object("UserData", value)

    @field_validator("TemplateGroupId", "WorkflowId", "AppId", check_fields=False)
    @classmethod
    def _ids(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else check_id(str(info.field_name), value)

    @field_validator("StorageLocation", check_fields=False)
    @classmethod
    def _storage_location(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_id("StorageLocation", value, chars=HOST_CHARS, max_chars=STORAGE_LOCATION_MAX_CHARS)

    @field_validator("Title", "FileName", "ImageType", "BusinessType", mode="before", check_fields=False)
    @classmethod
    def _required_not_blank(cls, value: Any, info: ValidationInfo) -> Any:
        blank = value is None or (isinstance(value, str) and not value.strip())
        if blank and cls.model_fields[str(info.field_name)].is_required():
            raise Invalid("MissingParameter", f"{info.field_name} is required and must not be blank.")
        return value


class CreateUploadVideoRequest(_CreateUpload):
    """The client's CreateUploadVideo request, with VOD's parameter names and limits.

    ``FileName`` is reduced to its basename (see :func:`_base_name`) and must have a name before a
    supported extension. The operator's narrower ``ALLOWED_EXTENSIONS`` is applied by the service,
    not here.
    """

    Title: Annotated[str, Strict()]
    FileName: Annotated[str, Strict()]
    # No upper bound here: the operator's MAX_FILE_SIZE (apply_policy) is the limit a client is told.
    FileSize: Annotated[int, Strict(), Field(ge=0)] | None = None
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

    @field_validator("FileName")
    @classmethod
    def _file_name(cls, value: str) -> str:
        base = _base_name("FileName", value)
        stem, dot, ext = base.rpartition(".")
        if not dot or not ext:
            raise Invalid(
                "InvalidFileName.Extension", "FileName must end with a file extension such as .mp4."
            )
        if not stem.strip():
            raise Invalid("InvalidFileName.Extension", "FileName must have a name before its extension.")
        if ext.lower() not in _EXTENSIONS:
            raise Invalid(
                "InvalidFileName.Extension",
                f"FileName has an unsupported extension{_shown(ext)}; VOD takes video and audio files.",
            )
        return base

    @field_validator("CoverURL")
    @classmethod
    def _cover_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) > COVER_URL_MAX_CHARS:
            raise Invalid(
                "LengthExceededMax", f"CoverURL is too long: at most {COVER_URL_MAX_CHARS} characters."
            )
        return check_url("CoverURL", value, max_bytes=4 * COVER_URL_MAX_CHARS)

    @field_validator("ReferenceId")
    @classmethod
    def _reference_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not REFERENCE_ID_MIN <= len(value) <= REFERENCE_ID_MAX or not set(value) <= ID_CHARS:
            raise Invalid(
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


def _translate(exc: ValidationError, fields: Iterable[str]) -> errors.InvalidParameter:
    found = exc.errors(include_url=False, include_input=False)
    # An unknown name first: "title" is a misspelt Title, not a Title that is missing.
    err = next((e for e in found if e["type"] == "extra_forbidden"), found[0])
    loc = tuple(err["loc"])
    field = _shorten(str(loc[0])) if loc else None
    path = _field_path(loc) or "The request"
    kind = err["type"]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, Invalid):
        if cause.code == "MissingParameter":
            return errors.MissingParameter(cause.message, field=field)
        return errors.InvalidParameter(cause.message, code=cause.code, field=field)
    if kind == "missing":
        return errors.MissingParameter(f"{path} is required.", field=field)
    if kind == "extra_forbidden":
        like = [f for f in fields if len(loc) == 1 and f.lower() == str(loc[0]).lower()]
        hint = f" (did you mean {like[0]}?)" if like else ""
        return errors.InvalidParameter(f"{path} is not a known parameter{hint}.", field=field)
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
        raise _translate(exc, model_cls.model_fields) from exc
