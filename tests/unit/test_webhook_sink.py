"""devkit/webhook_sink.py: the local receiver verifies, dedupes, keeps the last ones, lists them."""

from __future__ import annotations

import base64
import io
import json
from datetime import datetime, timezone
from typing import Any

from standardwebhooks import Webhook

from devkit.webhook_sink import WebhookSink

SECRET = "whsec_" + base64.b64encode(b"sink-test-webhook-secret-32bytes").decode()
NOW = 1_800_000_000


def _body(video_id: str, seq: int, status: str = "ready") -> str:
    data = {"VideoId": video_id, "Status": status, "Sequence": seq}
    return json.dumps({"type": f"upload.{status}", "timestamp": "2027-01-15T08:00:00.000000Z", "data": data})


def _post(sink: WebhookSink, body: str, msg_id: str, *, secret: str = SECRET) -> tuple[str, dict[str, Any]]:
    raw = body.encode()
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(NOW, tz=timezone.utc), body)
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
        "HTTP_WEBHOOK_ID": msg_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(NOW),
        "HTTP_WEBHOOK_SIGNATURE": signature,
    }
    return _call(sink, environ)


def _call(sink: WebhookSink, environ: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    seen: list[str] = []
    chunks = sink(environ, lambda status, headers: seen.append(status))
    return seen[0], json.loads(b"".join(chunks))


def _sink(**kw: Any) -> WebhookSink:
    return WebhookSink(lambda: (SECRET,), clock=lambda: NOW + 1, **kw)


def test_a_verified_delivery_is_kept_once_and_listed() -> None:
    sink = _sink()
    status, answer = _post(sink, _body("v1", 1, "created"), "msg_u_1")
    assert status == "200 OK" and answer == {"Received": "msg_u_1", "Duplicate": False}
    assert _post(sink, _body("v1", 1, "created"), "msg_u_1")[1]["Duplicate"] is True
    _post(sink, _body("v2", 1, "created"), "msg_w_1")
    _post(sink, _body("v1", 2), "msg_u_2")
    status, listed = _call(sink, {"REQUEST_METHOD": "GET", "QUERY_STRING": "VideoId=v1"})
    assert status == "200 OK"
    assert [(d["Type"], d["Sequence"]) for d in listed["Deliveries"]] == [
        ("upload.created", 1),
        ("upload.ready", 2),
    ]
    assert listed["Deliveries"][0]["ReceivedAt"] == "2027-01-15T08:00:01Z"
    assert len(_call(sink, {"REQUEST_METHOD": "GET"})[1]["Deliveries"]) == 3


def test_what_the_secret_did_not_sign_is_refused() -> None:
    sink = _sink()
    other = "whsec_" + base64.b64encode(b"o" * 32).decode()
    status, answer = _post(sink, _body("v1", 1), "msg_u_1", secret=other)
    assert status == "401 Unauthorized" and answer["Code"] == "InvalidSignature"
    assert sink.deliveries() == []
    no_secret = WebhookSink(lambda: (), clock=lambda: NOW)
    assert _post(no_secret, _body("v1", 1), "msg_u_1")[0] == "401 Unauthorized"
    status, _ = _call(sink, {"REQUEST_METHOD": "PUT"})
    assert status == "405 Method Not Allowed"


def test_only_the_last_deliveries_are_kept() -> None:
    sink = _sink(keep=2)
    for n in range(1, 4):
        _post(sink, _body("v1", n), f"msg_u_{n}")
    assert [d["Sequence"] for d in sink.deliveries()] == [2, 3]


def test_the_local_stack_notifies_its_sink_on_loopback_only() -> None:
    from pathlib import Path

    from devkit.local import DEV_WEBHOOK_SECRET, LocalStack
    from shared.settings import Settings

    served = Settings.from_env(
        LocalStack(api_url="http://127.0.0.1:8000", data_dir=Path("/d")).environment({})
    )
    assert served.webhook_url == "http://127.0.0.1:8000/_vodfc/webhooks"
    assert served.webhook_secrets == (DEV_WEBHOOK_SECRET,)
    own = LocalStack(api_url="http://127.0.0.1:8000", data_dir=Path("/d")).environment(
        {"WEBHOOK_URL": "http://127.0.0.1:3000/hooks"}
    )
    assert Settings.from_env(own).webhook_url == "http://127.0.0.1:3000/hooks"  # the environment wins
    for stack in (
        LocalStack(api_url="http://192.168.1.5:8000", data_dir=Path("/d")),  # plain HTTP off loopback: none
        LocalStack(api_url="http://127.0.0.1:8000", data_dir=Path("/d"), sink=False),  # in-process invoke
    ):
        assert Settings.from_env(stack.environment({})).webhook_url is None
