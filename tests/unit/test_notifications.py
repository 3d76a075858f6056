"""shared/services/notifications.py over a real SQLite outbox and a real loopback receiver:
what is sent when, what each answer does to the row, budgets, and that nothing ever raises."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from shared import errors
from shared.services.deps import Deps
from shared.services.notifications import deliver_due, deliver_pending, lease_seconds
from shared.settings import Settings, get_settings
from shared.states import NOTIFICATION_TYPES
from shared.store import Notification, Store, create_store, new_reservation
from shared.vod import VodClient
from shared.webhooks import RETRY_DELAYS, Deliverer
from tests.receiver import Receiver

SECRET = "whsec_" + base64.b64encode(b"unit-test-webhook-secret-32byte!").decode()
URL = "https://hooks.example.com/vodfc?token=receiver-path-token"
T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=timezone.utc)


class Clock:
    """The store's clock (datetimes) and the budgets' (monotonic seconds), advanced together."""

    def __init__(self) -> None:
        self.now = T0
        self.mono = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = create_store(f"sqlite:///{tmp_path / 'n.db'}", notify_types=frozenset(NOTIFICATION_TYPES))
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def _no_vod() -> VodClient:
    raise AssertionError("delivering notifications never calls VOD")


def make_deps(store: Store, clock: Clock, url: str = URL, **settings: Any) -> Deps:
    s = Settings(webhook_url=url, webhook_secret=SECRET, **settings)
    deliverer = Deliverer(s, monotonic=clock.monotonic, random=lambda: 0.5)
    return Deps(settings=s, store=store, vod_source=_no_vod, clock=clock, webhooks=deliverer)


def spy_timeouts(deps: Deps, clock: Clock, monkeypatch: pytest.MonkeyPatch, *, spend: bool) -> list[float]:
    """The timeout of every attempt, as the deliverer is given it; with ``spend``, each attempt
    also takes its whole timeout on ``clock`` (a receiver as slow as allowed)."""
    assert deps.webhooks is not None
    real = deps.webhooks.attempt
    seen: list[float] = []

    def attempt(msg_id: str, body: str, *, timeout: float) -> Any:
        seen.append(timeout)
        outcome = real(msg_id, body, timeout=timeout)
        if spend:
            clock.advance(timeout)
        return outcome

    monkeypatch.setattr(deps.webhooks, "attempt", attempt)
    return seen


def upload(store: Store, *moves: str, now: datetime = T0) -> str:
    """An upload reserved, attached (``upload.created``) and moved through ``moves``."""
    uid = uuid.uuid4().hex
    store.reserve_upload(
        new_reservation(
            upload_id=uid, owner="alice", reference_id=uid, title="t", file_name="a.mp4", file_size=1, now=now
        ),
        max_pending=100,
    )
    assert store.attach_video(uid, f"v{uid}", now + timedelta(hours=1), now)
    for to in moves:
        assert store.transition(f"v{uid}", to=to, now=now)
    return uid


def rows(store: Store) -> dict[str, Notification]:
    return {n.notification_id: n for n in store.list_notifications(limit=100)}


def verified(request: httpx.Request) -> dict[str, Any]:
    body: dict[str, Any] = Webhook(SECRET).verify(request.content, dict(request.headers))
    return body


def test_nothing_happens_when_notifications_are_off(store: Store, clock: Clock) -> None:
    deps = Deps(settings=Settings(), store=store, vod_source=_no_vod, clock=clock)
    assert deliver_pending(deps, seconds=5, upload_id="x").to_dict() == {
        "delivered": 0, "failed": 0, "dead": 0, "errors": 0, "disabled": None,
    }  # fmt: skip
    assert deliver_due(deps, seconds=5) == {}


def test_right_after_a_change_only_that_upload_goes_out_in_order(
    store: Store, clock: Clock, receiver: Receiver
) -> None:
    receiver.answer(httpx.Response(200))
    mine = upload(store, "uploaded", "processing")
    other = upload(store)
    deps = make_deps(store, clock, receiver.url)
    assert deliver_pending(deps, seconds=3, upload_id=mine).delivered == 1  # the oldest only, by default
    counts = deliver_pending(deps, seconds=3, upload_id=mine, limit=5)
    assert counts.delivered == 2 and counts.failed == 0
    sent = [verified(c.request) for c in receiver.calls]
    assert [b["type"] for b in sent] == ["upload.created", "upload.uploaded", "upload.processing"]
    assert [b["data"]["Sequence"] for b in sent] == [1, 2, 3]
    assert {c.request.headers["webhook-id"] for c in receiver.calls} == {f"msg_{mine}_{n}" for n in (1, 2, 3)}
    state = rows(store)
    assert state[f"msg_{other}_1"].state == "pending"  # the timer's
    assert all(state[f"msg_{mine}_{n}"].state == "delivered" for n in (1, 2, 3))


def test_a_failed_attempt_is_due_again_after_the_next_step(
    store: Store, clock: Clock, receiver: Receiver
) -> None:
    receiver.answer(httpx.Response(500))
    uid = upload(store, "uploaded")
    deps = make_deps(store, clock, receiver.url)
    counts = deliver_pending(deps, seconds=3, upload_id=uid)
    assert (counts.delivered, counts.failed) == (0, 1)
    first, second = rows(store)[f"msg_{uid}_1"], rows(store)[f"msg_{uid}_2"]
    assert first.state == "pending" and first.attempts == 1 and first.last_status == 500
    assert first.next_attempt_at == T0 + timedelta(seconds=RETRY_DELAYS[0])
    assert first.last_error == "HTTP 500"
    assert second.attempts == 0  # waits behind the first: never sent before it
    assert len(receiver.calls) == 1


def test_the_last_failure_makes_it_dead_and_it_is_logged(
    store: Store, clock: Clock, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.answer(httpx.Response(503))
    uid = upload(store)
    deps = make_deps(store, clock, receiver.url)
    with caplog.at_level(logging.INFO, logger="vodfc"):
        for _ in range(len(RETRY_DELAYS) + 1):
            deliver_due(deps, seconds=30)
            clock.advance(48 * 3600)
    row = rows(store)[f"msg_{uid}_1"]
    assert row.state == "dead" and row.attempts == len(RETRY_DELAYS) + 1 and row.finished_at is not None
    assert len(receiver.calls) == len(RETRY_DELAYS) + 1
    dead = [r for r in caplog.records if r.getMessage().startswith("notification dead")]
    assert len(dead) == 1 and dead[0].notification_id == f"msg_{uid}_1"  # type: ignore[attr-defined]
    assert store.notification_counts().dead == 1
    for record in caplog.records:  # neither the secret nor the URL's token in any line
        text = json.dumps({k: str(v) for k, v in vars(record).items()})
        assert SECRET not in text and SECRET[6:] not in text and "receiver-path-token" not in text


def test_410_disables_the_endpoint_and_keeps_everything_pending(
    store: Store, clock: Clock, receiver: Receiver
) -> None:
    receiver.answer(httpx.Response(410))
    uid = upload(store, "uploaded")
    deps = make_deps(store, clock, receiver.url)
    counts = deliver_pending(deps, seconds=3, upload_id=uid)
    assert counts.disabled is not None and counts.disabled.startswith("HTTP 410 Gone")
    assert store.webhook_endpoint_disabled(receiver.url) == counts.disabled
    assert rows(store)[f"msg_{uid}_1"].state == "pending"
    # nothing more goes out, right after changes or from the timer
    later = upload(store)
    assert deliver_pending(deps, seconds=3, upload_id=later).disabled == counts.disabled
    summary = deliver_due(deps, seconds=30)
    assert summary["disabled"] == counts.disabled and summary["pending"] == 3 and summary["delivered"] == 0
    assert len(receiver.calls) == 1
    # the operator enables it: the pending ones go out, in order, the 410'd one first
    store.set_webhook_endpoint(receiver.url, disabled_reason=None, now=clock())
    receiver.answer(httpx.Response(200))
    summary = deliver_due(deps, seconds=30)
    assert summary["delivered"] == 3 and summary["pending"] == 0 and summary["disabled"] is None
    ids = [r.headers["webhook-id"] for r in receiver.requests[1:]]
    mine = [i for i in ids if uid in i]
    assert mine == [f"msg_{uid}_1", f"msg_{uid}_2"]


def test_an_immediate_delivery_trusts_what_it_read_of_the_endpoint_for_a_minute(
    store: Store, clock: Clock, receiver: Receiver
) -> None:
    receiver.answer(httpx.Response(200))
    deps = make_deps(store, clock, receiver.url)
    store.set_webhook_endpoint(receiver.url, disabled_reason="HTTP 410 Gone at then", now=clock())
    assert deliver_pending(deps, seconds=3, upload_id=upload(store)).disabled is not None
    store.set_webhook_endpoint(receiver.url, disabled_reason=None, now=clock())  # `vodfc webhooks enable`
    assert deliver_pending(deps, seconds=3, upload_id=upload(store)).disabled is not None  # cached
    clock.advance(61)
    assert deliver_pending(deps, seconds=3, upload_id=upload(store)).delivered == 1


def test_throttling_stops_the_run_and_pauses_immediate_deliveries(
    store: Store, clock: Clock, receiver: Receiver
) -> None:
    receiver.answer(httpx.Response(429, headers={"Retry-After": "120"}))
    first, second = upload(store), upload(store)
    deps = make_deps(store, clock, receiver.url)
    summary = deliver_due(deps, seconds=30)
    assert summary["failed"] == 1 and summary["pending"] == 2
    assert len(receiver.calls) == 1  # the rest of the run sends nothing
    throttled = next(n for n in rows(store).values() if n.attempts == 1)
    assert throttled.next_attempt_at == T0 + timedelta(seconds=120)  # Retry-After, longer than 5 s
    assert deliver_pending(deps, seconds=3, upload_id=second).delivered == 0  # paused
    assert len(receiver.calls) == 1
    clock.advance(121)
    receiver.answer(httpx.Response(200))
    assert deliver_pending(deps, seconds=3, upload_id=first).delivered == 1


def test_the_budget_is_never_exceeded(
    store: Store, clock: Clock, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every attempt takes its whole timeout, then fails (a slow 500: nothing throttles, so the
    # run goes on sending as long as its budget allows).
    started = clock.monotonic()
    receiver.answer(httpx.Response(500))
    for _ in range(5):
        upload(store)
    deps = make_deps(store, clock, receiver.url, webhook_timeout_seconds=1.0)
    timeouts = spy_timeouts(deps, clock, monkeypatch, spend=True)
    counts = deliver_pending(deps, seconds=2.6)
    assert timeouts == pytest.approx([1.0, 1.0, 0.6])
    assert clock.monotonic() - started == pytest.approx(2.6)
    assert counts.failed == 3 and len(receiver.calls) == 3
    # the two claimed but not sent keep their lease: nobody else sends them meanwhile
    assert sum(1 for n in rows(store).values() if n.attempts == 0 and n.claimed_until is not None) == 2


def test_the_budget_left_caps_the_timeout(
    store: Store, clock: Clock, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.answer(httpx.Response(200))
    uid = upload(store)
    deps = make_deps(store, clock, receiver.url, webhook_timeout_seconds=10.0)
    timeouts = spy_timeouts(deps, clock, monkeypatch, spend=False)
    deliver_pending(deps, seconds=0.8, upload_id=uid)
    assert timeouts == pytest.approx([0.8])
    assert deliver_pending(deps, seconds=0.2, upload_id=upload(store)).delivered == 0  # too little left
    assert len(receiver.calls) == 1


def test_a_store_failure_is_counted_never_raised(
    store: Store, clock: Clock, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    deps = make_deps(store, clock, receiver.url)

    def down(**kw: Any) -> list[Notification]:
        raise errors.StoreUnavailable()

    monkeypatch.setattr(store, "claim_notifications", down)
    assert deliver_pending(deps, seconds=3, upload_id="u").errors == 1
    assert deliver_due(deps, seconds=3)["errors"] == 1
    monkeypatch.setattr(store, "notification_counts", down)
    summary = deliver_due(deps, seconds=3)
    assert summary["errors"] == 2 and "pending" not in summary


def test_a_bug_is_logged_with_its_traceback_never_raised(
    store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared import log

    log.configure_logging(level="INFO")
    deps = make_deps(store, clock)

    def broken(*a: Any, **kw: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(store, "webhook_endpoint_disabled", broken)
    assert deliver_pending(deps, seconds=3, upload_id="u").errors == 1
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line["level"] == "ERROR" and line["message"] == "notifications not delivered"
    assert "RuntimeError: boom" in line["exc"]


def test_get_deps_builds_the_sender_from_the_settings_and_closes_it_when_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.services.deps import get_deps, set_deps

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'd.db'}")
    assert get_deps().webhooks is None
    set_deps(None)
    get_settings.cache_clear()
    monkeypatch.setenv("WEBHOOK_URL", URL)
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    deliverer = get_deps().webhooks
    assert isinstance(deliverer, Deliverer) and deliverer.url == URL
    closed: list[bool] = []
    monkeypatch.setattr(deliverer, "close", lambda: closed.append(True))
    set_deps(None)
    assert closed == [True]


def test_a_change_leases_its_notification_only_when_it_would_be_sent_right_after(
    store: Store, clock: Clock
) -> None:
    assert lease_seconds(Deps(settings=Settings(), store=store, vod_source=_no_vod, clock=clock)) is None
    deps = make_deps(store, clock, webhook_timeout_seconds=4.0)
    assert deps.webhooks is not None
    assert lease_seconds(deps) == 4.0 + 30.0  # the attempt's timeout and the claim's margin
    deps.webhooks.remember_endpoint("HTTP 410 Gone at then")
    assert lease_seconds(deps) is None  # known disabled: nothing would go out
    clock.advance(61)
    assert lease_seconds(deps) == 34.0  # no longer known: deliver_pending reads the store again
    deps.webhooks.pause(10)
    assert lease_seconds(deps) is None
