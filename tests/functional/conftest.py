"""Functional tests: the real handlers, driven with events/, against a respx-mocked VOD.

``FakeVod`` answers VOD's OpenAPI with its real shapes (a small in-memory media table) behind a
strict respx router; tests assert on what was actually sent. ``stack`` configures the environment
the way a deployment would and hands back helpers to invoke each function as FC 3.0 does.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jwt
import pytest
import respx

from devkit.handlers import load_handler_module
from shared.context import make_context
from shared.services.deps import reset_deps
from shared.settings import get_settings
from shared.vod import reset_vod_client

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
VOD_URL = "https://vod.cn-shanghai.aliyuncs.com"
CALLBACK_URL = "https://uploads.example.com/callbacks/vod"
CALLBACK_KEY = "TestCallbackKey123"
JWT_SECRET = "functional-test-secret-0123456789-abcdef"


def load_event(relative: str) -> dict[str, Any]:
    """A sample event from events/ (a fresh copy: tweak one field per test)."""
    data: dict[str, Any] = json.loads((EVENTS / relative).read_text())
    return copy.deepcopy(data)


def token(sub: str, **claims: Any) -> str:
    payload = {"sub": sub, "exp": int(time.time()) + 600, **claims}
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


def b64json(obj: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


OSS_URL = "https://outin-test.oss-cn-shanghai.aliyuncs.com"


@dataclass
class FakeVod:
    """VOD's OpenAPI in memory: media records (videos, images, attached media) with VOD's
    statuses and error bodies."""

    videos: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    attached: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    #: Answers (or exceptions) to give instead, per action, first in first out; a callable is called
    #: with the parameters (something happening meanwhile) and the action then answered as usual.
    faults: dict[str, list[httpx.Response | Exception | Callable[[dict[str, str]], None]]] = field(
        default_factory=dict
    )

    def action_calls(self, action: str) -> list[dict[str, str]]:
        return [params for name, params in self.calls if name == action]

    def credentials(
        self, video_id: str, request_id: str, *, id_field: str = "VideoId", key: str | None = None
    ) -> dict[str, Any]:
        return {
            "RequestId": request_id,
            id_field: video_id,
            "UploadAddress": b64json(
                {
                    "Endpoint": "https://oss-cn-shanghai.aliyuncs.com",
                    "Bucket": "outin-test",
                    "FileName": key or f"sv/{video_id[:8]}/{video_id}.mp4",
                }
            ),
            "UploadAuth": b64json(
                {
                    "AccessKeyId": "STS.test" + video_id[:8],
                    "AccessKeySecret": "upload-secret-" + video_id[:8],
                    "SecurityToken": "CAIS-upload-token-" + video_id,
                    "Expiration": "3600",
                    "ExpireUTCTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3000)),
                    "Region": "cn-shanghai",
                }
            ),
        }

    def error(self, status: int, code: str, message: str) -> httpx.Response:
        body = {
            "RequestId": str(uuid.uuid4()).upper(),
            "HostId": "vod.cn-shanghai.aliyuncs.com",
            "Code": code,
            "Message": message,
            "Recommend": "https://api.aliyun.com/troubleshoot",
        }
        return httpx.Response(status, json=body)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        action = request.headers.get("x-acs-action", "")
        params = dict(parse_qsl(request.url.query.decode(), keep_blank_values=True))
        self.calls.append((action, params))
        if self.faults.get(action):
            fault = self.faults[action].pop(0)
            if isinstance(fault, Exception):
                raise fault
            if isinstance(fault, httpx.Response):
                return fault
            fault(params)
        rid = str(uuid.uuid4()).upper()
        if action == "CreateUploadVideo":
            ref = params.get("ReferenceId")
            if ref and any(v.get("ReferenceId") == ref for v in self.videos.values()):
                return self.error(400, "InvalidParameter.ReferenceId", "The ReferenceId already exists.")
            video_id = uuid.uuid4().hex
            self.videos[video_id] = {
                "VideoId": video_id,
                "Title": params["Title"],
                "Status": "Uploading",
                "ReferenceId": ref,
                "CreationTime": "2026-11-25T10:00:00Z",
                "UserData": params.get("UserData"),
            }
            return httpx.Response(200, json=self.credentials(video_id, rid))
        if action == "RefreshUploadVideo":
            if params["VideoId"] not in self.videos:
                return self.error(404, "InvalidVideo.NotFound", "The video does not exist.")
            return httpx.Response(200, json=self.credentials(params["VideoId"], rid))
        if action == "GetVideoInfo":
            video = self.videos.get(params["VideoId"])
            if video is None:
                return self.error(404, "InvalidVideo.NotFound", "The video does not exist.")
            return httpx.Response(200, json={"RequestId": rid, "Video": video})
        if action == "GetMezzanineInfo":
            video = self.videos.get(params["VideoId"])
            if video is None:
                return self.error(404, "InvalidVideo.NotFound", "The video does not exist.")
            mezzanine = {"VideoId": video["VideoId"], "Size": video.get("Size"), "Status": "Normal"}
            return httpx.Response(200, json={"RequestId": rid, "Mezzanine": mezzanine})
        if action == "GetVideoInfos":
            ids = params["VideoIds"].split(",")
            found = [self.videos[i] for i in ids if i in self.videos]
            missing = [i for i in ids if i not in self.videos]
            return httpx.Response(
                200, json={"RequestId": rid, "VideoList": found, "NonExistVideoIds": missing}
            )
        if action == "DeleteVideo":
            for vid in params.get("VideoIds", "").split(","):
                self.videos.pop(vid, None)
            refs = set(params.get("ReferenceIds", "").split(","))
            for vid in [v for v, rec in self.videos.items() if rec.get("ReferenceId") in refs]:
                self.videos.pop(vid)
            return httpx.Response(200, json={"RequestId": rid})
        return self.media_action(action, params, rid)

    def new_image(self, params: dict[str, str]) -> dict[str, Any]:
        image_id = uuid.uuid4().hex
        key = f"image/{params['ImageType']}/{image_id.upper()}.{params.get('ImageExt', 'png')}"
        self.images[image_id] = {
            "ImageId": image_id,
            "Title": params.get("Title"),
            "ImageType": params["ImageType"],
            "Status": "Uploading",
            "CreationTime": "2026-11-25T10:00:00Z",
            "UserData": params.get("UserData"),
            "URL": f"{OSS_URL}/{key}",
        }
        answer = self.credentials(image_id, str(uuid.uuid4()).upper(), id_field="ImageId", key=key)
        return {**answer, "ImageURL": f"{OSS_URL}/{key}", "FileURL": f"{OSS_URL}/{key}"}

    def new_attached(self, params: dict[str, str]) -> dict[str, Any]:
        media_id = uuid.uuid4().hex
        key = f"attached/{params['BusinessType']}/{media_id}.{params['MediaExt']}"
        self.attached[media_id] = {
            "MediaId": media_id,
            "Type": params["BusinessType"],
            "Title": params.get("Title"),
            "Status": "Uploading",
            "CreationTime": "2026-11-25T10:00:00Z",
            "UserData": params.get("UserData"),
            "URL": f"{OSS_URL}/{key}",
        }
        answer = self.credentials(media_id, str(uuid.uuid4()).upper(), id_field="MediaId", key=key)
        return {**answer, "MediaURL": f"{OSS_URL}/{key}", "FileURL": f"{OSS_URL}/{key}"}

    def image_info(self, image: dict[str, Any]) -> dict[str, Any]:
        info = {k: v for k, v in image.items() if k not in ("UserData", "Size")}
        if image.get("Size") is not None:
            info["Mezzanine"] = {"FileSize": str(image["Size"]), "FileURL": image["URL"]}
        return info

    def media_action(self, action: str, params: dict[str, str], rid: str) -> httpx.Response:
        """The image and attached-media actions (shapes of VOD's reference and the SDK models)."""
        if action == "CreateUploadImage":
            if params.get("ImageType") not in ("default", "cover"):
                return self.error(400, "InvalidParameter", "The specified parameter ImageType is not valid.")
            return httpx.Response(200, json=self.new_image(params))
        if action == "CreateUploadAttachedMedia":
            if not params.get("BusinessType") or not params.get("MediaExt"):
                return self.error(400, "MissingParameter", "BusinessType and MediaExt are required.")
            return httpx.Response(200, json=self.new_attached(params))
        if action == "GetImageInfo":
            image = self.images.get(params["ImageId"])
            if image is None:
                return self.error(404, "NoSuchResource", "The specified resource does not exist.")
            return httpx.Response(200, json={"RequestId": rid, "ImageInfo": self.image_info(image)})
        if action == "GetImageInfos":
            ids = params["ImageIds"].split(",")
            found = [self.image_info(self.images[i]) for i in ids if i in self.images]
            missing = [i for i in ids if i not in self.images]
            return httpx.Response(
                200, json={"RequestId": rid, "ImageInfo": found, "NonExistImageIds": missing}
            )
        if action == "DeleteImage":
            assert params["DeleteImageType"] == "ImageId", params
            ids = params["ImageIds"].split(",")
            if not any(i in self.images for i in ids):
                return self.error(404, "NoSuchResource", "The specified resource does not exist.")
            for image_id in ids:
                self.images.pop(image_id, None)
            return httpx.Response(200, json={"RequestId": rid})
        if action == "GetAttachedMediaInfo":
            ids = params["MediaIds"].split(",")
            found = [
                {k: v for k, v in self.attached[i].items() if k not in ("UserData", "Size")}
                for i in ids
                if i in self.attached
            ]
            missing = [i for i in ids if i not in self.attached]
            return httpx.Response(
                200, json={"RequestId": rid, "AttachedMediaList": found, "NonExistMediaIds": missing}
            )
        if action == "DeleteAttachedMedia":
            ids = params["MediaIds"].split(",")
            missing = [i for i in ids if self.attached.pop(i, None) is None]
            return httpx.Response(200, json={"RequestId": rid, "NonExistMediaIds": missing})
        return self.error(400, "InvalidParameter", f"Unknown action {action}.")


@dataclass
class Stack:
    """The three deployed functions, invoked the FC 3.0 way, plus the fake VOD behind them."""

    vod: FakeVod
    router: respx.MockRouter
    modules: dict[str, Any]

    def http(
        self,
        function: str,
        method: str,
        path: str,
        *,
        body: Any = None,
        owner: str | None = "alice",
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        raw_body: str | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        event = load_event("http/get_upload.json")
        event["rawPath"] = path
        event["requestContext"]["http"]["path"] = path
        event["requestContext"]["http"]["method"] = method
        event["queryParameters"] = query or {}
        hdrs = {"Host": "uploads.example.com"}
        if owner is not None:
            hdrs["Authorization"] = f"Bearer {token(owner)}"
        if body is not None or raw_body is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        event["headers"] = hdrs
        event["body"] = raw_body if raw_body is not None else ("" if body is None else json.dumps(body))
        return self.invoke(function, event)

    def invoke(self, function: str, event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        result = self.modules[function].handler(
            json.dumps(event).encode(), make_context(function_name=function)
        )
        text = result["body"]
        return result["statusCode"], (json.loads(text) if text else {}), result["headers"]

    def create(self, owner: str = "alice", **fields: Any) -> dict[str, Any]:
        body = {"Title": "Holiday", "FileName": "holiday.mp4", "FileSize": 1024, **fields}
        status, answer, _ = self.http("upload_credentials", "POST", "/uploads", body=body, owner=owner)
        assert status == 200, answer
        return answer

    def create_image(self, owner: str = "alice", **fields: Any) -> dict[str, Any]:
        body = {"ImageType": "cover", "ImageExt": "jpg", "Title": "Poster", **fields}
        status, answer, _ = self.http("upload_credentials", "POST", "/images", body=body, owner=owner)
        assert status == 200, answer
        return answer

    def create_attached(self, owner: str = "alice", **fields: Any) -> dict[str, Any]:
        body = {"BusinessType": "subtitle", "FileName": "subs.en.vtt", "FileSize": 2048, **fields}
        status, answer, _ = self.http("upload_credentials", "POST", "/attached-media", body=body, owner=owner)
        assert status == 200, answer
        return answer

    def callback(
        self, body: dict[str, Any], *, ts: int | None = None, key: str = CALLBACK_KEY, url: str = CALLBACK_URL
    ) -> tuple[int, dict[str, Any]]:
        stamp = str(ts if ts is not None else int(time.time()))
        sig = hashlib.md5(f"{url}|{stamp}|{key}".encode()).hexdigest()
        event = load_event("http/vod_callback.json")
        event["headers"]["X-VOD-TIMESTAMP"] = stamp
        event["headers"]["X-VOD-SIGNATURE"] = sig
        event["body"] = json.dumps(body)
        status, answer, _ = self.invoke("vod_callback", event)
        return status, answer

    def vod_event(self, name: str, video_id: str, *, genuine: bool = True, **fields: Any) -> dict[str, Any]:
        """A sample VOD event body for ``video_id``, echoing the Extend VOD stored for it.

        A genuine upload event means the file did arrive: VOD's record says ``UploadSucc`` from
        then on (``Normal`` for an image or attached media, with the event's Size), as the real
        VOD's does, unless the test says the event is forged.
        """
        body = load_event(f"vod/{name}.json")
        id_field, records, arrived = {
            "ImageUploadComplete": ("ImageId", self.vod.images, "Normal"),
            "AttachedMediaUploadComplete": ("AttachedMediaId", self.vod.attached, "Normal"),
        }.get(name, ("VideoId", self.vod.videos, "UploadSucc"))
        body[id_field] = video_id
        body.update(fields)
        video = records.get(video_id)
        upload_event = name in ("FileUploadComplete", "ImageUploadComplete", "AttachedMediaUploadComplete")
        if genuine and video is not None and upload_event and video["Status"] == "Uploading":
            video["Status"] = arrived
            if id_field != "VideoId":
                video["Size"] = body.get("Size")
        user_data = records.get(video_id, {}).get("UserData")
        if user_data:
            body["Extend"] = json.dumps(json.loads(user_data)["Extend"])
        else:
            body.pop("Extend", None)
        body.update(fields)
        return body

    def cleanup(self, payload: str = "{}") -> dict[str, Any]:
        event = load_event("timer/cleanup.json")
        event["payload"] = payload
        result = self.modules["cleanup"].handler(
            json.dumps(event).encode(), make_context(function_name="cleanup")
        )
        summary: dict[str, Any] = json.loads(result)
        return summary


def age(video_ids: list[str], seconds: int) -> None:
    """Pretend these uploads were created ``seconds`` ago (the store is the test's own SQLite)."""
    import sqlite3
    from datetime import datetime, timedelta, timezone

    url = get_settings().database_url.get_secret_value()
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    when = (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat()
    with conn:
        for vid in video_ids:
            conn.execute(
                "UPDATE uploads SET created_at = ?, credential_expires_at = ? WHERE video_id = ?",
                (when, when, vid),
            )
    conn.close()


def reset_instance_state() -> None:
    get_settings.cache_clear()
    reset_deps()
    reset_vod_client()


@pytest.fixture
def stack_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The environment of a deployment (SQLite in tmp_path unless a test overrides it)."""
    env = {
        "VOD_REGION": "cn-shanghai",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "test-access-key-id",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "test-access-key-secret",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'vodfc.db'}",
        "AUTH_MODE": "jwt",
        "JWT_SECRET": JWT_SECRET,
        "CALLBACK_URL": CALLBACK_URL,
        "CALLBACK_AUTH_KEY": CALLBACK_KEY,
        "ALLOWED_ORIGINS": "https://app.example.com",
        "MAX_PENDING_UPLOADS_PER_OWNER": "3",
        "STALE_UPLOAD_SECONDS": "60",
        "VOD_DEADLINE_SECONDS": "2",
    }
    for key in list(env):
        monkeypatch.setenv(key, env[key])
    return env


@pytest.fixture
def stack(stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    reset_instance_state()
    vod = FakeVod()
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        router.post(f"{VOD_URL}/").mock(side_effect=vod)
        modules = {
            name: load_handler_module(name) for name in ("upload_credentials", "vod_callback", "cleanup")
        }
        yield Stack(vod=vod, router=router, modules=modules)
    reset_instance_state()
