"""shared/vod_models.py and vod_media_models.py: VOD's answers decoded tolerantly; UploadCredentials
never shows its secret."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from shared import errors
from shared.vod_media_models import (
    AttachedMediaUploadCredentials,
    DeleteAttachedMediaResponse,
    DeleteImageResponse,
    GetAttachedMediaInfoResponse,
    GetImageInfoResponse,
    GetImageInfosResponse,
    ImageUploadCredentials,
)
from shared.vod_models import (
    DEFAULT_CREDENTIAL_SECONDS,
    DeleteVideoResponse,
    GetMezzanineInfoResponse,
    GetVideoInfoResponse,
    GetVideoInfosResponse,
    SearchMediaResponse,
    UploadAddress,
    UploadAuth,
    UploadCredentials,
    Video,
    VodErrorBody,
)

# --- UploadAddress / UploadAuth / UploadCredentials --------------------------------------------

ADDRESS = {
    "Endpoint": "https://oss-cn-shanghai.aliyuncs.com",
    "Bucket": "outin-3f5a7c9e1b2d11ee",
    "FileName": "sv/2c4e6a8b-18f9a3c1e0b/2c4e6a8b-18f9a3c1e0b.mp4",
}
AUTH = {
    "AccessKeyId": "STS.NUgYrLnoC37mZZCNnAbez2222",
    "AccessKeySecret": "TOP-SECRET-ak-secret",
    "SecurityToken": "CAIS-TOP-SECRET-token",
    "Expiration": "3600",
    "ExpireUTCTime": "2024-05-20T08:39:17Z",
    "Region": "cn-shanghai",
}
ISSUED = datetime(2024, 5, 20, 7, 49, 17, tzinfo=timezone.utc)


def b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.b64encode(raw).decode()


def credentials(auth: dict[str, Any] | None = None) -> UploadCredentials:
    return UploadCredentials(
        RequestId="25818875-5F78-4AF6-04D5-D7393642CAC7",
        VideoId="93ab850b4f6f54b6e91d24d81d44abcd",
        UploadAddress=b64(ADDRESS),
        UploadAuth=b64(AUTH if auth is None else auth),
    )


class TestDecoders:
    def test_address_round_trip(self) -> None:
        assert UploadAddress.decode(b64(ADDRESS)).model_dump() == ADDRESS

    def test_address_endpoint_kept_verbatim(self) -> None:
        # The client's upload SDK builds the bucket URL from Endpoint and Bucket; we never rewrite them.
        address = UploadAddress.decode(b64({**ADDRESS, "Endpoint": "oss-cn-beijing.aliyuncs.com"}))
        assert (address.Endpoint, address.Bucket) == ("oss-cn-beijing.aliyuncs.com", ADDRESS["Bucket"])

    def test_address_keeps_extra_fields(self) -> None:
        address = UploadAddress.decode(b64({**ADDRESS, "ObjectPrefix": "sv/"}))
        assert address.model_extra == {"ObjectPrefix": "sv/"}

    def test_auth_round_trip(self) -> None:
        auth = UploadAuth.decode(b64(AUTH))
        assert auth.AccessKeyId == AUTH["AccessKeyId"]
        assert auth.AccessKeySecret.get_secret_value() == AUTH["AccessKeySecret"]
        assert auth.SecurityToken.get_secret_value() == AUTH["SecurityToken"]
        assert auth.Expiration == "3600"
        assert auth.ExpireUTCTime == datetime(2024, 5, 20, 8, 39, 17, tzinfo=timezone.utc)
        assert auth.Region == "cn-shanghai"

    def test_auth_repr_hides_secrets(self) -> None:
        auth = UploadAuth.decode(b64(AUTH))
        for text in (repr(auth), str(auth)):
            assert "TOP-SECRET" not in text

    def test_expiration_number_is_read_as_string(self) -> None:
        assert UploadAuth.decode(b64({**AUTH, "Expiration": 3600})).Expiration == "3600"

    def test_unpadded_base64_accepted(self) -> None:
        assert UploadAddress.decode(b64(ADDRESS).rstrip("=")).Bucket == ADDRESS["Bucket"]

    @pytest.mark.parametrize(
        "value", ["%%%not base64%%%", b64(b"not json"), b64([1, 2]), b64(b"\xff\xfe"), ""]
    )
    def test_garbage_is_upstream_error(self, value: str) -> None:
        with pytest.raises(errors.UpstreamError):
            UploadAddress.decode(value)
        with pytest.raises(errors.UpstreamError):
            UploadAuth.decode(value)

    def test_incomplete_auth_error_does_not_leak(self) -> None:
        incomplete = {k: v for k, v in AUTH.items() if k != "AccessKeyId"}
        with pytest.raises(errors.UpstreamError) as info:
            UploadAuth.decode(b64(incomplete))
        assert info.value.__cause__ is None
        assert "TOP-SECRET" not in str(info.value)

    def test_incomplete_address(self) -> None:
        with pytest.raises(errors.UpstreamError):
            UploadAddress.decode(b64({"Endpoint": "x"}))


class TestUploadCredentials:
    def test_repr_and_str_never_show_upload_auth(self) -> None:
        creds = credentials()
        for text in (repr(creds), str(creds), f"{creds}", f"{creds!r}"):
            assert creds.UploadAuth not in text
            assert "TOP-SECRET" not in text
            assert "UploadAuth" not in text

    def test_public_dict_is_exact(self) -> None:
        creds = credentials()
        assert creds.to_public_dict() == {
            "RequestId": creds.RequestId,
            "VideoId": creds.VideoId,
            "UploadAddress": creds.UploadAddress,
            "UploadAuth": creds.UploadAuth,
        }

    def test_decoders(self) -> None:
        creds = credentials()
        assert UploadAddress.decode(creds.UploadAddress).FileName == ADDRESS["FileName"]
        assert creds.auth().AccessKeyId == AUTH["AccessKeyId"]

    def test_garbage_upload_auth_is_upstream_error(self) -> None:
        creds = UploadCredentials(RequestId="r", VideoId="v", UploadAddress=b64(ADDRESS), UploadAuth="%%%")
        with pytest.raises(errors.UpstreamError):
            creds.expires_at(ISSUED)

    def test_expires_at_prefers_expire_utc_time(self) -> None:
        assert credentials().expires_at(ISSUED) == datetime(2024, 5, 20, 8, 39, 17, tzinfo=timezone.utc)

    def test_expires_at_falls_back_to_expiration_seconds(self) -> None:
        auth = {k: v for k, v in AUTH.items() if k != "ExpireUTCTime"}
        assert credentials(auth).expires_at(ISSUED) == ISSUED + timedelta(seconds=3600)

    @pytest.mark.parametrize("expiration", [None, "soon", "0", "-5"])
    def test_expires_at_defaults_to_3000_seconds(self, expiration: str | None) -> None:
        auth = {k: v for k, v in AUTH.items() if k not in ("ExpireUTCTime", "Expiration")}
        if expiration is not None:
            auth["Expiration"] = expiration
        assert credentials(auth).expires_at(ISSUED) == ISSUED + timedelta(seconds=3000)
        assert DEFAULT_CREDENTIAL_SECONDS == 3000

    def test_expires_at_one_second_is_honoured(self) -> None:
        auth = {k: v for k, v in AUTH.items() if k != "ExpireUTCTime"} | {"Expiration": "1"}
        assert credentials(auth).expires_at(ISSUED) == ISSUED + timedelta(seconds=1)

    def test_garbage_expire_utc_time_falls_back(self) -> None:
        auth = {**AUTH, "ExpireUTCTime": "tomorrow"}
        assert credentials(auth).expires_at(ISSUED) == ISSUED + timedelta(seconds=3600)

    def test_naive_issued_at_is_utc(self) -> None:
        auth = {k: v for k, v in AUTH.items() if k != "ExpireUTCTime"}
        naive = ISSUED.replace(tzinfo=None)
        assert credentials(auth).expires_at(naive) == ISSUED + timedelta(seconds=3600)

    def test_from_vod_answer_ignores_extra_and_hides_input(self) -> None:
        body = credentials().to_public_dict() | {"Extra": 1}
        assert UploadCredentials.model_validate(body).VideoId == body["VideoId"]
        broken = {**body, "VideoId": ""}
        with pytest.raises(ValidationError) as info:
            UploadCredentials.model_validate(broken)
        assert str(body["UploadAuth"]) not in str(info.value)


# --- VOD read models --------------------------------------------------------------------------


class TestReadModels:
    def test_video_is_tolerant(self) -> None:
        video = Video.model_validate(
            {
                "VideoId": "v1",
                "Title": "t",
                "Status": "Normal",
                "Duration": "12.5",
                "Size": "123456",
                "CateId": 1000363456,
                "CreationTime": "2024-05-20T07:49:17Z",
                "ModificationTime": "garbage",
                "Snapshots": {"Snapshot": ["http://x/1.jpg"]},
                "NewField": {"x": 1},
                "UserData": {"Extend": {"a": 1}},
            }
        )
        assert video.Duration == 12.5
        assert video.Size == 123456
        assert video.CateId == 1000363456
        assert video.CreationTime == datetime(2024, 5, 20, 7, 49, 17, tzinfo=timezone.utc)
        assert video.ModificationTime is None
        assert video.model_extra is not None and video.model_extra["NewField"] == {"x": 1}
        assert video.UserData == '{"Extend":{"a":1}}'

    @pytest.mark.parametrize("value", ["", "n/a", None, True, "nan", "inf"])
    def test_unparsable_numbers_read_as_none(self, value: Any) -> None:
        video = Video.model_validate({"VideoId": "v", "Size": value, "Duration": value})
        assert video.Size is None and video.Duration is None

    def test_get_video_info(self) -> None:
        answer = GetVideoInfoResponse.model_validate(
            {"RequestId": "r", "Video": {"VideoId": "v", "Status": "Normal"}}
        )
        assert answer.Video.Status == "Normal"

    def test_get_video_infos_defaults_and_wrappers(self) -> None:
        empty = GetVideoInfosResponse.model_validate({"RequestId": "r"})
        assert empty.VideoList == [] and empty.NonExistVideoIds == []
        wrapped = GetVideoInfosResponse.model_validate(
            {"VideoList": {"Video": [{"VideoId": "a"}]}, "NonExistVideoIds": {"VideoId": ["b"]}}
        )
        assert [v.VideoId for v in wrapped.VideoList] == ["a"]
        assert wrapped.NonExistVideoIds == ["b"]
        plain = GetVideoInfosResponse.model_validate(
            {"VideoList": [{"VideoId": "a"}], "NonExistVideoIds": ["b", "c"]}
        )
        assert plain.NonExistVideoIds == ["b", "c"]

    def test_mezzanine(self) -> None:
        answer = GetMezzanineInfoResponse.model_validate(
            {
                "RequestId": "r",
                "Mezzanine": {
                    "VideoId": "v",
                    "Status": "Normal",
                    "Size": "1439213",
                    "Duration": "15.0",
                    "Bitrate": "767.177",
                    "Fps": "30.0",
                    "Width": "540",
                    "Height": 960,
                    "VideoStreamList": {"VideoStream": [{"Index": "0"}]},
                },
            }
        )
        mezz = answer.Mezzanine
        assert (mezz.Size, mezz.Duration, mezz.Bitrate, mezz.Width, mezz.Height) == (
            1439213,
            15.0,
            767.177,
            540,
            960,
        )
        assert mezz.VideoStreamList == [{"Index": "0"}]
        assert mezz.AudioStreamList == []

    def test_search_media(self) -> None:
        answer = SearchMediaResponse.model_validate(
            {
                "RequestId": "r",
                "Total": "2",
                "ScrollToken": "24e0fba7188fae707e146esa54****",
                "MediaList": [
                    {
                        "MediaId": "a",
                        "MediaType": "video",
                        "CreationTime": "2024-05-20T07:49:17Z",
                        "Video": {"VideoId": "a"},
                    },
                    {"MediaId": "b", "MediaType": "video"},
                ],
            }
        )
        assert answer.Total == 2
        assert answer.MediaList[0].Video is not None and answer.MediaList[0].Video.VideoId == "a"
        assert answer.MediaList[1].Video is None
        assert SearchMediaResponse.model_validate({"RequestId": "r"}).MediaList == []

    def test_delete_and_error_bodies(self) -> None:
        assert DeleteVideoResponse.model_validate({"RequestId": "r"}).RequestId == "r"
        body = VodErrorBody.model_validate(
            {
                "RequestId": "r",
                "HostId": "vod.cn-shanghai.aliyuncs.com",
                "Code": "Throttling.User",
                "Message": "Request was denied due to user flow control.",
                "Recommend": "https://api.aliyun.com/troubleshoot?q=Throttling.User",
                "AccessDeniedDetail": {"x": 1},
            }
        )
        assert body.Code == "Throttling.User"
        assert body.model_extra == {"AccessDeniedDetail": {"x": 1}}


# --- import cost --------------------------------------------------------------------------------


# --- images and attached media ------------------------------------------------------------------

IMAGE_ANSWER = {  # CreateUploadImage's sample (current doc), flat
    "RequestId": "25818875-5F78-4AF6-04D5-D7393642CAC7",
    "ImageId": "cc3308ac5006aed55a54328bc3443****",
    "ImageURL": "https://example.aliyundoc.com/image/default/41AE7ADABBE*****.png",
    "FileURL": "https://outin-3f5a7c9e1b2d11ee.oss-cn-shanghai.aliyuncs.com/image/default/41AE7ADABBE.png",
    "UploadAddress": b64(ADDRESS),
    "UploadAuth": b64(AUTH),
}


class TestMediaCredentials:
    def test_create_upload_image_answer_is_read_flat(self) -> None:
        creds = ImageUploadCredentials.model_validate(IMAGE_ANSWER)
        assert creds.media_id == IMAGE_ANSWER["ImageId"]
        assert creds.to_public_dict() == IMAGE_ANSWER
        assert "TOP-SECRET" not in repr(creds) + str(creds) and creds.UploadAuth not in repr(creds)
        assert creds.expires_at(ISSUED) == datetime(2024, 5, 20, 8, 39, 17, tzinfo=timezone.utc)

    def test_the_2021_docs_envelope_is_tolerated(self) -> None:
        wrapped = {"CreateUploadImageResponse": IMAGE_ANSWER}
        assert ImageUploadCredentials.model_validate(wrapped).to_public_dict() == IMAGE_ANSWER
        # a RequestId beside the envelope is kept, the inner one wins
        outer = {"RequestId": "outer", "CreateUploadImageResponse": {**IMAGE_ANSWER, "RequestId": "inner"}}
        assert ImageUploadCredentials.model_validate(outer).RequestId == "inner"

    def test_an_answer_without_its_id_is_refused(self) -> None:
        broken_answers: list[dict[str, Any]] = [
            {k: v for k, v in IMAGE_ANSWER.items() if k != "ImageId"},
            {"AResponse": {}, "BResponse": {}},
        ]
        for broken in broken_answers:
            with pytest.raises(ValidationError):
                ImageUploadCredentials.model_validate(broken)

    def test_create_upload_attached_media_answer(self) -> None:
        body = {**{k: v for k, v in IMAGE_ANSWER.items() if not k.startswith("Image")}, "MediaId": "m1"}
        creds = AttachedMediaUploadCredentials.model_validate({**body, "MediaURL": "https://e.com/m1.vtt"})
        assert creds.media_id == "m1"
        assert set(creds.to_public_dict()) == {
            "RequestId",
            "MediaId",
            "MediaURL",
            "FileURL",
            "UploadAddress",
            "UploadAuth",
        }


class TestMediaReadModels:
    def test_get_image_info_is_tolerant(self) -> None:
        body = {
            "RequestId": "r",
            "ImageInfo": {
                "ImageId": "img",
                "Status": "Normal",
                "ImageType": "CoverSnapshot",
                "CreationTime": "2024-04-10T01:37:14:627Z",
                "CateId": "7",
                "Mezzanine": {
                    "FileSize": "105520",
                    "Width": "640",
                    "Height": "x",
                    "OriginalFileName": "a.png",
                },
                "Unknown": 1,
            },
        }
        image = GetImageInfoResponse.model_validate(body).ImageInfo
        assert image.CateId == 7 and image.CreationTime is not None and image.ImageType == "CoverSnapshot"
        assert image.Mezzanine is not None
        assert (image.Mezzanine.FileSize, image.Mezzanine.Width, image.Mezzanine.Height) == (
            105520,
            640,
            None,
        )

    @pytest.mark.parametrize(
        "missing",
        [["b", "c"], "b,c", {"ImageId": ["b", "c"]}, None],
        ids=["list", "string", "wrapped", "absent"],
    )
    def test_get_image_infos_takes_every_shape_of_missing_ids(self, missing: Any) -> None:
        body = {"ImageInfo": {"ImageInfo": [{"ImageId": "a"}]}, "NonExistImageIds": missing}
        answer = GetImageInfosResponse.model_validate(body)
        assert [i.ImageId for i in answer.ImageInfo] == ["a"]
        assert answer.NonExistImageIds == ([] if missing is None else ["b", "c"])

    def test_get_attached_media_info_survives_the_2021_sample(self) -> None:
        # The 2021 sample splits one item into two elements and gives NonExistMediaIds as a string.
        body = {
            "RequestId": "221BCB57",
            "NonExistMediaIds": "eb1861d2c9a8",
            "AttachedMediaList": [
                {"MediaId": "0222e203cf80", "Type": "subtitle", "Status": "Normal", "Tags": "tag1,tag2"},
                {"Categories": [{"CateId": 198673, "CateName": "Test", "Level": 0, "ParentId": -1}]},
            ],
        }
        answer = GetAttachedMediaInfoResponse.model_validate(body)
        assert [m.MediaId for m in answer.AttachedMediaList] == ["0222e203cf80"]
        assert answer.NonExistMediaIds == ["eb1861d2c9a8"]
        wrapped = GetAttachedMediaInfoResponse.model_validate(
            {
                "AttachedMediaList": {
                    "AttachedMedia": {"MediaId": "m", "Categories": {"Category": [{"CateId": 1}]}}
                }
            }
        )
        assert wrapped.AttachedMediaList[0].Categories == [{"CateId": 1}]

    def test_delete_answers(self) -> None:
        assert DeleteImageResponse.model_validate({"RequestId": "r"}).RequestId == "r"
        answer = DeleteAttachedMediaResponse.model_validate({"RequestId": "r", "NonExistMediaIds": ["x"]})
        assert answer.NonExistMediaIds == ["x"]
        assert DeleteAttachedMediaResponse.model_validate({}).NonExistMediaIds == []


def test_import_builds_no_validators_or_regexes() -> None:
    """Cold start: importing VOD's answer and event models (as the callback function does) builds no
    pydantic validator and compiles no regex."""
    code = (
        "import shared.vod_models as m, shared.events as e, shared.validation as v\n"
        "from pydantic import BaseModel\n"
        "from pydantic._internal._mock_val_ser import MockValSer\n"
        "models = [c for mod in (m, e) for c in vars(mod).values() if isinstance(c, type)"
        " and issubclass(c, BaseModel) and c.__module__ == mod.__name__]\n"
        "assert {'UploadCredentials', 'Video', 'FileUploadComplete', 'GenericEvent'}"
        " <= {c.__name__ for c in models}\n"
        "built = [c.__name__ for c in models if not isinstance(c.__pydantic_validator__, MockValSer)]\n"
        "assert not built, built\n"
        "assert v._time_pattern.cache_info().currsize == 0\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
