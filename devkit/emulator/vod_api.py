"""The VOD OpenAPI emulator (WSGI): RPC calls on ``/``, signed with V3 or V1.

Answers have VOD's shapes (each action's page, e.g. https://www.alibabacloud.com/help/doc-detail/55407.htm):
success = HTTP 200 JSON with ``RequestId``; errors = ``{"RequestId","HostId","Code","Message","Recommend"}``
with VOD's statuses. V1 calls without ``Format=JSON`` get XML, as VOD's default is XML.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from xml.sax.saxutils import escape

from .auth import VodAuthError, VodCall, authenticate_vod
from .config import EmulatorConfig
from .events import EventEngine
from .faults import Faults
from .search import MatchError, compile_match
from .state import Asset, EmulatorState, MultipartUpload, UploadCredential, Video, iso_time
from .vod_media import MediaActions
from .vod_params import (
    MAX_BATCH_IDS,
    VodApiError,
    check_text,
    ids_param,
    int_param,
    invalid,
    missing,
    parse_user_data,
    server_error,
    tags_param,
    upload_answer,
    video_not_found,
)
from .wsgi import Request, Response, StartResponse

__all__ = ["SUPPORTED_EXTENSIONS", "VodApi", "VodApiError"]

log = logging.getLogger("devkit.emulator.vod")

# VOD "Upload overview": supported video and audio file extensions (case-insensitive).
SUPPORTED_EXTENSIONS = frozenset((
    # video
    "3gp", "asf", "avi", "dat", "dv", "flv", "f4v", "gif", "m2t", "m4v", "mj2", "mjpeg", "mkv",
    "mov", "mp4", "mpe", "mpg", "mpeg", "mts", "ogg", "qt", "rm", "rmvb", "swf", "ts", "vob",
    "wmv", "webm", "m3u8",
    # audio
    "aac", "ac3", "acm", "amr", "ape", "caf", "flac", "m4a", "mp3", "ra", "wav", "wma",
))  # fmt: skip
_REFERENCE_ID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
_MAX_BODY = 1024 * 1024


def _xml(tag: str, value: Any) -> str:
    if isinstance(value, dict):
        return f"<{tag}>{''.join(_xml(k, v) for k, v in value.items())}</{tag}>"
    if isinstance(value, list):
        item = tag[:-4] if tag.endswith("List") else (tag[:-1] if tag.endswith("s") else "item")
        return f"<{tag}>{''.join(_xml(item, v) for v in value)}</{tag}>"
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{tag}>{escape(str(value))}</{tag}>"


class VodApi:
    """The WSGI app; ``admin`` handles ``/_emulator/*`` (wired by :mod:`devkit.emulator.app`)."""

    def __init__(
        self,
        config: EmulatorConfig,
        state: EmulatorState,
        faults: Faults,
        engine: EventEngine,
        *,
        clock: Callable[[], float],
        oss_base_url: Callable[[], str],
        storage_delete: Callable[[Asset, list[MultipartUpload]], None],
        admin: Callable[[Request], Response] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.state = state
        self.faults = faults
        self.engine = engine
        self.clock = clock
        self.oss_base_url = oss_base_url
        self.storage_delete = storage_delete
        self.admin = admin
        self.sleep = sleep
        self.host_id = f"vod.{config.region}.aliyuncs.com"
        self.actions: dict[str, Callable[[VodCall], dict[str, Any]]] = {
            "CreateUploadVideo": self.create_upload_video,
            "RefreshUploadVideo": self.refresh_upload_video,
            "GetVideoInfo": self.get_video_info,
            "GetVideoInfos": self.get_video_infos,
            "GetMezzanineInfo": self.get_mezzanine_info,
            "DeleteVideo": self.delete_video,
            "SearchMedia": self.search_media,
        }
        self.media_actions = MediaActions(
            config,
            state,
            engine,
            clock=clock,
            storage_location=self.storage_location,
            storage_delete=storage_delete,
        )
        self.actions.update(self.media_actions.actions())

    @property
    def storage_location(self) -> str:
        """Where VOD says the media is stored."""
        return f"{self.config.bucket}.oss-{self.config.region}.aliyuncs.com"

    # --- WSGI -----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        req = Request.from_environ(environ)
        if req.path.startswith("/_emulator/") and self.admin is not None:
            return self.admin(req).finish(start_response)
        return self.handle(req).finish(start_response)

    def handle(self, req: Request) -> Response:
        """Authenticate, inject faults, run the action, render."""
        request_id = str(uuid.uuid4()).upper()
        with self.state.lock:
            self.state.request_count += 1
        fmt = "JSON"
        try:
            if req.path not in ("/", ""):
                raise VodApiError(
                    404,
                    "InvalidAction.NotFound",
                    "Specified api is not found, please check your url and method.",
                )
            if req.method not in ("GET", "POST"):
                raise VodApiError(405, "UnsupportedHTTPMethod", "Specified HTTP method is not supported.")
            body = req.read_body(_MAX_BODY)
            if body is None:
                raise VodApiError(413, "InvalidParameter", "The request body is too large.")
            try:
                call = authenticate_vod(
                    req,
                    body,
                    state=self.state,
                    now=self.clock(),
                    tolerance=self.config.timestamp_tolerance_seconds,
                )
            except VodAuthError as exc:
                query = req.query()
                if "Signature" in query and query.get("Format", "XML").upper() != "JSON":
                    fmt = "XML"  # a V1 caller that did not ask for JSON gets VOD's default
                raise VodApiError(exc.status, exc.code, exc.message) from None
            fmt = call.response_format
            handler = self.actions.get(call.action)
            if handler is None:
                raise VodApiError(
                    404,
                    "InvalidAction.NotFound",
                    "Specified api is not found, please check your url and method.",
                )
            fault = self.faults.take_vod(call.action)
            if fault.slow_seconds:
                self.sleep(fault.slow_seconds)
            if fault.kind == "throttle":
                response = self._error(
                    request_id, 400, "Throttling.User", "Request was denied due to user flow control.", fmt
                )
                if fault.retry_after is not None:
                    response.headers.append(("x-acs-retry-after", str(fault.retry_after)))
                return response
            if fault.kind == "forbidden":
                raise VodApiError(
                    403, "Forbidden", "User not authorized to operate on the specified resource."
                )
            if fault.kind == "error":
                raise server_error(fault.status)
            if fault.kind == "garbage":
                return Response(
                    200,
                    b"<html><body><h1>502 Bad Gateway</h1>tengine</body></html>",
                    [("Content-Type", "text/html"), ("x-acs-request-id", request_id)],
                )
            result = handler(call)
            if fault.kind == "lost":
                raise server_error(fault.status)
        except VodApiError as exc:
            return self._error(request_id, exc.status, exc.code, exc.message, fmt)
        except Exception:
            log.exception("emulator VOD action failed")
            return self._error(
                request_id,
                500,
                "InternalError",
                "The request processing has failed due to some unknown error, exception or failure.",
                fmt,
            )
        return self._render(
            request_id, 200, {"RequestId": request_id, **result}, fmt, f"{call.action}Response"
        )

    def _render(self, request_id: str, status: int, data: dict[str, Any], fmt: str, root: str) -> Response:
        headers = [("x-acs-request-id", request_id)]
        if fmt == "XML":
            body = "<?xml version='1.0' encoding='UTF-8'?>" + _xml(root, data)
            return Response(
                status, body.encode("utf-8"), [("Content-Type", "text/xml;charset=utf-8"), *headers]
            )
        return Response.json(status, data, headers)

    def _error(self, request_id: str, status: int, code: str, message: str, fmt: str) -> Response:
        body = {
            "RequestId": request_id,
            "HostId": self.host_id,
            "Code": code,
            "Message": message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=vod&requestId={request_id}",
        }
        return self._render(request_id, status, body, fmt, "Error")

    # --- helpers --------------------------------------------------------------------------------

    def _account(self, call: VodCall) -> str:
        return call.credential.account

    def _media(self, call: VodCall, video_id: str) -> Video:
        media = self.state.find(self._account(call), video_id, Video)
        if media is None:
            raise video_not_found()
        return media

    def _credentials_answer(self, media: Video, cred: UploadCredential) -> dict[str, Any]:
        return {
            "VideoId": media.video_id,
            **upload_answer(
                endpoint=self.oss_base_url(),
                bucket=self.config.bucket,
                key=media.object_key,
                cred=cred,
                region=self.config.region,
            ),
        }

    def _issue(self, media: Video) -> UploadCredential:
        return self.state.issue_upload_credential(
            media, bucket=self.config.bucket, now=self.clock(), ttl=self.config.upload_credential_ttl_seconds
        )

    def video_dict(self, media: Video, *, nested_snapshots: bool) -> dict[str, Any]:
        """``Video`` as GetVideoInfo (nested ``Snapshots``) or GetVideoInfos/SearchMedia (array)."""
        video: dict[str, Any] = {
            "VideoId": media.video_id,
            "Title": media.title,
            "Description": media.description,
            "Duration": media.duration,
            "CoverURL": media.cover_url,
            "Status": media.status,
            "CreationTime": iso_time(media.created),
            "ModificationTime": iso_time(media.modified),
            "Size": media.size,
            "Snapshots": {"Snapshot": []} if nested_snapshots else [],
            "CateId": media.cate_id,
            "Tags": media.tags,
            "TemplateGroupId": media.template_group_id,
            "StorageLocation": media.storage_location,
            "StorageClass": "Standard",
            "RegionId": self.config.region,
            "AppId": media.app_id,
            "AuditStatus": "Normal",
            "DownloadSwitch": "on",
            "UserData": media.user_data,
            "ReferenceId": media.reference_id,
        }
        return {k: v for k, v in video.items() if v is not None}

    # --- actions --------------------------------------------------------------------------------

    def create_upload_video(self, call: VodCall) -> dict[str, Any]:
        """CreateUploadVideo: validate, create the media (Uploading), issue a scoped credential."""
        p = call.params
        title = p.get("Title", "")
        file_name = p.get("FileName", "")
        if not title.strip():
            raise missing("Title")
        if not file_name.strip():
            raise missing("FileName")
        check_text("Title", title, 128)
        base_name = re.split(r"[\\/]", file_name)[-1]
        ext = base_name.rpartition(".")[2].lower() if "." in base_name else ""
        if ext not in SUPPORTED_EXTENSIONS:
            raise VodApiError(400, "InvalidFileName.Extension", "The file extension is not supported.")
        description = p.get("Description") or None
        if description is not None:
            check_text("Description", description, 1024)
        tags = tags_param(p)
        cate_id = int_param(p, "CateId")
        file_size = int_param(p, "FileSize")
        if file_size is not None and file_size < 0:
            raise invalid("FileSize")
        storage = self.media_actions.storage(p)
        user_data = parse_user_data(p.get("UserData") or None)
        reference_id = p.get("ReferenceId") or None
        account = self._account(call)
        now = self.clock()
        with self.state.lock:
            if reference_id is not None:
                if not _REFERENCE_ID.match(reference_id):
                    raise invalid("ReferenceId", "It must be 6 to 64 characters of A-Z a-z 0-9 - _.")
                if self.state.find_by_reference(account, reference_id) is not None:
                    raise VodApiError(
                        self.config.duplicate_reference_id_status,
                        self.config.duplicate_reference_id_code,
                        f"The specified ReferenceId {reference_id} already exists.",
                    )
            media = Video(
                media_id=self.state.new_media_id(),
                account=account,
                seq=self.state.next_seq(),
                title=title,
                file_name=file_name,
                extension=ext,
                object_key=self.state.new_object_key(ext, now),
                created=now,
                modified=now,
                app_id=p.get("AppId") or self.config.default_app_id,
                storage_location=storage,
                description=description,
                cover_url=p.get("CoverURL") or None,
                cate_id=cate_id,
                tags=tags,
                template_group_id=p.get("TemplateGroupId") or None,
                workflow_id=p.get("WorkflowId") or None,
                reference_id=reference_id,
                declared_size=file_size,
                user_data=user_data.raw,
                callback_url=user_data.callback_url,
                extend=user_data.extend,
            )
            self.state.add_asset(media)
        return self._credentials_answer(media, self._issue(media))

    def refresh_upload_video(self, call: VodCall) -> dict[str, Any]:
        """RefreshUploadVideo (by VideoId or ReferenceId): same address, new credential."""
        video_id = call.params.get("VideoId")
        reference_id = call.params.get("ReferenceId")
        if video_id:
            media = self._media(call, video_id)
        elif reference_id:
            found = self.state.find_by_reference(self._account(call), reference_id)
            if found is None:
                raise video_not_found()
            media = found
        else:
            raise missing("VideoId")
        return self._credentials_answer(media, self._issue(media))

    def get_video_info(self, call: VodCall) -> dict[str, Any]:
        """GetVideoInfo, by VideoId or ReferenceId."""
        media = self._media_by_id_or_reference(call)
        with self.state.lock:
            return {"Video": self.video_dict(media, nested_snapshots=True)}

    def _media_by_id_or_reference(self, call: VodCall) -> Video:
        video_id = call.params.get("VideoId")
        reference_id = call.params.get("ReferenceId")
        if video_id:
            return self._media(call, video_id)
        if reference_id:
            found = self.state.find_by_reference(self._account(call), reference_id)
            if found is None:
                raise video_not_found()
            return found
        raise missing("VideoId")

    def _lookup_many(self, call: VodCall) -> tuple[dict[str, Video], list[str], list[str]]:
        """Media named by VideoIds and/or ReferenceIds (<= 20 each), plus the ids not found."""
        video_ids = ids_param(call.params, "VideoIds")
        reference_ids = ids_param(call.params, "ReferenceIds")
        if not video_ids and not reference_ids:
            raise missing("VideoIds")
        if len(video_ids) > MAX_BATCH_IDS or len(reference_ids) > MAX_BATCH_IDS:
            raise VodApiError(400, "VideoIdsExceededMax", "The VideoIds exceeded maximum.")
        account = self._account(call)
        found: dict[str, Video] = {}
        missing_videos: list[str] = []
        missing_references: list[str] = []
        with self.state.lock:
            for video_id in video_ids:
                media = self.state.find(account, video_id, Video)
                if media is None:
                    missing_videos.append(video_id)
                else:
                    found[media.video_id] = media
            for reference_id in reference_ids:
                media = self.state.find_by_reference(account, reference_id)
                if media is None:
                    missing_references.append(reference_id)
                else:
                    found[media.video_id] = media
        return found, missing_videos, missing_references

    def get_video_infos(self, call: VodCall) -> dict[str, Any]:
        """GetVideoInfos by VideoIds and/or ReferenceIds; unknown ids are listed, not errors."""
        found, missing_videos, missing_references = self._lookup_many(call)
        with self.state.lock:
            videos = [self.video_dict(m, nested_snapshots=False) for m in found.values()]
        answer: dict[str, Any] = {"VideoList": videos, "NonExistVideoIds": missing_videos}
        if "ReferenceIds" in call.params:
            answer["NonExistReferenceIds"] = missing_references
        return answer

    def get_mezzanine_info(self, call: VodCall) -> dict[str, Any]:
        """GetMezzanineInfo (the source file)."""
        video_id = call.params.get("VideoId")
        if not video_id:
            raise missing("VideoId")
        media = self._media(call, video_id)
        addition = {a.strip() for a in call.params.get("AdditionType", "").split(",") if a.strip()}
        with self.state.lock:
            mezz: dict[str, Any] = {
                "VideoId": media.video_id,
                "FileName": media.file_name,
                "FileURL": self.engine.file_url(media),
                "Size": media.size,
                "Duration": None if media.duration is None else f"{media.duration:.3f}",
                "Bitrate": None if media.bitrate is None else str(media.bitrate),
                "Fps": None if media.fps is None else str(media.fps),
                "Width": media.width,
                "Height": media.height,
                "CreationTime": iso_time(media.created),
                "Status": media.mezzanine_status,
                "OutputType": "oss",
                "PreprocessStatus": "UnPreprocess",
                "StorageClass": "Standard",
            }
            if "video" in addition:
                mezz["VideoStreamList"] = (
                    []
                    if media.width is None
                    else [
                        {
                            "Index": "0",
                            "CodecName": "h264",
                            "Width": str(media.width),
                            "Height": str(media.height),
                            "Fps": str(media.fps),
                            "Duration": mezz["Duration"],
                        }
                    ]
                )
            if "audio" in addition:
                mezz["AudioStreamList"] = (
                    []
                    if media.duration is None
                    else [
                        {
                            "Index": "1",
                            "CodecName": "aac",
                            "SampleRate": "44100",
                            "Channels": "2",
                            "Duration": mezz["Duration"],
                        }
                    ]
                )
        return {"Mezzanine": {k: v for k, v in mezz.items() if v is not None}}

    def delete_video(self, call: VodCall) -> dict[str, Any]:
        """DeleteVideo by VideoIds and/or ReferenceIds (<= 20 each); unknown ids are listed.

        Current SDK models answer ``NonExistVideoIds`` / ``NonExistReferenceIds`` /
        ``ForbiddenVideoIds`` instead of failing (the 2021 docs still list InvalidVideo.NotFound).
        """
        found, missing_videos, missing_references = self._lookup_many(call)
        with self.state.lock:
            removed = [(media, self.state.remove_asset(media)) for media in found.values()]
        for media, uploads in removed:
            self.storage_delete(media, uploads)
            self.engine.media_deleted(media)
        return {
            "NonExistVideoIds": missing_videos,
            "NonExistReferenceIds": missing_references,
            "ForbiddenVideoIds": [],
        }

    def search_media(self, call: VodCall) -> dict[str, Any]:
        """SearchMedia over the account's videos (Match subset, sort, pages, ScrollToken)."""
        p = call.params
        search_type = p.get("SearchType") or "video"
        if search_type not in ("video", "audio", "image", "attached"):
            raise invalid("SearchType")
        page_no = int_param(p, "PageNo", default=1) or 1
        page_size = int_param(p, "PageSize", default=10) or 10
        if page_no < 1:
            raise invalid("PageNo")
        if not 1 <= page_size <= 100:
            raise invalid("PageSize", "It must be between 1 and 100.")
        sort_by = p.get("SortBy") or "CreationTime:Desc"
        field, _, direction = sort_by.partition(":")
        if field not in ("CreationTime", "ModificationTime") or direction.lower() not in ("asc", "desc"):
            raise invalid("SortBy")
        try:
            predicate = compile_match(p.get("Match"))
        except MatchError as exc:
            raise invalid("Match", str(exc)) from None
        account = self._account(call)
        offset = (page_no - 1) * page_size
        token = p.get("ScrollToken")
        if token:
            with self.state.lock:
                known = self.state.scroll_tokens.get(token)
            if known is None or known[0] != account:
                raise invalid("ScrollToken")
            if abs(offset - known[1]) > 1200:
                raise invalid("PageNo", "A ScrollToken moves at most 1200 records.")
        elif offset + page_size > 5000:
            raise invalid("PageNo", "PageNo * PageSize must not exceed 5000 without a ScrollToken.")
        with self.state.lock:
            if search_type != "video":
                hits: list[Video] = []
            else:
                hits = [m for m in self.state.of_kind(Video) if m.account == account and predicate(m)]

            def sort_key(m: Video) -> tuple[float, int]:
                return (m.created if field == "CreationTime" else m.modified, m.seq)

            hits.sort(key=sort_key, reverse=direction.lower() == "desc")
            page = hits[offset : offset + page_size]
            media_list = [
                {
                    "MediaId": m.video_id,
                    "MediaType": "video",
                    "CreationTime": iso_time(m.created),
                    "Video": self.video_dict(m, nested_snapshots=False),
                }
                for m in page
            ]
        return {
            "Total": len(hits),
            "ScrollToken": self.state.new_scroll_token(account, offset + len(page)),
            "MediaList": media_list,
        }
