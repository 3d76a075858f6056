"""OpenAPI actions for images and attached (auxiliary) media: upload credentials, look-ups, deletes.

Same flow as videos: ``CreateUpload*`` creates the record (``Uploading``) and hands out an
address and a 3000 s STS credential for one OSS object; the upload moves it to ``Normal`` and
fires ``ImageUploadComplete`` / ``AttachedMediaUploadComplete`` (see :mod:`.events`). There is
no refresh: a client calls ``CreateUpload*`` again and gets a new id. Parameter rules:

- CreateUploadImage: https://alibabacloud.com/help/en/vod/api-createuploadimage
- CreateUploadAttachedMedia: https://alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-createuploadattachedmedia
- GetImageInfo(s): https://www.alibabacloud.com/help/en/vod/api-getimageinfo,
  https://alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-getimageinfos
- DeleteImage: https://help.aliyun.com/document_detail/89742.htm
- GetAttachedMediaInfo / DeleteAttachedMedia:
  https://alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-deleteattachedmedia
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from .auth import VodCall
from .config import EmulatorConfig
from .events import EventEngine
from .state import (
    Asset,
    AttachedMedia,
    EmulatorState,
    Image,
    MultipartUpload,
    UploadCredential,
    Video,
    iso_time,
)
from .vod_params import (
    MAX_BATCH_IDS,
    VodApiError,
    check_text,
    exceeded_max,
    ids_param,
    int_param,
    invalid,
    missing,
    no_such_resource,
    output_options,
    parse_user_data,
    tags_param,
    upload_answer,
)

__all__ = ["ATTACHED_EXTENSIONS", "IMAGE_EXTENSIONS", "IMAGE_TYPES", "MediaActions"]

IMAGE_TYPES = ("default", "cover")
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "gif")  # png is the default
# BusinessType -> allowed MediaExt. ``apk`` for material is in the 2025 SDK docstring only.
ATTACHED_EXTENSIONS: Mapping[str, tuple[str, ...]] = {
    "watermark": ("png", "gif", "apng", "mov"),
    "subtitle": ("srt", "ass", "stl", "ttml", "vtt"),
    "material": ("jpg", "gif", "png", "mp4", "mat", "zip", "apk"),
}
MAX_CATE_IDS = 5
_K = TypeVar("_K", bound=Asset)
_SNAPSHOT_TYPES = ("CoverSnapshot", "NormalSnapshot", "SpriteSnapshot", "SpriteOriginSnapshot")


def _extension(file_name: str | None) -> str | None:
    """The lower-case extension of a path's last segment (``D:\\a\\b.PNG`` -> ``png``)."""
    if not file_name:
        return None
    base = re.split(r"[\\/]", file_name)[-1]
    stem, dot, ext = base.rpartition(".")
    return ext.lower() if dot and stem and ext else None


def _without_nones(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


class MediaActions:
    """The seven image / attached-media actions, as ``{Action: handler}`` for :class:`VodApi`."""

    def __init__(
        self,
        config: EmulatorConfig,
        state: EmulatorState,
        engine: EventEngine,
        *,
        clock: Callable[[], float],
        storage_location: str,
        storage_delete: Callable[[Asset, list[MultipartUpload]], None],
    ) -> None:
        self.config = config
        self.state = state
        self.engine = engine
        self.clock = clock
        self.storage_location = storage_location
        self.storage_delete = storage_delete

    def actions(self) -> dict[str, Callable[[VodCall], dict[str, Any]]]:
        """Action name -> handler."""
        return {
            "CreateUploadImage": self.create_upload_image,
            "GetImageInfo": self.get_image_info,
            "GetImageInfos": self.get_image_infos,
            "DeleteImage": self.delete_image,
            "CreateUploadAttachedMedia": self.create_upload_attached_media,
            "GetAttachedMediaInfo": self.get_attached_media_info,
            "DeleteAttachedMedia": self.delete_attached_media,
        }

    # --- shared rules ---------------------------------------------------------------------------

    def storage(self, params: Mapping[str, str]) -> str:
        """``StorageLocation``: empty = the default storage; any other than ours does not exist."""
        storage = params.get("StorageLocation") or self.storage_location
        if storage != self.storage_location:
            raise VodApiError(404, "InvalidStorage.NotFound", "The storage location does not exist.")
        return storage

    @staticmethod
    def _text(params: Mapping[str, str], name: str, max_bytes: int) -> str | None:
        value = params.get(name) or None
        if value is not None:
            check_text(name, value, max_bytes)
        return value

    def _answer(self, asset: Asset) -> dict[str, str]:
        cred: UploadCredential = self.state.issue_upload_credential(
            asset, bucket=self.config.bucket, now=self.clock(), ttl=self.config.upload_credential_ttl_seconds
        )
        return upload_answer(
            endpoint=self.engine.oss_base_url(),
            bucket=self.config.bucket,
            key=asset.object_key,
            cred=cred,
            region=self.config.region,
        )

    def _batch(self, params: Mapping[str, str], name: str) -> list[str]:
        ids = list(dict.fromkeys(ids_param(params, name)))
        if not ids:
            raise missing(name)
        if len(ids) > MAX_BATCH_IDS:
            raise exceeded_max(name)
        return ids

    def _delete(self, assets: list[Asset]) -> None:
        with self.state.lock:
            removed = [(asset, self.state.remove_asset(asset)) for asset in assets]
        for asset, uploads in removed:
            self.storage_delete(asset, uploads)

    # --- images -----------------------------------------------------------------------------------

    def create_upload_image(self, call: VodCall) -> dict[str, Any]:
        """CreateUploadImage: an ``Uploading`` image and a credential for its one object."""
        p = call.params
        image_type = p.get("ImageType") or ""
        if not image_type:
            raise missing("ImageType")
        if image_type not in IMAGE_TYPES:
            raise invalid("ImageType", "It must be default or cover.")
        ext = (p.get("ImageExt") or "png").lower()
        if ext not in IMAGE_EXTENSIONS:
            raise invalid("ImageExt", "It must be png, jpg, jpeg or gif.")
        title = self._text(p, "Title", 128)
        description = self._text(p, "Description", 1024)
        tags = tags_param(p)
        cate_id = int_param(p, "CateId")
        original = p.get("OriginalFileName") or None
        if original is not None and _extension(original) is None:
            raise invalid("OriginalFileName", "It must contain a file extension.")
        storage = self.storage(p)
        user_data = parse_user_data(p.get("UserData") or None)
        now = self.clock()
        image = Image(
            media_id=self.state.new_media_id(),
            account=call.credential.account,
            seq=self.state.next_seq(),
            object_key=self.state.new_image_key(image_type, ext),
            extension=ext,
            created=now,
            modified=now,
            app_id=p.get("AppId") or self.config.default_app_id,
            storage_location=storage,
            image_type=image_type,
            title=title,
            description=description,
            tags=tags,
            cate_id=cate_id,
            original_file_name=original,
            user_data=user_data.raw,
            callback_url=user_data.callback_url,
            extend=user_data.extend,
        )
        self.state.add_asset(image)
        url = self.engine.file_url(image)
        return {"ImageId": image.media_id, "ImageURL": url, "FileURL": url, **self._answer(image)}

    def image_dict(self, image: Image) -> dict[str, Any]:
        """One ``ImageInfo`` (GetImageInfo, GetImageInfos)."""
        url = self.engine.file_url(image)
        mezzanine = _without_nones(
            {
                "FileURL": url,
                "FileSize": None if image.size is None else str(image.size),
                "Width": image.width,
                "Height": image.height,
                "OriginalFileName": image.original_file_name,
            }
        )
        return _without_nones(
            {
                "ImageId": image.media_id,
                "Title": image.title,
                "Description": image.description,
                "ImageType": image.image_type,
                "Status": image.status,
                "CreationTime": iso_time(image.created),
                "CateId": image.cate_id,
                "Tags": image.tags,
                "StorageLocation": image.storage_location,
                "AppId": image.app_id,
                "URL": url,
                "Mezzanine": mezzanine,
            }
        )

    def get_image_info(self, call: VodCall) -> dict[str, Any]:
        """GetImageInfo: one image, ``NoSuchResource`` 404 when unknown."""
        image_id = call.params.get("ImageId") or ""
        if not image_id:
            raise missing("ImageId")
        output_options(call.params, default="cdn")
        image = self.state.find(call.credential.account, image_id, Image)
        if image is None:
            raise no_such_resource()
        with self.state.lock:
            return {"ImageInfo": self.image_dict(image)}

    def get_image_infos(self, call: VodCall) -> dict[str, Any]:
        """GetImageInfos: at most 20 ids; unknown ones are listed in ``NonExistImageIds``."""
        ids = self._batch(call.params, "ImageIds")
        output_options(call.params, default="cdn")
        found, missing_ids = self._lookup(call, ids, Image)
        with self.state.lock:
            return {"ImageInfo": [self.image_dict(i) for i in found], "NonExistImageIds": missing_ids}

    def delete_image(self, call: VodCall) -> dict[str, Any]:
        """DeleteImage by ``ImageId``, ``ImageURL`` or ``VideoId`` (snapshots: none are emulated).

        Answers ``NoSuchResource`` 404 only when *none* of the named images exists; otherwise
        deletes those that do (the answer has no per-id result).
        """
        p = call.params
        how = p.get("DeleteImageType") or ""
        if not how:
            raise missing("DeleteImageType")
        account = call.credential.account
        if how == "ImageId":
            found, _ = self._lookup(call, self._batch(p, "ImageIds"), Image)
        elif how == "ImageURL":
            wanted = {_bare_url(unquote(u)) for u in self._batch(p, "ImageURLs")}
            found = [i for i in self.state.of_kind(Image) if i.account == account and self._urls(i) & wanted]
        elif how == "VideoId":
            video_id = p.get("VideoId") or ""
            if not video_id:
                raise missing("VideoId")
            types = ids_param(p, "ImageType")
            if not types:
                raise missing("ImageType")
            if not (types == ["All"] or all(t in _SNAPSHOT_TYPES for t in types)):
                raise invalid("ImageType", f"It must be All or a list of {', '.join(_SNAPSHOT_TYPES)}.")
            if self.state.find(account, video_id, Video) is None:
                raise no_such_resource()
            return {}
        else:
            raise invalid("DeleteImageType", "It must be ImageId, ImageURL or VideoId.")
        if not found:
            raise no_such_resource()
        self._delete(list(found))
        return {}

    def _urls(self, image: Image) -> set[str]:
        return {_bare_url(self.engine.file_url(image))}

    # --- attached media ---------------------------------------------------------------------------

    def create_upload_attached_media(self, call: VodCall) -> dict[str, Any]:
        """CreateUploadAttachedMedia: a watermark, subtitle or material record and its credential."""
        p = call.params
        business_type = p.get("BusinessType") or ""
        if not business_type:
            raise missing("BusinessType")
        allowed = ATTACHED_EXTENSIONS.get(business_type)
        if allowed is None:
            raise invalid("BusinessType", f"It must be one of {', '.join(ATTACHED_EXTENSIONS)}.")
        file_name = p.get("FileName") or None
        # MediaExt wins over the FileName's extension; one of the two is needed.
        ext = (p.get("MediaExt") or "").lower() or _extension(file_name)
        if ext is None:
            raise missing("MediaExt")
        if ext not in allowed:
            raise invalid("MediaExt", f"For {business_type} it must be one of {', '.join(allowed)}.")
        title = self._text(p, "Title", 128)
        description = self._text(p, "Description", 1024)
        raw_size = p.get("FileSize") or None
        if raw_size is not None and not raw_size.isdigit():
            raise invalid("FileSize", "It must be a number of bytes.")
        tags = tags_param(p)
        cate_ids = ids_param(p, "CateIds")
        if len(cate_ids) > MAX_CATE_IDS:
            raise invalid("CateIds", f"At most {MAX_CATE_IDS} category ids are allowed.")
        if not all(re.fullmatch(r"-?\d+", c) for c in cate_ids):
            raise invalid("CateIds", "Each category id must be an integer.")
        storage = self.storage(p)
        user_data = parse_user_data(p.get("UserData") or None)
        now = self.clock()
        media = AttachedMedia(
            media_id=self.state.new_media_id(),
            account=call.credential.account,
            seq=self.state.next_seq(),
            object_key=self.state.new_attached_key(business_type, ext),
            extension=ext,
            created=now,
            modified=now,
            app_id=p.get("AppId") or self.config.default_app_id,
            storage_location=storage,
            business_type=business_type,
            title=title,
            description=description,
            tags=tags,
            file_name=file_name,
            declared_size=None if raw_size is None else int(raw_size),
            cate_ids=[int(c) for c in cate_ids],
            user_data=user_data.raw,
            callback_url=user_data.callback_url,
            extend=user_data.extend,
        )
        self.state.add_asset(media)
        url = self.engine.file_url(media)
        return {"MediaId": media.media_id, "MediaURL": url, "FileURL": url, **self._answer(media)}

    def attached_dict(self, media: AttachedMedia) -> dict[str, Any]:
        """One item of ``AttachedMediaList``."""
        categories = [{"CateId": c} for c in media.cate_ids] or None
        return _without_nones(
            {
                "MediaId": media.media_id,
                "Type": media.business_type,
                "Title": media.title,
                "Description": media.description,
                "Status": media.status,
                "AppId": media.app_id,
                "CreationTime": iso_time(media.created),
                "ModificationTime": iso_time(media.modified),
                "StorageLocation": media.storage_location,
                "URL": self.engine.file_url(media),
                "Tags": media.tags,
                "Categories": categories,
            }
        )

    def get_attached_media_info(self, call: VodCall) -> dict[str, Any]:
        """GetAttachedMediaInfo: at most 20 ids (``ExceededMax`` beyond); unknown ones listed."""
        ids = self._batch(call.params, "MediaIds")
        output_options(call.params, default="cdn")
        found, missing_ids = self._lookup(call, ids, AttachedMedia)
        with self.state.lock:
            return {
                "AttachedMediaList": [self.attached_dict(m) for m in found],
                "NonExistMediaIds": missing_ids,
            }

    def delete_attached_media(self, call: VodCall) -> dict[str, Any]:
        """DeleteAttachedMedia: deletes what exists, lists the rest in ``NonExistMediaIds``."""
        found, missing_ids = self._lookup(call, self._batch(call.params, "MediaIds"), AttachedMedia)
        self._delete(list(found))
        return {"NonExistMediaIds": missing_ids}

    def _lookup(self, call: VodCall, ids: list[str], kind: type[_K]) -> tuple[list[_K], list[str]]:
        found: list[_K] = []
        missing_ids: list[str] = []
        for media_id in ids:
            asset = self.state.find(call.credential.account, media_id, kind)
            if asset is None:
                missing_ids.append(media_id)
            else:
                found.append(asset)
        return found, missing_ids


def _bare_url(url: str) -> str:
    """A URL without its query (signing parameters) and fragment."""
    return urlsplit(url.strip())._replace(query="", fragment="").geturl()
