"""Notifications of the app through the real handlers: every delivered request is verified with
the standardwebhooks package (the reference verifier, not ours) by a real loopback receiver."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from shared.clock import utcnow
from shared.services.deps import Deps, set_deps
from shared.settings import get_settings
from shared.store import get_store
from shared.vod import get_vod_client
from shared.webhooks import Deliverer
from tests import receiver as loopback
from tests.functional.conftest import Stack, reset_instance_state

SECRET = "whsec_" + base64.b64encode(b"functional-webhook-secret-32byte").decode()
PUBLIC_FIELDS = {
    "VideoId", "Owner", "Status", "Title", "FileName", "Size", "Duration", "Error", "CreatedAt", "UpdatedAt",
    "Extend", "Sequence",
}  # fmt: skip


@dataclass
class Delivery:
    id: str
    timestamp: int
    body: dict[str, Any]
    answered: int | str

    @property
    def type(self) -> str:
        kind: str = self.body["type"]
        return kind


@dataclass
class Receiver:
    """The app's endpoint: verifies every request with standardwebhooks, answers as scripted
    (a status; ``"stall"``: no answer for a second; ``"drop"``: the connection closed unanswered)."""

    answers: list[int | str] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    secrets: tuple[str, ...] = (SECRET,)  # receivers holding each of these keys must accept it

    def __call__(self, request: httpx.Request) -> httpx.Response:
        for secret in self.secrets:
            body = Webhook(secret).verify(request.content, dict(request.headers))
        answer = self.answers.pop(0) if self.answers else 200
        self.deliveries.append(
            Delivery(
                id=request.headers["webhook-id"],
                timestamp=int(request.headers["webhook-timestamp"]),
                body=body,
                answered=answer,
            )
        )
        if answer == "stall":
            time.sleep(1.0)
        if isinstance(answer, str):
            raise ConnectionAbortedError(answer)  # the loopback receiver closes the connection
        return httpx.Response(answer)

    def accepted(self, video_id: str | None = None) -> list[Delivery]:
        return [
            d
            for d in self.deliveries
            if d.answered == 200 and (video_id is None or d.body["data"]["VideoId"] == video_id)
        ]

    def types(self, video_id: str | None = None) -> list[str]:
        return [d.type for d in self.accepted(video_id)]


class Clock:
    """The services' clock: real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class Hooks:
    stack: Stack
    receiver: Receiver
    clock: Clock
    url: str  # WEBHOOK_URL

    def callback(self, name: str, video_id: str, **fields: Any) -> dict[str, Any]:
        body = self.stack.vod_event(name, video_id, **fields)
        status, answer = self.stack.callback(body, ts=int(self.clock().timestamp()))
        assert status == 200, answer
        return answer

    def cleanup(self) -> dict[str, Any]:
        summary = self.stack.cleanup()
        webhooks: dict[str, Any] = summary["webhooks"]
        return webhooks

    def outbox(self) -> dict[str, Any]:
        store = get_store(get_settings())
        return {n.notification_id: n for n in store.list_notifications(limit=100)}


@pytest.fixture
def enable_hooks(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Hooks]]:
    server = loopback.Receiver("/hooks/vodfc")

    def enable(**env: str) -> Hooks:
        monkeypatch.setenv("WEBHOOK_URL", server.url)
        monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        reset_instance_state()
        receiver = Receiver()
        server.answer(receiver)
        clock = Clock()
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
        return Hooks(stack, receiver, clock, settings.webhook_url or "")

    yield enable
    server.close()


def _refusing_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/hooks/vodfc"


@pytest.fixture
def hooks(enable_hooks: Callable[..., Hooks]) -> Hooks:
    return enable_hooks()


def _flow(hooks: Hooks, **create: Any) -> str:
    """An upload from created to ready, VOD's record moving as the real one does."""
    stack = hooks.stack
    video_id: str = stack.create(**create)["VideoId"]
    hooks.callback("FileUploadComplete", video_id)  # genuine: VOD says UploadSucc
    stack.vod.videos[video_id]["Status"] = "Transcoding"
    hooks.callback("StreamTranscodeComplete", video_id)
    stack.vod.videos[video_id].update(Status="Normal", Duration="12.5", Size=1024)
    hooks.callback("TranscodeComplete", video_id)
    return video_id


def test_each_change_is_notified_right_after_it_in_order(hooks: Hooks) -> None:
    video_id = hooks.stack.create(UserData={"Extend": {"order": 7}})["VideoId"]
    assert hooks.receiver.types() == ["upload.created"]  # before the create answered
    hooks.callback("FileUploadComplete", video_id)
    assert hooks.receiver.types()[-1] == "upload.uploaded"
    hooks.stack.vod.videos[video_id]["Status"] = "Transcoding"
    hooks.callback("StreamTranscodeComplete", video_id)
    hooks.stack.vod.videos[video_id].update(Status="Normal", Duration="12.5", Size=1024)
    hooks.callback("TranscodeComplete", video_id)

    accepted = hooks.receiver.accepted(video_id)
    assert [d.type for d in accepted] == [
        "upload.created",
        "upload.uploaded",
        "upload.processing",
        "upload.ready",
    ]
    assert [d.body["data"]["Sequence"] for d in accepted] == [1, 2, 3, 4]
    assert [d.id for d in accepted] == [f"msg_{d.id.split('_')[1]}_{n}" for n, d in enumerate(accepted, 1)]
    ready = accepted[-1].body
    assert set(ready["data"]) == PUBLIC_FIELDS
    assert ready["data"] | {"CreatedAt": None, "UpdatedAt": None} == {
        "VideoId": video_id, "Owner": "alice", "Status": "ready", "Title": "Holiday",
        "FileName": "holiday.mp4", "Size": 1024, "Duration": 12.5, "Error": None,
        "CreatedAt": None, "UpdatedAt": None, "Extend": {"order": 7}, "Sequence": 4,
    }  # fmt: skip
    assert ready["timestamp"].endswith("Z")
    assert all(hooks.outbox()[d.id].state == "delivered" for d in accepted)


def test_a_callbacks_change_is_sent_without_a_claim_of_its_own(
    hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = get_store(get_settings())
    video_id = hooks.stack.create()["VideoId"]
    claims: list[str | None] = []
    claim = store.claim_notifications

    def counted(**kw: Any) -> Any:
        claims.append(kw.get("upload_id"))
        return claim(**kw)

    monkeypatch.setattr(store, "claim_notifications", counted)
    hooks.callback("FileUploadComplete", video_id)
    # The event's own statement leased upload.uploaded; the callback sent it and marked it.
    assert claims == [] and hooks.receiver.types(video_id) == ["upload.created", "upload.uploaded"]
    assert all(n.state == "delivered" for n in hooks.outbox().values())
    # Behind a notification still waiting (the receiver failed it), the next change is not
    # leased: the claim finds the earlier one not yet due, and nothing overtakes it.
    hooks.receiver.answers = [500]
    hooks.callback("StreamTranscodeComplete", video_id)
    assert claims == []
    hooks.stack.vod.videos[video_id]["Status"] = "Normal"  # VOD confirms the final event
    hooks.callback("TranscodeComplete", video_id)
    assert len(claims) == 1 and hooks.receiver.types(video_id)[-1] == "upload.uploaded"
    rows = sorted(hooks.outbox().values(), key=lambda n: n.seq)
    assert [(n.type, n.state, n.attempts) for n in rows[2:]] == [
        ("upload.processing", "pending", 1), ("upload.ready", "pending", 0),
    ]  # fmt: skip


def test_no_credential_key_or_token_is_ever_in_a_notification(hooks: Hooks) -> None:
    created = hooks.stack.create(UserData={"Extend": {"order": 7}})
    text = json.dumps([d.body for d in hooks.receiver.deliveries])
    auth = json.loads(base64.b64decode(created["UploadAuth"]))
    for secret in (
        auth["AccessKeySecret"],
        auth["SecurityToken"],
        auth["AccessKeyId"],
        created["UploadAuth"],
    ):
        assert secret not in text
    assert "vodfc" not in text.lower()  # nor the owner binding VOD holds in Extend


@pytest.mark.parametrize("failure", [500, 404, 301, "stall", "drop", "refused"], ids=str)
def test_a_failing_receiver_changes_no_answer_and_leaves_the_row_pending(
    enable_hooks: Callable[..., Hooks], failure: int | str
) -> None:
    if failure == "refused":
        hooks = enable_hooks(WEBHOOK_URL=_refusing_url())
    else:
        hooks = enable_hooks(WEBHOOK_TIMEOUT_SECONDS="1")
    video_id = hooks.stack.create()["VideoId"]
    hooks.receiver.answers = [failure]
    answer = hooks.callback("FileUploadComplete", video_id)
    assert answer["Result"] == "applied"  # the same answer as with a healthy receiver
    assert hooks.stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]["Status"] == "uploaded"
    rows = {n.type: n for n in hooks.outbox().values()}
    # Refused from the start: the create's notification failed (and paused immediate deliveries);
    # the upload's next one waits behind it, never sent before it.
    failed = rows["upload.created" if failure == "refused" else "upload.uploaded"]
    assert failed.state == "pending" and failed.attempts == 1 and failed.next_attempt_at is not None
    assert rows["upload.uploaded"].state == "pending"


def test_timer_delivery_leaves_every_notification_to_the_cleanup_run(
    enable_hooks: Callable[..., Hooks],
) -> None:
    hooks = enable_hooks(WEBHOOK_DELIVERY="timer")
    video_id = _flow(hooks)
    deleted = hooks.stack.create()["VideoId"]
    assert hooks.stack.http("upload_credentials", "DELETE", f"/uploads/{deleted}")[0] == 200
    # Neither a create, a callback nor a delete waited for the app; nothing is leased either.
    assert hooks.receiver.deliveries == []
    rows = sorted(hooks.outbox().values(), key=lambda n: (json.loads(n.body)["data"]["VideoId"], n.seq))
    expected = {
        video_id: ["upload.created", "upload.uploaded", "upload.processing", "upload.ready"],
        deleted: ["upload.created", "upload.deleted"],
    }
    assert [(n.type, n.state, n.attempts, n.claimed_until) for n in rows] == [
        (kind, "pending", 0, None) for vid in sorted(expected) for kind in expected[vid]
    ]
    # The next timer run sends them all, each upload's in order.
    assert hooks.cleanup() == {"delivered": 6, "failed": 0, "dead": 0, "pending": 0, "disabled": None}
    assert hooks.receiver.types(video_id) == [
        "upload.created", "upload.uploaded", "upload.processing", "upload.ready",
    ]  # fmt: skip
    assert hooks.receiver.types(deleted) == ["upload.created", "upload.deleted"]


def test_a_failing_receiver_changes_no_create_or_delete_answer(hooks: Hooks) -> None:
    hooks.receiver.answers = [503]
    created = hooks.stack.create()
    assert created["VideoId"] and created["UploadAuth"]
    status, deleted, _ = hooks.stack.http("upload_credentials", "DELETE", f"/uploads/{created['VideoId']}")
    assert status == 200 and deleted["Status"] == "deleted"
    assert hooks.receiver.accepted() == []  # the first answer paused immediate deliveries
    hooks.clock.advance(10)
    summary = hooks.cleanup()
    assert summary == {"delivered": 2, "failed": 0, "dead": 0, "pending": 0, "disabled": None}
    assert hooks.receiver.types() == ["upload.created", "upload.deleted"]


def test_the_cleanup_timer_retries_and_counts(hooks: Hooks) -> None:
    hooks.receiver.answers = [500]
    video_id = hooks.stack.create()["VideoId"]
    assert hooks.cleanup() == {
        "delivered": 0,
        "failed": 0,
        "dead": 0,
        "pending": 1,
        "disabled": None,
    }  # not due
    hooks.clock.advance(6)  # the first step, 5 s
    assert hooks.cleanup() == {"delivered": 1, "failed": 0, "dead": 0, "pending": 0, "disabled": None}
    first, second = hooks.receiver.deliveries
    assert first.id == second.id == next(iter(hooks.outbox()))  # the receiver's idempotency key
    assert second.timestamp >= first.timestamp and second.answered == 200
    assert hooks.receiver.types(video_id) == ["upload.created"]


def test_order_per_upload_holds_when_an_earlier_delivery_fails(hooks: Hooks) -> None:
    hooks.receiver.answers = [500]
    video_id = hooks.stack.create()["VideoId"]
    other = hooks.stack.create(owner="bob")["VideoId"]
    hooks.callback("FileUploadComplete", video_id)  # its created is still pending: uploaded waits
    assert hooks.receiver.types(video_id) == []
    assert hooks.receiver.types(other) == ["upload.created"]  # other uploads are not held up
    hooks.clock.advance(6)
    hooks.cleanup()
    assert hooks.receiver.types(video_id) == ["upload.created", "upload.uploaded"]


def test_410_disables_the_endpoint_until_it_is_enabled(hooks: Hooks) -> None:
    hooks.receiver.answers = [410]
    video_id = hooks.stack.create()["VideoId"]
    hooks.callback("FileUploadComplete", video_id)
    summary = hooks.cleanup()
    assert summary["disabled"].startswith("HTTP 410 Gone") and summary["pending"] == 2
    assert len(hooks.receiver.deliveries) == 1  # nothing more was sent
    get_store(get_settings()).set_webhook_endpoint(hooks.url, disabled_reason=None, now=hooks.clock())
    summary = hooks.cleanup()
    assert summary["delivered"] == 2 and summary["disabled"] is None
    assert hooks.receiver.types(video_id) == ["upload.created", "upload.uploaded"]


def test_webhook_events_chooses_the_types(enable_hooks: Callable[..., Hooks]) -> None:
    hooks = enable_hooks(WEBHOOK_EVENTS="upload.ready,upload.failed")
    video_id = _flow(hooks)
    assert hooks.receiver.types(video_id) == ["upload.ready"]
    assert [n.type for n in hooks.outbox().values()] == ["upload.ready"]  # the others never recorded
    assert (
        hooks.receiver.accepted()[0].body["data"]["Sequence"] == 4
    )  # the sequence still counts every change


def test_rotation_signs_with_both_keys(enable_hooks: Callable[..., Hooks]) -> None:
    previous = "whsec_" + base64.b64encode(b"p" * 40).decode()
    hooks = enable_hooks(WEBHOOK_SECRET_PREVIOUS=previous)
    hooks.receiver.secrets = (SECRET, previous)  # a receiver already rotated, and one not yet
    video_id = _flow(hooks)
    assert len(hooks.receiver.accepted(video_id)) == 4


def test_nothing_is_recorded_or_sent_without_a_webhook_url(stack: Stack) -> None:
    video_id = stack.create()["VideoId"]
    stack.vod.videos[video_id].update(Status="Normal")
    body = stack.vod_event("TranscodeComplete", video_id)
    assert stack.callback(body)[1]["Result"] == "applied"
    summary = stack.cleanup()
    assert summary["webhooks"] == {}
    store = get_store(get_settings())
    assert store.list_notifications() == [] and store.notification_counts().pending == 0


def test_an_event_from_the_mns_queue_is_notified_too(hooks: Hooks) -> None:
    from shared.context import make_context
    from tests.functional.conftest import load_event

    video_id = hooks.stack.create()["VideoId"]
    message = load_event("mns/fc3_single.json")
    message["data"]["messageBody"] = json.dumps(hooks.stack.vod_event("FileUploadComplete", video_id))
    answer = hooks.stack.modules["vod_callback"].handler(
        json.dumps(message).encode(), make_context(function_name="vod_callback")
    )
    assert json.loads(answer) == {"applied": 1}
    assert hooks.receiver.types(video_id) == ["upload.created", "upload.uploaded"]


def test_images_and_attached_media_are_notified_under_their_own_types(hooks: Hooks) -> None:
    stack = hooks.stack
    image_id = stack.create_image(UserData={"Extend": {"cover": True}})["ImageId"]
    media_id = stack.create_attached()["MediaId"]
    hooks.callback("ImageUploadComplete", image_id, Size=2048)
    status, _, _ = stack.http("upload_credentials", "DELETE", f"/attached-media/{media_id}")
    assert status == 200

    by_type = {d.type: d.body["data"] for d in hooks.receiver.accepted()}
    assert list(by_type) == [
        "image.created",
        "attached_media.created",
        "image.ready",
        "attached_media.deleted",
    ]
    ready = by_type["image.ready"]
    assert ready["ImageId"] == image_id and ready["Status"] == "ready" and ready["Size"] == 2048
    assert ready["Extend"] == {"cover": True} and "VideoId" not in ready
    assert by_type["attached_media.deleted"]["MediaId"] == media_id
