"""The fault test of the app's notifications, on SQLite and on PostgreSQL: a real HTTP receiver
(a thread on loopback, verifying every request with the standardwebhooks package) answers 500 to
the first three attempts and lets the fourth time out, then recovers. The real handlers run the
upload flow of two uploads (VOD faked behind respx, its record moving as the real one's does),
then the cleanup timer runs until nothing is pending: every notification must have arrived
exactly once, in order per upload, created → uploaded → processing → ready."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import respx
from standardwebhooks import Webhook, WebhookVerificationError

from devkit.handlers import load_handler_module
from shared.clock import utcnow
from shared.services.deps import Deps, set_deps
from shared.settings import get_settings
from shared.store import get_store
from shared.vod import get_vod_client
from shared.webhooks import Deliverer
from tests.functional.conftest import (
    CALLBACK_KEY,
    CALLBACK_URL,
    JWT_SECRET,
    VOD_URL,
    FakeVod,
    Stack,
    reset_instance_state,
)

pytestmark = pytest.mark.e2e

SECRET = "whsec_" + base64.b64encode(b"e2e-fault-test-webhook-secret-32").decode()
TIMEOUT = 0.6  # WEBHOOK_TIMEOUT_SECONDS: 0.3 s for the answer's headers
HANG = 1.2  # what the receiver takes on the attempt that must time out


@dataclass
class Receipt:
    id: str
    type: str
    video_id: str
    sequence: int
    answered: int | str


@dataclass
class FlakyReceiver:
    """Answers ``script`` in order (an int status, or "hang"), then 200; keeps every receipt."""

    script: list[int | str] = field(default_factory=lambda: [500, 500, 500, "hang"])
    receipts: list[Receipt] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self) -> FlakyReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = Webhook(SECRET).verify(body, dict(self.headers.items()))
                except WebhookVerificationError as exc:
                    with receiver.lock:
                        receiver.refused.append(str(exc))
                    self._answer(401)
                    return
                with receiver.lock:
                    action = receiver.script.pop(0) if receiver.script else 200
                    receiver.receipts.append(
                        Receipt(
                            id=self.headers["webhook-id"],
                            type=payload["type"],
                            video_id=payload["data"]["VideoId"],
                            sequence=payload["data"]["Sequence"],
                            answered=action,
                        )
                    )
                if action == "hang":
                    time.sleep(HANG)  # the sender has given up by now: this answer is lost
                    action = 503
                self._answer(int(action))

            def _answer(self, status: int) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender timed out and closed the connection

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/vodfc"

    def arrived(self) -> list[Receipt]:
        """The receipts the receiver accepted (answered 2xx in time)."""
        with self.lock:
            return [r for r in self.receipts if r.answered == 200]


class Clock:
    """The services' clock: real time plus an offset the test moves forward (the retry schedule
    runs in hours; the signatures' timestamps stay real, as the receiver's window requires)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@pytest.fixture
def receiver() -> Iterator[FlakyReceiver]:
    flaky = FlakyReceiver().start()
    yield flaky
    flaky.stop()


@pytest.fixture
def faulty_stack(
    store_url: str, receiver: FlakyReceiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[Stack, Clock]]:
    env = {
        "VOD_REGION": "cn-shanghai",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "test-access-key-id",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "test-access-key-secret",
        "DATABASE_URL": store_url,
        "AUTH_MODE": "jwt",
        "JWT_SECRET": JWT_SECRET,
        "CALLBACK_URL": CALLBACK_URL,
        "CALLBACK_AUTH_KEY": CALLBACK_KEY,
        "WEBHOOK_URL": receiver.url,
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_TIMEOUT_SECONDS": str(TIMEOUT),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_instance_state()
    vod = FakeVod()
    clock = Clock()
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        router.post(f"{VOD_URL}/").mock(side_effect=vod)
        router.route(host="127.0.0.1").pass_through()  # the receiver is real
        settings = get_settings()
        set_deps(
            Deps(
                settings=settings,
                store=get_store(settings),
                vod_source=lambda: get_vod_client(settings),
                clock=clock,
                webhooks=Deliverer(settings, random=lambda: 0.5),
            )
        )
        modules = {n: load_handler_module(n) for n in ("upload_credentials", "vod_callback", "cleanup")}
        yield Stack(vod=vod, router=router, modules=modules), clock
    reset_instance_state()


def _callback(stack: Stack, clock: Clock, name: str, video_id: str) -> None:
    status, answer = stack.callback(stack.vod_event(name, video_id), ts=int(clock().timestamp()))
    assert (status, answer["Result"]) == (200, "applied")  # whatever the receiver does


def test_every_notification_arrives_once_in_order_after_500s_and_a_timeout(
    faulty_stack: tuple[Stack, Clock], receiver: FlakyReceiver
) -> None:
    stack, clock = faulty_stack
    # given two uploads going through the whole flow while the receiver fails
    videos = [stack.create(owner=owner)["VideoId"] for owner in ("alice", "bob")]
    for video_id in videos:
        _callback(stack, clock, "FileUploadComplete", video_id)
        stack.vod.videos[video_id]["Status"] = "Transcoding"
        _callback(stack, clock, "StreamTranscodeComplete", video_id)
        stack.vod.videos[video_id].update(Status="Normal", Duration="9.5", Size=2048)
        _callback(stack, clock, "TranscodeComplete", video_id)
    assert receiver.arrived() == []

    # when the cleanup timer runs as the schedule comes due
    runs: list[dict[str, Any]] = []
    for _ in range(12):
        clock.offset += timedelta(hours=1)
        runs.append(stack.cleanup()["webhooks"])
        if runs[-1]["pending"] == 0:
            break

    # then every notification arrived exactly once, in order per upload, and none is left
    store = get_store(get_settings())
    outbox = {n.notification_id: n for n in store.list_notifications(limit=100)}
    assert len(outbox) == 8 and {n.state for n in outbox.values()} == {"delivered"}
    arrived = receiver.arrived()
    assert sorted(r.id for r in arrived) == sorted(outbox)  # once each
    for video_id in videos:
        mine = [r for r in arrived if r.video_id == video_id]
        assert [r.type for r in mine] == [
            "upload.created",
            "upload.uploaded",
            "upload.processing",
            "upload.ready",
        ]
        assert [r.sequence for r in mine] == [1, 2, 3, 4]
    # the failed attempts were the same notifications (same webhook-id), verified like the rest
    failed = [r for r in receiver.receipts if r.answered != 200]
    assert [r.answered for r in failed] == [500, 500, 500, "hang"]
    assert {r.id for r in failed} <= set(outbox) and receiver.refused == []
    retried = {r.id for r in failed}
    assert all(outbox[i].attempts >= 2 for i in retried)
    assert sum(run["delivered"] for run in runs) == 8 and all(run["dead"] == 0 for run in runs)
    assert store.notification_counts().pending == 0


def test_the_run_line_counts_the_deliveries(
    faulty_stack: tuple[Stack, Clock], receiver: FlakyReceiver
) -> None:
    stack, _ = faulty_stack
    receiver.script = []
    stack.create()
    summary = stack.cleanup()
    assert summary["webhooks"] == {"delivered": 0, "failed": 0, "dead": 0, "disabled": None, "pending": 0}
    assert json.dumps(summary)  # the one log line holds it as is
