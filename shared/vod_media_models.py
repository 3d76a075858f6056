"""Pydantic models of VOD's answers about images and attached media (see :mod:`shared.vod_models`,
whose tolerant rules they follow); imported by :class:`shared.vod.VodClient` only for those kinds."""

# No ``from __future__ import annotations`` in a module of pydantic models: pydantic would compile
# and eval each field's annotation string as it builds the class (on FC's python3.10, 0.7 ms for
# the settings, 3 ms for the event models: bench/README.md, cold start).
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, Field, field_validator

from shared.vod_models import _TOLERANT, LooseInt, LooseTime, MediaCredentials, _ids, _items

__all__ = [
    "AttachedMedia",
    "AttachedMediaUploadCredentials",
    "DeleteAttachedMediaResponse",
    "DeleteImageResponse",
    "GetAttachedMediaInfoResponse",
    "GetImageInfoResponse",
    "GetImageInfosResponse",
    "Image",
    "ImageMezzanine",
    "ImageUploadCredentials",
]


class ImageUploadCredentials(MediaCredentials):
    """The answer of CreateUploadImage: ``ImageURL`` (CDN when configured) and ``FileURL`` (OSS,
    unsigned) besides the credential,
    https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-createuploadimage
    """

    ID_FIELD: ClassVar[str] = "ImageId"

    ImageId: str = Field(min_length=1)
    ImageURL: str | None = None
    FileURL: str | None = None


class AttachedMediaUploadCredentials(MediaCredentials):
    """The answer of CreateUploadAttachedMedia,
    https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-createuploadattachedmedia
    """

    ID_FIELD: ClassVar[str] = "MediaId"

    MediaId: str = Field(min_length=1)
    MediaURL: str | None = None
    FileURL: str | None = None


class ImageMezzanine(BaseModel):
    """An image's stored file (``FileSize`` arrives as a string)."""

    model_config = _TOLERANT

    FileURL: str | None = None
    FileSize: LooseInt = None
    Width: LooseInt = None
    Height: LooseInt = None
    OriginalFileName: str | None = None


_ImageMezzanine = ImageMezzanine


class Image(BaseModel):
    """An image as GetImageInfo/GetImageInfos describe it; ``Status`` ``Uploading`` | ``Normal`` |
    ``UploadFail``, ``ImageType`` an open string (the docs disagree on its values),
    https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-getimageinfo
    """

    model_config = _TOLERANT

    ImageId: str
    Title: str | None = None
    Description: str | None = None
    ImageType: str | None = None
    Status: str | None = None
    CreationTime: LooseTime = None
    CateId: LooseInt = None
    CateName: str | None = None
    Tags: str | None = None
    StorageLocation: str | None = None
    AppId: str | None = None
    URL: str | None = None
    Mezzanine: _ImageMezzanine | None = None


_Image = Image


class GetImageInfoResponse(BaseModel):
    model_config = _TOLERANT

    RequestId: str | None = None
    ImageInfo: _Image


class GetImageInfosResponse(BaseModel):
    """GetImageInfos: the array key is ``ImageInfo`` (singular); missing ids in ``NonExistImageIds``,
    https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-getimageinfos
    """

    model_config = _TOLERANT

    RequestId: str | None = None
    ImageInfo: Annotated[list[_Image], _items("ImageInfo")] = Field(default_factory=list)
    NonExistImageIds: Annotated[list[str], _ids("ImageId")] = Field(default_factory=list)


class AttachedMedia(BaseModel):
    """One item of GetAttachedMediaInfo's ``AttachedMediaList`` (``Type`` is the BusinessType; no
    size is documented), https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-getattachedmediainfo
    """

    model_config = _TOLERANT

    MediaId: str
    Type: str | None = None
    Title: str | None = None
    Description: str | None = None
    Status: str | None = None
    AppId: str | None = None
    CreationTime: LooseTime = None
    ModificationTime: LooseTime = None
    StorageLocation: str | None = None
    URL: str | None = None
    Tags: str | None = None
    Categories: Annotated[list[dict[str, Any]], _items("Category")] = Field(default_factory=list)


_AttachedMedia = AttachedMedia


class GetAttachedMediaInfoResponse(BaseModel):
    model_config = _TOLERANT

    RequestId: str | None = None
    AttachedMediaList: Annotated[list[_AttachedMedia], _items("AttachedMedia")] = Field(default_factory=list)
    NonExistMediaIds: Annotated[list[str], _ids("MediaId")] = Field(default_factory=list)

    @field_validator("AttachedMediaList", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        # The 2021 sample splits one item into two array elements: keep those that name a media.
        if isinstance(value, list):
            return [item for item in value if not isinstance(item, dict) or item.get("MediaId")]
        return value


class DeleteImageResponse(BaseModel):
    model_config = _TOLERANT

    RequestId: str | None = None


class DeleteAttachedMediaResponse(BaseModel):
    """DeleteAttachedMedia: ``NonExistMediaIds`` are the ids that could not be deleted."""

    model_config = _TOLERANT

    RequestId: str | None = None
    NonExistMediaIds: Annotated[list[str], _ids("MediaId")] = Field(default_factory=list)
