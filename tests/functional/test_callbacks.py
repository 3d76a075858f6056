"""VOD callbacks through the real handler: signatures, replays, order, orphans, confirmation."""

from __future__ import annotations

import json
import time

import pytest

from tests.functional.conftest import CALLBACK_URL, Stack, load_event


def _status(stack: Stack, video_id: str) -> str:
    status: str = stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]["Status"]
    return status


def test_a_replayed_callback_changes_nothing(stack: Stack) -> None:
    video_id = stack.create()["VideoId"]
    event = stack.vod_event("FileUploadComplete", video_id)
    assert stack.callback(event)[1]["Result"] == "applied"
    status, ack = stack.callback(event, ts=int(time.time()) + 1)  # VOD's retry: new timestamp
    assert status == 200 and ack["Result"] == "duplicate"
    assert _status(stack, video_id) == "uploaded"


def test_out_of_order_events_never_move_an_upload_backwards(stack: Stack) -> None:
    video_id = stack.create()["VideoId"]
    stack.vod.videos[video_id].update(Status="Normal", Duration="3.0")
    # TranscodeComplete overtakes the upload and stream events
    assert stack.callback(stack.vod_event("TranscodeComplete", video_id))[1]["Result"] == "applied"
    assert _status(stack, video_id) == "ready"
    for late in ("StreamTranscodeComplete", "FileUploadComplete"):
        status, ack = stack.callback(stack.vod_event(late, video_id))
        assert status == 200 and ack["Result"] == "stale"
    assert _status(stack, video_id) == "ready"


def test_a_final_event_is_applied_only_as_far_as_vod_confirms(stack: Stack) -> None:
    video_id = stack.create()["VideoId"]
    stack.vod.videos[video_id]["Status"] = "UploadSucc"  # VOD: still not transcoded
    status, _ = stack.callback(stack.vod_event("TranscodeComplete", video_id))  # forged body, genuine header
    assert status == 200
    assert _status(stack, video_id) == "uploaded"


def test_a_delete_event_is_applied_only_when_vod_no_longer_has_the_media(stack: Stack) -> None:
    video_id = stack.create()["VideoId"]
    forged = stack.vod_event("DeleteMediaComplete", video_id, MediaId=video_id)
    assert stack.callback(forged)[0] == 200
    assert _status(stack, video_id) == "created"  # VOD still has it: not applied
    del stack.vod.videos[video_id]
    real = stack.vod_event(
        "DeleteMediaComplete", video_id, MediaId=video_id, EventTime="2026-11-25T11:00:00Z"
    )
    assert stack.callback(real)[0] == 200
    assert _status(stack, video_id) == "deleted"


def test_an_informational_event_fills_only_what_is_missing(stack: Stack) -> None:
    video_id = stack.create()["VideoId"]
    status, ack = stack.callback(stack.vod_event("SnapshotComplete", video_id))
    assert status == 200 and ack["Result"] == "stale"  # nothing to fill: nothing changes
    status, ack = stack.callback(stack.vod_event("VideoAnalysisComplete", video_id, Duration="12.5"))
    assert status == 200 and ack["Result"] == "applied"
    record = stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]
    assert record["Status"] == "created" and record["LastEvent"] is None and record["Duration"] == 12.5
    later = stack.vod_event(
        "VideoAnalysisComplete", video_id, Duration="99", EventTime="2030-01-01T00:00:00Z"
    )
    assert stack.callback(later)[1]["Result"] == "stale"
    assert stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]["Duration"] == 12.5


def test_a_file_over_max_file_size_is_deleted_and_the_upload_fails(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.functional.conftest import reset_instance_state

    monkeypatch.setenv("MAX_FILE_SIZE", "1000")
    reset_instance_state()
    video_id = stack.create(FileSize=900)["VideoId"]  # declared within the limit...
    stack.vod.videos[video_id].update(Status="UploadSucc", Size="5000")  # ...but 5,000 bytes arrived
    assert stack.callback(stack.vod_event("FileUploadComplete", video_id, Size=5000))[0] == 200
    record = stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]
    assert record["Status"] == "failed" and record["Error"].startswith("FileTooLarge")
    assert video_id not in stack.vod.videos


def test_a_forged_oversize_event_deletes_nothing(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.functional.conftest import reset_instance_state

    monkeypatch.setenv("MAX_FILE_SIZE", "1000")
    reset_instance_state()
    video_id = stack.create(FileSize=900)["VideoId"]
    stack.vod.videos[video_id].update(Status="UploadSucc", Size="900")  # VOD: within the limit
    assert stack.callback(stack.vod_event("FileUploadComplete", video_id, Size=10**9))[0] == 200
    record = stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]
    assert record["Status"] == "uploaded" and record["Size"] == 900  # VOD's size, not the body's
    assert video_id in stack.vod.videos


def test_transcode_failure_is_recorded_with_its_error(stack: Stack) -> None:
    video_id = stack.create()["VideoId"]
    stack.vod.videos[video_id]["Status"] = "TranscodeFail"
    event = stack.vod_event(
        "TranscodeComplete",
        video_id,
        Status="fail",
        ErrorCode="InvalidParameter.ResourceContentBad",
        ErrorMessage="The source file is damaged.",
    )
    assert stack.callback(event)[0] == 200
    record = stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]
    assert record["Status"] == "failed" and "damaged" in record["Error"]


@pytest.mark.parametrize(
    "change",
    [
        {"key": "WrongKey123"},
        {"url": CALLBACK_URL + "/"},
        {"ts": int(time.time()) - 3600},
        {"ts": int(time.time()) + 3600},
    ],
    ids=["wrong-key", "other-url", "stale", "future"],
)
def test_a_bad_signature_is_refused_and_nothing_applied(stack: Stack, change: dict[str, object]) -> None:
    video_id = stack.create()["VideoId"]
    status, err = stack.callback(stack.vod_event("FileUploadComplete", video_id), **change)  # type: ignore[arg-type]
    assert status == 401 and err["Code"] == "InvalidSignature"
    assert _status(stack, video_id) == "created"


def test_unsigned_callback_is_refused(stack: Stack) -> None:
    event = load_event("http/vod_callback.json")
    del event["headers"]["X-VOD-SIGNATURE"]
    status, err, _ = stack.invoke("vod_callback", event)
    assert status == 401 and err["Code"] == "InvalidSignature"


def test_the_previous_key_is_accepted_during_rotation(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.functional.conftest import reset_instance_state

    video_id = stack.create()["VideoId"]  # signed (Extend binding) before the rotation
    monkeypatch.setenv("CALLBACK_AUTH_KEY", "NewCallbackKey456")
    monkeypatch.setenv("CALLBACK_AUTH_KEY_PREVIOUS", "TestCallbackKey123")
    reset_instance_state()
    assert stack.callback(stack.vod_event("FileUploadComplete", video_id), key="TestCallbackKey123")[0] == 200
    assert (
        stack.callback(stack.vod_event("StreamTranscodeComplete", video_id), key="NewCallbackKey456")[0]
        == 200
    )
    assert (
        stack.callback(stack.vod_event("StreamTranscodeComplete", video_id, JobId="j2"), key="Old0Key999")[0]
        == 401
    )


def test_a_tampered_binding_is_refused(stack: Stack) -> None:
    mine = stack.create(owner="alice")["VideoId"]
    theirs = stack.create(owner="bob")["VideoId"]
    # an attacker replays bob's Extend (with its valid HMAC) on alice's video
    event = stack.vod_event("FileUploadComplete", mine)
    event["Extend"] = stack.vod_event("FileUploadComplete", theirs)["Extend"]
    status, err = stack.callback(event)
    assert status == 401 and err["Code"] == "InvalidSignature.Binding"
    assert _status(stack, mine) == "created"


def test_unknown_video_is_kept_as_an_orphan(stack: Stack) -> None:
    status, ack = stack.callback(stack.vod_event("FileUploadComplete", "0" * 32))
    assert status == 200 and ack["Result"] == "orphan"


def test_unknown_event_type_is_acknowledged(stack: Stack) -> None:
    status, ack = stack.callback(
        {"EventType": "SomethingNew", "EventTime": "2026-11-25T10:00:00Z", "VideoId": "x"}
    )
    assert status == 200 and ack["Result"] == "ignored"


@pytest.mark.parametrize("body", ["not json", "[]", '{"EventType": "FileUploadComplete"}', "\udcff"])
def test_a_malformed_body_with_a_good_signature_is_acknowledged_as_invalid(stack: Stack, body: str) -> None:
    """VOD signed it: answering anything but 200 only makes VOD send it again. Nothing is kept."""
    event = load_event("http/vod_callback.json")
    from devkit.handlers import resign_callback_event

    event = resign_callback_event(event)
    event["body"] = body
    status, answer, _ = stack.invoke("vod_callback", json.loads(json.dumps(event, ensure_ascii=True)))
    assert status == 200 and answer["Result"] == "invalid"


def test_every_sample_event_is_answered_200(stack: Stack) -> None:
    video_id = stack.create()["VideoId"]
    stack.vod.videos[video_id]["Status"] = "Normal"
    from tests.functional.conftest import EVENTS

    for path in sorted((EVENTS / "vod").glob("*.json")):
        body = stack.vod_event(path.stem, video_id)
        status, ack = stack.callback(body)
        assert status == 200, (path.name, ack)
