"""Images and attached media: ``POST /images`` and ``POST /attached-media``.

Their creates follow the video's order (:func:`shared.services.uploads.issue`: validate, policy,
reserve, VOD, attach, answer); this module holds what differs: the requests' policy and the
parameters of CreateUploadImage and CreateUploadAttachedMedia. Status, list and delete are the
video's routes with another kind (:mod:`shared.services.uploads`).

Two things differ from videos, both because VOD offers less:

- **No refresh.** VOD has no RefreshUploadImage / RefreshUploadAttachedMedia; a client whose
  credential ran out asks again. With the same ``Idempotency-Key`` the pending record is kept and
  its media replaced by a new one (the old one is deleted at VOD), never a second record.
- **No ReferenceId.** A create whose answer was lost is not retried, and if VOD may have acted,
  its reservation is left for cleanup, which cannot find such a media at VOD: it may remain there
  as an orphan (SECURITY.md).

https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-createuploadimage
https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-createuploadattachedmedia
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from shared import errors
from shared.services.uploads import (
    Issue,
    check_allowed,
    check_file_size,
    choose,
    client_user_data,
    issue,
    user_data_param,
)

if TYPE_CHECKING:
    from shared.api_media_models import CreateUploadAttachedMediaRequest, CreateUploadImageRequest
    from shared.api_models import AccelerateConfig
    from shared.api_models import UserData as ClientUserData
    from shared.services.deps import Deps
    from shared.settings import Settings
    from shared.vod_models import MediaCredentials

__all__ = [
    "MediaPolicy",
    "apply_attached_media_policy",
    "apply_image_policy",
    "attached_media_params",
    "create_attached_media",
    "create_image",
    "image_params",
]


class MediaPolicy(NamedTuple):
    """What the operator's policy lets through of a valid image or attached-media request."""

    storage_location: str | None
    app_id: str | None
    cate_ids: tuple[int, ...]  # an image takes one (CateId), attached media up to five (CateIds)
    extend: dict[str, Any]
    accelerate: AccelerateConfig | None


def _placement(
    user_data: ClientUserData | None,
    storage_location: str | None,
    app_id: str | None,
    cate_field: str,
    cate_ids: tuple[int, ...],
    settings: Settings,
) -> MediaPolicy:
    """The policy both kinds share with videos: storage, app and category allow-lists and defaults,
    the client's ``UserData``."""
    extend, accelerate = client_user_data(user_data, settings)
    default, allowed = settings.default_cate_id, settings.allowed_cate_ids
    chosen = tuple(choose(cate_field, cate_id, default, allowed) for cate_id in cate_ids)
    return MediaPolicy(
        storage_location=choose(
            "StorageLocation",
            storage_location,
            settings.default_storage_location,
            settings.allowed_storage_locations,
        ),
        app_id=choose("AppId", app_id, settings.default_app_id, settings.allowed_app_ids),
        cate_ids=chosen or ((default,) if default is not None else ()),
        extend=extend,
        accelerate=accelerate,
    )


def apply_image_policy(req: CreateUploadImageRequest, settings: Settings) -> MediaPolicy:
    """The operator's policy over a valid CreateUploadImage request (``ALLOWED_IMAGE_EXTENSIONS``)."""
    check_allowed(
        f"Images of type .{req.extension}",
        req.extension,
        settings.allowed_image_extensions,
        code="InvalidParameter.ImageExt",
        field="ImageExt",
    )
    cate_ids = (req.CateId,) if req.CateId is not None else ()
    return _placement(req.UserData, req.StorageLocation, req.AppId, "CateId", cate_ids, settings)


def apply_attached_media_policy(req: CreateUploadAttachedMediaRequest, settings: Settings) -> MediaPolicy:
    """The operator's policy over a valid CreateUploadAttachedMedia request
    (``ALLOWED_ATTACHED_BUSINESS_TYPES``, ``MAX_ATTACHED_MEDIA_SIZE`` on the declared ``FileSize``)."""
    check_allowed(
        f"Attached media of type {req.BusinessType}",
        req.BusinessType,
        settings.allowed_attached_business_types,
        code="Forbidden.BusinessType",
        field="BusinessType",
        error=errors.Forbidden,
    )
    check_file_size(req.FileSize, settings.max_attached_media_size)
    return _placement(req.UserData, req.StorageLocation, req.AppId, "CateIds", req.CateIds or (), settings)


def _params(required: dict[str, str], optional: dict[str, Any], policy: MediaPolicy) -> dict[str, str]:
    params = dict(required)
    optional = {**optional, "StorageLocation": policy.storage_location, "AppId": policy.app_id}
    params.update({k: str(v) for k, v in optional.items() if v is not None})
    return params


def image_params(
    req: CreateUploadImageRequest, policy: MediaPolicy, upload_id: str, owner: str, settings: Settings
) -> dict[str, str]:
    """CreateUploadImage's parameters: the request as the policy allows it, with our owner binding
    and callback URL in ``UserData`` (no ``None`` values; ``ImageExt`` always sent)."""
    optional = {
        "Title": req.Title,
        "OriginalFileName": req.OriginalFileName,
        "Description": req.Description,
        "Tags": req.Tags,
        "CateId": policy.cate_ids[0] if policy.cate_ids else None,
    }
    params = _params({"ImageType": req.ImageType, "ImageExt": req.extension}, optional, policy)
    params["UserData"] = user_data_param(policy.extend, policy.accelerate, upload_id, owner, settings)
    return params


def attached_media_params(
    req: CreateUploadAttachedMediaRequest, policy: MediaPolicy, upload_id: str, owner: str, settings: Settings
) -> dict[str, str]:
    """CreateUploadAttachedMedia's parameters: as :func:`image_params`; ``MediaExt`` always sent
    (the one of ``FileName`` when the client gave none), ``FileSize`` as VOD's string."""
    optional = {
        "Title": req.Title,
        "FileName": req.FileName,
        "FileSize": req.FileSize,
        "Description": req.Description,
        "Tags": req.Tags,
        "CateIds": ",".join(str(c) for c in policy.cate_ids) or None,
    }
    params = _params({"BusinessType": req.BusinessType, "MediaExt": req.extension}, optional, policy)
    params["UserData"] = user_data_param(policy.extend, policy.accelerate, upload_id, owner, settings)
    return params


def _spec(
    deps: Deps,
    owner: str,
    req: CreateUploadImageRequest | CreateUploadAttachedMediaRequest,
    policy: MediaPolicy,
    record: tuple[str, str | None, int | None, str],
    params: Callable[[Any, MediaPolicy, str, str, Settings], dict[str, str]],
    create: Callable[[dict[str, str]], MediaCredentials],
) -> Issue:
    """One image's or attached media's create as :func:`shared.services.uploads.issue` takes it:
    ``record`` is (kind, file name, file size, media type). A resumed create makes the media again:
    these kinds have no ReferenceId by which VOD could find an earlier one."""
    kind, file_name, file_size, media_type = record
    return Issue(
        kind=kind,
        request=req,
        title=req.Title or "",
        file_name=file_name or "",
        file_size=file_size,
        media_type=media_type,
        extend=policy.extend,
        create=lambda upload_id, _resume: create(params(req, policy, upload_id, owner, deps.settings)),
    )


def create_image(
    deps: Deps, owner: str, body: dict[str, Any], idempotency_key: str | None = None
) -> dict[str, Any]:
    """POST /images: validate, apply policy, reserve, call CreateUploadImage, record, answer."""
    from shared.api_media_models import CreateUploadImageRequest
    from shared.api_models import parse_request

    req = parse_request(CreateUploadImageRequest, body)
    policy = apply_image_policy(req, deps.settings)
    record = ("image", req.OriginalFileName, None, req.ImageType)
    spec = _spec(deps, owner, req, policy, record, image_params, deps.vod.create_upload_image)
    return issue(deps, owner, body, idempotency_key, spec)


def create_attached_media(
    deps: Deps, owner: str, body: dict[str, Any], idempotency_key: str | None = None
) -> dict[str, Any]:
    """POST /attached-media: validate, apply policy, reserve, call CreateUploadAttachedMedia,
    record, answer."""
    from shared.api_media_models import CreateUploadAttachedMediaRequest
    from shared.api_models import parse_request

    req = parse_request(CreateUploadAttachedMediaRequest, body)
    policy = apply_attached_media_policy(req, deps.settings)
    record = ("attached", req.FileName, req.FileSize, req.BusinessType)
    spec = _spec(
        deps, owner, req, policy, record, attached_media_params, deps.vod.create_upload_attached_media
    )
    return issue(deps, owner, body, idempotency_key, spec)
