"""devkit/webhooks.py: ``vodfc webhooks list|replay|enable|verify`` against a store with rows, and
``verify`` on requests signed by the standardwebhooks package (an independent signer)."""

from __future__ import annotations

import base64
import io
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from devkit.cli import main as vodfc
from devkit.webhooks import parse_captured_request, parse_since
from shared.settings import get_settings
from shared.states import NOTIFICATION_TYPES
from shared.store import Store, create_store, new_reservation

SECRET = "whsec_" + base64.b64encode(b"cli-test-webhook-secret-32-bytes").decode()
PREVIOUS = "whsec_" + base64.b64encode(b"p" * 24).decode()
URL = "https://hooks.example.com/vodfc"
BODY = (
    '{"type":"upload.ready","timestamp":"2026-11-25T10:00:00.000000Z","data":{"VideoId":"v9","Sequence":4}}'
)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Store]]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("WEBHOOK_URL", URL)
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    store = create_store(url, notify_types=frozenset(NOTIFICATION_TYPES))
    store.migrate()
    yield url, store
    store.close()


def _upload(store: Store, now: datetime) -> str:
    uid = uuid.uuid4().hex
    reservation = new_reservation(
        upload_id=uid, owner="o", reference_id=uid, title="t", file_name="a.mp4", file_size=1, now=now
    )
    store.reserve_upload(reservation, max_pending=10)
    assert store.attach_video(uid, f"v{uid}", None, now)
    return f"msg_{uid}_1"


def _rows(store: Store) -> dict[str, str]:
    """Three notifications: one delivered, one dead, one pending after a failed attempt."""
    now = datetime.now(timezone.utc) - timedelta(minutes=30)
    delivered, dead, pending = (_upload(store, now) for _ in range(3))
    claimed = {n.notification_id for n in store.claim_notifications(limit=10, lease_seconds=60, now=now)}
    assert claimed == {delivered, dead, pending}
    store.notification_delivered(delivered, status=204, now=now)
    store.notification_failed(dead, status=500, error="HTTP 500", retry_at=None, now=now)
    store.notification_failed(pending, status=None, error="timeout after 10.0 s", retry_at=now, now=now)
    return {"delivered": delivered, "dead": dead, "pending": pending}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = vodfc(["webhooks", *argv])
    return code, capsys.readouterr().out


def test_list_counts_and_shows_the_latest_failures(
    db: tuple[str, Store], capsys: pytest.CaptureFixture[str]
) -> None:
    _, store = db
    ids = _rows(store)
    code, out = run(capsys, "list")
    assert code == 0
    assert "endpoint   hooks.example.com: enabled" in out
    assert "pending    1\ndelivered  1\ndead       1" in out
    failures = out.split("latest failures:")[1]
    assert ids["dead"] in failures and "HTTP 500" in failures
    assert ids["pending"] in failures and "timeout after 10.0 s" in failures
    assert ids["delivered"] not in failures
    store.set_webhook_endpoint(URL, disabled_reason="HTTP 410 Gone at then", now=datetime.now(timezone.utc))
    assert "DISABLED (HTTP 410 Gone at then; vodfc webhooks enable)" in run(capsys, "list")[1]


def test_replay_by_id_or_since_keeps_the_id_and_restarts_the_schedule(
    db: tuple[str, Store], capsys: pytest.CaptureFixture[str]
) -> None:
    _, store = db
    ids = _rows(store)
    code, out = run(capsys, "replay", "--id", ids["dead"])
    assert code == 0 and out.startswith("1 notification(s) pending again")
    row = next(n for n in store.list_notifications() if n.notification_id == ids["dead"])
    assert (row.state, row.attempts, row.finished_at) == ("pending", 0, None)
    code, out = run(capsys, "replay", "--since", "2h")
    assert code == 0 and out.startswith("1 notification(s)")  # the delivered one; the others are pending
    assert store.notification_counts().pending == 3
    assert run(capsys, "replay", "--since", "2026-01-01T00:00:00Z")[0] == 1  # nothing left to replay
    assert vodfc(["webhooks", "replay", "--since", "yesterday"]) == 2
    store.set_webhook_endpoint(URL, disabled_reason="HTTP 410 Gone", now=datetime.now(timezone.utc))
    store.notification_delivered(ids["delivered"], status=200, now=datetime.now(timezone.utc))
    assert (
        "is disabled: run `vodfc webhooks enable` first" in run(capsys, "replay", "--id", ids["delivered"])[1]
    )


def test_enable_resumes_deliveries(db: tuple[str, Store], capsys: pytest.CaptureFixture[str]) -> None:
    _, store = db
    _rows(store)
    store.set_webhook_endpoint(URL, disabled_reason="HTTP 410 Gone at then", now=datetime.now(timezone.utc))
    code, out = run(capsys, "enable")
    assert code == 0 and "was disabled: HTTP 410 Gone at then" in out and "1 pending" in out
    assert store.webhook_endpoint_disabled(URL) is None
    other = "https://other.example.com/x"
    assert run(capsys, "--database-url", db[0], "enable", "--url", other)[0] == 0
    assert store.webhook_endpoint_disabled(other) is None


def test_enable_needs_a_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert vodfc(["webhooks", "enable"]) == 2


def _capture(headers: dict[str, str], body: str, *, newline: str = "\r\n") -> bytes:
    lines = [
        "POST /hooks/vodfc HTTP/1.1",
        "Host: app.example.com",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return (newline.join(lines) + newline + newline + body).encode()


def _signed(secret: str = SECRET, *, at: int | None = None, msg_id: str = "msg_v9_4") -> dict[str, str]:
    ts = at if at is not None else int(datetime.now(timezone.utc).timestamp())
    when = datetime.fromtimestamp(ts, tz=timezone.utc)
    return {
        "Content-Type": "application/json",
        "Content-Length": str(len(BODY.encode())),
        "Webhook-Id": msg_id,
        "Webhook-Timestamp": str(ts),
        "Webhook-Signature": Webhook(secret).sign(msg_id, when, BODY),
    }


def _verify(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], raw: bytes, *argv: str):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    return run(capsys, "verify", *argv)


def test_verify_accepts_what_the_reference_library_signed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _verify(monkeypatch, capsys, _capture(_signed(), BODY), "--secret", SECRET)
    assert code == 0
    assert out.startswith("verified: msg_v9_4 upload.ready of v9 (Sequence 4)") and "key 1 of 1" in out
    # an LF-only capture with trailing bytes after Content-Length, and the previous key
    raw = _capture(_signed(PREVIOUS), BODY, newline="\n") + b"\n"
    code, out = _verify(monkeypatch, capsys, raw, "--secret", SECRET, "--secret", PREVIOUS)
    assert code == 0 and "key 2 of 2" in out


# Built when each test runs (a capture made at collection time would age past the 5-minute window).
REFUSED: dict[str, tuple[Callable[[], bytes], str]] = {
    "tampered body": (
        lambda: _capture(_signed(), BODY.replace("ready", "failed")),
        "No webhook signature matches",
    ),
    "another key": (lambda: _capture(_signed(PREVIOUS), BODY), "No webhook signature matches"),
    "too old": (lambda: _capture(_signed(at=1_700_000_000), BODY), "outside the tolerance"),
    "no blank line": (lambda: b"Webhook-Id: x\r\nno blank line", "no blank line"),
    "not a header": (lambda: b"Webhook-Id: x\r\nnot a header\r\n\r\n{}", "not a header line"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_verify_refuses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    build, reason = REFUSED[case]
    code, out = _verify(monkeypatch, capsys, build(), "--secret", SECRET)
    assert code == 1 and out.startswith("NOT verified:") and reason in out


def test_verify_may_ignore_the_time_and_reads_the_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _capture(_signed(at=1_700_000_000), BODY)
    assert _verify(monkeypatch, capsys, old, "--any-time", "--secret", SECRET)[0] == 0
    assert _verify(monkeypatch, capsys, old, "--any-time")[0] == 2  # no secret anywhere
    monkeypatch.setenv("WEBHOOK_URL", URL)
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    assert _verify(monkeypatch, capsys, old, "--any-time")[0] == 0


def test_parse_helpers() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
    assert parse_since("90m", now=now) == now - timedelta(minutes=90)
    assert parse_since("3d", now=now) == now - timedelta(days=3)
    assert parse_since("2026-11-25T10:00:00Z", now=now) == datetime(2026, 11, 25, 10, tzinfo=timezone.utc)
    assert parse_since("2026-11-25T10:00:00", now=now).tzinfo == timezone.utc
    with pytest.raises(ValueError, match="90m, 2h, 3d"):
        parse_since("soon", now=now)
    headers, body = parse_captured_request(b"X-A: 1\r\nContent-Length: 2\r\n\r\n{}\r\n")
    assert headers == {"x-a": "1", "content-length": "2"} and body == b"{}"
