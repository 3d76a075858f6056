"""Our API's request models for images and attached media (see :mod:`shared.api_models`, whose
strict rules, helpers and :func:`~shared.api_models.parse_request` they share); imported only by
the routes that create them, so that a video's create never builds these classes."""

# No ``from __future__ import annotations`` in a module of pydantic models: pydantic would compile
# and eval each field's annotation string as it builds the class (on FC's python3.10, 0.7 ms for
# the settings, 3 ms for the event models: bench/README.md, cold start).
from typing import Annotated, Any

from pydantic import Field, Strict, ValidationInfo, field_validator

from shared.api_models import (
    CATE_IDS_MAX_COUNT,
    IMAGE_TYPES,
    _base_name,
    _CreateUpload,
    _extension,
    _shown,
    _UserData,
)
from shared.settings import ATTACHED_MEDIA_EXTENSIONS, IMAGE_EXTENSIONS
from shared.validation import INT64_MAX, Invalid

__all__ = ["CreateUploadAttachedMediaRequest", "CreateUploadImageRequest"]


class CreateUploadImageRequest(_CreateUpload):
    """The client's CreateUploadImage request, with VOD's parameter names and limits.

    ``ImageType`` is required (``default`` | ``cover``); ``ImageExt`` is one of VOD's four (``png``
    when absent, as VOD assumes; compared without case, sent lower-case); ``OriginalFileName`` is
    reduced to its basename and must have an extension. There is no ``FileSize``: VOD takes none,
    so ``MAX_IMAGE_SIZE`` is checked on what arrives. Rules:
    https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-createuploadimage
    """

    ImageType: Annotated[str, Strict()]
    ImageExt: Annotated[str, Strict()] | None = Field(None, validate_default=True)
    Title: Annotated[str, Strict()] | None = None
    OriginalFileName: Annotated[str, Strict()] | None = None
    Description: Annotated[str, Strict()] | None = None
    CateId: Annotated[int, Strict(), Field(gt=0, le=INT64_MAX)] | None = None
    Tags: Annotated[str, Strict()] | None = None
    UserData: _UserData | None = None
    StorageLocation: Annotated[str, Strict()] | None = None
    AppId: Annotated[str, Strict()] | None = None

    @field_validator("ImageType")
    @classmethod
    def _image_type(cls, value: str) -> str:
        if value not in IMAGE_TYPES:
            raise Invalid("InvalidParameter", "ImageType must be " + " or ".join(IMAGE_TYPES) + ".")
        return value

    @field_validator("ImageExt")
    @classmethod
    def _image_ext(cls, value: str | None) -> str:
        ext = (value or IMAGE_EXTENSIONS[0]).lower()
        if ext not in IMAGE_EXTENSIONS:
            raise Invalid("InvalidParameter", "ImageExt must be one of " + ", ".join(IMAGE_EXTENSIONS) + ".")
        return ext

    @field_validator("OriginalFileName")
    @classmethod
    def _original_file_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        base = _base_name("OriginalFileName", value)
        if not _extension(base):
            raise Invalid(
                "InvalidFileName.Extension", "OriginalFileName must end with a file extension such as .png."
            )
        return base

    @property
    def extension(self) -> str:
        """The image's extension as sent to VOD (``ImageExt``, ``png`` by default)."""
        return self.ImageExt or IMAGE_EXTENSIONS[0]


class CreateUploadAttachedMediaRequest(_CreateUpload):
    """The client's CreateUploadAttachedMedia request, with VOD's parameter names and limits.

    ``BusinessType`` is required (``watermark`` | ``subtitle`` | ``material``, singular);
    ``MediaExt`` must be one the business type allows, compared without case; when absent, the
    extension of ``FileName`` takes its place (and when both are given, ``MediaExt`` wins, as at
    VOD), so one of the two is needed. ``FileSize`` is an integer of bytes (VOD takes a string);
    ``CateIds`` at most 5 category ids, as a comma-separated string or a list. Rules:
    https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-createuploadattachedmedia
    """

    BusinessType: Annotated[str, Strict()]
    Title: Annotated[str, Strict()] | None = None
    FileName: Annotated[str, Strict()] | None = None
    MediaExt: Annotated[str, Strict()] | None = Field(None, validate_default=True)
    # No upper bound here: the operator's MAX_ATTACHED_MEDIA_SIZE is the limit a client is told.
    FileSize: Annotated[int, Strict(), Field(ge=0)] | None = None
    Description: Annotated[str, Strict()] | None = None
    CateIds: tuple[int, ...] | None = None
    Tags: Annotated[str, Strict()] | None = None
    UserData: _UserData | None = None
    StorageLocation: Annotated[str, Strict()] | None = None
    AppId: Annotated[str, Strict()] | None = None

    @field_validator("BusinessType")
    @classmethod
    def _business_type(cls, value: str) -> str:
        if value not in ATTACHED_MEDIA_EXTENSIONS:
            raise Invalid(
                "InvalidParameter",
                "BusinessType must be one of " + ", ".join(ATTACHED_MEDIA_EXTENSIONS) + ".",
            )
        return value

    @field_validator("FileName")
    @classmethod
    def _file_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        base = _base_name("FileName", value)
        if not base.strip():
            raise Invalid("InvalidParameter", "FileName must name a file.")
        return base

    @field_validator("MediaExt")
    @classmethod
    def _media_ext(cls, value: str | None, info: ValidationInfo) -> str | None:
        business_type = info.data.get("BusinessType")
        if business_type is None or "FileName" not in info.data:
            return value  # BusinessType or FileName is refused already, and named first
        ext = value.lower() if value is not None else _extension(info.data["FileName"] or "")
        if not ext:
            raise Invalid("MissingParameter", "MediaExt is required unless FileName has an extension.")
        allowed = ATTACHED_MEDIA_EXTENSIONS[business_type]
        if ext not in allowed:
            where = "MediaExt" if value is not None else "The extension of FileName"
            raise Invalid(
                "InvalidParameter",
                f"{where}{_shown(ext)} is not allowed for {business_type}: " + ", ".join(allowed) + ".",
            )
        return ext

    @field_validator("CateIds", mode="before")
    @classmethod
    def _cate_ids(cls, value: Any) -> Any:
        if value is None or value in ("", [], ()):
            return None
        if isinstance(value, str):
            parts: list[Any] = [part.strip() for part in value.split(",")]
            if not all(part.isascii() and part.isdigit() and len(part) <= 19 for part in parts):
                raise Invalid("InvalidParameter", "CateIds must be category ids separated by commas.")
            ids = [int(part) for part in parts]
        elif isinstance(value, (list, tuple)) and all(type(v) is int for v in value):
            ids = list(value)
        else:
            raise Invalid(
                "InvalidParameter", "CateIds must be a comma-separated string or a list of category ids."
            )
        if len(ids) > CATE_IDS_MAX_COUNT:
            raise Invalid(
                "InvalidParameter",
                f"CateIds takes at most {CATE_IDS_MAX_COUNT} category ids (got {len(ids)}).",
            )
        if not all(0 < cate_id <= INT64_MAX for cate_id in ids):
            raise Invalid("InvalidParameter", "CateIds must hold positive integers.")
        return tuple(ids)

    @property
    def extension(self) -> str:
        """The file's extension as sent to VOD (``MediaExt``, or the one of ``FileName``)."""
        return self.MediaExt or ""
