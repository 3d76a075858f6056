"""Trigger events for the benchmarks, built from the samples in ``events/`` (FC 3.0 shapes)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "CALLBACK_KEY",
    "CALLBACK_URL",
    "JWT_SECRET",
    "callback_event",
    "create_event",
    "jwt_token",
    "timer_event",
    "vod_event_body",
]

ROOT = Path(__file__).resolve().parent.parent
JWT_SECRET = "bench-jwt-secret-0123456789abcdef0123456789"  # HS256, >= 32 bytes
CALLBACK_URL = "https://uploads.example.com/callbacks/vod"
CALLBACK_KEY = "BenchCallbackKey0123456789abcdef"


@cache
def _sample(rel: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / rel).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def jwt_token(sub: str, *, now: float | None = None, ttl: int = 7200) -> str:
    """A real HS256 JWT for ``sub`` (what a web client's identity provider would issue)."""
    import jwt

    issued = int(now if now is not None else time.time())
    claims = {"sub": sub, "iat": issued, "nbf": issued - 5, "exp": issued + ttl}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def _http_event(sample: str, *, body: str, headers: dict[str, str], request_id: str) -> dict[str, Any]:
    event = json.loads(json.dumps(_sample(sample)))
    event["body"] = body
    event["headers"] = headers
    event["requestContext"]["requestId"] = request_id
    now_ms = int(time.time() * 1000)
    event["requestContext"]["timeEpoch"] = str(now_ms)
    event["requestContext"]["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_ms / 1000))
    return event


def create_event(token: str, *, idempotency_key: str | None = None, title: str | None = None) -> bytes:
    """``POST /uploads`` as the HTTP trigger delivers it, bearer ``token``, a fresh Idempotency-Key."""
    sample = _sample("http/create_upload.json")
    headers = dict(sample["headers"])
    headers["Authorization"] = f"Bearer {token}"
    headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
    body = json.loads(sample["body"])
    if title:
        body["Title"] = title
    event = _http_event(
        "http/create_upload.json",
        body=json.dumps(body, ensure_ascii=False),
        headers=headers,
        request_id=f"1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
    )
    return json.dumps(event, ensure_ascii=False).encode()


def vod_event_body(event_type: str, video_id: str, *, extend: str | None, event_time: str) -> dict[str, Any]:
    """A VOD callback body of ``event_type`` (from ``events/vod/``) for ``video_id``."""
    body = json.loads(json.dumps(_sample(f"vod/{event_type}.json")))
    body["VideoId"] = video_id
    body["EventTime"] = event_time
    if extend is None:
        body.pop("Extend", None)
    else:
        body["Extend"] = extend
    return body


def callback_event(body: dict[str, Any] | str, *, timestamp: int | None = None) -> bytes:
    """``POST /callbacks/vod`` with VOD's X-VOD-TIMESTAMP / X-VOD-SIGNATURE for ``body``."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    signature = hashlib.md5(f"{CALLBACK_URL}|{ts}|{CALLBACK_KEY}".encode(), usedforsecurity=False).hexdigest()
    sample = _sample("http/vod_callback.json")
    headers = dict(sample["headers"])
    headers["X-VOD-TIMESTAMP"] = ts
    headers["X-VOD-SIGNATURE"] = signature
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    event = _http_event(
        "http/vod_callback.json", body=text, headers=headers, request_id=f"1-{uuid.uuid4().hex[:32]}"
    )
    return json.dumps(event, ensure_ascii=False).encode()


def queue_event(body: dict[str, Any] | str, *, message_id: str | None = None) -> bytes:
    """One FC 3.0 MNS queue-trigger invocation (CloudEvents, one message, the body as VOD sent it
    to the queue), from ``events/mns/fc3_single.json``; a redelivery keeps its ``message_id``."""
    event = json.loads(json.dumps(_sample("mns/fc3_single.json")))
    mid = message_id or uuid.uuid4().hex.upper()
    event["id"] = event["data"]["messageId"] = mid
    event["data"]["requestId"] = uuid.uuid4().hex[:24].upper()
    event["data"]["messageBody"] = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    return json.dumps(event, ensure_ascii=False).encode()


def timer_event() -> bytes:
    """The cleanup timer's event (``{"triggerTime", "triggerName", "payload"}``)."""
    event = dict(_sample("timer/cleanup.json"))
    event["triggerTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return json.dumps(event).encode()
