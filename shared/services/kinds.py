"""The three media kinds at VOD: how each is looked up, deleted and capped in size, in one place.

Videos (CreateUploadVideo), images (CreateUploadImage) and attached media (watermarks, subtitles
and materials: CreateUploadAttachedMedia) share one store and one state machine; what differs is
which VOD operations describe and delete them. The routes, the callbacks and cleanup go through
these functions and never choose a VOD operation by kind themselves.

VOD's documentation of the image and attached-media operations:
https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-getimageinfo,
https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-getattachedmediainfo
(no size is documented for attached media: the upload event's ``Size`` is the only report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from shared import errors, states

if TYPE_CHECKING:
    from shared.settings import Settings
    from shared.vod import VodClient
    from shared.vod_media_models import AttachedMedia, Image
    from shared.vod_models import Video

__all__ = [
    "ID_FIELDS",
    "NOUNS",
    "NO_FIELDS",
    "VodMedia",
    "delete",
    "look_up",
    "look_up_one",
    "max_size",
    "stored_size",
]

#: The name of each kind's media id in VOD's (and our API's) answers.
ID_FIELDS: Final[Mapping[str, str]] = {"video": "VideoId", "image": "ImageId", "attached": "MediaId"}
#: Each kind in words, for messages.
NOUNS: Final[Mapping[str, str]] = {"video": "video", "image": "image", "attached": "attached media"}
#: No fields: the default of the records' ``fields`` (read-only, so one instance serves them all).
NO_FIELDS: Final[Mapping[str, Any]] = MappingProxyType({})


class VodMedia(NamedTuple):
    """One media as VOD reports it: ``vod_status`` is VOD's own word, ``status`` ours for it (``None``
    when VOD's is unknown or impossible for the kind), ``fields`` what the record may take from
    VOD (``duration``, ``size``, ``error``)."""

    media_id: str
    vod_status: str | None
    status: str | None
    fields: Mapping[str, Any] = NO_FIELDS


def _media(kind: str, media_id: str, vod_status: str | None, fields: dict[str, Any]) -> VodMedia:
    ours = states.status_from_vod(vod_status)
    if ours not in states.KIND_STATUSES[kind]:
        ours = None  # e.g. "Transcoding" for an image: not a status images have
    return VodMedia(media_id, vod_status, ours, fields)


def _video(video: Video) -> VodMedia:
    fields: dict[str, Any] = {}
    if video.Duration is not None:
        fields["duration"] = float(video.Duration)
    if video.Size is not None:
        fields["size"] = int(video.Size)
    if (video.Status or "").lower() == "blocked":
        fields["error"] = "Blocked: the video did not pass review"
    return _media("video", video.VideoId, video.Status, fields)


def _image(image: Image) -> VodMedia:
    size = image.Mezzanine.FileSize if image.Mezzanine is not None else None
    return _media("image", image.ImageId, image.Status, {} if size is None else {"size": int(size)})


def _attached(media: AttachedMedia) -> VodMedia:
    return _media("attached", media.MediaId, media.Status, {})


def max_size(settings: Settings, kind: str) -> int:
    """The largest file the operator accepts for ``kind`` (``MAX_FILE_SIZE``, ``MAX_IMAGE_SIZE``,
    ``MAX_ATTACHED_MEDIA_SIZE``)."""
    if kind == "image":
        return settings.max_image_size
    if kind == "attached":
        return settings.max_attached_media_size
    return settings.max_file_size


def look_up(vod: VodClient, kind: str, media_ids: Sequence[str]) -> tuple[list[VodMedia], list[str]]:
    """At most 20 media of one kind as VOD reports them, and the ids VOD does not have
    (GetVideoInfos, GetImageInfos, GetAttachedMediaInfo: one call)."""
    if kind == "image":
        images = vod.get_image_infos(media_ids)
        return [_image(i) for i in images.ImageInfo], images.NonExistImageIds
    if kind == "attached":
        attached = vod.get_attached_media_info(media_ids)
        return [_attached(m) for m in attached.AttachedMediaList], attached.NonExistMediaIds
    videos = vod.get_video_infos(media_ids)
    return [_video(v) for v in videos.VideoList], videos.NonExistVideoIds


def look_up_one(vod: VodClient, kind: str, media_id: str, *, deadline_seconds: float) -> VodMedia:
    """One media as VOD reports it (GetVideoInfo, GetImageInfo, GetAttachedMediaInfo), within
    ``deadline_seconds``; :class:`errors.NotFound` when VOD does not have it."""
    if kind == "image":
        return _image(vod.get_image_info(media_id, deadline_seconds=deadline_seconds))
    if kind == "attached":
        answer = vod.get_attached_media_info([media_id], deadline_seconds=deadline_seconds)
        found = [m for m in answer.AttachedMediaList if m.MediaId == media_id]
        if not found:
            raise errors.NotFound("VOD does not have this attached media.", code="NoSuchResource")
        return _attached(found[0])
    return _video(vod.get_video_info(media_id, deadline_seconds=deadline_seconds))


def stored_size(
    vod: VodClient, kind: str, media_id: str, *, claimed: int, deadline_seconds: float
) -> int | None:
    """The size of the file VOD stored for the media (``None`` if VOD does not say), to check an
    upload event's ``Size`` (the event body is not signed): GetMezzanineInfo for a video,
    GetImageInfo's Mezzanine for an image. VOD reports no size for attached media, so there the
    event's ``claimed`` size stands once VOD confirms the file arrived (``Normal``).
    :class:`errors.NotFound` when VOD does not have the media."""
    if kind == "video":
        return vod.get_mezzanine_info(media_id, deadline_seconds=deadline_seconds).Size
    media = look_up_one(vod, kind, media_id, deadline_seconds=deadline_seconds)
    if kind == "attached":
        return claimed if media.status == states.READY else None
    size = media.fields.get("size")
    return None if size is None else int(size)


def delete(
    vod: VodClient, kind: str, media_ids: Sequence[str], *, deadline_seconds: float | None = None
) -> None:
    """Delete at most 20 media of one kind at VOD (DeleteVideo, DeleteImage, DeleteAttachedMedia);
    :class:`errors.NotFound` when VOD reports that it has none of them."""
    if kind == "image":
        vod.delete_images(media_ids, deadline_seconds=deadline_seconds)
    elif kind == "attached":
        vod.delete_attached_media(media_ids, deadline_seconds=deadline_seconds)
    else:
        vod.delete_videos(media_ids, deadline_seconds=deadline_seconds)
