"""Fixtures for end-to-end tests against the local VOD/OSS emulator.

- ``callback_sink``: a tiny HTTP server recording every request (VOD callbacks land here);
  ``sink.statuses`` scripts its answers (default 200).
- ``emulator``: a started :class:`devkit.emulator.Emulator` on free loopback ports, data in
  ``tmp_path``, no delays (transcoding and callback retries run immediately on ``drain()``),
  global callback URL = ``callback_sink.url("/callbacks/vod")``.
- ``vod``: calls the emulator's OpenAPI signed by the *official* SDKs' signing code
  (``alibabacloud_openapi_util`` for V3, ``aliyunsdkcore`` for V1), independent of ``shared``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest

from devkit.emulator import DEV_ACCESS_KEY_ID, DEV_ACCESS_KEY_SECRET, Emulator, make_emulator


@dataclass
class Received:
    """One request the sink got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class CallbackSink:
    """Records requests; answers with ``statuses`` in order (then 200)."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> CallbackSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with sink._lock:
                    sink.received.append(
                        Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status = sink.statuses.pop(0) if sink.statuses else 200
                self.send_response(status)
                if status in (301, 302):
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def url(self, path: str = "/callbacks/vod") -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            bodies = [r.json() for r in self.received]
        return [b for b in bodies if event_type is None or b.get("EventType") == event_type]


@pytest.fixture
def callback_sink() -> Iterator[CallbackSink]:
    sink = CallbackSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def emulator(tmp_path: Path, callback_sink: CallbackSink) -> Iterator[Emulator]:
    emu = make_emulator(
        data_dir=tmp_path / "oss",
        callback_url=callback_sink.url("/callbacks/vod"),
        transcode_delay_seconds=0,
        callback_retry_interval_seconds=0,
        callback_timeout_seconds=2,
        server_threads=4,
    ).start()
    yield emu
    emu.stop()


def _acs_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class OfficialVodClient:
    """Signs with the official SDKs' code, sends with httpx (the wire format the SDKs use)."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.http = httpx.Client(trust_env=False, timeout=10)

    def close(self) -> None:
        self.http.close()

    @property
    def host(self) -> str:
        return self.emulator.vod_url.split("://", 1)[1]

    def v3_request(
        self,
        action: str,
        params: Mapping[str, str],
        *,
        key_id: str = DEV_ACCESS_KEY_ID,
        secret: str = DEV_ACCESS_KEY_SECRET,
        token: str | None = None,
        when: datetime | None = None,
        nonce: str | None = None,
    ) -> tuple[str, dict[str, str]]:
        """(url, headers) of a V3 POST signed by ``alibabacloud_openapi_util``."""
        from alibabacloud_openapi_util.client import Client as OpenApiUtil

        headers = {
            "host": self.host,
            "x-acs-version": "2017-03-21",
            "x-acs-action": action,
            "user-agent": "AlibabaCloud (test) TeaDSL/1",
            "x-acs-date": _acs_time(when or datetime.now(timezone.utc)),
            "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
            "accept": "application/json",
            "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
        }
        if token:
            headers["x-acs-accesskey-id"] = key_id
            headers["x-acs-security-token"] = token
        request = SimpleNamespace(pathname="/", method="POST", query=dict(params), headers=headers)
        headers["Authorization"] = OpenApiUtil.get_authorization(
            request, "ACS3-HMAC-SHA256", headers["x-acs-content-sha256"], key_id, secret
        )
        url = f"{self.emulator.vod_url}/?{urlencode(dict(params), quote_via=quote)}"
        return url, headers

    def v3(self, action: str, params: Mapping[str, str], **kw: Any) -> httpx.Response:
        url, headers = self.v3_request(action, params, **kw)
        return self.http.post(url, headers=headers)

    def v1_url(
        self,
        action: str,
        params: Mapping[str, str],
        *,
        key_id: str = DEV_ACCESS_KEY_ID,
        secret: str = DEV_ACCESS_KEY_SECRET,
        fmt: str | None = "JSON",
        method: str = "POST",
    ) -> str:
        """A URL signed by ``aliyunsdkcore``'s RPC signature composer."""
        from aliyunsdkcore.auth.composer.rpc_signature_composer import get_signed_url

        query = {"Action": action, "Version": "2017-03-21", "RegionId": "cn-shanghai", **params}
        path, _ = get_signed_url(query, key_id, secret, fmt, method, {})
        return f"{self.emulator.vod_url}{path}"

    def v1(self, action: str, params: Mapping[str, str], **kw: Any) -> httpx.Response:
        method = kw.get("method", "POST")
        return self.http.request(method, self.v1_url(action, params, **kw))

    def call(self, action: str, params: Mapping[str, str]) -> dict[str, Any]:
        """A V3 call that must succeed; its JSON."""
        response = self.v3(action, params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def vod(emulator: Emulator) -> Iterator[OfficialVodClient]:
    client = OfficialVodClient(emulator)
    yield client
    client.close()


def past(minutes: int) -> datetime:
    """A time ``minutes`` ago."""
    return datetime.now(timezone.utc) - timedelta(minutes=minutes)
