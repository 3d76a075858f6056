"""Authorization: another owner's upload answers exactly like one that does not exist, on every
owner-only route, whatever its status, and nothing is done at VOD on its behalf."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.functional.conftest import Stack

OWNER_ROUTES = [("GET", ""), ("DELETE", ""), ("POST", "/refresh")]
VOLATILE = {"RequestId"}
VOLATILE_HEADERS = {"x-request-id"}


def answer(stack: Stack, owner: str, method: str, path: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    status, body, headers = stack.http("upload_credentials", method, path, owner=owner)
    return (
        status,
        {k: v for k, v in body.items() if k not in VOLATILE},
        {k.lower(): v for k, v in headers.items() if k.lower() not in VOLATILE_HEADERS},
    )


def missing_like(video_id: str) -> str:
    """An id of the same shape that nobody has."""
    return ("f" if video_id[0] != "f" else "e") + video_id[1:]


@pytest.mark.parametrize("bob_status", ["created", "uploaded", "ready", "failed", "deleted"])
@pytest.mark.parametrize(("method", "suffix"), OWNER_ROUTES, ids=["get", "delete", "refresh"])
def test_another_owners_upload_answers_exactly_like_a_missing_one(
    stack: Stack, bob_status: str, method: str, suffix: str
) -> None:
    video_id = stack.create(owner="bob")["VideoId"]
    if bob_status != "created":
        vod_status = {"uploaded": "UploadSucc", "ready": "Normal", "failed": "TranscodeFail"}.get(bob_status)
        if vod_status:
            stack.vod.videos[video_id]["Status"] = vod_status
            event = {"uploaded": "FileUploadComplete"}.get(bob_status, "TranscodeComplete")
            extra: dict[str, Any] = {"Status": "fail"} if bob_status == "failed" else {}
            assert stack.callback(stack.vod_event(event, video_id, **extra))[0] == 200
        else:
            assert stack.http("upload_credentials", "DELETE", f"/uploads/{video_id}", owner="bob")[0] == 200
    calls_before = list(stack.vod.calls)

    theirs = answer(stack, "mallory", method, f"/uploads/{video_id}{suffix}")
    nobodys = answer(stack, "mallory", method, f"/uploads/{missing_like(video_id)}{suffix}")

    assert theirs == nobodys
    assert theirs[0] == 404 and theirs[1]["Code"] == "InvalidVideo.NotFound"
    assert video_id not in json.dumps(theirs)
    assert stack.vod.calls == calls_before  # nothing was asked of VOD for someone else's upload
    # and bob's upload is untouched
    status, record, _ = stack.http("upload_credentials", "GET", f"/uploads/{video_id}", owner="bob")
    assert status == 200 and record["Status"] == bob_status


def test_lists_never_show_another_owners_uploads(stack: Stack) -> None:
    bobs = {stack.create(owner="bob")["VideoId"] for _ in range(3)}
    alices = {stack.create(owner="alice")["VideoId"] for _ in range(2)}
    _, page, _ = stack.http("upload_credentials", "GET", "/uploads", owner="alice", query={"Limit": "1"})
    seen = {u["VideoId"] for u in page["Uploads"]}
    # bob's cursor used by alice pages through alice's uploads only
    _, bob_page, _ = stack.http("upload_credentials", "GET", "/uploads", owner="bob", query={"Limit": "1"})
    cursor = bob_page["NextCursor"]
    _, more, _ = stack.http("upload_credentials", "GET", "/uploads", owner="alice", query={"Cursor": cursor})
    seen |= {u["VideoId"] for u in more["Uploads"]}
    _, rest, _ = stack.http(
        "upload_credentials", "GET", "/uploads", owner="alice", query={"Cursor": page["NextCursor"]}
    )
    seen |= {u["VideoId"] for u in rest["Uploads"]}
    assert seen == alices and not seen & bobs


def test_an_idempotency_key_is_per_owner(stack: Stack) -> None:
    body = {"Title": "Holiday", "FileName": "holiday.mp4"}
    key = {"Idempotency-Key": "shared-key-1"}
    _, bobs, _ = stack.http("upload_credentials", "POST", "/uploads", body=body, owner="bob", headers=key)
    status, mallorys, _ = stack.http(
        "upload_credentials", "POST", "/uploads", body=body, owner="mallory", headers=key
    )
    assert status == 200 and mallorys["VideoId"] != bobs["VideoId"]
    assert mallorys["UploadAuth"] != bobs["UploadAuth"]


def test_owner_names_are_not_patterns(stack: Stack) -> None:
    """Owners that look like SQL wildcards or other owners' prefixes see nothing of the others."""
    video_id = stack.create(owner="bob")["VideoId"]
    for owner in ("%", "_", "b%", "bob ", "BOB", "bob\u200b", "' OR '1'='1", "*"):
        status, body, _ = stack.http("upload_credentials", "GET", f"/uploads/{video_id}", owner=owner)
        if status == 401:  # an unprintable sub is refused outright
            assert body["Code"] == "InvalidToken"
            continue
        assert status == 404, (owner, body)
        _, page, _ = stack.http("upload_credentials", "GET", "/uploads", owner=owner)
        assert page["Uploads"] == []
