"""Secrets never reach a log line, an error body or a response header.

The suite's scenarios (success, VOD faults that echo secrets, malformed VOD answers carrying
UploadAuth, bad tokens, forged callbacks, the store down with a password in its URL, an unhandled
exception whose message holds a secret, cleanup) run with known, distinctive secret values; then
every line written to stdout, every record of every logger (root included, at DEBUG, as a
function runtime may print them) and every error body and header is scanned for them.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest

from shared.services.deps import get_deps, set_deps
from tests.functional.conftest import CALLBACK_URL, Stack, load_event, reset_instance_state
from tests.security.helpers import FlakyStore, garbage, install, throttled, unavailable, vod_error

AK_SECRET = "SeCrEt-ak-secret-0001"
STS_TOKEN = "CAISSeCrEtStsToken0002AAAAAAAAAAAAAAAA"
JWT_KEY = "SeCrEt-jwt-signing-key-0003-0123456789"
CALLBACK_KEY = "SeCrEtCbKey0004"
CALLBACK_KEY_OLD = "SeCrEtCbKeyOld0005"
BINDING_KEY = "SeCrEt-binding-key-0006"
DB_PASSWORD = "SeCrEt-db-password-0007"


def bearer(sub: str, **claims: Any) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 600, **claims}, JWT_KEY, algorithm="HS256")


class Recorder:
    """Runs requests, keeping every token sent and every answer received."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.tokens: list[str] = []
        self.answers: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        self.credentials: list[str] = []  # UploadAuth blobs handed to clients

    def http(self, method: str, path: str, *, sub: str = "alice", token: str | None = None, **kw: Any) -> Any:
        token = token or bearer(sub)
        self.tokens.append(token)
        kw.setdefault("headers", {})["Authorization"] = f"Bearer {token}"
        result = self.stack.http("upload_credentials", method, path, owner=None, **kw)
        self._keep(result)
        return result

    def callback(self, body: dict[str, Any], *, key: str = CALLBACK_KEY, ts: int | None = None) -> Any:
        import hashlib

        stamp = str(ts if ts is not None else int(time.time()))
        event = load_event("http/vod_callback.json")
        event["headers"]["X-VOD-TIMESTAMP"] = stamp
        event["headers"]["X-VOD-SIGNATURE"] = hashlib.md5(
            f"{CALLBACK_URL}|{stamp}|{key}".encode()
        ).hexdigest()
        event["body"] = json.dumps(body)
        result = self.stack.invoke("vod_callback", event)
        self._keep(result)
        return result

    def _keep(self, result: tuple[int, dict[str, Any], dict[str, str]]) -> None:
        self.answers.append(result)
        body = result[1]
        if result[0] == 200 and "UploadAuth" in body:
            self.credentials.append(body["UploadAuth"])


def forms(value: str) -> set[str]:
    """A secret as it could leak: verbatim, percent-encoded, Base64."""
    return {value, quote(value, safe=""), base64.b64encode(value.encode()).decode().rstrip("=")}


@pytest.fixture
def secret_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": AK_SECRET,
        "ALIBABA_CLOUD_SECURITY_TOKEN": STS_TOKEN,
        "JWT_SECRET": JWT_KEY,
        "CALLBACK_AUTH_KEY": CALLBACK_KEY,
        "CALLBACK_AUTH_KEY_PREVIOUS": CALLBACK_KEY_OLD,
        "UPLOAD_BINDING_KEY": BINDING_KEY,
        "LOG_LEVEL": "DEBUG",
        "MAX_PENDING_UPLOADS_PER_OWNER": "50",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_instance_state()
    return stack


@pytest.mark.parametrize("signature_version", ["v3", "v1"])
def test_no_secret_in_any_log_line_error_body_or_header(
    secret_env: Stack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    signature_version: str,
) -> None:
    stack = secret_env
    monkeypatch.setenv("VOD_SIGNATURE_VERSION", signature_version)
    reset_instance_state()
    caplog.set_level(logging.DEBUG)  # the root logger too: a runtime's handler would print these
    vod, _, _ = install(stack)
    rec = Recorder(stack)
    body = {"Title": "Holiday", "FileName": "holiday.mp4"}

    # --- the happy path: create, refresh, read, callbacks, delete
    created = rec.http("POST", "/uploads", body=body)[1]
    video_id = created["VideoId"]
    rec.http("POST", f"/uploads/{video_id}/refresh")
    rec.http("GET", f"/uploads/{video_id}")
    rec.http("GET", "/uploads")
    rec.callback(stack.vod_event("FileUploadComplete", video_id))
    rec.callback(stack.vod_event("StreamTranscodeComplete", video_id), key=CALLBACK_KEY_OLD)
    stack.vod.videos[video_id]["Status"] = "Normal"
    rec.callback(stack.vod_event("TranscodeComplete", video_id))

    # --- VOD faults, some of whose messages echo our secrets
    for fault in (
        throttled(),
        unavailable(503),
        vod_error(400, "SignatureDoesNotMatch", f"Specified signature is not matched. Key={AK_SECRET}"),
        vod_error(400, "InvalidSecurityToken.Malformed", f"token {STS_TOKEN} {quote(STS_TOKEN, safe='')}"),
        vod_error(403, "Forbidden.RAM", f"AccessKeySecret {AK_SECRET} may not"),
        vod_error(400, "InvalidParameter", f"bad {AK_SECRET} {STS_TOKEN}"),
        garbage(),
        httpx.Response(200, json={"RequestId": "r", "VideoId": 7, "UploadAuth": created["UploadAuth"]}),
        httpx.Response(
            200, json={"RequestId": "r", "VideoId": "v", "UploadAddress": "x", "UploadAuth": "%%"}
        ),
        httpx.Response(200, content=f'{{"UploadAuth": "{created["UploadAuth"]}", '.encode()),
    ):
        vod.always["*"] = fault
        rec.http("POST", "/uploads", body=body)
        rec.http("POST", f"/uploads/{video_id}/refresh")
    vod.always.clear()
    # --- images and attached media: create, replay (a new credential), read, events, delete
    image_body, media_body = {"ImageType": "cover"}, {"BusinessType": "subtitle", "MediaExt": "vtt"}
    replay = {"Idempotency-Key": "secrets-1"}
    image_id = rec.http("POST", "/images", body=image_body, headers=dict(replay))[1]["ImageId"]
    image_id = rec.http("POST", "/images", body=image_body, headers=dict(replay))[1]["ImageId"]
    media_id = rec.http("POST", "/attached-media", body=media_body)[1]["MediaId"]
    rec.http("GET", f"/images/{image_id}")
    rec.http("GET", "/attached-media")
    rec.callback(stack.vod_event("ImageUploadComplete", image_id))
    rec.callback(stack.vod_event("AttachedMediaUploadComplete", media_id))
    rec.http("DELETE", f"/images/{image_id}")
    for fault in (
        vod_error(400, "InvalidParameter", f"bad {AK_SECRET} {STS_TOKEN}"),
        httpx.Response(200, json={"RequestId": "r", "ImageId": 7, "UploadAuth": created["UploadAuth"]}),
        unavailable(500),
    ):
        vod.always["*"] = fault
        rec.http("POST", "/images", body=image_body)
        rec.http("POST", "/attached-media", body=media_body)
    vod.always.clear()
    with_refresh = rec.http("POST", "/uploads", body=body)[1]["VideoId"]
    vod.fail("RefreshUploadVideo", httpx.ReadTimeout("timed out"))
    rec.http("POST", f"/uploads/{with_refresh}/refresh")

    # --- bad tokens, forged callbacks
    rec.http("GET", "/uploads", token=jwt.encode({"sub": "m", "exp": 1}, JWT_KEY, algorithm="HS256"))
    rec.http("GET", "/uploads", token=bearer("m") + "x")
    rec.http(
        "GET",
        "/uploads",
        token=jwt.encode({"sub": "m", "exp": 2**40}, "wrong-key-wrong-key-wrong-key-xx", algorithm="HS256"),
    )
    rec.callback(stack.vod_event("FileUploadComplete", with_refresh), key="WrongKey")
    rec.callback(stack.vod_event("FileUploadComplete", with_refresh), ts=1)

    # --- an unhandled error whose message carries secrets, and the store failing
    deps = get_deps()
    store = FlakyStore(deps.store)
    set_deps(replace(deps, store=store))

    def explode(*_: Any, **__: Any) -> Any:
        raise RuntimeError(f"driver said: password={DB_PASSWORD} key={AK_SECRET} token={STS_TOKEN}")

    store.inner = type("Exploding", (), {"__getattr__": lambda self, name: explode})()
    rec.http("GET", "/uploads")
    rec.http("POST", "/uploads", body=body)
    set_deps(replace(deps, store=store.inner))
    stack.cleanup()

    # --- a real database that is down, with the password in its URL
    monkeypatch.setenv("DATABASE_URL", f"postgresql://vodfc:{DB_PASSWORD}@127.0.0.1:9/vodfc")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "1")
    reset_instance_state()
    rec.http("POST", "/uploads", body=body)
    rec.http("GET", "/uploads")
    rec.callback(stack.vod_event("FileUploadComplete", video_id))
    stack.cleanup()

    # --- scan
    upload_secrets: set[str] = set()
    for blob in rec.credentials:
        decoded = json.loads(base64.b64decode(blob))
        upload_secrets |= {blob, decoded["AccessKeySecret"], decoded["SecurityToken"]}
    secrets = {AK_SECRET, STS_TOKEN, JWT_KEY, CALLBACK_KEY, CALLBACK_KEY_OLD, BINDING_KEY, DB_PASSWORD}
    secrets |= set(rec.tokens) | upload_secrets
    needles = {form for s in secrets for form in forms(s)}

    printed = capsys.readouterr()
    lines = printed.out.splitlines() + printed.err.splitlines()
    records = [f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.__dict__}" for r in caplog.records]
    errors = [json.dumps(a[1]) + json.dumps(a[2]) for a in rec.answers if a[0] != 200]
    headers = [json.dumps(a[2]) for a in rec.answers]
    assert len(lines) > 50 and len(errors) > 20  # the scenarios really ran and logged
    assert any(a[0] == 500 for a in rec.answers) and any(a[0] == 503 for a in rec.answers)
    for where, texts in (
        ("stdout", lines),
        ("log record", records),
        ("error body", errors),
        ("header", headers),
    ):
        for text in texts:
            found = sorted(n for n in needles if n in text)
            assert not found, f"secret in a {where}: {found[0][:12]}... in {text[:300]}"
