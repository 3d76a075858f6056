"""Images and attached media through the real handlers: every route, both events, cleanup.

VOD is ``FakeVod`` behind the stack's respx router (every unmocked URL fails the test); the tests
assert on what VOD was actually sent.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.functional.conftest import CALLBACK_URL, Stack, age

IMAGE_ANSWER = {"RequestId", "VodRequestId", "ImageId", "ImageURL", "FileURL", "UploadAddress", "UploadAuth"}
ATTACHED_ANSWER = {
    "RequestId",
    "VodRequestId",
    "MediaId",
    "MediaURL",
    "FileURL",
    "UploadAddress",
    "UploadAuth",
}


def _get(stack: Stack, route: str, media_id: str, owner: str = "alice") -> dict[str, Any]:
    status, record, _ = stack.http("upload_credentials", "GET", f"{route}/{media_id}", owner=owner)
    assert status == 200, record
    return record


def _user_data(raw: str | None) -> dict[str, Any]:
    assert raw is not None
    data: dict[str, Any] = json.loads(raw)
    return data


# --- images ----------------------------------------------------------------------------------------


def test_an_image_is_created_in_vods_names_and_its_event_makes_it_ready(stack: Stack) -> None:
    # given a signed-in client asking for an image credential
    answer = stack.create_image(
        ImageType="cover", ImageExt="JPG", Title="封面", OriginalFileName="C:\\pics\\poster.jpg",
        UserData={"Extend": {"localId": "p1"}},
    )  # fmt: skip
    image_id = answer["ImageId"]

    # then the answer is VOD's, in VOD's names (RequestId ours, VOD's as VodRequestId)
    assert set(answer) == IMAGE_ANSWER | {"ExpireUTCTime"}
    assert answer["ImageURL"].endswith(".jpg") and answer["FileURL"] == answer["ImageURL"]
    assert json.loads(base64.b64decode(answer["UploadAuth"]))["AccessKeyId"].startswith("STS.")
    sent = stack.vod.action_calls("CreateUploadImage")[0]
    assert {k: sent[k] for k in ("ImageType", "ImageExt", "Title", "OriginalFileName")} == {
        "ImageType": "cover",
        "ImageExt": "jpg",
        "Title": "封面",
        "OriginalFileName": "poster.jpg",
    }
    user_data = _user_data(sent["UserData"])
    assert user_data["MessageCallback"] == {"CallbackURL": CALLBACK_URL, "CallbackType": "http"}
    assert user_data["Extend"]["localId"] == "p1" and len(user_data["Extend"]["vodfc_uid"]) == 32
    record = _get(stack, "/images", image_id)
    assert record["Status"] == "created" and record["ImageType"] == "cover"
    assert record["OriginalFileName"] == "poster.jpg" and "FileSize" not in record

    # when the image arrives (VOD's record says Normal) and its event comes
    status, ack = stack.callback(stack.vod_event("ImageUploadComplete", image_id, Size=105520))

    # then it is ready, confirmed with GetImageInfo, with VOD's size
    assert status == 200 and ack["Result"] == "applied"
    assert stack.vod.action_calls("GetImageInfo") == [{"ImageId": image_id}]
    record = _get(stack, "/images", image_id)
    assert (record["Status"], record["Size"], record["LastEvent"]) == ("ready", 105520, "ImageUploadComplete")
    # a redelivery changes nothing
    assert (
        stack.callback(stack.vod_event("ImageUploadComplete", image_id, Size=105520))[1]["Result"]
        == "duplicate"
    )


def test_a_forged_image_event_moves_nothing_until_vod_agrees(stack: Stack) -> None:
    image_id = stack.create_image()["ImageId"]
    status, ack = stack.callback(stack.vod_event("ImageUploadComplete", image_id, genuine=False))
    assert status == 200 and ack["Result"] == "pending"  # VOD still says Uploading
    assert _get(stack, "/images", image_id)["Status"] == "created"


def test_an_oversized_image_is_deleted_on_vods_word_not_the_events(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.functional.conftest import reset_instance_state

    monkeypatch.setenv("MAX_IMAGE_SIZE", "100000")
    reset_instance_state()
    # the event claims too much, but VOD stored a small file: ready
    honest = stack.create_image()["ImageId"]
    event = stack.vod_event("ImageUploadComplete", honest, Size=100001)
    stack.vod.images[honest]["Size"] = 100000
    assert stack.callback(event)[1]["Result"] == "applied"
    assert _get(stack, "/images", honest)["Status"] == "ready"
    assert not stack.vod.action_calls("DeleteImage")
    # VOD stored too much: the image is deleted and the record fails
    big = stack.create_image()["ImageId"]
    assert stack.callback(stack.vod_event("ImageUploadComplete", big, Size=100001))[1]["Result"] == "applied"
    record = _get(stack, "/images", big)
    assert record["Status"] == "failed" and record["Error"].startswith("FileTooLarge: 100001 bytes")
    assert stack.vod.action_calls("DeleteImage") == [{"DeleteImageType": "ImageId", "ImageIds": big}]
    assert big not in stack.vod.images


def test_an_image_event_with_another_uploads_binding_is_refused(stack: Stack) -> None:
    mine = stack.create_image(owner="alice")["ImageId"]
    theirs = stack.create_image(owner="bob")["ImageId"]
    event = stack.vod_event("ImageUploadComplete", mine)
    event["Extend"] = stack.vod_event("ImageUploadComplete", theirs)["Extend"]
    status, answer = stack.callback(event)
    assert status == 401 and answer["Code"] == "InvalidSignature.Binding"
    assert _get(stack, "/images", mine)["Status"] == "created"


def test_an_image_event_naming_a_video_is_ignored(stack: Stack) -> None:
    video_id = stack.create()["VideoId"]
    status, ack = stack.callback(stack.vod_event("ImageUploadComplete", video_id))
    assert status == 200 and ack["Result"] == "ignored"
    assert stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]["Status"] == "created"


def test_without_confirmation_the_image_event_is_applied_with_its_size(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.functional.conftest import reset_instance_state

    monkeypatch.setenv("CALLBACK_CONFIRM_WITH_VOD", "false")
    reset_instance_state()
    image_id = stack.create_image()["ImageId"]
    assert stack.callback(stack.vod_event("ImageUploadComplete", image_id, genuine=False, Size=7))[0] == 200
    assert _get(stack, "/images", image_id)["Size"] == 7
    assert not stack.vod.action_calls("GetImageInfo")


# --- attached media ---------------------------------------------------------------------------------


def test_a_subtitle_is_created_and_its_event_makes_it_ready(stack: Stack) -> None:
    answer = stack.create_attached(FileName="/home/me/English.VTT", FileSize=14333, Title="English")
    media_id = answer["MediaId"]
    assert set(answer) == ATTACHED_ANSWER | {"ExpireUTCTime"}
    sent = stack.vod.action_calls("CreateUploadAttachedMedia")[0]
    assert {k: sent[k] for k in ("BusinessType", "MediaExt", "FileName", "FileSize", "Title")} == {
        "BusinessType": "subtitle",
        "MediaExt": "vtt",
        "FileName": "English.VTT",
        "FileSize": "14333",
        "Title": "English",
    }
    record = _get(stack, "/attached-media", media_id)
    assert (record["Status"], record["BusinessType"], record["FileSize"]) == ("created", "subtitle", 14333)

    status, ack = stack.callback(stack.vod_event("AttachedMediaUploadComplete", media_id, Size=14333))

    assert status == 200 and ack["Result"] == "applied"
    assert stack.vod.action_calls("GetAttachedMediaInfo") == [{"MediaIds": media_id}]
    record = _get(stack, "/attached-media", media_id)
    # VOD reports no size for attached media: the event's is recorded once VOD confirms the file
    assert (record["Status"], record["Size"]) == ("ready", 14333)


def test_an_oversized_attached_media_is_deleted_once_vod_confirms_it_arrived(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.functional.conftest import reset_instance_state

    monkeypatch.setenv("MAX_ATTACHED_MEDIA_SIZE", "1000")
    reset_instance_state()
    media_id = stack.create_attached(FileSize=1000)["MediaId"]
    # a forged claim for a file VOD does not have yet deletes nothing
    forged = stack.vod_event("AttachedMediaUploadComplete", media_id, genuine=False, Size=5000)
    assert stack.callback(forged)[1]["Result"] == "pending"
    assert not stack.vod.action_calls("DeleteAttachedMedia")
    # the file arrived, too large
    assert stack.callback(stack.vod_event("AttachedMediaUploadComplete", media_id, Size=5000))[0] == 200
    record = _get(stack, "/attached-media", media_id)
    assert record["Status"] == "failed" and "FileTooLarge" in record["Error"]
    assert stack.vod.action_calls("DeleteAttachedMedia") == [{"MediaIds": media_id}]
    # and the declared size is checked before VOD is asked
    status, err, _ = stack.http(
        "upload_credentials",
        "POST",
        "/attached-media",
        body={"BusinessType": "subtitle", "MediaExt": "srt", "FileSize": 1001},
    )
    assert (status, err["Code"], err["Field"]) == (400, "InvalidParameter.FileSize", "FileSize")
    assert len(stack.vod.action_calls("CreateUploadAttachedMedia")) == 1


# --- routes common to both kinds ----------------------------------------------------------------------

KINDS = [
    ("/images", "ImageId", "Images", "create_image"),
    ("/attached-media", "MediaId", "AttachedMedia", "create_attached"),
]


@pytest.mark.parametrize(("route", "id_field", "list_key", "create"), KINDS, ids=["image", "attached"])
def test_list_is_per_owner_and_kind_newest_first_filtered_and_paged(
    stack: Stack, route: str, id_field: str, list_key: str, create: str
) -> None:
    # (the stack's quota is 3 pending media of every kind per owner)
    ids = [getattr(stack, create)(owner="carol", Title=f"n{i}")[id_field] for i in range(2)]
    getattr(stack, create)(owner="dave")
    stack.create(owner="carol")  # a video: not in this list
    status, page, _ = stack.http("upload_credentials", "GET", route, owner="carol", query={"Limit": "1"})
    assert status == 200 and [m[id_field] for m in page[list_key]] == [ids[1]]
    rest = stack.http(
        "upload_credentials", "GET", route, owner="carol", query={"Limit": "1", "Cursor": page["NextCursor"]}
    )[1]
    assert [m[id_field] for m in rest[list_key]] == [ids[0]] and rest["NextCursor"] is None
    created = stack.http("upload_credentials", "GET", route, owner="carol", query={"Status": "created"})[1]
    assert len(created[list_key]) == 2
    ready = stack.http("upload_credentials", "GET", route, owner="carol", query={"Status": "ready"})[1]
    assert ready[list_key] == []
    # "uploaded" and "processing" are video statuses only
    status, err, _ = stack.http(
        "upload_credentials", "GET", route, owner="carol", query={"Status": "uploaded"}
    )
    assert status == 400 and err["Field"] == "Status"
    videos = stack.http("upload_credentials", "GET", "/uploads", owner="carol")[1]["Uploads"]
    assert len(videos) == 1


@pytest.mark.parametrize(("route", "id_field", "list_key", "create"), KINDS, ids=["image", "attached"])
def test_another_owners_media_answers_like_a_missing_one(
    stack: Stack, route: str, id_field: str, list_key: str, create: str
) -> None:
    media_id = getattr(stack, create)(owner="alice")[id_field]
    before = len(stack.vod.calls)
    for method in ("GET", "DELETE"):
        theirs = stack.http("upload_credentials", method, f"{route}/{media_id}", owner="bob")
        none = stack.http("upload_credentials", method, f"{route}/{'0' * 32}", owner="bob")
        assert theirs[0] == none[0] == 404 and theirs[1]["Code"] == "NoSuchResource"
        assert {k: v for k, v in theirs[1].items() if k != "RequestId"} == {
            k: v for k, v in none[1].items() if k != "RequestId"
        }
        assert theirs[1]["Field"] == id_field
    assert len(stack.vod.calls) == before  # VOD is never asked about it
    # nor does a video's id answer on the image routes, or an image's on /uploads
    video_id = stack.create(owner="alice")["VideoId"]
    before = len(stack.vod.calls)
    assert stack.http("upload_credentials", "GET", f"{route}/{video_id}", owner="alice")[0] == 404
    assert stack.http("upload_credentials", "DELETE", f"/uploads/{media_id}", owner="alice")[0] == 404
    assert len(stack.vod.calls) == before
    # and there is no refresh: VOD offers none
    status, err, _ = stack.http("upload_credentials", "POST", f"{route}/{media_id}/refresh", owner="alice")
    assert status == 404 and err["Code"] == "InvalidApi.NotFound"


@pytest.mark.parametrize(
    ("route", "id_field", "create", "action", "store"),
    [
        ("/images", "ImageId", "create_image", "DeleteImage", "images"),
        ("/attached-media", "MediaId", "create_attached", "DeleteAttachedMedia", "attached"),
    ],
    ids=["image", "attached"],
)
def test_delete_removes_the_media_at_vod_and_answers_the_records_status(
    stack: Stack, route: str, id_field: str, create: str, action: str, store: str
) -> None:
    media_id = getattr(stack, create)()[id_field]
    status, answer, _ = stack.http("upload_credentials", "DELETE", f"{route}/{media_id}")
    assert status == 200 and answer[id_field] == media_id and answer["Status"] == "deleted"
    assert media_id not in getattr(stack.vod, store)
    assert len(stack.vod.action_calls(action)) == 1
    # again: the record's status, and VOD is not asked twice
    again = stack.http("upload_credentials", "DELETE", f"{route}/{media_id}")
    assert again[0] == 200 and again[1]["Status"] == "deleted"
    assert len(stack.vod.action_calls(action)) == 1
    # a media gone at VOD already is still marked deleted
    other = getattr(stack, create)()[id_field]
    getattr(stack.vod, store).pop(other)
    assert stack.http("upload_credentials", "DELETE", f"{route}/{other}")[1]["Status"] == "deleted"


# --- idempotency: a replay replaces the pending media -------------------------------------------------


@pytest.mark.parametrize(
    ("route", "id_field", "body", "action", "store", "delete"),
    [
        (
            "/images",
            "ImageId",
            {"ImageType": "default", "Title": "t"},
            "CreateUploadImage",
            "images",
            "DeleteImage",
        ),
        (
            "/attached-media",
            "MediaId",
            {"BusinessType": "watermark", "MediaExt": "png"},
            "CreateUploadAttachedMedia",
            "attached",
            "DeleteAttachedMedia",
        ),
    ],
    ids=["image", "attached"],
)
def test_a_replayed_idempotency_key_replaces_the_pending_media_in_the_same_record(
    stack: Stack, route: str, id_field: str, body: dict[str, Any], action: str, store: str, delete: str
) -> None:
    headers = {"Idempotency-Key": "key-1"}
    first = stack.http("upload_credentials", "POST", route, body=body, headers=headers)
    again = stack.http("upload_credentials", "POST", route, body=body, headers=headers)
    assert first[0] == again[0] == 200
    old, new = first[1][id_field], again[1][id_field]
    # a new media with a fresh credential (VOD cannot refresh these), the old one deleted at VOD
    assert new != old and again[1]["UploadAuth"] != first[1]["UploadAuth"]
    assert len(stack.vod.action_calls(action)) == 2
    assert old not in getattr(stack.vod, store) and new in getattr(stack.vod, store)
    assert len(stack.vod.action_calls(delete)) == 1
    # one record, now holding the new media, bound to the same upload id
    listed = stack.http("upload_credentials", "GET", route)[1]
    assert [
        m[id_field] for m in next(v for k, v in listed.items() if k not in ("RequestId", "NextCursor"))
    ] == [new]
    assert stack.http("upload_credentials", "GET", f"{route}/{old}")[0] == 404
    bindings = {_user_data(c["UserData"])["Extend"]["vodfc_uid"] for c in stack.vod.action_calls(action)}
    assert len(bindings) == 1
    # the new media's event makes the record ready; the old one's would be an orphan
    event = "ImageUploadComplete" if store == "images" else "AttachedMediaUploadComplete"
    assert stack.callback(stack.vod_event(event, new))[1]["Result"] == "applied"
    assert stack.http("upload_credentials", "GET", f"{route}/{new}")[1]["Status"] == "ready"
    # another body with the same key, or the same key on another route, is a conflict
    other = stack.http("upload_credentials", "POST", route, body={**body, "Title": "x"}, headers=headers)
    assert other[0] == 409 and other[1]["Code"] == "IdempotencyKeyReused"
    video = stack.http(
        "upload_credentials", "POST", "/uploads", body={"Title": "v", "FileName": "v.mp4"}, headers=headers
    )
    assert video[0] == 409 and video[1]["Code"] == "IdempotencyKeyReused"


def test_a_replay_after_the_image_arrived_settles_the_record_instead(stack: Stack) -> None:
    headers = {"Idempotency-Key": "key-2"}
    body = {"ImageType": "cover"}
    image_id = stack.http("upload_credentials", "POST", "/images", body=body, headers=headers)[1]["ImageId"]
    stack.vod.images[image_id]["Status"] = "Normal"  # uploaded; its event has not arrived yet
    status, err, _ = stack.http("upload_credentials", "POST", "/images", body=body, headers=headers)
    assert status == 409 and err["Code"] == "IllegalStatus"
    assert len(stack.vod.action_calls("CreateUploadImage")) == 1 and not stack.vod.action_calls("DeleteImage")
    assert _get(stack, "/images", image_id)["Status"] == "ready"


# --- quota and failures ------------------------------------------------------------------------------


def test_the_pending_quota_is_shared_by_every_kind(stack: Stack) -> None:
    # MAX_PENDING_UPLOADS_PER_OWNER is 3 in the stack
    stack.create(owner="quota")
    stack.create_image(owner="quota")
    stack.create_attached(owner="quota")
    for route, body in (
        ("/uploads", {"Title": "t", "FileName": "t.mp4"}),
        ("/images", {"ImageType": "cover"}),
        ("/attached-media", {"BusinessType": "subtitle", "MediaExt": "srt"}),
    ):
        status, err, _ = stack.http("upload_credentials", "POST", route, body=body, owner="quota")
        assert (status, err["Code"]) == (403, "QuotaExceeded.PendingUploads")


@pytest.mark.parametrize(
    ("fault", "status", "holds_quota"),
    [
        (httpx.Response(500, json={"Code": "InternalError", "Message": "boom", "RequestId": "r"}), 503, True),
        (httpx.ReadTimeout("lost"), 504, True),
        (
            httpx.Response(400, json={"Code": "InvalidParameter", "Message": "no", "RequestId": "r"}),
            400,
            False,
        ),
    ],
    ids=["5xx", "lost-answer", "refused"],
)
def test_a_failed_image_create_is_not_retried_and_keeps_its_reservation_only_if_vod_may_have_acted(
    stack: Stack, fault: httpx.Response | Exception, status: int, holds_quota: bool
) -> None:
    stack.vod.faults["CreateUploadImage"] = [fault]
    answer = stack.http("upload_credentials", "POST", "/images", body={"ImageType": "cover"}, owner="flaky")
    assert answer[0] == status
    assert len(stack.vod.action_calls("CreateUploadImage")) == 1  # no ReferenceId: never retried blindly
    stack.create(owner="flaky")
    stack.create(owner="flaky")
    third = stack.http(
        "upload_credentials", "POST", "/uploads", body={"Title": "t", "FileName": "t.mp4"}, owner="flaky"
    )
    assert (third[0] == 403) is holds_quota


# --- cleanup -------------------------------------------------------------------------------------------


def _ids(stack: Stack, route: str, owner: str, id_field: str) -> list[str]:
    listed = stack.http("upload_credentials", "GET", route, owner=owner)[1]
    return [m[id_field] for m in listed["Images" if route == "/images" else "AttachedMedia"]]


def test_cleanup_expires_abandoned_images_and_attached_media_and_reconciles_lost_events(stack: Stack) -> None:
    abandoned_image = stack.create_image(owner="erin")["ImageId"]
    lost_image = stack.create_image(owner="erin")["ImageId"]
    abandoned_subtitle = stack.create_attached(owner="erin")["MediaId"]
    gone_subtitle = stack.create_attached(owner="frank")["MediaId"]
    fresh_image = stack.create_image(owner="frank")["ImageId"]
    age([abandoned_image, lost_image, abandoned_subtitle, gone_subtitle], 3600)
    stack.vod.images[lost_image].update(Status="Normal", Size=2048)  # its event never came
    stack.vod.attached.pop(gone_subtitle)  # deleted at VOD by someone else

    summary = stack.cleanup()

    assert summary["scanned"] == 4 and summary["errors"] == 0
    assert summary["deleted"] == 3 and summary["reconciled"] == 1
    [asked] = stack.vod.action_calls("GetImageInfos")
    assert sorted(asked["ImageIds"].split(",")) == sorted([abandoned_image, lost_image])
    assert stack.vod.action_calls("DeleteImage") == [
        {"DeleteImageType": "ImageId", "ImageIds": abandoned_image}
    ]
    assert stack.vod.action_calls("DeleteAttachedMedia") == [{"MediaIds": abandoned_subtitle}]
    assert _get(stack, "/images", abandoned_image, "erin")["Status"] == "expired"
    lost = _get(stack, "/images", lost_image, "erin")
    assert (lost["Status"], lost["Size"]) == ("ready", 2048)
    assert _get(stack, "/attached-media", abandoned_subtitle, "erin")["Status"] == "expired"
    assert _get(stack, "/attached-media", gone_subtitle, "frank")["Status"] == "expired"
    assert _get(stack, "/images", fresh_image, "frank")["Status"] == "created"
    assert abandoned_image not in stack.vod.images and abandoned_subtitle not in stack.vod.attached
    # a second run finds nothing
    assert stack.cleanup()["scanned"] == 0


def test_cleanup_drops_an_image_reservation_whose_media_vod_may_have_made(stack: Stack) -> None:
    stack.vod.faults["CreateUploadImage"] = [httpx.ReadTimeout("lost")]
    assert (
        stack.http("upload_credentials", "POST", "/images", body={"ImageType": "cover"}, owner="gil")[0]
        == 504
    )
    import sqlite3

    from shared.settings import get_settings

    path = get_settings().database_url.get_secret_value().removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE uploads SET created_at = '2020-01-01T00:00:00+00:00' WHERE owner = 'gil'")
    calls = len(stack.vod.calls)

    summary = stack.cleanup()

    # nothing at VOD can be found by a ReferenceId for an image: the row goes, with a log line
    assert summary["deleted"] == 1 and len(stack.vod.calls) == calls
    assert _ids(stack, "/images", "gil", "ImageId") == []
    for _ in range(3):
        stack.create(owner="gil")  # the quota slot is free again


# --- what VOD says decides ---------------------------------------------------------------------------


def test_an_image_status_images_do_not_have_keeps_the_event_pending(stack: Stack) -> None:
    image_id = stack.create_image()["ImageId"]
    stack.vod.images[image_id]["Status"] = "UploadSucc"  # a video's status: not one an image has
    assert (
        stack.callback(stack.vod_event("ImageUploadComplete", image_id, genuine=False))[1]["Result"]
        == "pending"
    )
    assert _get(stack, "/images", image_id)["Status"] == "created"


def test_an_attached_media_vod_no_longer_has_is_deleted_by_its_event(stack: Stack) -> None:
    media_id = stack.create_attached()["MediaId"]
    stack.vod.attached.pop(media_id)
    assert stack.callback(stack.vod_event("AttachedMediaUploadComplete", media_id))[1]["Result"] == "applied"
    record = _get(stack, "/attached-media", media_id)
    assert record["Status"] == "deleted" and record["Error"].startswith("MediaNotFound")


def test_an_image_vod_stored_too_large_is_deleted_whatever_the_event_claims(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.functional.conftest import reset_instance_state

    monkeypatch.setenv("MAX_IMAGE_SIZE", "1000")
    reset_instance_state()
    image_id = stack.create_image()["ImageId"]
    event = stack.vod_event("ImageUploadComplete", image_id, Size=10)  # the event claims little
    stack.vod.images[image_id]["Size"] = 5000  # VOD stored much more
    assert stack.callback(event)[1]["Result"] == "applied"
    record = _get(stack, "/images", image_id)
    assert record["Status"] == "failed" and record["Error"].startswith("FileTooLarge: 5000 bytes")
    assert image_id not in stack.vod.images


@pytest.mark.parametrize("action", ["GetImageInfo", "DeleteImage"])
def test_an_oversize_check_vod_cannot_finish_keeps_the_event_pending(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    from tests.functional.conftest import reset_instance_state

    monkeypatch.setenv("MAX_IMAGE_SIZE", "1000")
    monkeypatch.setenv("VOD_MAX_ATTEMPTS", "1")
    reset_instance_state()
    image_id = stack.create_image()["ImageId"]
    event = stack.vod_event("ImageUploadComplete", image_id, Size=5000)
    stack.vod.faults[action] = [httpx.Response(503, json={"Code": "ServiceUnAvailable", "Message": "m"})]
    assert stack.callback(event)[1]["Result"] == "pending"
    assert _get(stack, "/images", image_id)["Status"] == "created"


def test_a_replay_whose_old_image_is_gone_at_vod_replaces_it_without_a_delete(stack: Stack) -> None:
    headers = {"Idempotency-Key": "key-gone"}
    first = stack.http("upload_credentials", "POST", "/images", body={"ImageType": "cover"}, headers=headers)[
        1
    ]
    stack.vod.images.pop(first["ImageId"])
    again = stack.http("upload_credentials", "POST", "/images", body={"ImageType": "cover"}, headers=headers)
    assert again[0] == 200 and again[1]["ImageId"] != first["ImageId"]
    assert not stack.vod.action_calls("DeleteImage")
    assert _get(stack, "/images", again[1]["ImageId"])["Status"] == "created"


def test_a_replay_racing_the_owners_delete_undoes_its_new_media(stack: Stack) -> None:
    headers = {"Idempotency-Key": "key-race"}
    body = {"BusinessType": "subtitle", "MediaExt": "srt"}
    first = stack.http("upload_credentials", "POST", "/attached-media", body=body, headers=headers)[1]

    def owner_deletes_meanwhile(params: dict[str, str]) -> None:
        assert stack.http("upload_credentials", "DELETE", f"/attached-media/{first['MediaId']}")[0] == 200

    stack.vod.faults["CreateUploadAttachedMedia"] = [owner_deletes_meanwhile]
    status, err, _ = stack.http("upload_credentials", "POST", "/attached-media", body=body, headers=headers)
    assert (status, err["Code"]) == (409, "IllegalStatus")
    # the media made for the replay was deleted again: nothing is left at VOD
    assert stack.vod.attached == {}
    assert _get(stack, "/attached-media", first["MediaId"])["Status"] == "deleted"


def test_cleanup_fails_a_lost_image_that_vod_stored_too_large(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.functional.conftest import reset_instance_state

    monkeypatch.setenv("MAX_IMAGE_SIZE", "1000")
    reset_instance_state()
    image_id = stack.create_image(owner="hal")["ImageId"]
    age([image_id], 3600)
    stack.vod.images[image_id].update(Status="Normal", Size=4096)  # its event never came
    summary = stack.cleanup()
    assert summary["reconciled"] == 1
    record = _get(stack, "/images", image_id, "hal")
    assert record["Status"] == "failed" and "FileTooLarge" in record["Error"]
    assert image_id not in stack.vod.images


def test_the_scheduled_check_asks_each_kinds_own_operation(stack: Stack) -> None:
    import sqlite3

    from shared.settings import get_settings

    image_id = stack.create_image(owner="ivy")["ImageId"]
    media_id = stack.create_attached(owner="ivy")["MediaId"]
    video_id = stack.create(owner="ivy")["VideoId"]
    stack.vod.images[image_id].update(Status="Normal", Size=64)  # its event was lost
    stack.vod.attached.pop(media_id)  # gone at VOD
    path = get_settings().database_url.get_secret_value().removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:  # due now, as RECONCILE_SCHEDULE_SECONDS would make them
        conn.execute("UPDATE uploads SET check_at = '2020-01-01T00:00:00.000000+00:00' WHERE owner = 'ivy'")

    summary = stack.cleanup()

    assert summary["stuck_checked"] == 3 and summary["errors"] == 0
    assert stack.vod.action_calls("GetImageInfos") == [{"ImageIds": image_id}]
    assert stack.vod.action_calls("GetAttachedMediaInfo") == [{"MediaIds": media_id}]
    assert stack.vod.action_calls("GetVideoInfos") == [{"VideoIds": video_id}]
    assert _get(stack, "/images", image_id, "ivy")["Status"] == "ready"
    assert _get(stack, "/attached-media", media_id, "ivy")["Status"] == "expired"
    assert (
        stack.http("upload_credentials", "GET", f"/uploads/{video_id}", owner="ivy")[1]["Status"] == "created"
    )
