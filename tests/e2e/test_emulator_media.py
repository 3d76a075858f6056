"""End-to-end: images and attached media, driven by the official VOD SDKs and ``oss2``.

Given an emulator on free loopback ports, when the current SDK (``alibabacloud-vod20170321``, V3
signatures) and the legacy one (``aliyun-python-sdk-vod`` on ``aliyunsdkcore``, V1) call the image
and attached-media actions and ``oss2`` uploads with the decoded credential, then the SDKs parse
every answer, the upload fires a signed ``ImageUploadComplete`` / ``AttachedMediaUploadComplete``,
and look-ups, deletes and every parameter limit behave as VOD documents.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import oss2
import pytest
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vod20170321 import models as vod_models
from alibabacloud_vod20170321.client import Client as VodClient
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import RpcRequest
from aliyunsdkvod.request.v20170321 import (
    CreateUploadAttachedMediaRequest,
    CreateUploadImageRequest,
    DeleteAttachedMediaRequest,
    DeleteImageRequest,
    GetAttachedMediaInfoRequest,
    GetImageInfoRequest,
    GetImageInfosRequest,
)

from devkit.emulator import Emulator, make_emulator
from devkit.emulator.imagesize import image_size

from .conftest import CallbackSink, OfficialVodClient
from .test_emulator import callback_signature_ok, decode, expect_error

pytestmark = pytest.mark.e2e

EVENTS = Path(__file__).resolve().parents[2] / "events" / "vod"
COLON_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d:\d{3}Z$")
SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
_ENV = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDKs read proxy and credential variables: none of the shell's may leak in."""
    for name in list(os.environ):
        if name in _ENV or name.startswith("ALIBABA_CLOUD_") or name.startswith("ALICLOUD_"):
            monkeypatch.delenv(name)


def tiny_png(width: int, height: int) -> bytes:
    """A valid PNG of ``width`` x ``height`` black pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def tea(emu: Emulator, **overrides: Any) -> VodClient:
    """The current SDK's client, endpoint = the emulator, plain HTTP."""
    options: dict[str, Any] = {
        "access_key_id": emu.access_key_id,
        "access_key_secret": emu.access_key_secret,
        "endpoint": emu.vod_url.split("://", 1)[1],
        "protocol": "http",
        "region_id": "cn-shanghai",
        **overrides,
    }
    return VodClient(Config(**options))


class Legacy:
    """The legacy SDK (``AcsClient``, V1 signatures) with every request sent to the emulator."""

    def __init__(self, emu: Emulator) -> None:
        self.client = AcsClient(emu.access_key_id, emu.access_key_secret, "cn-shanghai")
        self.host = emu.vod_url.split("://", 1)[1]

    def __call__(self, request: RpcRequest) -> dict[str, Any]:
        request.set_endpoint(self.host)
        request.set_protocol_type("http")
        body: dict[str, Any] = json.loads(self.client.do_action_with_exception(request))
        return body


@pytest.fixture
def sdk(emulator: Emulator) -> VodClient:
    return tea(emulator)


@pytest.fixture
def legacy(emulator: Emulator) -> Legacy:
    return Legacy(emulator)


def bucket(upload_address: str, upload_auth: str) -> tuple[oss2.Bucket, str]:
    """An oss2 bucket client and the object key, from the answer's Base64 address and credential."""
    address, auth = decode(upload_address), decode(upload_auth)
    sts = oss2.StsAuth(auth["AccessKeyId"], auth["AccessKeySecret"], auth["SecurityToken"])
    return oss2.Bucket(sts, address["Endpoint"], address["Bucket"]), address["FileName"]


def sample_keys(name: str) -> set[str]:
    return set(json.loads((EVENTS / f"{name}.json").read_text()))


def tea_error(exc_info: pytest.ExceptionInfo[AlibabaCloudException]) -> tuple[int | None, str | None]:
    return exc_info.value.status_code, exc_info.value.code


# --- images --------------------------------------------------------------------------------------


def test_image_upload_with_current_sdk_and_oss2_fires_signed_event(
    emulator: Emulator, sdk: VodClient, legacy: Legacy, callback_sink: CallbackSink
) -> None:
    per_image = callback_sink.url("/callbacks/per-image")
    user_data = json.dumps({"Extend": {"localId": "img-1"}, "MessageCallback": {"CallbackURL": per_image}})
    created = sdk.create_upload_image(
        vod_models.CreateUploadImageRequest(
            image_type="default",
            image_ext="png",
            title="Cover ✈ 封面",
            description="first frame",
            tags="cover,test",
            cate_id=1001,
            original_file_name="C:\\pictures\\Cat.PNG",
            user_data=user_data,
        )
    )
    body = created.body
    assert created.status_code == 200 and len(body.request_id) == 36
    assert re.fullmatch(r"[0-9a-f]{32}", body.image_id)
    assert body.file_url == body.image_url and body.file_url.startswith(emulator.oss_url)
    address, auth = decode(body.upload_address), decode(body.upload_auth)
    assert address["FileName"].startswith("image/default/") and address["FileName"].endswith(".png")
    assert auth["AccessKeyId"].startswith("STS.") and auth["Expiration"] == "3000"
    image = emulator.image(body.image_id)
    assert image is not None and image.status == "Uploading"

    data = tiny_png(3, 2)
    oss_bucket, key = bucket(body.upload_address, body.upload_auth)
    assert oss_bucket.put_object(key, data).status == 200
    assert emulator.drain(10)

    (received,) = [r for r in callback_sink.received if r.path == "/callbacks/per-image"]
    assert callback_signature_ok(received.headers, per_image)
    event = received.json()
    assert set(event) == sample_keys("ImageUploadComplete") | {"Extend"}
    assert event["EventType"] == "ImageUploadComplete" and event["Status"] == "success"
    assert event["ImageId"] == body.image_id and event["Size"] == len(data)
    assert event["FileURL"] == body.file_url and event["AppId"] == "app-1000000"
    assert COLON_MILLIS.match(event["EventTime"])
    assert json.loads(event["Extend"]) == {"localId": "img-1"}
    assert httpx.get(event["FileURL"], trust_env=False).content == data

    info = sdk.get_image_info(vod_models.GetImageInfoRequest(image_id=body.image_id, output_type="oss"))
    got = info.body.image_info
    assert (got.status, got.image_type, got.title, got.tags, got.cate_id) == (
        "Normal",
        "default",
        "Cover ✈ 封面",
        "cover,test",
        1001,
    )
    assert got.url == body.file_url and got.app_id == "app-1000000" and got.creation_time.endswith("Z")
    assert got.mezzanine.file_size == str(len(data)) and (got.mezzanine.width, got.mezzanine.height) == (3, 2)
    assert got.mezzanine.original_file_name == "C:\\pictures\\Cat.PNG"

    request = GetImageInfoRequest.GetImageInfoRequest()
    request.set_ImageId(body.image_id)
    assert legacy(request)["ImageInfo"]["Status"] == "Normal"


def test_image_with_legacy_sdk_and_the_shipped_sample_shape(
    emulator: Emulator, legacy: Legacy, callback_sink: CallbackSink
) -> None:
    request = CreateUploadImageRequest.CreateUploadImageRequest()
    request.set_ImageType("cover")
    request.set_ImageExt("jpg")
    request.set_Title("legacy")
    created = legacy(request)
    assert set(created) == {"RequestId", "ImageId", "ImageURL", "FileURL", "UploadAddress", "UploadAuth"}
    oss_bucket, key = bucket(created["UploadAddress"], created["UploadAuth"])
    assert key.startswith("image/cover/") and key.endswith(".jpg")
    oss_bucket.put_object(key, b"\xff\xd8 not really a jpeg")
    assert emulator.drain(10)
    (event,) = callback_sink.events("ImageUploadComplete")
    assert set(event) == sample_keys("ImageUploadComplete")  # no Extend without UserData.Extend
    assert callback_signature_ok(callback_sink.received[-1].headers, callback_sink.url("/callbacks/vod"))

    infos = GetImageInfosRequest.GetImageInfosRequest()
    infos.set_ImageIds(f"{created['ImageId']},{'0' * 32}")
    answer = legacy(infos)
    (info,) = answer["ImageInfo"]
    assert info["ImageId"] == created["ImageId"] and info["Status"] == "Normal"
    assert "Width" not in info["Mezzanine"]  # not a decodable image: VOD leaves out what it does not know
    assert answer["NonExistImageIds"] == ["0" * 32]


def test_image_credentials_cannot_be_refreshed_and_expire(emulator: Emulator, sdk: VodClient) -> None:
    first = sdk.create_upload_image(vod_models.CreateUploadImageRequest(image_type="default")).body
    assert decode(first.upload_address)["FileName"].endswith(".png")  # ImageExt defaults to png
    with pytest.raises(AlibabaCloudException) as exc_info:
        sdk.refresh_upload_video(vod_models.RefreshUploadVideoRequest(video_id=first.image_id))
    assert tea_error(exc_info) == (404, "InvalidVideo.NotFound")

    assert emulator.expire_upload_credentials(first.image_id) == 1
    oss_bucket, key = bucket(first.upload_address, first.upload_auth)
    with pytest.raises(oss2.exceptions.OssError) as oss_exc:
        oss_bucket.put_object(key, b"late")
    assert (oss_exc.value.status, oss_exc.value.code) == (403, "SecurityTokenExpired")

    again = sdk.create_upload_image(vod_models.CreateUploadImageRequest(image_type="default")).body
    assert again.image_id != first.image_id
    other_bucket, other_key = bucket(again.upload_address, again.upload_auth)
    with pytest.raises(oss2.exceptions.OssError) as oss_exc:
        other_bucket.put_object(key, b"not my key")
    assert (oss_exc.value.status, oss_exc.value.code) == (403, "AccessDenied")
    assert other_bucket.put_object(other_key, b"on time").status == 200
    assert emulator.drain(10)
    first_image, second_image = emulator.image(first.image_id), emulator.image(again.image_id)
    assert first_image is not None and first_image.status == "Uploading"
    assert second_image is not None and second_image.status == "Normal"


def test_sts_api_credentials_and_both_signature_versions(emulator: Emulator) -> None:
    cred = emulator.issue_api_credentials(ttl=600)
    request = vod_models.CreateUploadAttachedMediaRequest(business_type="watermark", media_ext="png")
    with_sts = tea(
        emulator,
        access_key_id=cred.access_key_id,
        access_key_secret=cred.access_key_secret,
        security_token=cred.security_token,
    )
    assert with_sts.create_upload_attached_media(request).body.media_id
    v1 = tea(emulator, signature_algorithm="v2")  # tea's name for RPC HMAC-SHA1 ("V1" here)
    assert v1.create_upload_image(vod_models.CreateUploadImageRequest(image_type="cover")).body.image_id
    wrong = tea(emulator, access_key_secret="not-the-secret")
    with pytest.raises(AlibabaCloudException) as exc_info:
        wrong.get_image_infos(vod_models.GetImageInfosRequest(image_ids="x"))
    assert tea_error(exc_info) == (400, "SignatureDoesNotMatch")


def test_get_image_infos_and_delete_image_by_id_url_and_video(
    emulator: Emulator, sdk: VodClient, legacy: Legacy, vod: OfficialVodClient
) -> None:
    made = [
        sdk.create_upload_image(vod_models.CreateUploadImageRequest(image_type="default")).body
        for _ in range(3)
    ]
    oss_bucket, key = bucket(made[0].upload_address, made[0].upload_auth)
    oss_bucket.put_object(key, tiny_png(1, 1))
    assert emulator.drain(10)
    stored = emulator.config.data_dir / emulator.config.bucket / key
    assert stored.is_file()

    ids = [m.image_id for m in made]
    infos = sdk.get_image_infos(vod_models.GetImageInfosRequest(image_ids=",".join([*ids, "f" * 32]))).body
    assert [i.image_id for i in infos.image_info] == ids
    assert [i.status for i in infos.image_info] == ["Normal", "Uploading", "Uploading"]
    assert infos.non_exist_image_ids == ["f" * 32]

    deleted = sdk.delete_image(vod_models.DeleteImageRequest(delete_image_type="ImageId", image_ids=ids[0]))
    assert deleted.status_code == 200 and deleted.body.request_id
    assert not stored.exists()
    with pytest.raises(AlibabaCloudException) as exc_info:
        sdk.get_image_info(vod_models.GetImageInfoRequest(image_id=ids[0]))
    assert tea_error(exc_info) == (404, "NoSuchResource")
    with pytest.raises(oss2.exceptions.OssError):  # its credential died with it
        oss_bucket.put_object(key, b"again")

    by_url = DeleteImageRequest.DeleteImageRequest()
    by_url.set_DeleteImageType("ImageURL")
    by_url.set_ImageURLs(quote(made[1].image_url + "?auth_key=ignored", safe=""))
    assert set(legacy(by_url)) == {"RequestId"}
    assert emulator.image(ids[1]) is None

    unknown = DeleteImageRequest.DeleteImageRequest()
    unknown.set_DeleteImageType("ImageId")
    unknown.set_ImageIds("e" * 32)
    with pytest.raises(ServerException) as legacy_exc:
        legacy(unknown)
    assert (legacy_exc.value.get_http_status(), legacy_exc.value.get_error_code()) == (404, "NoSuchResource")
    # Some exist: those are deleted and the answer is 200.
    vod.call("DeleteImage", {"DeleteImageType": "ImageId", "ImageIds": f"{'e' * 32},{ids[2]}"})
    assert emulator.image(ids[2]) is None

    video_id = vod.call("CreateUploadVideo", {"Title": "t", "FileName": "a.mp4"})["VideoId"]
    snapshots = {
        "DeleteImageType": "VideoId",
        "VideoId": video_id,
        "ImageType": "CoverSnapshot,NormalSnapshot",
    }
    assert set(vod.call("DeleteImage", snapshots)) == {"RequestId"}
    expect_error(vod.v3("DeleteImage", {**snapshots, "VideoId": "d" * 32}), 404, "NoSuchResource")


# --- attached media --------------------------------------------------------------------------------


def test_attached_media_multipart_upload_event_and_lookup(
    emulator: Emulator, sdk: VodClient, legacy: Legacy, callback_sink: CallbackSink, tmp_path: Path
) -> None:
    created = sdk.create_upload_attached_media(
        vod_models.CreateUploadAttachedMediaRequest(
            business_type="subtitle",
            media_ext="vtt",
            title="English",
            description="subtitles",
            file_name="subs/en.srt",  # MediaExt wins over the FileName's extension
            file_size="256000",
            tags="en,subtitle",
            cate_ids="11,12",
            user_data=json.dumps({"Extend": {"localId": "sub-1"}}),
        )
    ).body
    assert re.fullmatch(r"[0-9a-f]{32}", created.media_id)
    assert created.media_url == created.file_url
    address = decode(created.upload_address)
    assert address["FileName"].startswith("attached/subtitle/") and address["FileName"].endswith(".vtt")

    source = tmp_path / "en.vtt"
    data = b"WEBVTT\n\n" + os.urandom(250 * 1024)
    source.write_bytes(data)
    oss_bucket, key = bucket(created.upload_address, created.upload_auth)
    result = oss2.resumable_upload(
        oss_bucket,
        key,
        str(source),
        store=oss2.ResumableStore(root=str(tmp_path)),
        multipart_threshold=100 * 1024,
        part_size=100 * 1024,
    )
    assert result.etag.endswith("-3")
    assert emulator.drain(10)

    (event,) = callback_sink.events("AttachedMediaUploadComplete")
    assert set(event) == sample_keys("AttachedMediaUploadComplete") | {"Extend"}
    assert event["AttachedMediaId"] == created.media_id and event["Size"] == len(data)
    assert event["FileURL"] == created.file_url and event["Status"] == "success"
    assert SECONDS.match(event["EventTime"]) and json.loads(event["Extend"]) == {"localId": "sub-1"}
    assert callback_signature_ok(callback_sink.received[-1].headers, callback_sink.url("/callbacks/vod"))
    assert httpx.get(event["FileURL"], trust_env=False).content == data

    info = sdk.get_attached_media_info(
        vod_models.GetAttachedMediaInfoRequest(media_ids=f"{created.media_id},{'a' * 32}")
    ).body
    (item,) = info.attached_media_list
    assert (item.media_id, item.type, item.status, item.title, item.tags) == (
        created.media_id,
        "subtitle",
        "Normal",
        "English",
        "en,subtitle",
    )
    assert item.url == created.file_url and item.modification_time.endswith("Z")
    assert [c.cate_id for c in item.categories] == [11, 12]
    assert info.non_exist_media_ids == ["a" * 32]

    request = GetAttachedMediaInfoRequest.GetAttachedMediaInfoRequest()
    request.set_MediaIds(created.media_id)
    assert legacy(request)["AttachedMediaList"][0]["Type"] == "subtitle"


def test_attached_media_with_legacy_sdk_and_delete(
    emulator: Emulator, legacy: Legacy, sdk: VodClient
) -> None:
    made = []
    for business_type, ext in (("watermark", "png"), ("material", "zip")):
        request = CreateUploadAttachedMediaRequest.CreateUploadAttachedMediaRequest()
        request.set_BusinessType(business_type)
        request.set_MediaExt(ext)
        request.set_CateIds("1,2,3,4,5")
        request.set_FileSize("12")
        created = legacy(request)
        assert set(created) == {"RequestId", "MediaId", "MediaURL", "FileURL", "UploadAddress", "UploadAuth"}
        made.append(created)
    oss_bucket, key = bucket(made[0]["UploadAddress"], made[0]["UploadAuth"])
    oss_bucket.put_object(key, b"watermark bytes")
    assert emulator.drain(10)
    stored = emulator.config.data_dir / emulator.config.bucket / key
    assert stored.is_file()

    delete = DeleteAttachedMediaRequest.DeleteAttachedMediaRequest()
    delete.set_MediaIds(f"{made[0]['MediaId']},{'b' * 32}")
    answer = legacy(delete)
    assert answer["NonExistMediaIds"] == ["b" * 32] and not stored.exists()
    again = sdk.delete_attached_media(
        vod_models.DeleteAttachedMediaRequest(media_ids=made[0]["MediaId"])
    ).body
    assert again.non_exist_media_ids == [made[0]["MediaId"]]
    info = sdk.get_attached_media_info(
        vod_models.GetAttachedMediaInfoRequest(media_ids=made[1]["MediaId"])
    ).body
    assert info.attached_media_list[0].type == "material" and info.non_exist_media_ids == []
    assert emulator.attached_media(made[0]["MediaId"]) is None


# --- parameter limits, both sides --------------------------------------------------------------------

IMAGE_OK: list[dict[str, str]] = [
    {"ImageType": "cover"},
    *({"ImageType": "default", "ImageExt": ext} for ext in ("png", "jpg", "jpeg", "gif", "JPG")),
    {"ImageType": "default", "Title": "t" * 128},
    {"ImageType": "default", "Title": "字" * 42},  # 126 bytes
    {"ImageType": "default", "Description": "d" * 1024},
    {"ImageType": "default", "Tags": ",".join(f"t{i}" for i in range(16))},
    {"ImageType": "default", "Tags": "x" * 32},
    {"ImageType": "default", "UserData": json.dumps({"Extend": "e" * 512})},
    {"ImageType": "default", "CateId": "42"},
    {"ImageType": "default", "OriginalFileName": "photo.JPG"},
    {"ImageType": "default", "StorageLocation": "outin-vodfc-emulator.oss-cn-shanghai.aliyuncs.com"},
    {"ImageType": "default", "AppId": "app-2000000"},
]
IMAGE_BAD: list[tuple[dict[str, str], int, str]] = [
    ({}, 400, "MissingParameter"),
    ({"ImageType": "thumbnail"}, 400, "InvalidParameter"),
    ({"ImageType": "default", "ImageExt": "webp"}, 400, "InvalidParameter"),
    ({"ImageType": "default", "ImageExt": "heic"}, 400, "InvalidParameter"),
    ({"ImageType": "default", "Title": "t" * 129}, 400, "LengthExceededMax"),
    ({"ImageType": "default", "Title": "字" * 43}, 400, "LengthExceededMax"),  # 129 bytes
    ({"ImageType": "default", "Title": "fun 😀"}, 400, "IllegalCharacters"),
    ({"ImageType": "default", "Description": "d" * 1025}, 400, "LengthExceededMax"),
    ({"ImageType": "default", "Tags": ",".join(f"t{i}" for i in range(17))}, 400, "TagsExceededMax"),
    ({"ImageType": "default", "Tags": "x" * 33}, 400, "LengthExceededMax"),
    ({"ImageType": "default", "UserData": json.dumps({"Extend": "e" * 513})}, 400, "InvalidParameter"),
    ({"ImageType": "default", "UserData": "[1]"}, 400, "InvalidParameter"),
    ({"ImageType": "default", "CateId": "one"}, 400, "InvalidParameter"),
    ({"ImageType": "default", "OriginalFileName": "photo"}, 400, "InvalidParameter"),
    (
        {"ImageType": "default", "StorageLocation": "outin-other.oss-cn-shanghai.aliyuncs.com"},
        404,
        "InvalidStorage.NotFound",
    ),
]


@pytest.mark.parametrize("params", IMAGE_OK)
def test_create_upload_image_accepts_values_at_the_limits(
    vod: OfficialVodClient, params: dict[str, str]
) -> None:
    body = vod.call("CreateUploadImage", params)
    assert set(body) == {"RequestId", "ImageId", "ImageURL", "FileURL", "UploadAddress", "UploadAuth"}


@pytest.mark.parametrize(("params", "status", "code"), IMAGE_BAD)
def test_create_upload_image_refuses_values_past_the_limits(
    vod: OfficialVodClient, params: dict[str, str], status: int, code: str
) -> None:
    expect_error(vod.v3("CreateUploadImage", params), status, code)


ATTACHED_OK: list[dict[str, str]] = [
    *(
        {"BusinessType": bt, "MediaExt": ext}
        for bt, exts in {
            "watermark": ("png", "gif", "apng", "mov"),
            "subtitle": ("srt", "ass", "stl", "ttml", "vtt"),
            "material": ("jpg", "gif", "png", "mp4", "mat", "zip", "apk"),
        }.items()
        for ext in exts
    ),
    {"BusinessType": "subtitle", "FileName": "D:\\subs\\movie.SRT"},  # MediaExt from the FileName
    {"BusinessType": "watermark", "MediaExt": "png", "Title": "t" * 128, "Description": "d" * 1024},
    {"BusinessType": "watermark", "MediaExt": "png", "CateIds": "1,2,3,4,5", "FileSize": "0"},
    {"BusinessType": "watermark", "MediaExt": "png", "Tags": ",".join(f"t{i}" for i in range(16))},
]
ATTACHED_BAD: list[tuple[dict[str, str], int, str]] = [
    ({"MediaExt": "png"}, 400, "MissingParameter"),
    ({"BusinessType": "subtitles", "MediaExt": "srt"}, 400, "InvalidParameter"),
    ({"BusinessType": "watermark", "MediaExt": "srt"}, 400, "InvalidParameter"),
    ({"BusinessType": "subtitle", "MediaExt": "png"}, 400, "InvalidParameter"),
    ({"BusinessType": "material", "MediaExt": "vtt"}, 400, "InvalidParameter"),
    ({"BusinessType": "subtitle"}, 400, "MissingParameter"),  # neither MediaExt nor a FileName extension
    ({"BusinessType": "subtitle", "FileName": "movie.exe"}, 400, "InvalidParameter"),
    ({"BusinessType": "watermark", "MediaExt": "png", "Title": "t" * 129}, 400, "LengthExceededMax"),
    ({"BusinessType": "watermark", "MediaExt": "png", "Description": "d" * 1025}, 400, "LengthExceededMax"),
    ({"BusinessType": "watermark", "MediaExt": "png", "CateIds": "1,2,3,4,5,6"}, 400, "InvalidParameter"),
    ({"BusinessType": "watermark", "MediaExt": "png", "CateIds": "1,x"}, 400, "InvalidParameter"),
    ({"BusinessType": "watermark", "MediaExt": "png", "FileSize": "-1"}, 400, "InvalidParameter"),
    ({"BusinessType": "watermark", "MediaExt": "png", "FileSize": "12kb"}, 400, "InvalidParameter"),
    (
        {"BusinessType": "watermark", "MediaExt": "png", "Tags": ",".join(f"t{i}" for i in range(17))},
        400,
        "TagsExceededMax",
    ),
    ({"BusinessType": "watermark", "MediaExt": "png", "UserData": "{"}, 400, "InvalidParameter"),
]


@pytest.mark.parametrize("params", ATTACHED_OK)
def test_create_upload_attached_media_accepts_values_at_the_limits(
    vod: OfficialVodClient, params: dict[str, str]
) -> None:
    body = vod.call("CreateUploadAttachedMedia", params)
    assert set(body) == {"RequestId", "MediaId", "MediaURL", "FileURL", "UploadAddress", "UploadAuth"}
    ext = params.get("MediaExt") or params["FileName"].rsplit(".", 1)[1].lower()
    assert decode(body["UploadAddress"])["FileName"].endswith("." + ext)


@pytest.mark.parametrize(("params", "status", "code"), ATTACHED_BAD)
def test_create_upload_attached_media_refuses_values_past_the_limits(
    vod: OfficialVodClient, params: dict[str, str], status: int, code: str
) -> None:
    expect_error(vod.v3("CreateUploadAttachedMedia", params), status, code)


def ids(n: int) -> str:
    return ",".join(f"{i:032x}" for i in range(n))


BATCH: list[tuple[str, str, dict[str, Any]]] = [
    ("GetImageInfos", "ImageIds", {}),
    ("GetAttachedMediaInfo", "MediaIds", {}),
    ("DeleteAttachedMedia", "MediaIds", {}),
]


@pytest.mark.parametrize(("action", "name", "extra"), BATCH)
def test_batch_actions_take_at_most_20_ids(
    vod: OfficialVodClient, action: str, name: str, extra: dict[str, str]
) -> None:
    assert vod.v3(action, {name: ids(20), **extra}).status_code == 200
    expect_error(vod.v3(action, {name: ids(21), **extra}), 400, "ExceededMax")
    expect_error(vod.v3(action, dict(extra)), 400, "MissingParameter")


def test_delete_image_parameters(vod: OfficialVodClient) -> None:
    expect_error(vod.v3("DeleteImage", {}), 400, "MissingParameter")
    expect_error(vod.v3("DeleteImage", {"DeleteImageType": "ImageName"}), 400, "InvalidParameter")
    expect_error(vod.v3("DeleteImage", {"DeleteImageType": "ImageId"}), 400, "MissingParameter")
    expect_error(vod.v3("DeleteImage", {"DeleteImageType": "ImageURL"}), 400, "MissingParameter")
    expect_error(
        vod.v3("DeleteImage", {"DeleteImageType": "ImageId", "ImageIds": ids(20)}), 404, "NoSuchResource"
    )
    expect_error(
        vod.v3("DeleteImage", {"DeleteImageType": "ImageId", "ImageIds": ids(21)}), 400, "ExceededMax"
    )
    urls = ",".join(quote(f"http://127.0.0.1/b/image/{i}.png", safe="") for i in range(21))
    expect_error(
        vod.v3("DeleteImage", {"DeleteImageType": "ImageURL", "ImageURLs": urls}), 400, "ExceededMax"
    )
    expect_error(
        vod.v3("DeleteImage", {"DeleteImageType": "VideoId", "ImageType": "All"}), 400, "MissingParameter"
    )
    by_video = {"DeleteImageType": "VideoId", "VideoId": "v" * 32}
    expect_error(vod.v3("DeleteImage", by_video), 400, "MissingParameter")
    expect_error(vod.v3("DeleteImage", {**by_video, "ImageType": "Thumbnail"}), 400, "InvalidParameter")
    expect_error(
        vod.v3("DeleteImage", {**by_video, "ImageType": "All,CoverSnapshot"}), 400, "InvalidParameter"
    )


@pytest.mark.parametrize(
    ("params", "ok"),
    [
        ({"OutputType": "oss", "AuthTimeout": "1"}, True),
        ({"OutputType": "oss", "AuthTimeout": "2592000"}, True),
        ({"OutputType": "oss", "AuthTimeout": "2592001"}, False),
        ({"OutputType": "cdn", "AuthTimeout": "2592001"}, True),  # no maximum for cdn
        ({"AuthTimeout": "0"}, False),
        ({"AuthTimeout": "soon"}, False),
        ({"OutputType": "s3"}, False),
    ],
)
def test_output_type_and_auth_timeout(vod: OfficialVodClient, params: dict[str, str], ok: bool) -> None:
    image_id = vod.call("CreateUploadImage", {"ImageType": "default"})["ImageId"]
    media_id = vod.call("CreateUploadAttachedMedia", {"BusinessType": "watermark", "MediaExt": "png"})[
        "MediaId"
    ]
    for action, name, value in (
        ("GetImageInfo", "ImageId", image_id),
        ("GetImageInfos", "ImageIds", image_id),
        ("GetAttachedMediaInfo", "MediaIds", media_id),
    ):
        response = vod.v3(action, {name: value, **params})
        if ok:
            assert response.status_code == 200, response.text
        else:
            expect_error(response, 400, "InvalidParameter")


def test_get_image_info_requires_an_existing_image(vod: OfficialVodClient) -> None:
    expect_error(vod.v3("GetImageInfo", {}), 400, "MissingParameter")
    expect_error(vod.v3("GetImageInfo", {"ImageId": "c" * 32}), 404, "NoSuchResource")
    video_id = vod.call("CreateUploadVideo", {"Title": "t", "FileName": "a.mp4"})["VideoId"]
    expect_error(vod.v3("GetImageInfo", {"ImageId": video_id}), 404, "NoSuchResource")  # a video is no image


# --- hooks, admin state, configuration --------------------------------------------------------------


def test_admin_state_and_hooks_cover_the_new_kinds_without_secrets(
    emulator: Emulator, vod: OfficialVodClient
) -> None:
    image = vod.call("CreateUploadImage", {"ImageType": "default", "Title": "state"})
    attached = vod.call("CreateUploadAttachedMedia", {"BusinessType": "material", "MediaExt": "zip"})
    response = vod.http.get(f"{emulator.vod_url}/_emulator/state")
    state = response.json()
    assert [i["ImageId"] for i in state["images"]] == [image["ImageId"]]
    assert [a["MediaId"] for a in state["attached_media"]] == [attached["MediaId"]]
    kinds = {c["MediaId"]: c["MediaType"] for c in state["upload_credentials"]}
    assert kinds == {image["ImageId"]: "image", attached["MediaId"]: "attached"}
    for answer in (image, attached):
        auth = decode(answer["UploadAuth"])
        assert auth["AccessKeySecret"] not in response.text and auth["SecurityToken"] not in response.text
    assert emulator.media(image["ImageId"]) is emulator.image(image["ImageId"])
    assert emulator.video(image["ImageId"]) is None and emulator.attached_media(image["ImageId"]) is None
    found = emulator.attached_media(attached["MediaId"])
    assert found is not None and found.business_type == "material" and found.status == "Uploading"
    expired = vod.http.post(f"{emulator.vod_url}/_emulator/expire", json={"MediaId": attached["MediaId"]})
    assert expired.json() == {"expired": 1}


def test_extend_echo_and_event_time_style_are_configurable(
    tmp_path: Path, callback_sink: CallbackSink
) -> None:
    with make_emulator(
        data_dir=tmp_path / "oss",
        callback_url=callback_sink.url(),
        image_events_echo_extend=False,
        image_event_time_style="seconds",
    ) as emu:
        vod = OfficialVodClient(emu)
        try:
            user_data = json.dumps({"Extend": "kept out"})
            for action, params in (
                ("CreateUploadImage", {"ImageType": "default", "UserData": user_data}),
                (
                    "CreateUploadAttachedMedia",
                    {"BusinessType": "watermark", "MediaExt": "png", "UserData": user_data},
                ),
            ):
                answer = vod.call(action, params)
                oss_bucket, key = bucket(answer["UploadAddress"], answer["UploadAuth"])
                oss_bucket.put_object(key, b"bytes")
            assert emu.drain(10)
        finally:
            vod.close()
    (image_event,) = callback_sink.events("ImageUploadComplete")
    (attached_event,) = callback_sink.events("AttachedMediaUploadComplete")
    assert "Extend" not in image_event and "Extend" not in attached_event
    assert SECONDS.match(image_event["EventTime"])
    with pytest.raises(ValueError, match="image_event_time_style must be"):
        make_emulator(data_dir=tmp_path / "x", image_event_time_style="millis")


def test_event_types_not_selected_are_not_sent(tmp_path: Path, callback_sink: CallbackSink) -> None:
    with make_emulator(
        data_dir=tmp_path / "oss", callback_url=callback_sink.url(), event_types=["FileUploadComplete"]
    ) as emu:
        vod = OfficialVodClient(emu)
        try:
            answer = vod.call("CreateUploadImage", {"ImageType": "default"})
            oss_bucket, key = bucket(answer["UploadAddress"], answer["UploadAuth"])
            oss_bucket.put_object(key, b"bytes")
            assert emu.drain(10)
            image = emu.image(answer["ImageId"])
            assert image is not None and image.status == "Normal"
        finally:
            vod.close()
    assert callback_sink.received == []


# --- image header sniffing ---------------------------------------------------------------------------


def test_image_size_reads_png_gif_and_jpeg_headers(tmp_path: Path) -> None:
    samples = {
        "a.png": tiny_png(640, 480),
        "a.gif": b"GIF89a" + struct.pack("<HH", 320, 200) + b"\x00" * 16,
        # SOI, an APP0 segment to skip, then SOF0 with height 90, width 160.
        "a.jpg": b"\xff\xd8\xff\xe0\x00\x10"
        + b"JFIF\x00"
        + b"\x00" * 9
        + b"\xff\xc0\x00\x11\x08"
        + struct.pack(">HH", 90, 160)
        + b"\x03"
        + b"\x00" * 9,
        "progressive.jpg": b"\xff\xd8\xff\xc2\x00\x11\x08" + struct.pack(">HH", 7, 9) + b"\x03" + b"\x00" * 9,
        "truncated.jpg": b"\xff\xd8\xff\xe0\x00\x10JF",
        "text.txt": b"hello, not an image",
        "empty.png": b"",
    }
    for name, data in samples.items():
        (tmp_path / name).write_bytes(data)
    assert image_size(tmp_path / "a.png") == (640, 480)
    assert image_size(tmp_path / "a.gif") == (320, 200)
    assert image_size(tmp_path / "a.jpg") == (160, 90)
    assert image_size(tmp_path / "progressive.jpg") == (9, 7)
    for name in ("truncated.jpg", "text.txt", "empty.png", "missing.png"):
        assert image_size(tmp_path / name) is None
