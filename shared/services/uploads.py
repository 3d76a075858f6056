"""Upload credentials: create, refresh, status, list and cancel, for the owner only.

Order of a create, chosen so that nothing is lost or half-written:

1. validate the body against every rule of CreateUploadVideo, then the operator's policy
   (no call to VOD for a request that is invalid or not allowed);
2. reserve the record (atomic per-owner quota, idempotency key) with our ``ReferenceId``;
3. call VOD; on failure release the reservation;
4. attach the VideoId to the record, and only then return the credentials. If that write
   fails, the media is deleted again; if even that fails, the reservation row (status
   ``creating``, with its ReferenceId) is what cleanup finds and removes from VOD.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared import errors
from shared.api_models import AccelerateConfig, CreateUploadVideoRequest, parse_request
from shared.services.notifications import ROUTE_BUDGET_SECONDS, deliver_pending
from shared.signing import EXTEND_SIG_KEY, EXTEND_UPLOAD_KEY, binding_keys, binding_signature
from shared.states import DELETED, PUBLIC_STATUSES, TERMINAL_STATUSES, allowed_from

if TYPE_CHECKING:
    from shared.services.deps import Deps
    from shared.settings import Settings
    from shared.store import Upload
    from shared.vod_models import UploadCredentials

__all__ = [
    "MAX_LIST_LIMIT",
    "Policy",
    "apply_policy",
    "create_upload",
    "delete_upload",
    "get_upload",
    "list_uploads",
    "refresh_upload",
    "upload_view",
    "vod_params",
]

log = logging.getLogger("vodfc.uploads")

_RESERVED_PREFIX = "vodfc"  # Extend keys the server owns (EXTEND_UPLOAD_KEY, EXTEND_SIG_KEY)
MAX_LIST_LIMIT = 100


@dataclass(frozen=True)
class Policy:
    """What the operator's policy lets through of a valid request: the values sent to VOD."""

    workflow_id: str | None
    template_group_id: str | None  # None whenever a workflow applies (VOD lets WorkflowId win)
    storage_location: str | None
    app_id: str | None
    cate_id: int | None
    extend: dict[str, Any]
    accelerate: AccelerateConfig | None


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _request_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _choose(field: str, requested: Any, default: Any, allowed: tuple[Any, ...]) -> Any:
    """The operator's default, or the client's value when the operator allows exactly that value."""
    if requested is None or requested == default:
        return default
    if requested in allowed:
        return requested
    raise errors.Forbidden(
        f"{field} {requested!s:.64} is not allowed for uploads here; omit it to use the default.",
        code=f"Forbidden.{field}",
        field=field,
    )


def apply_policy(req: CreateUploadVideoRequest, settings: Settings) -> Policy:
    """The operator's policy over a valid request: what is actually sent to VOD (minus ids)."""
    ext = req.extension
    if ext not in settings.allowed_extensions:
        raise errors.InvalidParameter(
            f"Files of type .{ext} are not accepted here. Allowed: "
            + ", ".join(sorted(settings.allowed_extensions)),
            code="InvalidFileName.Extension",
            field="FileName",
        )
    if req.FileSize is not None and req.FileSize > settings.max_file_size:
        raise errors.InvalidParameter(
            f"FileSize {req.FileSize} exceeds the maximum of {settings.max_file_size} bytes.",
            code="InvalidParameter.FileSize",
            field="FileSize",
        )
    if req.ReferenceId is not None:
        raise errors.Forbidden(
            "ReferenceId is assigned by the server.", code="Forbidden.ReferenceId", field="ReferenceId"
        )
    user_data = req.UserData
    if user_data is not None and user_data.MessageCallback is not None:
        raise errors.InvalidParameter(
            "UserData.MessageCallback is set by the server and cannot be overridden.",
            code="InvalidParameter.MessageCallback",
            field="UserData.MessageCallback",
        )
    extend = dict(user_data.Extend or {}) if user_data is not None else {}
    if any(str(k).lower().startswith(_RESERVED_PREFIX) for k in extend):
        raise errors.InvalidParameter(
            "UserData.Extend keys starting with 'vodfc' are reserved.", field="UserData.Extend"
        )
    extend_size = len(_compact(extend).encode())
    if extend and extend_size > settings.client_extend_max_bytes:
        raise errors.InvalidParameter(
            f"UserData.Extend is {extend_size} bytes; "
            f"at most {settings.client_extend_max_bytes} are allowed.",
            code="InvalidParameter.Extend",
            field="UserData.Extend",
        )
    workflow = _choose(
        "WorkflowId", req.WorkflowId, settings.default_workflow_id, settings.allowed_workflow_ids
    )
    template = _choose(
        "TemplateGroupId",
        req.TemplateGroupId,
        settings.default_template_group_id,
        settings.allowed_template_group_ids,
    )
    return Policy(
        workflow_id=workflow,
        # VOD lets WorkflowId win when both are sent; we send only the one that applies.
        template_group_id=None if workflow else template,
        storage_location=_choose(
            "StorageLocation",
            req.StorageLocation,
            settings.default_storage_location,
            settings.allowed_storage_locations,
        ),
        app_id=_choose("AppId", req.AppId, settings.default_app_id, settings.allowed_app_ids),
        cate_id=_choose("CateId", req.CateId, settings.default_cate_id, settings.allowed_cate_ids),
        extend=extend,
        accelerate=user_data.AccelerateConfig if user_data is not None else None,
    )


def vod_params(
    req: CreateUploadVideoRequest, policy: Policy, upload_id: str, owner: str, settings: Settings
) -> dict[str, str]:
    """CreateUploadVideo's parameters: the request as the policy allows it, our ReferenceId, our
    owner binding inside ``Extend`` and our callback URL (no ``None`` values)."""
    extend = dict(policy.extend)
    extend[EXTEND_UPLOAD_KEY] = upload_id
    extend[EXTEND_SIG_KEY] = binding_signature(binding_keys(settings)[0], upload_id, owner)
    user_data: dict[str, Any] = {"Extend": extend}
    if settings.callback_url and settings.vod_event_delivery == "http":
        # With MNS delivery VOD ignores a per-media HTTP callback; none is set then.
        user_data["MessageCallback"] = {"CallbackURL": settings.callback_url, "CallbackType": "http"}
    if policy.accelerate is not None:
        user_data["AccelerateConfig"] = policy.accelerate.model_dump(exclude_none=True)
    params: dict[str, str] = {"Title": req.Title, "FileName": req.FileName, "ReferenceId": upload_id}
    optional = {
        "FileSize": req.FileSize,
        "Description": req.Description,
        "CoverURL": req.CoverURL,
        "Tags": req.Tags,
        "CateId": policy.cate_id,
        "TemplateGroupId": policy.template_group_id,
        "WorkflowId": policy.workflow_id,
        "StorageLocation": policy.storage_location,
        "AppId": policy.app_id,
    }
    params.update({k: str(v) for k, v in optional.items() if v is not None})
    params["UserData"] = json.dumps(user_data, separators=(",", ":"), ensure_ascii=False)
    return params


# Names nested in UserData that VOD may name in an InvalidParameter message.
_USER_DATA_NAMES = ("Extend", "MessageCallback", "CallbackURL", "CallbackType", "AccelerateConfig")
# Every name VOD may blame in a CreateUploadVideo error, whether or not this request sent it.
_PARAMETER_NAMES = frozenset(CreateUploadVideoRequest.model_fields) | frozenset(_USER_DATA_NAMES)


def _client_params(req: CreateUploadVideoRequest) -> set[str]:
    """The parameter names the client chose, nested ``UserData`` members included; ``UserData``
    itself counts as the client's only when it sent something inside it."""
    names = {name for name in req.model_fields_set if getattr(req, name) is not None}
    names.discard("UserData")
    if req.UserData is not None:
        inner = {n for n in req.UserData.model_fields_set if getattr(req.UserData, n) is not None}
        names |= inner | ({"UserData"} if inner else set())
    return names


def _credentials_answer(creds: UploadCredentials, upload: Upload, expires_at: datetime) -> dict[str, Any]:
    answer: dict[str, Any] = dict(creds.to_public_dict())
    answer.pop("RequestId", None)
    answer["VodRequestId"] = creds.RequestId
    answer["VideoId"] = upload.video_id or creds.VideoId
    answer["ExpireUTCTime"] = _iso(expires_at)
    return answer


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def create_upload(
    deps: Deps, owner: str, body: dict[str, Any], idempotency_key: str | None = None
) -> dict[str, Any]:
    """POST /uploads: validate, apply policy, reserve, call CreateUploadVideo, record, answer."""
    settings = deps.settings
    req = parse_request(CreateUploadVideoRequest, body)
    policy = apply_policy(req, settings)
    request_hash = _request_hash(body)
    if idempotency_key is not None:
        _check_idempotency_key(idempotency_key)
        existing = deps.store.find_by_idempotency_key(owner, idempotency_key)
        if existing is not None:
            return _replay(deps, existing, request_hash, req, policy)

    from shared.store import new_reservation

    now = deps.clock()
    upload_id = deps.new_id()
    try:
        reserved = deps.store.reserve_upload(
            new_reservation(
                upload_id=upload_id,
                owner=owner,
                reference_id=upload_id,
                title=req.Title,
                file_name=req.FileName,
                file_size=req.FileSize,
                now=now,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                extend=_compact(policy.extend) if policy.extend else None,
            ),
            max_pending=settings.max_pending_uploads_per_owner,
        )
    except errors.Conflict:
        # Two concurrent requests with one key: the other one holds it.
        if idempotency_key is not None:
            existing = deps.store.find_by_idempotency_key(owner, idempotency_key)
            if existing is not None:
                return _replay(deps, existing, request_hash, req, policy)
        raise
    return _create_media(deps, reserved, req, policy)


def _create_media(
    deps: Deps, reserved: Upload, req: CreateUploadVideoRequest, policy: Policy, *, resume: bool = False
) -> dict[str, Any]:
    """CreateUploadVideo for a reservation (its ``upload_id`` is the ReferenceId, so VOD makes
    at most one media for it, however often this runs), then record the media on it.
    ``resume``: an earlier request on this reservation may have made the media already."""
    upload_id = reserved.upload_id
    now = deps.clock()
    vod_started = deps.vod.monotonic()
    params = vod_params(req, policy, upload_id, reserved.owner, deps.settings)
    try:
        creds = deps.vod.create_upload_video(params, resume=resume)
    except errors.VodfcError as exc:
        # A media may exist when any attempt may have reached VOD (a timeout, a 5xx, garbage):
        # the reservation then stays, and cleanup deletes whatever carries its ReferenceId.
        # Otherwise (refused, throttled, never reached) it is released: it would hold quota.
        if not (isinstance(exc, errors.VodError) and exc.may_have_acted):
            _release(deps, upload_id)
        if isinstance(exc, errors.VodError):
            raise errors.blame(exc, _PARAMETER_NAMES, _client_params(req)) from exc
        raise
    expires_at = creds.expires_at(now)
    try:
        attached = deps.store.attach_video(upload_id, creds.VideoId, expires_at, now=deps.clock())
        if not attached:
            # A concurrent retry of the same request may have recorded this very media.
            current = deps.store.get_by_video_id(creds.VideoId)
            attached = current is not None and current.upload_id == upload_id
    except errors.VodfcError:
        _undo_media(deps, creds.VideoId, vod_started)
        raise
    if not attached:
        # The reservation is gone (or holds another media): answering would hand out a
        # credential without its record, so undo the media and let the client retry.
        _undo_media(deps, creds.VideoId, vod_started)
        raise errors.StoreUnavailable("The upload could not be recorded; retry later.")
    # The invocation's one INFO line (shared.http) carries VideoId and owner already.
    log.debug("upload created", extra={"video_id": creds.VideoId, "owner": reserved.owner})
    deliver_pending(deps, upload_id=upload_id, seconds=ROUTE_BUDGET_SECONDS)
    return _credentials_answer(creds, reserved, expires_at)


def _check_idempotency_key(key: str) -> None:
    if not (1 <= len(key) <= 128) or not key.isascii() or not key.isprintable():
        raise errors.InvalidParameter(
            "Idempotency-Key must be 1 to 128 printable ASCII characters.", field="Idempotency-Key"
        )


def _request_lifetime(settings: Settings) -> timedelta:
    """Longer than any create can still be running: its VOD calls share VOD_DEADLINE_SECONDS, and
    it makes a connection and at most two statements after reserving (FC also stops it at the
    function's timeout, 20 s in template.yml and s.yaml)."""
    return timedelta(
        seconds=settings.vod_deadline_seconds
        + 2 * settings.db_statement_timeout
        + settings.db_connect_timeout
    )


def _replay(
    deps: Deps, existing: Upload, request_hash: str, req: CreateUploadVideoRequest, policy: Policy
) -> dict[str, Any]:
    """A retry with the same Idempotency-Key: the same VideoId, never a second media."""
    if existing.request_hash != request_hash:
        raise errors.Conflict(
            "This Idempotency-Key was used with a different request body.", code="IdempotencyKeyReused"
        )
    if existing.video_id is None:
        if deps.clock() - existing.created_at < _request_lifetime(deps.settings):
            raise errors.Conflict(
                "A request with this Idempotency-Key is still in progress; retry shortly.",
                code="IdempotencyKeyInUse",
                retry_after=1,
            )
        # The request that reserved it ended without recording a media (the store or VOD failed
        # under it, or it was stopped): this retry finishes it under the same ReferenceId.
        return _create_media(deps, existing, req, policy, resume=True)
    if existing.status != "created":
        raise errors.Conflict(
            f"The upload for this Idempotency-Key is already {existing.status}.",
            code="IllegalStatus",
        )
    # We never store UploadAuth (a secret), so a replay always hands out a fresh credential
    # for the same VideoId; RefreshUploadVideo keeps the upload address unchanged.
    return _refresh(deps, existing)


def _release(deps: Deps, upload_id: str) -> None:
    try:
        deps.store.discard_reservation(upload_id)
    except errors.VodfcError:
        log.warning("reservation left for cleanup", extra={"upload_id": upload_id})


def _undo_media(deps: Deps, video_id: str, vod_started: float) -> None:
    """VOD created a media we could not record: delete it, or leave it to cleanup (ReferenceId).

    The undo gets only what is left of the request's ``VOD_DEADLINE_SECONDS``, so a client never
    waits for VOD longer than that setting in all.
    """
    remaining = deps.settings.vod_deadline_seconds - (deps.vod.monotonic() - vod_started)
    if remaining < 0.05:
        log.error("untracked media left for cleanup (no time left)", extra={"video_id": video_id})
        return
    try:
        deps.vod.delete_videos([video_id], deadline_seconds=remaining)
    except errors.VodfcError:
        log.error("untracked media left for cleanup", extra={"video_id": video_id})


def _owned(deps: Deps, owner: str, video_id: str) -> Upload:
    upload = deps.store.get(owner, video_id) if _plausible_video_id(video_id) else None
    if upload is None:
        # Another owner's upload answers exactly like one that does not exist.
        raise errors.NotFound("The video does not exist.", field="VideoId")
    return upload


def _plausible_video_id(video_id: str) -> bool:
    return 1 <= len(video_id) <= 64 and video_id.isascii() and video_id.isalnum()


def _refresh(deps: Deps, upload: Upload) -> dict[str, Any]:
    assert upload.video_id is not None
    now = deps.clock()
    creds = deps.vod.refresh_upload_video(upload.video_id)
    expires_at = creds.expires_at(now)
    if not deps.store.set_credential_expiry(upload.video_id, expires_at, now=deps.clock()):
        # The upload completed (or was deleted) while VOD refreshed: a credential handed out now
        # could overwrite a finished source, so it is not handed out.
        current = deps.store.get_by_video_id(upload.video_id)
        status = current.status if current is not None else "deleted"
        raise errors.Conflict(
            f"The upload is already {status}; its credential can no longer be refreshed.",
            code="IllegalStatus",
        )
    return _credentials_answer(creds, upload, expires_at)


def refresh_upload(deps: Deps, owner: str, video_id: str) -> dict[str, Any]:
    """POST /uploads/{VideoId}/refresh: a new credential while the upload has not completed."""
    upload = _owned(deps, owner, video_id)
    if upload.status != "created":
        # RefreshUploadVideo can overwrite a finished video's source: never after completion.
        raise errors.Conflict(
            f"The upload is already {upload.status}; its credential can no longer be refreshed.",
            code="IllegalStatus",
        )
    return _refresh(deps, upload)


def upload_view(upload: Upload) -> dict[str, Any]:
    """An upload record in VOD's naming style."""
    view: dict[str, Any] = {
        "VideoId": upload.video_id,
        "Title": upload.title,
        "FileName": upload.file_name,
        "FileSize": upload.file_size,
        "Status": upload.status,
        "CreatedAt": _iso(upload.created_at),
        "UpdatedAt": _iso(upload.updated_at),
        "LastEvent": upload.last_event,
    }
    if upload.duration is not None:
        view["Duration"] = upload.duration
    if upload.size is not None:
        view["Size"] = upload.size
    if upload.error:
        view["Error"] = upload.error
    return view


def get_upload(deps: Deps, owner: str, video_id: str) -> dict[str, Any]:
    """GET /uploads/{VideoId}."""
    return upload_view(_owned(deps, owner, video_id))


def list_uploads(
    deps: Deps, owner: str, *, status: str | None = None, cursor: str | None = None, limit: str | None = None
) -> dict[str, Any]:
    """GET /uploads: the owner's uploads, newest first, optionally one status."""
    if status is not None and status not in PUBLIC_STATUSES:
        raise errors.InvalidParameter(
            "Status must be one of " + ", ".join(PUBLIC_STATUSES) + ".", field="Status"
        )
    size = 20
    if limit is not None:
        plain = limit.isascii() and limit.isdigit() and len(limit) <= 3  # no other scripts' digits
        if not plain or not 1 <= int(limit) <= MAX_LIST_LIMIT:
            raise errors.InvalidParameter(f"Limit must be 1 to {MAX_LIST_LIMIT}.", field="Limit")
        size = int(limit)
    uploads, next_cursor = deps.store.list_uploads(owner, status=status, limit=size, cursor=cursor)
    return {"Uploads": [upload_view(u) for u in uploads], "NextCursor": next_cursor}


def delete_upload(deps: Deps, owner: str, video_id: str) -> dict[str, Any]:
    """DELETE /uploads/{VideoId}: DeleteVideo at VOD, then mark the record ``deleted``.

    An upload already ``expired`` or ``deleted`` has no media left at VOD (cleanup deleted it):
    VOD is not called again, and the answer is the record's own status.
    """
    upload = _owned(deps, owner, video_id)
    if upload.status in TERMINAL_STATUSES:
        return {"VideoId": video_id, "Status": upload.status}
    with contextlib.suppress(errors.NotFound):  # already gone at VOD
        deps.vod.delete_videos([video_id])
    if deps.store.transition(video_id, to=DELETED, allowed_from=allowed_from(DELETED), now=deps.clock()):
        deliver_pending(deps, upload_id=upload.upload_id, seconds=ROUTE_BUDGET_SECONDS)
    current = deps.store.get(owner, video_id)
    return {"VideoId": video_id, "Status": current.status if current is not None else DELETED}
