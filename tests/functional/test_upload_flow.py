"""The whole life of an upload through the real handlers: create, callbacks, refresh, list, delete."""

from __future__ import annotations

import base64
import json

from tests.functional.conftest import CALLBACK_URL, Stack


def _user_data(stack: Stack, video_id: str) -> dict[str, object]:
    raw = stack.vod.videos[video_id]["UserData"]
    assert isinstance(raw, str)
    data: dict[str, object] = json.loads(raw)
    return data


def test_create_then_callbacks_move_the_upload_to_ready(stack: Stack) -> None:
    # given a signed-in client asking for credentials
    answer = stack.create(
        Title="Summer trip 夏天", Tags=["travel", "summer"], UserData={"Extend": {"localId": "a1"}}
    )
    video_id = answer["VideoId"]

    # then VOD's answer is returned, and VOD got our ReferenceId, callback and owner binding
    assert set(answer) >= {"RequestId", "VideoId", "UploadAddress", "UploadAuth"}
    auth = json.loads(base64.b64decode(answer["UploadAuth"]))
    assert auth["AccessKeyId"].startswith("STS.")
    sent = stack.vod.action_calls("CreateUploadVideo")[0]
    assert sent["Title"] == "Summer trip 夏天" and sent["Tags"] == "travel,summer"
    assert len(sent["ReferenceId"]) == 32
    user_data = _user_data(stack, video_id)
    assert user_data["MessageCallback"] == {"CallbackURL": CALLBACK_URL, "CallbackType": "http"}
    extend = user_data["Extend"]
    assert (
        isinstance(extend, dict) and extend["localId"] == "a1" and extend["vodfc_uid"] == sent["ReferenceId"]
    )

    status, record, _ = stack.http("upload_credentials", "GET", f"/uploads/{video_id}")
    assert status == 200 and record["Status"] == "created" and record["Title"] == "Summer trip 夏天"

    # when the file arrives
    stack.vod.videos[video_id]["Status"] = "UploadSucc"
    status, ack = stack.callback(stack.vod_event("FileUploadComplete", video_id, Size=2048))
    assert status == 200 and ack["Result"] == "applied"
    assert stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]["Status"] == "uploaded"

    # and transcoding finishes (VOD confirms Normal)
    stack.vod.videos[video_id].update(Status="Normal", Duration="12.5", Size="2048")
    status, ack = stack.callback(stack.vod_event("TranscodeComplete", video_id))
    assert status == 200 and ack["Result"] == "applied"

    # then the record is ready, with VOD's duration
    record = stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]
    assert record["Status"] == "ready"
    assert record["Duration"] == 12.5 and record["LastEvent"] == "TranscodeComplete"
    assert stack.vod.action_calls("GetVideoInfo")  # confirmed before applying


def test_refresh_is_for_the_owner_only_and_only_before_completion(stack: Stack) -> None:
    video_id = stack.create(owner="alice")["VideoId"]

    status, err, _ = stack.http("upload_credentials", "POST", f"/uploads/{video_id}/refresh", owner="mallory")
    assert status == 404 and err["Code"] == "InvalidVideo.NotFound"
    missing = stack.http(
        "upload_credentials", "POST", "/uploads/ffffffffffffffffffffffffffffffff/refresh", owner="mallory"
    )
    assert (missing[0], missing[1]["Code"], missing[1]["Message"]) == (status, err["Code"], err["Message"])
    assert not stack.vod.action_calls("RefreshUploadVideo")

    status, fresh, _ = stack.http("upload_credentials", "POST", f"/uploads/{video_id}/refresh", owner="alice")
    assert status == 200 and fresh["VideoId"] == video_id and fresh["UploadAuth"]

    stack.vod.videos[video_id]["Status"] = "UploadSucc"
    stack.callback(stack.vod_event("FileUploadComplete", video_id))
    status, err, _ = stack.http("upload_credentials", "POST", f"/uploads/{video_id}/refresh", owner="alice")
    assert status == 409 and err["Code"] == "IllegalStatus"
    assert len(stack.vod.action_calls("RefreshUploadVideo")) == 1


def test_every_owner_route_answers_another_owner_like_a_missing_upload(stack: Stack) -> None:
    video_id = stack.create(owner="alice")["VideoId"]
    for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/refresh")):
        theirs = stack.http("upload_credentials", method, f"/uploads/{video_id}{suffix}", owner="bob")
        none = stack.http("upload_credentials", method, f"/uploads/{'0' * 32}{suffix}", owner="bob")
        assert theirs[0] == none[0] == 404
        assert {k: v for k, v in theirs[1].items() if k != "RequestId"} == {
            k: v for k, v in none[1].items() if k != "RequestId"
        }
    assert stack.vod.videos[video_id]["Status"] == "Uploading"  # nothing deleted


def test_list_is_newest_first_filtered_and_paged(stack: Stack) -> None:
    ids = [stack.create(owner="carol", Title=f"clip {i}")["VideoId"] for i in range(3)]
    stack.create(owner="dave")
    status, page, _ = stack.http("upload_credentials", "GET", "/uploads", owner="carol", query={"Limit": "2"})
    assert status == 200 and [u["VideoId"] for u in page["Uploads"]] == ids[::-1][:2]
    assert page["NextCursor"]
    status, rest, _ = stack.http(
        "upload_credentials",
        "GET",
        "/uploads",
        owner="carol",
        query={"Limit": "2", "Cursor": page["NextCursor"]},
    )
    assert [u["VideoId"] for u in rest["Uploads"]] == [ids[0]] and rest["NextCursor"] is None
    status, ready, _ = stack.http(
        "upload_credentials", "GET", "/uploads", owner="carol", query={"Status": "ready"}
    )
    assert status == 200 and ready["Uploads"] == []
    status, err, _ = stack.http(
        "upload_credentials", "GET", "/uploads", owner="carol", query={"Status": "nope"}
    )
    assert status == 400 and err["Field"] == "Status"


def test_delete_removes_the_media_and_marks_the_record(stack: Stack) -> None:
    video_id = stack.create()["VideoId"]
    status, answer, _ = stack.http("upload_credentials", "DELETE", f"/uploads/{video_id}")
    assert status == 200 and answer["Status"] == "deleted"
    assert video_id not in stack.vod.videos
    assert stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]["Status"] == "deleted"
    # deleting again is harmless and calls VOD no more
    assert stack.http("upload_credentials", "DELETE", f"/uploads/{video_id}")[0] == 200
    assert len(stack.vod.action_calls("DeleteVideo")) == 1


def test_idempotency_key_returns_the_same_video(stack: Stack) -> None:
    body = {"Title": "Retry me", "FileName": "r.mp4"}
    headers = {"Idempotency-Key": "key-123"}
    first = stack.http("upload_credentials", "POST", "/uploads", body=body, headers=headers)
    again = stack.http("upload_credentials", "POST", "/uploads", body=body, headers=headers)
    assert first[0] == again[0] == 200
    assert first[1]["VideoId"] == again[1]["VideoId"]
    assert len(stack.vod.action_calls("CreateUploadVideo")) == 1
    assert len(stack.vod.action_calls("RefreshUploadVideo")) == 1  # fresh credentials on replay

    other = stack.http(
        "upload_credentials", "POST", "/uploads", body={**body, "Title": "Other"}, headers=headers
    )
    assert other[0] == 409 and other[1]["Code"] == "IdempotencyKeyReused"
    # the same key belongs to each owner separately
    bobs = stack.http("upload_credentials", "POST", "/uploads", body=body, headers=headers, owner="bob")
    assert bobs[0] == 200 and bobs[1]["VideoId"] != first[1]["VideoId"]
