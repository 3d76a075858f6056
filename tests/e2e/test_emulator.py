"""End-to-end: the VOD/OSS emulator driven by the official SDKs' signing and the real ``oss2`` client.

Given an emulator on free loopback ports (fixtures in ``conftest.py``), when a client signs like
Alibaba's own SDKs and uploads like ``oss2`` does, then the emulator answers like VOD/OSS and
fires signed callbacks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import oss2
import pytest

from devkit.emulator import DEV_CALLBACK_KEY, Emulator, make_emulator

from .conftest import CallbackSink, OfficialVodClient, past

pytestmark = pytest.mark.e2e

ERROR_KEYS = {"RequestId", "HostId", "Code", "Message", "Recommend"}


def decode(b64: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.b64decode(b64))
    return data


def create(vod: OfficialVodClient, **params: str) -> dict[str, Any]:
    """CreateUploadVideo; the answer plus decoded ``address`` and ``auth``."""
    body = vod.call("CreateUploadVideo", {"Title": "Holiday", "FileName": "clip.mp4", **params})
    return {**body, "address": decode(body["UploadAddress"]), "auth": decode(body["UploadAuth"])}


def bucket_for(created: dict[str, Any], *, v4: bool = False, secret: str | None = None) -> oss2.Bucket:
    """An oss2 bucket client from the decoded UploadAddress / UploadAuth (IP endpoint: path-style)."""
    auth = created["auth"]
    sts = oss2.StsAuth(
        auth["AccessKeyId"],
        secret or auth["AccessKeySecret"],
        auth["SecurityToken"],
        auth_version=oss2.AUTH_VERSION_4 if v4 else oss2.AUTH_VERSION_1,
    )
    address = created["address"]
    return oss2.Bucket(sts, address["Endpoint"], address["Bucket"], region=auth["Region"] if v4 else None)


def expect_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS
    assert body["Code"] == code
    return body


def callback_signature_ok(received_headers: dict[str, str], url: str) -> bool:
    ts = received_headers["x-vod-timestamp"]
    expected = hashlib.md5(f"{url}|{ts}|{DEV_CALLBACK_KEY}".encode()).hexdigest()
    return received_headers["x-vod-signature"] == expected and ts.isdigit() and len(ts) == 10


# --- OpenAPI signing ---------------------------------------------------------------------------------


def test_v3_signed_by_official_sdk_is_accepted_and_tampering_is_refused(vod: OfficialVodClient) -> None:
    params = {"Title": "Voyage ✈ 旅行", "FileName": "D:\\videos\\trip 01.MOV", "Tags": "a,b"}
    created = vod.v3("CreateUploadVideo", params)
    assert created.status_code == 200, created.text
    body = created.json()
    assert set(body) == {"RequestId", "VideoId", "UploadAddress", "UploadAuth"}
    assert len(body["VideoId"]) == 32
    assert created.headers["x-acs-request-id"] == body["RequestId"]

    url, headers = vod.v3_request("CreateUploadVideo", params)
    tampered = vod.http.post(url.replace("Voyage", "Voyagf"), headers=headers)
    err = expect_error(tampered, 400, "SignatureDoesNotMatch")
    assert "server string to sign is:" in err["Message"]


def test_v1_signed_by_official_sdk_is_accepted_get_and_post(vod: OfficialVodClient) -> None:
    created = create(vod)
    for method in ("POST", "GET"):
        response = vod.v1("GetVideoInfo", {"VideoId": created["VideoId"]}, method=method)
        assert response.status_code == 200, response.text
        assert response.json()["Video"]["Status"] == "Uploading"
    # Without Format=JSON, VOD answers XML (its default).
    xml = vod.v1("GetVideoInfo", {"VideoId": created["VideoId"]}, fmt=None)
    assert xml.text.startswith("<?xml") and "<Status>Uploading</Status>" in xml.text
    wrong_secret = vod.v1("GetVideoInfo", {"VideoId": created["VideoId"]}, secret="not-the-secret")
    expect_error(wrong_secret, 400, "SignatureDoesNotMatch")


def test_gateway_errors_unknown_key_stale_time_reused_nonce(vod: OfficialVodClient) -> None:
    expect_error(
        vod.v3("GetVideoInfo", {"VideoId": "x"}, key_id="nobody"), 404, "InvalidAccessKeyId.NotFound"
    )
    expect_error(vod.v3("GetVideoInfo", {"VideoId": "x"}, when=past(20)), 400, "InvalidTimeStamp.Expired")
    url = vod.v1_url("GetVideoInfos", {"VideoIds": "a"})
    assert vod.http.post(url).status_code == 200
    expect_error(vod.http.post(url), 400, "SignatureNonceUsed")
    expect_error(vod.http.post(f"{vod.emulator.vod_url}/?Action=GetVideoInfo"), 400, "MissingParameter")


def test_sts_credentials_on_the_openapi(emulator: Emulator, vod: OfficialVodClient) -> None:
    cred = emulator.issue_api_credentials(ttl=600)
    assert cred.security_token is not None
    ok = vod.v3(
        "GetVideoInfos",
        {"VideoIds": "a"},
        key_id=cred.access_key_id,
        secret=cred.access_key_secret,
        token=cred.security_token,
    )
    assert ok.status_code == 200, ok.text
    mismatch = vod.v3(
        "GetVideoInfos",
        {"VideoIds": "a"},
        key_id=cred.access_key_id,
        secret=cred.access_key_secret,
        token="CAISx",
    )
    expect_error(mismatch, 400, "InvalidSecurityToken.MismatchWithAccessKey")


# --- the upload flow -----------------------------------------------------------------------------------


def test_multipart_upload_with_oss2_fires_signed_callbacks_and_ends_normal(
    emulator: Emulator, vod: OfficialVodClient, callback_sink: CallbackSink, tmp_path: Path
) -> None:
    user_data = json.dumps({"Extend": {"localId": "abc-123"}})
    created = create(vod, UserData=user_data, ReferenceId="ref-multipart-1")
    auth, address = created["auth"], created["address"]
    assert auth["AccessKeyId"].startswith("STS.") and auth["Expiration"] == "3000"
    assert auth["Region"] == "cn-shanghai" and auth["ExpireUTCTime"].endswith("Z")
    assert address["Endpoint"] == emulator.oss_url and address["FileName"].startswith("sv/")

    source = tmp_path / "movie.mp4"
    data = os.urandom(350 * 1024)
    source.write_bytes(data)
    result = oss2.resumable_upload(
        bucket_for(created),
        address["FileName"],
        str(source),
        store=oss2.ResumableStore(root=str(tmp_path)),
        multipart_threshold=100 * 1024,
        part_size=100 * 1024,
        num_threads=2,
    )
    assert result.etag.endswith("-4")  # 4 parts; oss2 also checked the CRC-64 of the whole

    assert emulator.drain(10)
    uploaded = callback_sink.events("FileUploadComplete")
    assert len(uploaded) == 1
    event = uploaded[0]
    assert event["VideoId"] == created["VideoId"] and event["Status"] == "success"
    assert event["Size"] == len(data)
    assert json.loads(event["Extend"]) == {"localId": "abc-123"}
    assert httpx.get(event["FileUrl"], trust_env=False).content == data
    for received in callback_sink.received:
        assert callback_signature_ok(received.headers, callback_sink.url("/callbacks/vod"))
        assert received.headers["content-type"] == "application/json"
    streams = callback_sink.events("StreamTranscodeComplete")
    assert {s["Definition"] for s in streams} == {"LD", "SD"}
    (final,) = callback_sink.events("TranscodeComplete")
    assert final["Status"] == "success" and len(final["StreamInfos"]) == 2

    video = vod.call("GetVideoInfo", {"VideoId": created["VideoId"]})["Video"]
    assert video["Status"] == "Normal" and video["Size"] == len(data) and video["Duration"] > 0
    assert video["ReferenceId"] == "ref-multipart-1"
    mezzanine = vod.call("GetMezzanineInfo", {"VideoId": created["VideoId"]})["Mezzanine"]
    assert mezzanine["Status"] == "Normal" and mezzanine["Size"] == len(data)


def test_simple_put_v4_goes_to_the_per_media_callback_url(
    emulator: Emulator, vod: OfficialVodClient, callback_sink: CallbackSink
) -> None:
    own_url = callback_sink.url("/per-media?x=1")
    created = create(vod, UserData=json.dumps({"MessageCallback": {"CallbackURL": own_url}}))
    result = bucket_for(created, v4=True).put_object(created["address"]["FileName"], b"tiny video")
    assert result.status == 200
    assert emulator.drain(10)
    assert {r.path for r in callback_sink.received} == {"/per-media?x=1"}
    assert all(callback_signature_ok(r.headers, own_url) for r in callback_sink.received)
    assert "Extend" not in callback_sink.events("FileUploadComplete")[0]


def test_browser_style_v1_with_x_oss_date_and_cors(emulator: Emulator, vod: OfficialVodClient) -> None:
    created = create(vod)
    key = created["address"]["FileName"]
    # ali-oss in a browser cannot set Date: it signs x-oss-date instead (oss2 does the same if asked).
    result = bucket_for(created).put_object(
        key, b"from a browser", headers={"x-oss-date": oss2.utils.http_date()}
    )
    assert result.status == 200
    url = f"{emulator.oss_url}/{created['address']['Bucket']}/{key}"
    preflight = httpx.options(
        url,
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization,x-oss-date,x-oss-security-token,content-type",
        },
        trust_env=False,
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "x-oss-security-token" in preflight.headers["access-control-allow-headers"]
    got = httpx.get(url, headers={"Origin": "http://localhost:5173"}, trust_env=False)
    assert got.content == b"from a browser"
    exposed = got.headers["access-control-expose-headers"]
    assert "ETag" in exposed and "x-oss-request-id" in exposed


def test_ali_oss_style_v1_request_without_bucket_in_path(emulator: Emulator, vod: OfficialVodClient) -> None:
    """ali-oss (no sldEnable) sends /<key> to an IP endpoint and signs x-oss-date, like a browser."""
    created = create(vod)
    auth, address = created["auth"], created["address"]
    date = oss2.utils.http_date()
    headers = {
        "Content-Type": "video/mp4",
        "x-oss-date": date,
        "x-oss-security-token": auth["SecurityToken"],
        "x-oss-user-agent": "aliyun-sdk-js/6.20.0 Chrome 120.0",
    }
    oss_lines = "".join(f"{k}:{headers[k]}\n" for k in sorted(h for h in headers if h.startswith("x-oss-")))
    to_sign = f"PUT\n\nvideo/mp4\n{date}\n{oss_lines}/{address['Bucket']}/{address['FileName']}"
    digest = hmac.new(auth["AccessKeySecret"].encode(), to_sign.encode(), hashlib.sha1).digest()
    headers["Authorization"] = f"OSS {auth['AccessKeyId']}:{base64.b64encode(digest).decode()}"
    response = httpx.put(
        f"{emulator.oss_url}/{address['FileName']}", content=b"js", headers=headers, trust_env=False
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == f'"{hashlib.md5(b"js").hexdigest().upper()}"'
    assert emulator.drain(10)
    assert vod.call("GetVideoInfo", {"VideoId": created["VideoId"]})["Video"]["Size"] == 2


# --- credentials on OSS ----------------------------------------------------------------------------------


def oss_error(exc_info: pytest.ExceptionInfo[oss2.exceptions.OssError]) -> tuple[int, str]:
    return exc_info.value.status, exc_info.value.code


def test_expired_credentials_are_refused_until_refreshed(emulator: Emulator, vod: OfficialVodClient) -> None:
    created = create(vod)
    key = created["address"]["FileName"]
    assert emulator.expire_upload_credentials(created["VideoId"]) == 1
    with pytest.raises(oss2.exceptions.OssError) as exc_info:
        bucket_for(created).put_object(key, b"late")
    assert oss_error(exc_info) == (403, "SecurityTokenExpired")

    refreshed = vod.call("RefreshUploadVideo", {"VideoId": created["VideoId"]})
    assert decode(refreshed["UploadAddress"]) == created["address"]
    fresh = {**created, "auth": decode(refreshed["UploadAuth"])}
    assert bucket_for(fresh).put_object(key, b"on time").status == 200


def test_wrong_key_or_wrong_secret_is_refused(vod: OfficialVodClient) -> None:
    first, second = create(vod), create(vod)
    with pytest.raises(oss2.exceptions.OssError) as exc_info:
        bucket_for(first).put_object(second["address"]["FileName"], b"not mine")
    assert oss_error(exc_info) == (403, "AccessDenied")
    with pytest.raises(oss2.exceptions.OssError) as exc_info:
        bucket_for(first, secret="guessed").put_object(first["address"]["FileName"], b"x")
    assert oss_error(exc_info) == (403, "SignatureDoesNotMatch")
    other = oss2.Bucket(
        oss2.StsAuth("STS.unknown", "s", "t"), first["address"]["Endpoint"], first["address"]["Bucket"]
    )
    with pytest.raises(oss2.exceptions.OssError) as exc_info:
        other.put_object(first["address"]["FileName"], b"x")
    assert oss_error(exc_info) == (403, "InvalidAccessKeyId")


def test_multipart_part_list_is_validated(vod: OfficialVodClient) -> None:
    created = create(vod)
    bucket, key = bucket_for(created), created["address"]["FileName"]
    upload_id = bucket.init_multipart_upload(key).upload_id
    p1 = bucket.upload_part(key, upload_id, 1, b"a" * 1024)
    p2 = bucket.upload_part(key, upload_id, 2, b"b" * 1024)
    assert [p.part_number for p in bucket.list_parts(key, upload_id).parts] == [1, 2]
    bad = oss2.models.PartInfo(2, "0" * 32)
    with pytest.raises(oss2.exceptions.OssError) as exc_info:
        bucket.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(1, p1.etag), bad])
    assert oss_error(exc_info) == (400, "InvalidPart")
    parts = [oss2.models.PartInfo(1, p1.etag), oss2.models.PartInfo(2, p2.etag)]
    with pytest.raises(oss2.exceptions.OssError) as exc_info:
        bucket.complete_multipart_upload(key, upload_id, parts)
    assert oss_error(exc_info) == (400, "EntityTooSmall")  # part 1 < 100 KB
    bucket.abort_multipart_upload(key, upload_id)
    with pytest.raises(oss2.exceptions.OssError) as exc_info:
        bucket.list_parts(key, upload_id)
    assert oss_error(exc_info) == (404, "NoSuchUpload")


# --- faults -------------------------------------------------------------------------------------------


def test_faults_throttle_5xx_garbage_slow(emulator: Emulator, vod: OfficialVodClient) -> None:
    params = {"VideoIds": "a"}
    emulator.set_faults(throttle=1, retry_after=2)
    throttled = vod.v3("GetVideoInfos", params)
    expect_error(throttled, 400, "Throttling.User")
    assert throttled.headers["x-acs-retry-after"] == "2"
    assert vod.v3("GetVideoInfos", params).status_code == 200

    admin = f"{emulator.vod_url}/_emulator/faults"
    assert vod.http.post(admin, json={"errors": 2, "error_status": 500}).status_code == 200
    expect_error(vod.v3("GetVideoInfos", params), 500, "InternalError")
    expect_error(vod.v3("GetVideoInfos", params), 500, "InternalError")
    vod.http.post(admin, json={"errors": 1, "error_status": 503})
    expect_error(vod.v3("GetVideoInfos", params), 503, "ServiceUnAvailable")

    emulator.set_faults(forbidden=1)
    expect_error(vod.v3("GetVideoInfos", params), 403, "Forbidden")

    emulator.set_faults(garbage=1, actions=["GetVideoInfos"])
    assert vod.v3("GetVideoInfo", {"VideoId": "x"}).status_code == 404  # other actions unaffected
    garbage = vod.v3("GetVideoInfos", params)
    assert garbage.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        garbage.json()

    emulator.set_faults(slow_seconds=0.3, slow_calls=1)
    started = time.monotonic()
    assert vod.v3("GetVideoInfos", params).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert vod.http.delete(admin).json()["slow_calls"] == 0


def test_lost_answer_then_duplicate_reference_id_then_lookup(
    emulator: Emulator, vod: OfficialVodClient
) -> None:
    """The fault a retrying client must survive: VOD made the media but the answer was lost."""
    params = {"Title": "t", "FileName": "a.mp4", "ReferenceId": "lost-answer-1"}
    emulator.set_faults(lost_answers=1, actions=["CreateUploadVideo"])
    expect_error(vod.v3("CreateUploadVideo", params), 503, "ServiceUnAvailable")
    expect_error(vod.v3("CreateUploadVideo", params), 400, "InvalidParameter.ReferenceId")
    (video,) = vod.call("GetVideoInfos", {"ReferenceIds": "lost-answer-1"})["VideoList"]
    assert video["Status"] == "Uploading"


def test_dropped_and_retried_callbacks(
    emulator: Emulator, vod: OfficialVodClient, callback_sink: CallbackSink
) -> None:
    emulator.set_faults(drop_callbacks=-1)
    first = create(vod)
    bucket_for(first).put_object(first["address"]["FileName"], b"1")
    assert emulator.drain(10)
    assert callback_sink.received == []
    assert all(d.dropped for d in emulator.deliveries)

    emulator.clear_faults()
    callback_sink.statuses[:] = [500, 302]  # two failures (a redirect is one), then 200
    second = create(vod)
    bucket_for(second).put_object(second["address"]["FileName"], b"2")
    assert emulator.drain(10)
    uploads = [d for d in emulator.deliveries if d.media_id == second["VideoId"]]
    first_event = uploads[0]
    assert first_event.event_type == "FileUploadComplete"
    assert first_event.delivered and first_event.attempts == 3
    assert len(callback_sink.events("FileUploadComplete")) == 3


# --- management actions ------------------------------------------------------------------------------


def test_delete_video_by_ids_and_reference_ids(emulator: Emulator, vod: OfficialVodClient) -> None:
    a, b = create(vod), create(vod, ReferenceId="upload_0001")
    bucket_for(a).put_object(a["address"]["FileName"], b"bytes")
    stored = emulator.config.data_dir / emulator.config.bucket / a["address"]["FileName"]
    assert stored.is_file()
    vod.call("DeleteVideo", {"VideoIds": a["VideoId"]})
    assert not stored.exists()
    expect_error(vod.v3("GetVideoInfo", {"VideoId": a["VideoId"]}), 404, "InvalidVideo.NotFound")
    assert vod.call("GetVideoInfo", {"ReferenceId": "upload_0001"})["Video"]["VideoId"] == b["VideoId"]
    by_ref = vod.call("GetVideoInfos", {"ReferenceIds": "upload_0001,upload_nope"})
    assert [v["VideoId"] for v in by_ref["VideoList"]] == [b["VideoId"]]
    assert by_ref["NonExistReferenceIds"] == ["upload_nope"]
    deleted = vod.call("DeleteVideo", {"ReferenceIds": "upload_0001", "VideoIds": a["VideoId"]})
    assert deleted["NonExistVideoIds"] == [a["VideoId"]] and deleted["NonExistReferenceIds"] == []
    infos = vod.call("GetVideoInfos", {"VideoIds": f"{a['VideoId']},{b['VideoId']}"})
    assert infos["VideoList"] == [] and infos["NonExistVideoIds"] == [a["VideoId"], b["VideoId"]]
    many = ",".join(f"{i:032x}" for i in range(21))
    expect_error(vod.v3("DeleteVideo", {"VideoIds": many}), 400, "VideoIdsExceededMax")
    expect_error(vod.v3("GetVideoInfos", {"VideoIds": many}), 400, "VideoIdsExceededMax")
    with pytest.raises(oss2.exceptions.OssError) as exc_info:  # its credentials died with it
        bucket_for(a).put_object(a["address"]["FileName"], b"again")
    assert oss_error(exc_info)[0] == 403


def test_search_media_status_time_range_and_paging(emulator: Emulator, vod: OfficialVodClient) -> None:
    created = [create(vod, Title=f"clip {i}") for i in range(3)]
    bucket_for(created[0]).put_object(created[0]["address"]["FileName"], b"done")
    assert emulator.drain(10)
    uploading = vod.call("SearchMedia", {"Match": "Status in ('Uploading')", "PageSize": "100"})
    assert uploading["Total"] == 2
    assert {m["MediaId"] for m in uploading["MediaList"]} == {c["VideoId"] for c in created[1:]}
    assert all(
        m["MediaType"] == "video" and m["Video"]["Status"] == "Uploading" for m in uploading["MediaList"]
    )

    since = past(60).strftime("%Y-%m-%dT%H:%M:%SZ")
    window = vod.call("SearchMedia", {"Match": f"CreationTime = ('{since}',) and Title = 'CLIP'"})
    assert window["Total"] == 3
    assert (
        vod.call("SearchMedia", {"Match": "CreationTime = ('2000-01-01T00:00:00Z','2000-01-02T00:00:00Z')"})[
            "Total"
        ]
        == 0
    )

    page1 = vod.call("SearchMedia", {"PageSize": "2", "SortBy": "CreationTime:Asc"})
    page2 = vod.call(
        "SearchMedia",
        {"PageSize": "2", "PageNo": "2", "SortBy": "CreationTime:Asc", "ScrollToken": page1["ScrollToken"]},
    )
    order = [m["MediaId"] for m in page1["MediaList"] + page2["MediaList"]]
    assert order[:2] == [c["VideoId"] for c in created[:2]] and len(order) == 3
    assert len(page1["ScrollToken"]) == 32
    expect_error(vod.v3("SearchMedia", {"Match": "Status in ('Uploading'"}), 400, "InvalidParameter")
    expect_error(vod.v3("SearchMedia", {"PageSize": "101"}), 400, "InvalidParameter")


def test_create_upload_video_validation_and_reference_ids(vod: OfficialVodClient) -> None:
    expect_error(vod.v3("CreateUploadVideo", {"FileName": "a.mp4"}), 400, "MissingParameter")
    expect_error(
        vod.v3("CreateUploadVideo", {"Title": "t", "FileName": "a.exe"}), 400, "InvalidFileName.Extension"
    )
    expect_error(
        vod.v3("CreateUploadVideo", {"Title": "x" * 129, "FileName": "a.mp4"}), 400, "LengthExceededMax"
    )
    expect_error(
        vod.v3("CreateUploadVideo", {"Title": "fun 😀", "FileName": "a.mp4"}), 400, "IllegalCharacters"
    )
    tags = ",".join(f"t{i}" for i in range(17))
    expect_error(
        vod.v3("CreateUploadVideo", {"Title": "t", "FileName": "a.mp4", "Tags": tags}), 400, "TagsExceededMax"
    )
    bad_user_data = {"Title": "t", "FileName": "a.mp4", "UserData": "{not json"}
    expect_error(vod.v3("CreateUploadVideo", bad_user_data), 400, "InvalidParameter")
    expect_error(
        vod.v3("CreateUploadVideo", {"Title": "t", "FileName": "a.mp4", "ReferenceId": "abc"}),
        400,
        "InvalidParameter",
    )

    first = create(vod, ReferenceId="order-42_a")
    again = vod.v3("CreateUploadVideo", {"Title": "t", "FileName": "a.mp4", "ReferenceId": "order-42_a"})
    expect_error(again, 400, "InvalidParameter.ReferenceId")
    refreshed = vod.call("RefreshUploadVideo", {"ReferenceId": "order-42_a"})
    assert refreshed["VideoId"] == first["VideoId"]
    expect_error(vod.v3("RefreshUploadVideo", {"VideoId": "0" * 32}), 404, "InvalidVideo.NotFound")


def test_admin_state_and_reset_leak_no_secrets(emulator: Emulator, vod: OfficialVodClient) -> None:
    created = create(vod)
    state = vod.http.get(f"{emulator.vod_url}/_emulator/state")
    assert state.status_code == 200
    text = state.text
    assert created["VideoId"] in text
    for secret in (created["auth"]["AccessKeySecret"], created["auth"]["SecurityToken"], "vodfc-dev-secret"):
        assert secret not in text
    assert DEV_CALLBACK_KEY not in text
    assert vod.http.post(f"{emulator.vod_url}/_emulator/reset").json() == {"reset": True}
    expect_error(vod.v3("GetVideoInfo", {"VideoId": created["VideoId"]}), 404, "InvalidVideo.NotFound")


def test_manual_transcoding_and_no_transcode_template(tmp_path: Path, callback_sink: CallbackSink) -> None:
    with make_emulator(
        data_dir=tmp_path / "oss",
        callback_url=callback_sink.url(),
        auto_transcode=False,
        callback_retry_interval_seconds=0,
    ) as emu:
        vod = OfficialVodClient(emu)
        try:
            held = create(vod)
            bucket_for(held).put_object(held["address"]["FileName"], b"held")
            assert emu.drain(10)
            assert vod.call("GetVideoInfo", {"VideoId": held["VideoId"]})["Video"]["Status"] == "UploadSucc"
            assert emu.finish_transcode(held["VideoId"], success=False)
            assert emu.drain(10)
            assert (
                vod.call("GetVideoInfo", {"VideoId": held["VideoId"]})["Video"]["Status"] == "TranscodeFail"
            )

            direct = create(vod, TemplateGroupId="VOD_NO_TRANSCODE")
            bucket_for(direct).put_object(direct["address"]["FileName"], b"direct")
            assert emu.drain(10)
            assert vod.call("GetVideoInfo", {"VideoId": direct["VideoId"]})["Video"]["Status"] == "Normal"
            direct_events = [
                e["EventType"] for e in callback_sink.events() if e.get("VideoId") == direct["VideoId"]
            ]
            assert direct_events == ["FileUploadComplete"]
        finally:
            vod.close()
