"""A loopback HTTPS stand-in for VOD's OpenAPI, run in its own process by the benchmarks.

It answers VOD-shaped JSON for the actions vodfc and the SDKs call, and never checks signatures
(the benchmarks measure the clients, not VOD). One thread per connection, HTTP/1.1 keep-alive,
blocking TLS sockets: the lowest-latency shape for one client sending one request at a time.

Control routes (same port): ``GET /__stats`` (calls per action), ``POST /__reset``,
``GET /__videos`` (what each CreateUploadVideo carried: ReferenceId, UserData), and
``POST /__config?infos_status=..&info_status=..`` (the Status that GetVideoInfos / GetVideoInfo
report), ``POST /__hook`` (a webhook receiver: 200, counted as the action ``webhook``; it does not
verify: tests/ do that with the standardwebhooks package).
Run: ``python -m bench.stub --cert C --key K [--port 0]``; it prints ``PORT <n>``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import socket
import ssl
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["main"]

MAX_VIDEOS = 200_000


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self.requests = 0
        self.connections = 0
        self.videos: dict[str, dict[str, str]] = {}
        self.info_status = "Normal"
        self.infos_status = "Uploading"

    def count(self, action: str) -> None:
        with self.lock:
            self.calls[action] = self.calls.get(action, 0) + 1
            self.requests += 1


STATE = State()


def _now_iso(delta: float = 0.0) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64json(value: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def _credentials(video_id: str) -> dict[str, Any]:
    address = {
        "Endpoint": "https://oss-cn-shanghai.aliyuncs.com",
        "Bucket": "outin-0123456789abcdef0123456789abcdef",
        "FileName": f"sv/{video_id[:8]}/{video_id}.mp4",
    }
    auth = {
        "SecurityToken": "CAIS" + "x" * 600,
        "AccessKeyId": "STS.NUexampleexampleexample",
        "ExpireUTCTime": _now_iso(3000),
        "AccessKeySecret": "stub-secret-" + video_id[:12],
        "Expiration": "3000",
        "Region": "cn-shanghai",
    }
    return {
        "RequestId": str(uuid.uuid4()).upper(),
        "VideoId": video_id,
        "UploadAddress": _b64json(address),
        "UploadAuth": _b64json(auth),
    }


def _video(video_id: str, status: str) -> dict[str, Any]:
    return {
        "VideoId": video_id,
        "Title": "bench video",
        "Status": status,
        "Duration": 12.5,
        "Size": 52428800,
        "CreationTime": _now_iso(-3600),
        "ModificationTime": _now_iso(-60),
        "CateId": 1000,
        "CateName": "bench",
        "Description": "",
        "StorageLocation": "outin-0123456789abcdef0123456789abcdef.oss-cn-shanghai.aliyuncs.com",
        "RegionId": "cn-shanghai",
        "TemplateGroupId": "VOD_NO_TRANSCODE",
        "AppId": "app-1000000",
        "CoverURL": "",
        "Tags": "",
        "Snapshots": {"Snapshot": []},
    }


def vod_answer(action: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """The status and JSON body VOD would send for ``action`` (shape only, no business rules)."""
    request_id = str(uuid.uuid4()).upper()
    if action == "CreateUploadVideo":
        video_id = uuid.uuid4().hex
        with STATE.lock:
            if len(STATE.videos) < MAX_VIDEOS:
                STATE.videos[video_id] = {
                    "ReferenceId": params.get("ReferenceId", ""),
                    "UserData": params.get("UserData", ""),
                    "Title": params.get("Title", ""),
                }
        return 200, _credentials(video_id)
    if action == "RefreshUploadVideo":
        return 200, _credentials(params.get("VideoId", uuid.uuid4().hex))
    if action == "GetVideoInfo":
        return 200, {"RequestId": request_id, "Video": _video(params.get("VideoId", ""), STATE.info_status)}
    if action == "GetVideoInfos":
        ids = [v for v in params.get("VideoIds", "").split(",") if v]
        return 200, {
            "RequestId": request_id,
            "VideoList": [_video(v, STATE.infos_status) for v in ids],
            "NonExistVideoIds": [],
        }
    if action == "DeleteVideo":
        return 200, {"RequestId": request_id}
    if action == "GetMezzanineInfo":
        video_id = params.get("VideoId", "")
        return 200, {
            "RequestId": request_id,
            "Mezzanine": {
                "VideoId": video_id,
                "Status": "Normal",
                "Size": 52428800,
                "Duration": "12.5",
                "FileName": f"{video_id}.mp4",
                "CreationTime": _now_iso(-3600),
            },
        }
    if action == "SearchMedia":
        return 200, {"RequestId": request_id, "Total": 0, "MediaList": [], "ScrollToken": ""}
    return 400, {
        "RequestId": request_id,
        "HostId": "vod.cn-shanghai.aliyuncs.com",
        "Code": "InvalidAction.NotFound",
        "Message": f"Specified api {action or '(none)'} is not found.",
    }


def _control(method: str, path: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
    if path == "/__stats":
        with STATE.lock:
            return 200, {
                "calls": dict(STATE.calls),
                "requests": STATE.requests,
                "connections": STATE.connections,
            }
    if path == "/__reset" and method == "POST":
        with STATE.lock:
            STATE.calls.clear()
            STATE.requests = 0
            STATE.connections = 0
            STATE.videos.clear()
        return 200, {"ok": True}
    if path == "/__videos":
        with STATE.lock:
            return 200, {"videos": dict(STATE.videos)}
    if path == "/__hook" and method == "POST":
        STATE.count("webhook")
        return 200, {}
    if path == "/__config" and method == "POST":
        STATE.info_status = query.get("info_status", STATE.info_status)
        STATE.infos_status = query.get("infos_status", STATE.infos_status)
        return 200, {"info_status": STATE.info_status, "infos_status": STATE.infos_status}
    return 404, {"Code": "NotFound"}


def _read_body(reader: Any, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(reader.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while reader.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(reader.read(size))
            reader.readline()
    length = int(headers.get("content-length", "0") or 0)
    return reader.read(length) if length else b""


def serve_connection(raw: socket.socket, context: ssl.SSLContext) -> None:
    try:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = context.wrap_socket(raw, server_side=True)
    except (OSError, ssl.SSLError):
        raw.close()
        return
    with STATE.lock:
        STATE.connections += 1
    reader = conn.makefile("rb", buffering=65536)
    try:
        while True:
            line = reader.readline(65537)
            if not line:
                return
            if line in (b"\r\n", b"\n"):
                continue
            method, target, _version = line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while True:
                h = reader.readline(65537)
                if h in (b"\r\n", b"\n", b""):
                    break
                name, _, value = h.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = _read_body(reader, headers)
            split = urlsplit(target)
            query = dict(parse_qsl(split.query, keep_blank_values=True))
            if split.path.startswith("/__"):
                status, answer = _control(method, split.path, query)
            else:
                params = dict(query)
                ctype = headers.get("content-type", "")
                if body and "x-www-form-urlencoded" in ctype:
                    params.update(parse_qsl(body.decode(), keep_blank_values=True))
                elif body and "json" in ctype:
                    with contextlib.suppress(ValueError, AttributeError):
                        params.update({k: str(v) for k, v in json.loads(body).items()})
                action = headers.get("x-acs-action") or params.get("Action", "")
                STATE.count(action or "(none)")
                status, answer = vod_answer(action, params)
            payload = json.dumps(answer, separators=(",", ":")).encode()
            close = headers.get("connection", "").lower() == "close"
            reason = "OK" if status == 200 else "Error"
            head = (
                f"HTTP/1.1 {status} {reason}\r\n"
                "Content-Type: application/json;charset=utf-8\r\n"
                f"Content-Length: {len(payload)}\r\n"
                f"x-acs-request-id: {answer.get('RequestId', '')}\r\n"
                f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
            )
            conn.sendall(head.encode("latin-1") + payload)
            if close:
                return
    except (OSError, ssl.SSLError, ValueError):
        return
    finally:
        try:
            reader.close()
            conn.close()
        except OSError:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stub")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    listener = socket.create_server((args.host, args.port), backlog=512, reuse_port=False)
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    try:
        while True:
            raw, _ = listener.accept()
            threading.Thread(target=serve_connection, args=(raw, context), daemon=True).start()
    except KeyboardInterrupt:
        return 0
    finally:
        listener.close()


if __name__ == "__main__":
    sys.exit(main())
