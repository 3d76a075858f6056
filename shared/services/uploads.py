"""Upload credentials: create, refresh, status, list and cancel, for the owner only.

The create of every media kind (:func:`issue`; videos here, images and attached media in
:mod:`shared.services.media`) keeps one order, chosen so that nothing is lost or half-written:

1. validate the body against every rule of the CreateUpload* operation, then the operator's
   policy (no call to VOD for a request that is invalid or not allowed);
2. reserve the record (atomic per-owner quota over every kind, idempotency key; a video's with
   our ``ReferenceId``);
3. call VOD; on a failure VOD certainly did not act on, release the reservation, otherwise keep
   it for cleanup;
4. attach the media id to the record, and only then return the credentials. If that write
   fails, the media is deleted again; if even that fails, the reservation row (status
   ``creating``) is what cleanup finds (and, for a video, removes from VOD by ReferenceId). A
   video whose attach may have committed all the same (the store lost its answer) is kept for
   cleanup instead of deleted.

Status, list and delete take the kind (``video``, ``image``, ``attached``) and answer in VOD's names
for it (``VideoId``, ``ImageId``, ``MediaId``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from shared import errors, states
from shared.services import kinds
from shared.services.notifications import ROUTE_BUDGET_SECONDS, deliver_pending
from shared.signing import EXTEND_SIG_KEY, EXTEND_UPLOAD_KEY, binding_keys, binding_signature
from shared.states import DELETED, KIND_STATUSES, TERMINAL_STATUSES, allowed_from

if TYPE_CHECKING:
    from pydantic import BaseModel

    from shared.api_models import AccelerateConfig, CreateUploadVideoRequest
    from shared.api_models import UserData as ClientUserData
    from shared.services.deps import Deps
    from shared.settings import Settings
    from shared.store import Upload
    from shared.vod_models import MediaCredentials

__all__ = [
    "MAX_LIST_LIMIT",
    "Issue",
    "Policy",
    "apply_policy",
    "check_allowed",
    "check_file_size",
    "choose",
    "client_user_data",
    "create_upload",
    "delete_upload",
    "get_upload",
    "issue",
    "list_uploads",
    "refresh_upload",
    "upload_view",
    "user_data_param",
    "vod_params",
]

log = logging.getLogger("vodfc.uploads")

_RESERVED_PREFIX = "vodfc"  # Extend keys the server owns (EXTEND_UPLOAD_KEY, EXTEND_SIG_KEY)
MAX_LIST_LIMIT = 100


class Policy(NamedTuple):
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


def choose(field: str, requested: Any, default: Any, allowed: tuple[Any, ...]) -> Any:
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
    check_allowed(
        f"Files of type .{req.extension}",
        req.extension,
        sorted(settings.allowed_extensions),
        code="InvalidFileName.Extension",
        field="FileName",
    )
    check_file_size(req.FileSize, settings.max_file_size)
    if req.ReferenceId is not None:
        raise errors.Forbidden(
            "ReferenceId is assigned by the server.", code="Forbidden.ReferenceId", field="ReferenceId"
        )
    extend, accelerate = client_user_data(req.UserData, settings)
    workflow = choose(
        "WorkflowId", req.WorkflowId, settings.default_workflow_id, settings.allowed_workflow_ids
    )
    template = choose(
        "TemplateGroupId",
        req.TemplateGroupId,
        settings.default_template_group_id,
        settings.allowed_template_group_ids,
    )
    return Policy(
        workflow_id=workflow,
        # VOD lets WorkflowId win when both are sent; we send only the one that applies.
        template_group_id=None if workflow else template,
        storage_location=choose(
            "StorageLocation",
            req.StorageLocation,
            settings.default_storage_location,
            settings.allowed_storage_locations,
        ),
        app_id=choose("AppId", req.AppId, settings.default_app_id, settings.allowed_app_ids),
        cate_id=choose("CateId", req.CateId, settings.default_cate_id, settings.allowed_cate_ids),
        extend=extend,
        accelerate=accelerate,
    )


def check_allowed(
    what: str,
    value: str,
    allowed: Collection[str],
    *,
    code: str,
    field: str,
    error: type[errors.ClientError] = errors.InvalidParameter,
) -> None:
    """Refuse ``value`` (``what`` names it in the message) unless the operator's ``allowed`` holds
    it; the message lists ``allowed`` in its order."""
    if value not in allowed:
        raise error(f"{what} are not accepted here. Allowed: " + ", ".join(allowed), code=code, field=field)


def check_file_size(file_size: int | None, limit: int) -> None:
    """A declared ``FileSize`` over the operator's limit (the kind's maximum) is refused up front."""
    if file_size is not None and file_size > limit:
        raise errors.InvalidParameter(
            f"FileSize {file_size} exceeds the maximum of {limit} bytes.",
            code="InvalidParameter.FileSize",
            field="FileSize",
        )


def client_user_data(
    user_data: ClientUserData | None, settings: Settings
) -> tuple[dict[str, Any], AccelerateConfig | None]:
    """The parts of a client's ``UserData`` the policy lets through (any kind): its ``Extend``
    without our reserved keys and within ``CLIENT_EXTEND_MAX_BYTES``, and its ``AccelerateConfig``;
    ``MessageCallback`` is the server's own."""
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
    return extend, user_data.AccelerateConfig if user_data is not None else None


def vod_params(
    req: CreateUploadVideoRequest, policy: Policy, upload_id: str, owner: str, settings: Settings
) -> dict[str, str]:
    """CreateUploadVideo's parameters: the request as the policy allows it, our ReferenceId, our
    owner binding inside ``Extend`` and our callback URL (no ``None`` values)."""
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
    params["UserData"] = user_data_param(policy.extend, policy.accelerate, upload_id, owner, settings)
    return params


def user_data_param(
    extend: dict[str, Any],
    accelerate: AccelerateConfig | None,
    upload_id: str,
    owner: str,
    settings: Settings,
) -> str:
    """VOD's ``UserData`` for any kind, as compact JSON: the client's ``Extend`` with our owner
    binding, our callback URL, the client's ``AccelerateConfig``."""
    bound = dict(extend)
    bound[EXTEND_UPLOAD_KEY] = upload_id
    bound[EXTEND_SIG_KEY] = binding_signature(binding_keys(settings)[0], upload_id, owner)
    user_data: dict[str, Any] = {"Extend": bound}
    if settings.callback_url and settings.vod_event_delivery == "http":
        # With MNS delivery VOD ignores a per-media HTTP callback; none is set then.
        user_data["MessageCallback"] = {"CallbackURL": settings.callback_url, "CallbackType": "http"}
    if accelerate is not None:
        user_data["AccelerateConfig"] = accelerate.model_dump(exclude_none=True)
    return json.dumps(user_data, separators=(",", ":"), ensure_ascii=False)


# Names nested in UserData that VOD may name in an InvalidParameter message.
_USER_DATA_NAMES = frozenset(("Extend", "MessageCallback", "CallbackURL", "CallbackType", "AccelerateConfig"))


def _blamed(exc: errors.VodError, req: BaseModel) -> errors.VodfcError:
    """VOD's refusal as the caller should see it: a parameter the server chose (callback URL,
    template group, storage, AppId, ReferenceId) is the server's misconfiguration, one the client
    chose VOD's 400 (:func:`errors.blame`). Every name of the request model may be blamed, whether
    or not this request sent it."""
    known = frozenset(type(req).model_fields) | _USER_DATA_NAMES
    return errors.blame(exc, known, _client_params(req))


def _client_params(req: BaseModel) -> set[str]:
    """The parameter names the client chose, nested ``UserData`` members included; ``UserData``
    itself counts as the client's only when it sent something inside it."""
    names = {name for name in req.model_fields_set if getattr(req, name) is not None}
    names.discard("UserData")
    user_data = getattr(req, "UserData", None)
    if user_data is not None:
        inner = {n for n in user_data.model_fields_set if getattr(user_data, n) is not None}
        names |= inner | ({"UserData"} if inner else set())
    return names


def _credentials_answer(creds: MediaCredentials, expires_at: datetime) -> dict[str, Any]:
    """VOD's answer for the client: VOD's RequestId as ``VodRequestId`` (``RequestId`` is ours) and
    when the credential expires."""
    answer: dict[str, Any] = dict(creds.to_public_dict())
    answer.pop("RequestId", None)
    answer["VodRequestId"] = creds.RequestId
    answer["ExpireUTCTime"] = _iso(expires_at)
    return answer


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


class Issue(NamedTuple):
    """One create, of any kind, once the request passed validation and policy: what the record
    holds, and ``create``, which asks VOD for a new media bound to the given upload id (``resume``:
    an earlier request on this reservation may have made it, see :func:`_create_media`)."""

    kind: str
    request: BaseModel  # the validated request (whose parameters VOD may blame)
    title: str
    file_name: str
    file_size: int | None
    media_type: str | None
    extend: dict[str, Any]
    create: Callable[[str, bool], MediaCredentials]  # (upload id, resume) -> VOD's answer


def create_upload(
    deps: Deps, owner: str, body: dict[str, Any], idempotency_key: str | None = None
) -> dict[str, Any]:
    """POST /uploads: validate, apply policy, reserve, call CreateUploadVideo, record, answer."""
    from shared.api_models import CreateUploadVideoRequest, parse_request

    settings = deps.settings
    req = parse_request(CreateUploadVideoRequest, body)
    policy = apply_policy(req, settings)
    spec = Issue(
        kind="video",
        request=req,
        title=req.Title,
        file_name=req.FileName,
        file_size=req.FileSize,
        media_type=None,
        extend=policy.extend,
        create=lambda upload_id, resume: deps.vod.create_upload_video(
            vod_params(req, policy, upload_id, owner, settings), resume=resume
        ),
    )
    return issue(deps, owner, body, idempotency_key, spec)


def issue(
    deps: Deps, owner: str, body: dict[str, Any], idempotency_key: str | None, spec: Issue
) -> dict[str, Any]:
    """Reserve, ask VOD, record, answer (the module docstring's order); a replay of the same
    Idempotency-Key answers for the record it made, never making a second one.

    The reservation is tried first, replay or not: its checks answer a used key before the quota
    (:meth:`shared.store.Store.reserve_upload`), so a replay finds its record after one refused
    reservation, and a new request, the common case, spends no read on looking for one."""
    settings = deps.settings
    request_hash = _request_hash(body)
    if idempotency_key is not None:
        _check_idempotency_key(idempotency_key)

    from shared.store import new_reservation

    now = deps.clock()
    upload_id = deps.new_id()
    try:
        reserved = deps.store.reserve_upload(
            new_reservation(
                upload_id=upload_id,
                owner=owner,
                reference_id=upload_id,
                title=spec.title,
                file_name=spec.file_name,
                file_size=spec.file_size,
                now=now,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                kind=spec.kind,
                media_type=spec.media_type,
                extend=_compact(spec.extend) if spec.extend else None,
            ),
            max_pending=settings.max_pending_uploads_per_owner,
        )
    except errors.Conflict:
        # The key is used: by an earlier request (a replay), or by a concurrent one.
        if idempotency_key is not None:
            existing = deps.store.find_by_idempotency_key(owner, idempotency_key)
            if existing is not None:
                return _replay(deps, existing, request_hash, spec)
        raise
    return _create_media(deps, reserved, spec)


def _create_media(deps: Deps, reserved: Upload, spec: Issue, *, resume: bool = False) -> dict[str, Any]:
    """Ask VOD for the reservation's media, then record it on the reservation.

    ``resume``: an earlier request on this reservation may have made the media already. A video's
    ``upload_id`` is its ReferenceId, so VOD makes at most one video for it however often this
    runs; images and attached media have no such id (a media an earlier request may have made
    stays untracked, as after any ambiguous create: SECURITY.md)."""
    upload_id = reserved.upload_id
    now = deps.clock()
    vod_started = deps.vod.monotonic()
    try:
        creds = spec.create(upload_id, resume)
    except errors.VodfcError as exc:
        # A media may exist when any attempt may have reached VOD (a timeout, a 5xx, garbage):
        # the reservation then stays for cleanup (a video's carries its ReferenceId). Otherwise
        # (refused, throttled, never reached) it is released: it would hold quota.
        if not (isinstance(exc, errors.VodError) and exc.may_have_acted):
            _release(deps, upload_id)
        if isinstance(exc, errors.VodError):
            raise _blamed(exc, spec.request) from exc
        raise
    expires_at = creds.expires_at(now)
    try:
        attached = deps.store.attach_video(upload_id, creds.media_id, expires_at, now=deps.clock())
        if not attached:
            # A concurrent retry of the same request may have recorded this very media.
            current = deps.store.get_by_video_id(creds.media_id)
            attached = current is not None and current.upload_id == upload_id
    except errors.VodfcError as exc:
        if spec.kind == "video" and isinstance(exc, errors.StoreUnavailable) and exc.may_have_committed:
            # The attach may have committed (its answer was lost): deleting the video could leave
            # a record pointing to nothing. Kept, cleanup finds it either way: the reservation,
            # still ``creating``, by its ReferenceId, or the record, abandoned unless the client's
            # retry (same Idempotency-Key) picks it up. An image or attached media has no
            # ReferenceId, so it is deleted: a committed record's replay makes it a new media.
            log.warning(
                "upload outcome unknown: the media is left for cleanup",
                extra={"video_id": creds.media_id, "kind": spec.kind},
            )
            raise
        _undo_media(deps, spec.kind, creds.media_id, vod_started)
        raise
    if not attached:
        # The reservation is gone (or holds another media): answering would hand out a
        # credential without its record, so undo the media and let the client retry.
        _undo_media(deps, spec.kind, creds.media_id, vod_started)
        raise errors.StoreUnavailable("The upload could not be recorded; retry later.")
    # The invocation's one INFO line (shared.http) carries the media id and owner already.
    log.debug(
        "upload created", extra={"video_id": creds.media_id, "owner": reserved.owner, "kind": spec.kind}
    )
    deliver_pending(deps, upload_id=upload_id, seconds=ROUTE_BUDGET_SECONDS)
    return _credentials_answer(creds, expires_at)


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


def _replay(deps: Deps, existing: Upload, request_hash: str, spec: Issue) -> dict[str, Any]:
    """A retry with the same Idempotency-Key: the same record, never a second one (a video keeps
    its VideoId; an image or attached media gets a new media in the same record)."""
    if existing.request_hash != request_hash or existing.kind != spec.kind:
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
        # under it, or it was stopped): this retry finishes it (a video under the same ReferenceId).
        return _create_media(deps, existing, spec, resume=True)
    if existing.status != "created":
        raise errors.Conflict(
            f"The upload for this Idempotency-Key is already {existing.status}.",
            code="IllegalStatus",
        )
    if existing.kind != "video":
        return _replace(deps, existing, spec)
    # We never store UploadAuth (a secret), so a replay always hands out a fresh credential
    # for the same VideoId; RefreshUploadVideo keeps the upload address unchanged.
    return _refresh(deps, existing)


def _replace(deps: Deps, existing: Upload, spec: Issue) -> dict[str, Any]:
    """An image's or attached media's credential cannot be refreshed (VOD has no RefreshUpload*
    for them): a new media replaces the old one in the same record, and the old one is deleted.

    VOD is asked first whether the old media's file arrived (its event may not have yet): then the
    record is settled with VOD's status instead, and nothing is replaced.
    """
    old = existing.video_id
    assert old is not None
    vod_started = deps.vod.monotonic()
    try:
        # Half the deadline: the create that follows has a deadline of its own.
        found = kinds.look_up_one(
            deps.vod, spec.kind, old, deadline_seconds=deps.settings.vod_deadline_seconds / 2
        )
    except errors.NotFound:
        found = None
    if found is not None and found.status not in (None, states.CREATED):
        deps.store.transition(old, to=found.status, now=deps.clock(), fields=found.fields)
        current = deps.store.get_by_video_id(old)
        raise errors.Conflict(
            f"The upload for this Idempotency-Key is already {current.status if current else DELETED}.",
            code="IllegalStatus",
        )
    now = deps.clock()
    try:
        creds = spec.create(existing.upload_id, False)
    except errors.VodError as exc:
        raise _blamed(exc, spec.request) from exc
    expires_at = creds.expires_at(now)
    try:
        replaced = deps.store.replace_media(existing.upload_id, creds.media_id, expires_at, now=deps.clock())
    except errors.VodfcError:
        _undo_media(deps, spec.kind, creds.media_id, vod_started)
        raise
    if not replaced:
        # The record moved on meanwhile (its event arrived, or the owner deleted it).
        _undo_media(deps, spec.kind, creds.media_id, vod_started)
        raise errors.Conflict(
            "The upload for this Idempotency-Key is no longer pending.", code="IllegalStatus"
        )
    if found is not None and found.status == states.CREATED:
        _undo_media(deps, spec.kind, old, vod_started)  # nothing arrived: it would stay billable
    log.debug(
        "pending media replaced", extra={"video_id": creds.media_id, "replaced": old, "kind": spec.kind}
    )
    return _credentials_answer(creds, expires_at)


def _release(deps: Deps, upload_id: str) -> None:
    try:
        deps.store.discard_reservation(upload_id)
    except errors.VodfcError:
        log.warning("reservation left for cleanup", extra={"upload_id": upload_id})


def _undo_media(deps: Deps, kind: str, media_id: str, vod_started: float) -> None:
    """Delete a media we do not (or no longer) track at VOD, best-effort; else it is left over.

    The delete gets only what is left of the request's ``VOD_DEADLINE_SECONDS``, so a client never
    waits for VOD longer than that setting in all.
    """
    remaining = deps.settings.vod_deadline_seconds - (deps.vod.monotonic() - vod_started)
    if remaining < 0.05:
        log.error("untracked media left over (no time left)", extra={"video_id": media_id, "kind": kind})
        return
    try:
        kinds.delete(deps.vod, kind, [media_id], deadline_seconds=remaining)
    except errors.NotFound:
        pass
    except errors.VodfcError:
        log.error("untracked media left over", extra={"video_id": media_id, "kind": kind})


def _owned(deps: Deps, owner: str, media_id: str, kind: str = "video") -> Upload:
    upload = deps.store.get(owner, media_id, kind=kind) if _plausible_video_id(media_id) else None
    if upload is None:
        # Another owner's upload answers exactly like one that does not exist.
        if kind == "video":
            raise errors.NotFound("The video does not exist.", field="VideoId")
        raise errors.NotFound(
            f"The {kinds.NOUNS[kind]} does not exist.", code="NoSuchResource", field=kinds.ID_FIELDS[kind]
        )
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
    answer = _credentials_answer(creds, expires_at)
    answer["VideoId"] = upload.video_id
    return answer


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


# The view's name of a record's file name and media type, per kind (VOD's parameter names).
_FILE_NAME_FIELDS = {"video": "FileName", "image": "OriginalFileName", "attached": "FileName"}
_MEDIA_TYPE_FIELDS = {"image": "ImageType", "attached": "BusinessType"}


def upload_view(upload: Upload) -> dict[str, Any]:
    """An upload record in VOD's naming style (``VideoId`` / ``ImageId`` / ``MediaId`` ...)."""
    view: dict[str, Any] = {kinds.ID_FIELDS[upload.kind]: upload.video_id}
    if upload.kind in _MEDIA_TYPE_FIELDS:
        view[_MEDIA_TYPE_FIELDS[upload.kind]] = upload.media_type
    view["Title"] = upload.title
    view[_FILE_NAME_FIELDS[upload.kind]] = upload.file_name
    if upload.kind != "image":  # CreateUploadImage takes no FileSize
        view["FileSize"] = upload.file_size
    view.update(
        {
            "Status": upload.status,
            "CreatedAt": _iso(upload.created_at),
            "UpdatedAt": _iso(upload.updated_at),
            "LastEvent": upload.last_event,
        }
    )
    if upload.duration is not None:
        view["Duration"] = upload.duration
    if upload.size is not None:
        view["Size"] = upload.size
    if upload.error:
        view["Error"] = upload.error
    return view


def get_upload(deps: Deps, owner: str, media_id: str, *, kind: str = "video") -> dict[str, Any]:
    """GET /uploads/{VideoId}, /images/{ImageId}, /attached-media/{MediaId}."""
    return upload_view(_owned(deps, owner, media_id, kind))


# The key of each kind's list in GET /uploads, /images, /attached-media.
_LIST_KEYS = {"video": "Uploads", "image": "Images", "attached": "AttachedMedia"}


def list_uploads(
    deps: Deps,
    owner: str,
    *,
    kind: str = "video",
    status: str | None = None,
    cursor: str | None = None,
    limit: str | None = None,
) -> dict[str, Any]:
    """GET /uploads, /images, /attached-media: the owner's media of one kind, newest first,
    optionally one status."""
    statuses = KIND_STATUSES[kind]
    if status is not None and status not in statuses:
        raise errors.InvalidParameter("Status must be one of " + ", ".join(statuses) + ".", field="Status")
    size = 20
    if limit is not None:
        plain = limit.isascii() and limit.isdigit() and len(limit) <= 3  # no other scripts' digits
        if not plain or not 1 <= int(limit) <= MAX_LIST_LIMIT:
            raise errors.InvalidParameter(f"Limit must be 1 to {MAX_LIST_LIMIT}.", field="Limit")
        size = int(limit)
    uploads, next_cursor = deps.store.list_uploads(owner, kind=kind, status=status, limit=size, cursor=cursor)
    return {_LIST_KEYS[kind]: [upload_view(u) for u in uploads], "NextCursor": next_cursor}


def delete_upload(deps: Deps, owner: str, media_id: str, *, kind: str = "video") -> dict[str, Any]:
    """DELETE /uploads/{VideoId} (and the other kinds'): DeleteVideo, DeleteImage or
    DeleteAttachedMedia at VOD, then mark the record ``deleted``.

    A media already ``expired`` or ``deleted`` has none left at VOD (cleanup deleted it): VOD is
    not called again, and the answer is the record's own status.
    """
    upload = _owned(deps, owner, media_id, kind)
    id_field = kinds.ID_FIELDS[kind]
    if upload.status in TERMINAL_STATUSES:
        return {id_field: media_id, "Status": upload.status}
    with contextlib.suppress(errors.NotFound):  # already gone at VOD
        kinds.delete(deps.vod, kind, [media_id])
    if deps.store.transition(media_id, to=DELETED, allowed_from=allowed_from(DELETED), now=deps.clock()):
        deliver_pending(deps, upload_id=upload.upload_id, seconds=ROUTE_BUDGET_SECONDS)
    current = deps.store.get(owner, media_id, kind=kind)
    return {id_field: media_id, "Status": current.status if current is not None else DELETED}
