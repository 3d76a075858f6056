"""The VOD OpenAPI emulator (WSGI): RPC calls on ``/``, signed with V3 or V1.

Answers have VOD's shapes (reference C.1–C.13): success = HTTP 200 JSON with ``RequestId``;
errors = ``{"RequestId","HostId","Code","Message","Recommend"}`` with VOD's statuses. V1 calls
without ``Format=JSON`` get XML, as VOD's default is XML.
"""

from __future__ import annotations

import base64
import json
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
from .state import EmulatorState, Media, UploadCredential, iso_time
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


class VodApiError(Exception):
    """An error answer of one action."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _missing(name: str) -> VodApiError:
    return VodApiError(
        400,
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request is not supplied.',
    )


def _invalid(name: str, why: str = "") -> VodApiError:
    return VodApiError(400, "InvalidParameter", f"The specified parameter {name} is not valid. {why}".strip())


def _not_found() -> VodApiError:
    return VodApiError(404, "InvalidVideo.NotFound", "The video does not exist.")


def _server_error(status: int) -> VodApiError:
    if status == 500:
        return VodApiError(
            500,
            "InternalError",
            "The request processing has failed due to some unknown error, exception or failure.",
        )
    return VodApiError(
        503, "ServiceUnAvailable", "The request has failed due to a temporary failure of the server."
    )


def _b64_json(data: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(data, separators=(",", ":")).encode("utf-8")).decode("ascii")


def _has_emoji(text: str) -> bool:
    return any(ord(ch) > 0xFFFF for ch in text)


def _check_text(name: str, value: str, max_bytes: int) -> None:
    if len(value.encode("utf-8")) > max_bytes:
        raise VodApiError(400, "LengthExceededMax", f"The {name} length has exceeded {max_bytes} bytes.")
    if _has_emoji(value):
        raise VodApiError(400, "IllegalCharacters", f"The {name} contains illegal characters.")


def _int_param(params: dict[str, str], name: str, *, default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise _invalid(name, "It must be an integer.") from None


def _ids(params: dict[str, str], name: str) -> list[str]:
    return [p.strip() for p in params.get(name, "").split(",") if p.strip()]


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
        storage_delete: Callable[[Media, list[Any]], None],
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
                raise _server_error(fault.status)
            if fault.kind == "garbage":
                return Response(
                    200,
                    b"<html><body><h1>502 Bad Gateway</h1>tengine</body></html>",
                    [("Content-Type", "text/html"), ("x-acs-request-id", request_id)],
                )
            result = handler(call)
            if fault.kind == "lost":
                raise _server_error(fault.status)
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

    def _media(self, call: VodCall, video_id: str) -> Media:
        media = self.state.find_media(self._account(call), video_id)
        if media is None:
            raise _not_found()
        return media

    def _credentials_answer(self, media: Media, cred: UploadCredential) -> dict[str, Any]:
        address = {
            "Endpoint": self.oss_base_url(),
            "Bucket": self.config.bucket,
            "FileName": media.object_key,
        }
        auth = {
            "SecurityToken": cred.security_token,
            "AccessKeyId": cred.access_key_id,
            "ExpireUTCTime": iso_time(cred.expires_at),
            "AccessKeySecret": cred.access_key_secret,
            "Expiration": str(int(cred.expires_at - cred.issued_at)),
            "Region": self.config.region,
        }
        return {"VideoId": media.video_id, "UploadAddress": _b64_json(address), "UploadAuth": _b64_json(auth)}

    def _issue(self, media: Media) -> UploadCredential:
        return self.state.issue_upload_credential(
            media, bucket=self.config.bucket, now=self.clock(), ttl=self.config.upload_credential_ttl_seconds
        )

    def video_dict(self, media: Media, *, nested_snapshots: bool) -> dict[str, Any]:
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
            raise _missing("Title")
        if not file_name.strip():
            raise _missing("FileName")
        _check_text("Title", title, 128)
        base_name = re.split(r"[\\/]", file_name)[-1]
        ext = base_name.rpartition(".")[2].lower() if "." in base_name else ""
        if ext not in SUPPORTED_EXTENSIONS:
            raise VodApiError(400, "InvalidFileName.Extension", "The file extension is not supported.")
        description = p.get("Description") or None
        if description is not None:
            _check_text("Description", description, 1024)
        tags = p.get("Tags") or None
        if tags is not None:
            tag_list = [t.strip() for t in tags.split(",") if t.strip()]
            if len(tag_list) > 16:
                raise VodApiError(400, "TagsExceededMax", "The Tags exceeded maximum.")
            for tag in tag_list:
                _check_text("Tags", tag, 32)
            tags = ",".join(tag_list)
        cate_id = _int_param(p, "CateId")
        file_size = _int_param(p, "FileSize")
        if file_size is not None and file_size < 0:
            raise _invalid("FileSize")
        storage = p.get("StorageLocation") or self.storage_location
        if storage != self.storage_location:
            raise VodApiError(404, "InvalidStorage.NotFound", "The storage location does not exist.")
        user_data, callback_url, extend = self._parse_user_data(p.get("UserData") or None)
        reference_id = p.get("ReferenceId") or None
        account = self._account(call)
        now = self.clock()
        with self.state.lock:
            if reference_id is not None:
                if not _REFERENCE_ID.match(reference_id):
                    raise _invalid("ReferenceId", "It must be 6 to 64 characters of A-Z a-z 0-9 - _.")
                if self.state.find_by_reference(account, reference_id) is not None:
                    raise VodApiError(
                        self.config.duplicate_reference_id_status,
                        self.config.duplicate_reference_id_code,
                        f"The specified ReferenceId {reference_id} already exists.",
                    )
            media = Media(
                video_id=self.state.new_video_id(),
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
                user_data=user_data,
                callback_url=callback_url,
                extend=extend,
            )
            self.state.add_media(media)
        return self._credentials_answer(media, self._issue(media))

    def _parse_user_data(self, raw: str | None) -> tuple[str | None, str | None, str | None]:
        if raw is None:
            return None, None, None
        try:
            data = json.loads(raw)
        except ValueError:
            raise _invalid("UserData", "It must be a JSON object.") from None
        if not isinstance(data, dict):
            raise _invalid("UserData", "It must be a JSON object.")
        callback_url: str | None = None
        mc = data.get("MessageCallback")
        if isinstance(mc, str):  # the docs also show a JSON string inside the JSON
            try:
                mc = json.loads(mc)
            except ValueError:
                raise _invalid("UserData", "MessageCallback must be a JSON object.") from None
        if mc is not None:
            if not isinstance(mc, dict):
                raise _invalid("UserData", "MessageCallback must be a JSON object.")
            url = mc.get("CallbackURL")
            if url is not None:
                if not isinstance(url, str) or not re.match(r"^https?://", url) or len(url.encode()) > 256:
                    raise _invalid(
                        "UserData", "MessageCallback.CallbackURL must be an http(s) URL of at most 256 bytes."
                    )
                callback_url = url
        extend: str | None = None
        if "Extend" in data and data["Extend"] is not None:
            value = data["Extend"]
            extend = (
                value
                if isinstance(value, str)
                else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            )
            if len(extend.encode("utf-8")) > 512:
                raise _invalid("UserData", "Extend must be at most 512 bytes.")
        return raw, callback_url, extend

    def refresh_upload_video(self, call: VodCall) -> dict[str, Any]:
        """RefreshUploadVideo (by VideoId or ReferenceId): same address, new credential."""
        video_id = call.params.get("VideoId")
        reference_id = call.params.get("ReferenceId")
        if video_id:
            media = self._media(call, video_id)
        elif reference_id:
            found = self.state.find_by_reference(self._account(call), reference_id)
            if found is None:
                raise _not_found()
            media = found
        else:
            raise _missing("VideoId")
        return self._credentials_answer(media, self._issue(media))

    def get_video_info(self, call: VodCall) -> dict[str, Any]:
        """GetVideoInfo, by VideoId or ReferenceId."""
        media = self._media_by_id_or_reference(call)
        with self.state.lock:
            return {"Video": self.video_dict(media, nested_snapshots=True)}

    def _media_by_id_or_reference(self, call: VodCall) -> Media:
        video_id = call.params.get("VideoId")
        reference_id = call.params.get("ReferenceId")
        if video_id:
            return self._media(call, video_id)
        if reference_id:
            found = self.state.find_by_reference(self._account(call), reference_id)
            if found is None:
                raise _not_found()
            return found
        raise _missing("VideoId")

    def _lookup_many(self, call: VodCall) -> tuple[dict[str, Media], list[str], list[str]]:
        """Media named by VideoIds and/or ReferenceIds (<= 20 each), plus the ids not found."""
        video_ids = _ids(call.params, "VideoIds")
        reference_ids = _ids(call.params, "ReferenceIds")
        if not video_ids and not reference_ids:
            raise _missing("VideoIds")
        if len(video_ids) > 20 or len(reference_ids) > 20:
            raise VodApiError(400, "VideoIdsExceededMax", "The VideoIds exceeded maximum.")
        account = self._account(call)
        found: dict[str, Media] = {}
        missing_videos: list[str] = []
        missing_references: list[str] = []
        with self.state.lock:
            for video_id in video_ids:
                media = self.state.find_media(account, video_id)
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
            raise _missing("VideoId")
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
            removed = [(media, self.state.remove_media(media)) for media in found.values()]
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
            raise _invalid("SearchType")
        page_no = _int_param(p, "PageNo", default=1) or 1
        page_size = _int_param(p, "PageSize", default=10) or 10
        if page_no < 1:
            raise _invalid("PageNo")
        if not 1 <= page_size <= 100:
            raise _invalid("PageSize", "It must be between 1 and 100.")
        sort_by = p.get("SortBy") or "CreationTime:Desc"
        field, _, direction = sort_by.partition(":")
        if field not in ("CreationTime", "ModificationTime") or direction.lower() not in ("asc", "desc"):
            raise _invalid("SortBy")
        try:
            predicate = compile_match(p.get("Match"))
        except MatchError as exc:
            raise _invalid("Match", str(exc)) from None
        account = self._account(call)
        offset = (page_no - 1) * page_size
        token = p.get("ScrollToken")
        if token:
            with self.state.lock:
                known = self.state.scroll_tokens.get(token)
            if known is None or known[0] != account:
                raise _invalid("ScrollToken")
            if abs(offset - known[1]) > 1200:
                raise _invalid("PageNo", "A ScrollToken moves at most 1200 records.")
        elif offset + page_size > 5000:
            raise _invalid("PageNo", "PageNo * PageSize must not exceed 5000 without a ScrollToken.")
        with self.state.lock:
            if search_type != "video":
                hits: list[Media] = []
            else:
                hits = [m for m in self.state.media.values() if m.account == account and predicate(m)]

            def sort_key(m: Media) -> tuple[float, int]:
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
