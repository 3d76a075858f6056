"""Faults: VOD throttling, 5xx, slow answers, refused connections and garbage; the store failing at
each step; cleanup interrupted. Each test checks the answer (status, VOD-style ``Code``, our
``RequestId``, ``Retry-After``), that nothing was lost or half-written, and that the time a client
waits is bounded by ``VOD_DEADLINE_SECONDS`` (a fake clock: no test sleeps for real).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from shared.services.deps import get_deps, set_deps
from shared.settings import get_settings
from tests.functional.conftest import ROOT, Stack, reset_instance_state
from tests.security.helpers import (
    Crash,
    FlakyStore,
    garbage,
    install,
    refused,
    throttled,
    unavailable,
    vod_error,
)

BODY = {"Title": "Holiday", "FileName": "holiday.mp4", "FileSize": 1024}


# --- helpers -------------------------------------------------------------------------------------
def rows() -> list[dict[str, Any]]:
    """Every upload row of the stack's SQLite store, internal ``creating`` ones included."""
    url = get_settings().database_url.get_secret_value()
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM uploads")]
    finally:
        conn.close()


def assert_error(
    answer: tuple[int, dict[str, Any], dict[str, str]], status: int, code: str, *, retry_after: bool
) -> dict[str, Any]:
    got, body, headers = answer
    assert got == status, body
    assert body["Code"] == code or body["Code"].startswith(code + "."), body
    assert body["RequestId"] == headers["X-Request-Id"] and body["RequestId"]
    assert body["Message"]
    assert ("Retry-After" in headers) == retry_after, headers
    if retry_after:
        assert int(headers["Retry-After"]) >= 1
    assert "UploadAuth" not in body and "UploadAddress" not in body
    return body


def create(stack: Stack, owner: str = "alice", **headers: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    return stack.http("upload_credentials", "POST", "/uploads", body=BODY, owner=owner, headers=headers)


def later(hours: float = 3.0) -> None:
    """Make the services' wall clock jump ahead (cleanup leases and staleness use it)."""
    offset = timedelta(hours=hours)
    set_deps(replace(get_deps(), clock=lambda: datetime.now(timezone.utc) + offset))


def creates(stack: Stack) -> int:
    return len(stack.vod.action_calls("CreateUploadVideo"))


# --- VOD faults on POST /uploads -----------------------------------------------------------------
def test_throttling_is_retried_a_bounded_number_of_times_then_503_with_retry_after(stack: Stack) -> None:
    vod, clock, deps = install(stack)
    vod.always["CreateUploadVideo"] = throttled()

    body = assert_error(create(stack), 503, "Throttling", retry_after=True)

    assert vod.attempts["CreateUploadVideo"] == deps.settings.vod_max_attempts == 3
    assert clock.elapsed <= deps.settings.vod_deadline_seconds
    assert body["VodRequestId"] == "INJECTED-0000"
    # VOD refused: nothing exists there, and the reservation was released (no quota slot held)
    assert stack.vod.videos == {} and rows() == []


def test_throttling_then_success_gives_one_media(stack: Stack) -> None:
    vod, _, _ = install(stack)
    vod.fail("CreateUploadVideo", throttled(), throttled())

    status, answer, _ = create(stack)

    assert status == 200 and answer["VideoId"] in stack.vod.videos
    assert len(stack.vod.videos) == 1 and [r["status"] for r in rows()] == ["created"]


def test_a_retry_hint_beyond_the_deadline_is_passed_on_instead_of_waited_for(stack: Stack) -> None:
    vod, clock, _ = install(stack)
    vod.always["CreateUploadVideo"] = throttled(retry_after="30")

    answer = create(stack)

    assert_error(answer, 503, "Throttling", retry_after=True)
    assert answer[2]["Retry-After"] == "30"
    assert clock.sleeps == []  # never slept 30 s on the client's time


@pytest.mark.parametrize("status", [500, 503])
def test_vod_5xx_is_503_and_the_reservation_is_left_for_cleanup(stack: Stack, status: int) -> None:
    vod, clock, deps = install(stack)
    vod.always["*"] = unavailable(status)

    assert_error(
        create(stack), 503, "ServiceUnavailable" if status == 503 else "InternalError", retry_after=True
    )

    assert vod.attempts["CreateUploadVideo"] == 3 and clock.elapsed <= deps.settings.vod_deadline_seconds
    # VOD may have acted (a 5xx is not a verdict): the reservation (ReferenceId) stays for cleanup
    (row,) = rows()
    assert row["status"] == "creating" and row["video_id"] is None
    sent = stack.vod.action_calls("DeleteVideo")
    assert sent == []
    # and cleanup deletes whatever carries that ReferenceId, then drops the reservation
    vod.always.clear()
    later()
    summary = stack.cleanup()
    assert summary["errors"] == 0 and summary["deleted"] == 1
    assert stack.vod.action_calls("DeleteVideo") == [{"ReferenceIds": row["reference_id"]}]
    assert rows() == []


def test_a_5xx_then_success_reuses_the_reference_id_and_makes_one_media(stack: Stack) -> None:
    vod, _, _ = install(stack)
    vod.fail("CreateUploadVideo", unavailable(503))

    status, answer, _ = create(stack)

    assert status == 200
    sent = stack.vod.action_calls("CreateUploadVideo")
    assert len(sent) == 1  # the 503 attempt never reached FakeVod; the retry did
    assert vod.attempts["CreateUploadVideo"] == 2
    assert list(stack.vod.videos) == [answer["VideoId"]]


def test_a_lost_answer_is_resolved_through_the_reference_id(stack: Stack) -> None:
    vod, _, _ = install(stack)

    def acted_then_lost(request: httpx.Request) -> httpx.Response:
        vod.answer(request)  # VOD made the media ...
        return unavailable(503)  # ... and the answer never came back

    vod.fail("CreateUploadVideo", acted_then_lost)

    status, answer, _ = create(stack)

    # the retry with the same ReferenceId is refused by VOD; the lookup finds the media
    assert status == 200, answer
    assert list(stack.vod.videos) == [answer["VideoId"]]
    assert len(stack.vod.action_calls("RefreshUploadVideo")) == 1
    assert [r["status"] for r in rows()] == ["created"]


def test_an_answer_slower_than_the_deadline_is_504_within_the_deadline(stack: Stack) -> None:
    vod, clock, deps = install(stack)
    vod.always["*"] = vod.slow(60)

    assert_error(create(stack), 504, "GatewayTimeout", retry_after=False)

    assert clock.elapsed <= deps.settings.vod_deadline_seconds
    assert [r["status"] for r in rows()] == ["creating"]  # VOD may have acted: left for cleanup


def test_a_slow_but_timely_answer_is_accepted(stack: Stack) -> None:
    vod, clock, deps = install(stack)
    vod.fail("CreateUploadVideo", vod.slow(deps.settings.vod_deadline_seconds / 2))
    assert create(stack)[0] == 200
    assert clock.elapsed < deps.settings.vod_deadline_seconds


def test_the_default_deadline_bounds_the_wait_at_10_seconds(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VOD_DEADLINE_SECONDS")
    reset_instance_state()
    vod, clock, deps = install(stack)
    assert deps.settings.vod_deadline_seconds == 10

    vod.always["*"] = vod.slow(3, then=unavailable(503))  # 3 s per attempt, then a 503

    status, _, _ = create(stack)

    assert status == 503 and clock.elapsed <= 10
    # each slow attempt is a 503 after 3 s: the third would end past 10 s, so it is never started
    assert vod.attempts["CreateUploadVideo"] <= 3
    # the deployed function timeout leaves room for the store on top of the VOD deadline
    assert "Timeout: 20" in (ROOT / "template.yml").read_text()


def test_connection_refused_is_503_and_frees_the_quota(stack: Stack) -> None:
    vod, clock, deps = install(stack)
    vod.always["*"] = refused()

    assert_error(create(stack), 503, "ServiceUnavailable", retry_after=True)

    assert vod.attempts["CreateUploadVideo"] == 3 and clock.elapsed <= deps.settings.vod_deadline_seconds
    # nothing reached VOD, so nothing can exist there: no reservation may hold a quota slot
    assert rows() == []


def test_a_throttled_retry_after_a_lost_answer_keeps_the_reservation_for_cleanup(stack: Stack) -> None:
    vod, _, _ = install(stack)

    def acted_then_timed_out(request: httpx.Request) -> httpx.Response:
        vod.answer(request)
        raise httpx.ReadTimeout("timed out", request=request)

    vod.fail("CreateUploadVideo", acted_then_timed_out)
    vod.always["*"] = throttled()

    assert_error(create(stack), 503, "Throttling", retry_after=True)

    # the first attempt made a media: its reservation must stay, or nothing would ever find it
    (row,) = rows()
    assert row["status"] == "creating" and len(stack.vod.videos) == 1
    vod.always.clear()
    later()
    assert stack.cleanup()["errors"] == 0
    assert stack.vod.videos == {} and rows() == []


def test_an_outage_never_locks_a_user_out_of_their_quota(stack: Stack) -> None:
    vod, _, deps = install(stack)
    vod.always["*"] = refused()
    for _ in range(deps.settings.max_pending_uploads_per_owner + 2):
        assert create(stack)[0] == 503
    vod.always.clear()
    assert create(stack)[0] == 200


@pytest.mark.parametrize(
    "answer",
    [
        garbage(),
        httpx.Response(200, content=b""),
        httpx.Response(200, content=b'{"RequestId": "x", "VideoId": '),
        httpx.Response(200, json=["not", "an", "object"]),
        httpx.Response(200, json={"RequestId": "x"}),  # no VideoId, no credentials
        httpx.Response(
            200, json={"RequestId": "x", "VideoId": "v1", "UploadAddress": "%%%", "UploadAuth": "%%%"}
        ),
        httpx.Response(200, content=b"\xff\xfe\x00garbage"),
    ],
    ids=["html", "empty", "truncated", "array", "no-video-id", "bad-base64", "not-utf8"],
)
def test_garbage_from_vod_is_502(stack: Stack, answer: httpx.Response) -> None:
    vod, _, _ = install(stack)
    vod.fail("CreateUploadVideo", answer)

    assert_error(create(stack), 502, "BadGateway", retry_after=False)

    # a 200 means VOD may have acted: the reservation stays for cleanup; nothing else is recorded
    assert [r["status"] for r in rows()] == ["creating"]


@pytest.mark.parametrize("status", [400, 403, 502])
def test_an_error_status_without_a_json_body_is_a_clear_error(stack: Stack, status: int) -> None:
    vod, _, _ = install(stack)
    vod.always["*"] = httpx.Response(status, content=b"<html>gateway</html>")
    got, body, headers = create(stack)
    expected = 503 if status >= 500 else 502
    assert got == expected and body["RequestId"] == headers["X-Request-Id"]


def test_vod_refusing_our_signature_is_502_and_never_echoes_the_secret(stack: Stack) -> None:
    vod, _, _ = install(stack)
    secret = "test-access-key-secret"
    vod.always["*"] = vod_error(400, "SignatureDoesNotMatch", f"Specified signature is not matched. {secret}")
    got, body, _ = create(stack)
    assert got == 502 and body["Code"] == "SignatureDoesNotMatch"
    assert secret not in json.dumps(body)
    assert rows() == []


def test_refresh_and_delete_under_vod_faults(stack: Stack) -> None:
    video_id = stack.create()["VideoId"]
    vod, clock, deps = install(stack)
    vod.always["*"] = throttled()
    assert_error(
        stack.http("upload_credentials", "POST", f"/uploads/{video_id}/refresh"),
        503,
        "Throttling",
        retry_after=True,
    )
    vod.always["*"] = vod.slow(60)
    assert_error(
        stack.http("upload_credentials", "DELETE", f"/uploads/{video_id}"),
        504,
        "GatewayTimeout",
        retry_after=False,
    )
    assert clock.elapsed <= 2 * deps.settings.vod_deadline_seconds  # two requests, each bounded
    # nothing changed: the upload is still there, still created
    vod.always.clear()
    status, record, _ = stack.http("upload_credentials", "GET", f"/uploads/{video_id}")
    assert status == 200 and record["Status"] == "created" and video_id in stack.vod.videos


def test_a_real_slow_vod_is_cut_off_at_the_deadline(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real sockets and real time, once: a VOD that never answers costs the client the deadline."""

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            time.sleep(3)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("VOD_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("VOD_DEADLINE_SECONDS", "0.5")
        reset_instance_state()
        stack.router.route(host="127.0.0.1").pass_through()
        started = time.monotonic()
        assert_error(create(stack), 504, "GatewayTimeout", retry_after=False)
        waited = time.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()
    assert waited < 2.5, waited  # 0.5 s deadline + store work; far below the 3 s VOD would take


# --- the store failing at each step ------------------------------------------------------------
def flaky() -> FlakyStore:
    deps = get_deps()
    store = FlakyStore(deps.store)
    set_deps(replace(deps, store=store))
    return store


def test_store_down_before_the_vod_call_is_503_and_vod_is_never_called(stack: Stack) -> None:
    store = flaky()
    store.fail["reserve_upload"] = FlakyStore.ALWAYS
    assert_error(create(stack), 503, "ServiceUnavailable.Store", retry_after=True)
    assert_error(
        create(stack, **{"Idempotency-Key": "k1"}), 503, "ServiceUnavailable.Store", retry_after=True
    )
    assert stack.vod.calls == []


def test_store_down_when_a_replay_reads_its_record_back_is_503_and_vod_is_not_called_again(
    stack: Stack,
) -> None:
    first = create(stack, **{"Idempotency-Key": "k1"})
    assert first[0] == 200, first
    store = flaky()
    store.fail["find_by_idempotency_key"] = FlakyStore.ALWAYS

    # the reservation is refused (the key is used), then the read of its record fails
    assert_error(
        create(stack, **{"Idempotency-Key": "k1"}), 503, "ServiceUnavailable.Store", retry_after=True
    )
    assert creates(stack) == 1
    store.fail.clear()
    again = create(stack, **{"Idempotency-Key": "k1"})
    assert again[0] == 200 and again[1]["VideoId"] == first[1]["VideoId"], again


def test_store_down_after_the_vod_call_returns_no_credential_and_undoes_the_media(stack: Stack) -> None:
    store = flaky()
    store.fail["attach_video"] = FlakyStore.ALWAYS

    assert_error(create(stack), 503, "ServiceUnavailable.Store", retry_after=True)

    # the media VOD made was deleted again; the reservation stays until cleanup drops it
    (_deleted,) = stack.vod.action_calls("DeleteVideo")
    assert stack.vod.videos == {}
    assert [r["status"] for r in rows()] == ["creating"]
    store.fail.clear()
    later()
    assert stack.cleanup()["errors"] == 0 and rows() == []


def test_store_and_vod_down_after_create_leaves_only_what_cleanup_removes(stack: Stack) -> None:
    store = flaky()
    store.fail["attach_video"] = FlakyStore.ALWAYS
    vod, _, _ = install(stack)
    vod.always["DeleteVideo"] = unavailable(503)

    assert_error(create(stack), 503, "ServiceUnavailable.Store", retry_after=True)
    assert len(stack.vod.videos) == 1  # the undo failed too

    store.fail.clear()
    vod.always.clear()
    later()
    summary = stack.cleanup()
    assert summary["errors"] == 0 and stack.vod.videos == {} and rows() == []


def test_an_attach_whose_answer_was_lost_keeps_the_video_its_record_points_to(stack: Stack) -> None:
    """The attach committed but its answer was lost: deleting the video would leave the record
    pointing to nothing. The video is kept, and the client's retry gets a credential for it."""
    store = flaky()
    store.lose["attach_video"] = {1}
    key = {"Idempotency-Key": "answer-lost"}

    assert_error(create(stack, **key), 503, "ServiceUnavailable.Store", retry_after=True)
    assert stack.vod.action_calls("DeleteVideo") == []
    (video,) = stack.vod.videos
    assert [(r["status"], r["video_id"]) for r in rows()] == [("created", video)]

    status, answer, _ = create(stack, **key)
    assert status == 200, answer
    assert answer["VideoId"] == video and list(stack.vod.videos) == [video]


def test_an_attach_that_may_have_committed_but_did_not_leaves_the_video_to_cleanup(stack: Stack) -> None:
    """Outcome unknown, and in fact nothing committed: the reservation keeps the video's
    ReferenceId, and cleanup removes the video from VOD."""
    store = flaky()
    store.doubt["attach_video"] = {1}

    assert_error(create(stack), 503, "ServiceUnavailable.Store", retry_after=True)
    assert stack.vod.action_calls("DeleteVideo") == []
    (row,) = rows()
    (media,) = stack.vod.videos.values()
    assert row["status"] == "creating" and media["ReferenceId"] == row["reference_id"]

    later()
    summary = stack.cleanup()
    assert summary["errors"] == 0 and stack.vod.videos == {} and rows() == []


def test_an_image_whose_attach_answer_was_lost_is_deleted_and_its_retry_gets_a_new_one(stack: Stack) -> None:
    """An image has no ReferenceId, so one left behind by an attach that did not commit would be
    untracked: it is deleted. Had the attach committed (as here), the retry replaces the record's
    media with a new image."""
    store = flaky()
    store.lose["attach_video"] = {1}
    key = {"Idempotency-Key": "image-answer-lost"}
    body = {"ImageType": "cover", "ImageExt": "jpg", "Title": "Poster"}

    first = stack.http("upload_credentials", "POST", "/images", body=body, headers=key)
    assert_error(first, 503, "ServiceUnavailable.Store", retry_after=True)
    (deleted,) = stack.vod.action_calls("DeleteImage")
    assert stack.vod.images == {}

    status, answer, _ = stack.http("upload_credentials", "POST", "/images", body=body, headers=key)
    assert status == 200, answer
    assert list(stack.vod.images) == [answer["ImageId"]] and answer["ImageId"] not in deleted["ImageIds"]
    assert [(r["status"], r["video_id"]) for r in rows()] == [("created", answer["ImageId"])]


def test_a_crash_between_create_and_record_leaves_nothing_cleanup_does_not_remove(stack: Stack) -> None:
    store = flaky()
    store.crash["attach_video"] = {1}

    with pytest.raises(Crash):
        create(stack)

    (row,) = rows()
    assert row["status"] == "creating" and len(stack.vod.videos) == 1
    (media,) = stack.vod.videos.values()
    assert media["ReferenceId"] == row["reference_id"]
    later()
    summary = stack.cleanup()
    assert summary["deleted"] == 1 and summary["errors"] == 0
    assert stack.vod.videos == {} and rows() == []


def test_a_retry_with_the_key_finishes_a_reservation_its_request_left_behind(stack: Stack) -> None:
    """The store failed after VOD made the media (and the undo failed too): the client's retry
    with the same Idempotency-Key waits while the first request could still be running, then
    finishes the reservation under its ReferenceId, so VOD ends up with exactly one media."""
    store = flaky()
    store.fail["attach_video"] = {1}
    vod, _, _ = install(stack)
    vod.always["DeleteVideo"] = unavailable(503)
    key = {"Idempotency-Key": "retry-after-outage"}

    assert_error(create(stack, **key), 503, "ServiceUnavailable.Store", retry_after=True)
    (left,) = stack.vod.videos  # made, not recorded, not undone
    vod.always.clear()

    # at once: the first request may still be alive
    assert_error(create(stack, **key), 409, "IdempotencyKeyInUse", retry_after=True)

    later(hours=0.02)  # past any request's lifetime (72 s)
    status, answer, _ = create(stack, **key)
    assert status == 200, answer
    assert answer["VideoId"] == left and list(stack.vod.videos) == [left]
    assert [(r["status"], r["video_id"]) for r in rows()] == [("created", left)]
    status, again, _ = create(stack, **key)  # and from now on a plain replay
    assert status == 200 and again["VideoId"] == left


def test_a_taken_over_reservation_whose_media_was_undone_gets_a_new_one(stack: Stack) -> None:
    store = flaky()
    store.fail["attach_video"] = {1}
    key = {"Idempotency-Key": "undone-then-retried"}
    assert_error(create(stack, **key), 503, "ServiceUnavailable.Store", retry_after=True)
    assert stack.vod.videos == {}  # the undo worked

    later(hours=0.02)
    status, answer, _ = create(stack, **key)
    assert status == 200, answer
    assert list(stack.vod.videos) == [answer["VideoId"]]
    (row,) = rows()
    assert (
        row["status"] == "created"
        and stack.vod.videos[answer["VideoId"]]["ReferenceId"] == row["reference_id"]
    )


def test_a_lost_record_is_never_answered_with_a_credential(stack: Stack) -> None:
    """attach_video finds no ``creating`` row (it was discarded meanwhile): no credential goes out."""
    store = flaky()
    store.after["reserve_upload"] = lambda upload: store.inner.discard_reservation(upload.upload_id)

    got, body, _ = create(stack)

    assert got >= 500 and "UploadAuth" not in body
    assert stack.vod.videos == {}  # and the media VOD made is gone again


def test_store_down_on_refresh_returns_no_credential(stack: Stack) -> None:
    video_id = stack.create()["VideoId"]
    store = flaky()
    store.fail["set_credential_expiry"] = FlakyStore.ALWAYS
    assert_error(
        stack.http("upload_credentials", "POST", f"/uploads/{video_id}/refresh"),
        503,
        "ServiceUnavailable.Store",
        retry_after=True,
    )


@pytest.mark.parametrize("step", ["get", "list_uploads"])
def test_store_down_on_reads_is_503(stack: Stack, step: str) -> None:
    video_id = stack.create()["VideoId"]
    store = flaky()
    store.fail[step] = FlakyStore.ALWAYS
    path = f"/uploads/{video_id}" if step == "get" else "/uploads"
    assert_error(
        stack.http("upload_credentials", "GET", path), 503, "ServiceUnavailable.Store", retry_after=True
    )


def test_store_down_after_delete_at_vod_converges_on_retry(stack: Stack) -> None:
    video_id = stack.create()["VideoId"]
    store = flaky()
    store.fail["transition"] = {1}
    assert_error(
        stack.http("upload_credentials", "DELETE", f"/uploads/{video_id}"),
        503,
        "ServiceUnavailable.Store",
        retry_after=True,
    )
    status, answer, _ = stack.http("upload_credentials", "DELETE", f"/uploads/{video_id}")
    assert status == 200 and answer["Status"] == "deleted"
    assert video_id not in stack.vod.videos


def test_store_down_when_a_callback_arrives_is_503_and_the_retry_applies(stack: Stack) -> None:
    video_id = stack.create()["VideoId"]
    store = flaky()
    store.fail["record_event"] = {1}
    event = stack.vod_event("FileUploadComplete", video_id)

    status, body = stack.callback(event)
    assert status == 503 and body["Code"] == "ServiceUnavailable.Store"

    # VOD retries the same event: it is applied (the failed attempt recorded nothing)
    status, ack = stack.callback(event)
    assert status == 200 and ack["Result"] == "applied"
    assert stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]["Status"] == "uploaded"


def test_store_down_after_the_event_is_recorded_loses_nothing(stack: Stack) -> None:
    """Recorded, then the store fails: VOD is told to retry; the event is finished by cleanup."""
    video_id = stack.create()["VideoId"]
    store = flaky()
    store.fail["apply_event"] = {1}
    event = stack.vod_event("FileUploadComplete", video_id)

    assert stack.callback(event)[0] == 503
    status, ack = stack.callback(event)  # VOD's retry: the first attempt still holds the event
    assert status == 200 and ack["Result"] == "pending"
    assert stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]["Status"] == "created"

    later(hours=0.1)  # past the event's lease: the next cleanup run finishes it
    assert stack.cleanup()["events"] == {"applied": 1}
    assert stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]["Status"] == "uploaded"


def test_vod_throttling_during_confirmation_keeps_the_event_and_the_retry_applies(stack: Stack) -> None:
    video_id = stack.create()["VideoId"]
    stack.vod.videos[video_id]["Status"] = "Normal"
    vod, _, _ = install(stack)
    vod.always["GetVideoInfo"] = throttled()
    event = stack.vod_event("TranscodeComplete", video_id)

    status, ack = stack.callback(event)
    assert status == 200 and ack["Result"] == "pending"  # safe in the inbox: VOD need not retry
    assert stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]["Status"] == "created"

    vod.always.clear()
    status, ack = stack.callback(event)  # VOD sent it again anyway: it is settled now
    assert status == 200 and ack["Result"] == "applied"
    assert stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]["Status"] == "ready"


def test_an_unconfirmed_final_event_does_not_use_up_the_genuine_one(stack: Stack) -> None:
    """VOD's callback can overtake its own GetVideoInfo: when VOD catches up, the retry counts."""
    video_id = stack.create()["VideoId"]
    stack.vod.videos[video_id]["Status"] = "Transcoding"  # VOD's API is not there yet
    event = stack.vod_event("TranscodeComplete", video_id)
    assert stack.callback(event)[0] == 200
    assert stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]["Status"] == "processing"

    stack.vod.videos[video_id]["Status"] = "Normal"
    status, ack = stack.callback(event)  # VOD's retry of the same event
    assert status == 200 and ack["Result"] == "applied"
    assert stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]["Status"] == "ready"


# --- cleanup under faults -------------------------------------------------------------------------
def _abandon(stack: Stack, n: int, owner: str) -> list[str]:
    return [stack.create(owner=owner)["VideoId"] for _ in range(n)]


def test_cleanup_with_the_store_down_changes_nothing(stack: Stack) -> None:
    ids = _abandon(stack, 2, "erin")
    store = flaky()
    store.fail["claim_stale"] = FlakyStore.ALWAYS
    later()
    summary = stack.cleanup()
    assert summary["errors"] == 1 and summary["deleted"] == 0
    assert all(v in stack.vod.videos for v in ids)


def test_cleanup_interrupted_after_deleting_resumes_without_deleting_twice(stack: Stack) -> None:
    ids = _abandon(stack, 3, "erin")
    store = flaky()
    store.fail["expire_created"] = {1}  # the batch's record write fails after VOD deleted: the run stops
    later()
    first = stack.cleanup()
    assert first["errors"] == 1
    assert all(v not in stack.vod.videos for v in ids)  # VOD deleted all three in one batch

    later(hours=4)  # after the cleanup lease
    second = stack.cleanup()
    assert second["errors"] == 0
    statuses = {
        stack.http("upload_credentials", "GET", f"/uploads/{v}", owner="erin")[1]["Status"] for v in ids
    }
    assert statuses == {"expired"}
    deleted = [
        v for call in stack.vod.action_calls("DeleteVideo") for v in call.get("VideoIds", "").split(",") if v
    ]
    assert sorted(deleted) == sorted(ids)  # each deleted exactly once


def test_cleanup_crashing_midway_is_finished_by_the_next_run(stack: Stack) -> None:
    ids = _abandon(stack, 3, "erin")
    store = flaky()
    store.crash["expire_created"] = {1}
    later()
    with pytest.raises(Crash):
        stack.cleanup()
    store.crash.clear()
    later(hours=1)  # within the lease: the claimed rows are not touched again
    assert stack.cleanup()["scanned"] == 0
    later(hours=4)
    assert stack.cleanup()["errors"] == 0
    deleted = [
        v for call in stack.vod.action_calls("DeleteVideo") for v in call.get("VideoIds", "").split(",") if v
    ]
    assert sorted(deleted) == sorted(ids)


def test_cleanup_never_deletes_an_upload_whose_credential_was_refreshed(stack: Stack) -> None:
    """A long upload refreshes its credential; cleanup must not judge it by its creation time."""
    video_id = stack.create(owner="erin")["VideoId"]
    # created three hours ago; the client is still uploading and refreshes its credential now
    url = get_settings().database_url.get_secret_value()
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    old = (datetime.now(timezone.utc) - timedelta(hours=3)).isoformat()
    with conn:
        conn.execute(
            "UPDATE uploads SET created_at = ?, updated_at = ?, credential_expires_at = ?", (old, old, old)
        )
    conn.close()
    status, _, _ = stack.http("upload_credentials", "POST", f"/uploads/{video_id}/refresh", owner="erin")
    assert status == 200
    summary = stack.cleanup()
    assert summary["deleted"] == 0
    assert video_id in stack.vod.videos
    assert (
        stack.http("upload_credentials", "GET", f"/uploads/{video_id}", owner="erin")[1]["Status"]
        == "created"
    )


def test_cleanup_with_vod_down_changes_nothing(stack: Stack) -> None:
    ids = _abandon(stack, 2, "erin")
    vod, _, _ = install(stack)
    vod.always["*"] = unavailable(503)
    later()
    summary = stack.cleanup()
    assert summary["errors"] >= 1 and summary["deleted"] == 0
    assert all(v in stack.vod.videos for v in ids)
    vod.always.clear()
    later(hours=4)
    assert stack.cleanup()["deleted"] == 2


def test_a_check_that_vod_failed_is_tried_again_by_the_next_run(stack: Stack) -> None:
    """VOD failing a due check hands the batch back at once: the next run (a minute later, not
    after the claim's lease) settles it, and a failing VOD is asked once per run, not in a loop."""
    video_id = stack.create()["VideoId"]
    assert stack.callback(stack.vod_event("FileUploadComplete", video_id))[0] == 200
    stack.vod.videos[video_id]["Status"] = "Normal"  # its TranscodeComplete was lost
    vod, _, _ = install(stack)
    vod.always["GetVideoInfos"] = unavailable(503)
    later(hours=0.2)  # past the first check

    summary = stack.cleanup()
    assert summary["errors"] == 1 and summary["stuck_checked"] == 1
    failed_calls = vod.attempts["GetVideoInfos"]

    vod.always.clear()
    summary = stack.cleanup()  # same moment: no lease stands in the way
    assert summary["reconciled"] == 1 and failed_calls <= 3
    assert stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]["Status"] == "ready"


def test_undoing_a_media_stays_within_the_requests_vod_deadline(stack: Stack) -> None:
    vod, clock, deps = install(stack)
    deadline = deps.settings.vod_deadline_seconds
    vod.fail("CreateUploadVideo", vod.slow(deadline * 0.75))  # a slow but successful create
    vod.always["DeleteVideo"] = vod.slow(60)  # and a VOD that hangs on the undo
    store = flaky()
    store.fail["attach_video"] = FlakyStore.ALWAYS

    assert_error(create(stack), 503, "ServiceUnavailable.Store", retry_after=True)

    assert clock.elapsed <= deadline  # the whole request's time at VOD, undo included
    (row,) = rows()
    assert row["status"] == "creating"  # the media is left to cleanup, through the ReferenceId


def test_a_database_that_cannot_be_reached_is_503_everywhere(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://vodfc:pw-not-shown@127.0.0.1:9/vodfc")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "1")
    reset_instance_state()
    for method, path in (("POST", "/uploads"), ("GET", "/uploads"), ("GET", "/uploads/" + "a" * 32)):
        body = assert_error(
            stack.http("upload_credentials", method, path, body=BODY if method == "POST" else None),
            503,
            "ServiceUnavailable.Store",
            retry_after=True,
        )
        assert "pw-not-shown" not in json.dumps(body)
    status, body = stack.callback({"EventType": "FileUploadComplete", "VideoId": "v" * 32,
                                   "EventTime": "2026-01-01T00:00:00Z", "Status": "success"})  # fmt: skip
    assert status == 503 and body["Code"] == "ServiceUnavailable.Store"
    assert stack.cleanup()["errors"] == 1
    assert stack.vod.calls == []  # nothing is asked of VOD while the record cannot be written
