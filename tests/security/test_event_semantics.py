"""An event changes only what it proves: regression tests through the real handlers, on both stores.

VOD's callback signature covers the URL and the timestamp, not the body, so anyone holding one
captured header pair can send any body with it for 300 s. Each test below is one way such a body
(or a duplicate, or a race) could change what the owner sees, and shows that it does not: the
owner's view (``GET /uploads/{id}``) and the VOD calls made are the evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from shared.services.deps import get_deps, set_deps
from tests.functional.conftest import Stack, reset_instance_state
from tests.security.helpers import any_stack  # noqa: F401  (fixture)

VISIBLE = ("Status", "Error", "Duration", "Size", "LastEvent")


@pytest.fixture
def vod(any_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:  # noqa: F811
    """The stack with ``MAX_FILE_SIZE=1000``: a source of 5,000 bytes is oversized."""
    monkeypatch.setenv("MAX_FILE_SIZE", "1000")
    reset_instance_state()
    return any_stack


def view(stack: Stack, video_id: str, owner: str = "alice") -> dict[str, Any]:
    status, answer, _ = stack.http("upload_credentials", "GET", f"/uploads/{video_id}", owner=owner)
    assert status == 200, answer
    return answer


def visible(stack: Stack, video_id: str) -> dict[str, Any]:
    """What the owner sees of an upload (everything an event could change)."""
    answer = view(stack, video_id)
    return {name: answer.get(name) for name in VISIBLE}


def calls(stack: Stack, *actions: str) -> int:
    return sum(len(stack.vod.action_calls(action)) for action in actions)


def ready_upload(stack: Stack, *, duration: str | None = "12.5") -> str:
    """An upload taken to ``ready`` by VOD's genuine events, VOD agreeing at every step."""
    video_id: str = stack.create(FileSize=900)["VideoId"]
    stack.vod.videos[video_id].update(Status="UploadSucc", Size="900")
    assert stack.callback(stack.vod_event("FileUploadComplete", video_id, Size=900))[1]["Result"] == "applied"
    stack.vod.videos[video_id]["Status"] = "Normal"
    if duration is not None:
        stack.vod.videos[video_id]["Duration"] = duration
    else:
        stack.vod.videos[video_id].pop("Duration", None)
    final = stack.vod_event("TranscodeComplete", video_id, EventTime="2026-11-25T10:10:00Z")
    if duration is None:
        for stream in final["StreamInfos"]:
            stream.pop("Duration", None)
    assert stack.callback(final)[1]["Result"] == "applied"
    assert view(stack, video_id)["Status"] == "ready"
    return video_id


# --- a replayed header pair with another body -----------------------------------------------------
REPLAYED_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("FileUploadComplete", {"Status": "fail", "ErrorMessage": "Planted: call +1-555-0100"}),
    ("TranscodeComplete", {"Status": "fail", "ErrorCode": "Planted", "ErrorMessage": "Planted text"}),
    ("StreamTranscodeComplete", {"Status": "fail", "ErrorMessage": "Planted text", "Duration": "999"}),
    ("VideoAnalysisComplete", {"Duration": "999", "Size": "1", "EventTime": "2030-01-01T00:00:00Z"}),
    ("VideoAnalysisComplete", {"Status": "fail", "ErrorMessage": "Planted text"}),
    ("SnapshotComplete", {"Status": "fail", "ErrorMessage": "Planted text"}),
    ("DynamicImageComplete", {"Status": "fail", "ErrorMessage": "Planted text"}),
    ("AIMediaAuditComplete", {"Status": "fail", "Message": "Planted text"}),
    ("UploadByURLComplete", {"Status": "fail", "ErrorMessage": "Planted text", "JobId": "j1"}),
    ("DeleteMediaComplete", {"Status": "fail", "ErrorMessage": "Planted text"}),
]


@pytest.mark.parametrize(
    ("name", "fields"), REPLAYED_BODIES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(REPLAYED_BODIES)]
)
def test_a_replayed_header_pair_plants_nothing_on_a_finished_upload(
    vod: Stack, name: str, fields: dict[str, Any]
) -> None:
    video_id = ready_upload(vod)
    before = visible(vod, video_id)
    body = vod.vod_event(name, video_id, genuine=False, **fields)
    body.setdefault("MediaId", video_id)
    status, answer = vod.callback(body)
    assert status == 200, answer
    assert visible(vod, video_id) == before
    assert before["Error"] is None and before["LastEvent"] == "TranscodeComplete"


def test_an_informational_event_fills_only_empty_fields_and_never_the_error(vod: Stack) -> None:
    video_id = ready_upload(vod, duration=None)
    assert visible(vod, video_id)["Duration"] is None
    body = vod.vod_event("VideoAnalysisComplete", video_id, Duration="12", EventTime="2030-01-01T00:00:00Z")
    assert vod.callback(body)[1]["Result"] == "applied"
    after = visible(vod, video_id)
    assert (
        after["Duration"] == 12.0 and after["LastEvent"] == "TranscodeComplete" and after["Status"] == "ready"
    )
    again = vod.vod_event("VideoAnalysisComplete", video_id, Duration="99", EventTime="2030-01-02T00:00:00Z")
    assert vod.callback(again)[1]["Result"] == "stale"
    assert visible(vod, video_id) == after


def test_fields_of_a_confirmed_event_are_vods_not_the_bodys(vod: Stack) -> None:
    video_id = vod.create(FileSize=900)["VideoId"]
    vod.vod.videos[video_id].update(Status="Normal", Duration="12.5", Size="900")
    forged = vod.vod_event("TranscodeComplete", video_id, genuine=False)
    for stream in forged["StreamInfos"]:
        stream.update(Duration="999", Size="1")
    assert vod.callback(forged)[1]["Result"] == "applied"
    shown = visible(vod, video_id)
    assert shown["Status"] == "ready" and shown["Duration"] == 12.5 and shown["Size"] == 900


def test_an_unconfirmed_final_event_writes_nothing_of_its_body(vod: Stack) -> None:
    """VOD is behind the event (it says UploadSucc, the body says transcoding failed): the upload
    moves only as far as VOD confirms, and the body's error text is not written."""
    video_id = vod.create(FileSize=900)["VideoId"]
    vod.vod.videos[video_id].update(Status="UploadSucc", Size="900")
    forged = vod.vod_event(
        "TranscodeComplete", video_id, genuine=False, Status="fail", ErrorMessage="Planted"
    )
    assert vod.callback(forged)[1]["Result"] == "pending"
    shown = visible(vod, video_id)
    assert shown["Status"] == "uploaded" and shown["Error"] is None and shown["LastEvent"] is None


def test_a_failure_claim_for_media_vod_finished_is_settled_by_vods_word(vod: Stack) -> None:
    """VOD's other final status is not VOD being behind: the event is applied as VOD says, not
    kept pending for confirmations that cannot come (which the queue would redeliver for an hour)."""
    video_id = vod.create(FileSize=900)["VideoId"]
    vod.vod.videos[video_id].update(Status="Normal", Duration="3", Size="900")
    forged = vod.vod_event(
        "FileUploadComplete", video_id, genuine=False, Status="fail", ErrorMessage="Planted"
    )
    assert vod.callback(forged)[1]["Result"] == "applied"
    shown = visible(vod, video_id)
    assert shown["Status"] == "ready" and shown["Error"] is None


# --- dedupe --------------------------------------------------------------------------------------
def test_two_different_uploads_in_the_same_second_are_two_events(vod: Stack) -> None:
    """A re-upload with the same credential in the same second (same EventTime, another Size and
    FileUrl) is not mistaken for the first one's duplicate: its size is checked."""
    video_id = vod.create(FileSize=900)["VideoId"]
    vod.vod.videos[video_id].update(Status="UploadSucc", Size="900")
    first = vod.vod_event("FileUploadComplete", video_id, Size=900, EventTime="2026-11-25T10:05:00Z")
    assert vod.callback(first)[1]["Result"] == "applied"
    vod.vod.videos[video_id]["Size"] = "5000"  # the second PUT replaced the source
    second = dict(first, Size=5000, FileUrl=first["FileUrl"] + "?2")
    status, answer = vod.callback(second)
    assert status == 200 and answer["Result"] == "applied", answer
    assert calls(vod, "GetMezzanineInfo") == 1 and calls(vod, "DeleteVideo") == 1
    shown = visible(vod, video_id)
    assert shown["Status"] == "failed" and shown["Error"].startswith("FileTooLarge")


def test_a_duplicate_delivery_repeats_no_vod_call(vod: Stack) -> None:
    video_id = vod.create(FileSize=900)["VideoId"]
    vod.vod.videos[video_id].update(Status="UploadSucc", Size="5000")
    event = vod.vod_event("FileUploadComplete", video_id, Size=5000)
    assert vod.callback(event)[1]["Result"] == "applied"
    made = len(vod.vod.calls)
    assert calls(vod, "GetMezzanineInfo") == 1 and calls(vod, "DeleteVideo") == 1
    for _ in range(3):  # VOD's retries, and a replay with a captured header pair
        status, answer = vod.callback(event)
        assert status == 200 and answer["Result"] == "duplicate", answer
    assert len(vod.vod.calls) == made
    assert visible(vod, video_id)["Status"] == "failed"


# --- MAX_FILE_SIZE for the life of the credential ------------------------------------------------
def test_an_oversized_source_after_ready_is_deleted(vod: Stack) -> None:
    """The credential outlives ``ready``: a second PUT with a bigger file is caught by its
    FileUploadComplete, the media deleted and the upload marked, though it was finished."""
    video_id = ready_upload(vod)
    vod.vod.videos[video_id]["Size"] = "5000"
    again = vod.vod_event("FileUploadComplete", video_id, Size=5000, EventTime="2026-11-25T10:20:00Z")
    assert vod.callback(again)[1]["Result"] == "applied"
    assert video_id not in vod.vod.videos and vod.vod.action_calls("DeleteVideo")[-1]["VideoIds"] == video_id
    shown = visible(vod, video_id)
    assert shown["Status"] == "deleted" and shown["Error"].startswith("FileTooLarge")


def test_an_oversized_source_is_caught_when_the_upload_reaches_ready(vod: Stack) -> None:
    """The FileUploadComplete body understated the size; VOD's own answer at ``ready`` does not."""
    video_id = vod.create(FileSize=900)["VideoId"]
    vod.vod.videos[video_id].update(Status="UploadSucc", Size="5000")
    assert vod.callback(vod.vod_event("FileUploadComplete", video_id, Size=100))[0] == 200
    vod.vod.videos[video_id]["Status"] = "Normal"
    assert (
        vod.callback(vod.vod_event("TranscodeComplete", video_id, EventTime="2026-11-25T10:10:00Z"))[0] == 200
    )
    assert video_id not in vod.vod.videos
    shown = visible(vod, video_id)
    assert shown["Status"] == "failed" and shown["Error"].startswith("FileTooLarge")


def test_an_oversize_claim_vod_does_not_confirm_deletes_nothing(vod: Stack) -> None:
    video_id = ready_upload(vod)
    before = visible(vod, video_id)
    lie = vod.vod_event("FileUploadComplete", video_id, Size=10**12, EventTime="2026-11-25T10:20:00Z")
    assert vod.callback(lie)[1]["Result"] == "stale"
    assert video_id in vod.vod.videos and calls(vod, "DeleteVideo") == 0
    assert visible(vod, video_id) == before


# --- a forged FileUploadComplete -----------------------------------------------------------------
def test_a_forged_upload_event_moves_nothing_while_vod_says_uploading(vod: Stack) -> None:
    video_id = vod.create(FileSize=900)["VideoId"]  # VOD: Uploading, nothing arrived
    forged = vod.vod_event("FileUploadComplete", video_id, genuine=False)
    assert vod.callback(forged)[1]["Result"] == "pending"
    assert visible(vod, video_id)["Status"] == "created"
    status, answer, _ = vod.http("upload_credentials", "POST", f"/uploads/{video_id}/refresh")
    assert status == 200 and "UploadAuth" in answer, answer  # still refreshable


def later(minutes: float) -> None:
    """The services' clock, ``minutes`` from now (cleanup's schedule is due then)."""
    moment = datetime.now(timezone.utc) + timedelta(minutes=minutes)
    set_deps(replace(get_deps(), clock=lambda: moment))


def test_cleanup_returns_a_wrongly_uploaded_upload_to_created(
    vod: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With confirmation off, a forged FileUploadComplete moves the upload to ``uploaded``;
    cleanup's check asks VOD, which still says Uploading: back to ``created``, refreshable."""
    monkeypatch.setenv("CALLBACK_CONFIRM_WITH_VOD", "false")
    reset_instance_state()
    video_id = vod.create(FileSize=900)["VideoId"]
    assert (
        vod.callback(vod.vod_event("FileUploadComplete", video_id, genuine=False))[1]["Result"] == "applied"
    )
    assert visible(vod, video_id)["Status"] == "uploaded"
    later(minutes=11)  # past the first check (10 min), the credential (50 min) still alive
    summary = vod.cleanup()
    assert summary["reconciled"] == 1, summary
    assert visible(vod, video_id)["Status"] == "created"
    status, answer, _ = vod.http("upload_credentials", "POST", f"/uploads/{video_id}/refresh")
    assert status == 200 and "UploadAuth" in answer, answer


# --- DELETE and refresh tell the truth -----------------------------------------------------------
def test_delete_of_an_expired_upload_answers_expired_and_calls_no_vod(vod: Stack) -> None:
    video_id = vod.create(FileSize=900)["VideoId"]
    assert get_deps().store.transition(video_id, to="expired", now=datetime.now(timezone.utc))
    made = len(vod.vod.calls)
    status, answer, _ = vod.http("upload_credentials", "DELETE", f"/uploads/{video_id}")
    assert status == 200 and answer["Status"] == "expired", answer
    assert len(vod.vod.calls) == made
    assert view(vod, video_id)["Status"] == "expired"


class CompletesDuringRefresh:
    """The store, with the upload's FileUploadComplete landing while VOD refreshes its credential."""

    def __init__(self, inner: Any, complete: Callable[[], None]) -> None:
        self.inner = inner
        self.complete = complete

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def set_credential_expiry(self, video_id: str, expires_at: datetime, now: datetime) -> bool:
        self.complete()
        result: bool = self.inner.set_credential_expiry(video_id, expires_at, now=now)
        return result


def test_a_refresh_racing_the_upload_hands_out_no_credential(vod: Stack) -> None:
    video_id = vod.create(FileSize=900)["VideoId"]
    deps = get_deps()

    def complete() -> None:
        assert deps.store.transition(video_id, to="uploaded", now=datetime.now(timezone.utc))

    set_deps(replace(deps, store=CompletesDuringRefresh(deps.store, complete)))
    status, answer, _ = vod.http("upload_credentials", "POST", f"/uploads/{video_id}/refresh")
    assert status == 409 and answer["Code"] == "IllegalStatus", answer
    assert not {"UploadAuth", "UploadAddress"} & set(answer), answer
    assert len(vod.vod.action_calls("RefreshUploadVideo")) == 1  # VOD answered; nothing handed out
    assert view(vod, video_id)["Status"] == "uploaded"


def test_a_forged_stream_event_cannot_strand_an_upload_before_its_file(vod: Stack) -> None:
    """StreamTranscodeComplete (``processing``) for an upload nothing has shown to be uploaded is
    confirmed with VOD like FileUploadComplete: otherwise a forged one would leave the upload
    ``processing``, no longer refreshable, a status VOD's "Uploading" can never move back."""
    video_id = vod.create(FileSize=900)["VideoId"]  # VOD: Uploading
    forged = vod.vod_event("StreamTranscodeComplete", video_id, genuine=False)
    assert vod.callback(forged)[1]["Result"] == "pending"
    assert visible(vod, video_id)["Status"] == "created"
    assert vod.vod.action_calls("GetVideoInfo") == [{"VideoId": video_id}]
    status, answer, _ = vod.http("upload_credentials", "POST", f"/uploads/{video_id}/refresh")
    assert status == 200 and "UploadAuth" in answer, answer
    vod.vod.videos[video_id]["Status"] = "Transcoding"  # the genuine one: VOD agrees
    genuine = vod.vod_event("StreamTranscodeComplete", video_id, JobId="j2")
    assert vod.callback(genuine)[1]["Result"] == "applied"
    assert visible(vod, video_id)["Status"] == "processing"


def test_stream_events_after_the_upload_event_cost_no_vod_call(vod: Stack) -> None:
    video_id = vod.create(FileSize=900)["VideoId"]
    vod.vod.videos[video_id].update(Status="UploadSucc", Size="900")
    assert vod.callback(vod.vod_event("FileUploadComplete", video_id, Size=900))[1]["Result"] == "applied"
    made = calls(vod, "GetVideoInfo")
    assert vod.callback(vod.vod_event("StreamTranscodeComplete", video_id))[1]["Result"] == "applied"
    assert calls(vod, "GetVideoInfo") == made and visible(vod, video_id)["Status"] == "processing"


def test_an_event_vod_never_confirms_is_given_up_after_six_tries(vod: Stack) -> None:
    """A final event VOD never agrees with waits in the inbox, asked again by cleanup on its
    schedule (30 s ... 30 min), then is finished as ``unconfirmed``; it wrote nothing meanwhile
    and costs no VOD call after."""
    video_id = vod.create(FileSize=900)["VideoId"]
    vod.vod.videos[video_id].update(Status="UploadSucc", Size="900")
    assert vod.callback(vod.vod_event("FileUploadComplete", video_id, Size=900))[1]["Result"] == "applied"
    before = visible(vod, video_id)
    forged = vod.vod_event("TranscodeComplete", video_id, genuine=False)
    assert vod.callback(forged)[1]["Result"] == "pending"
    asked = len(vod.vod.action_calls("GetVideoInfo"))
    results = []
    for step in range(1, 8):
        later(minutes=31 * step)  # past the longest delay each time
        results.append(vod.cleanup()["events"])
    assert results == [{"pending": 1}] * 4 + [{"unconfirmed": 1}, {}, {}], results
    assert len(vod.vod.action_calls("GetVideoInfo")) == asked + 5
    assert visible(vod, video_id) == before
