"""shared/services/media.py: the image and attached-media policy and what is sent to VOD.

Every test builds its own ``Settings(...)`` and a request through ``parse_request``, as
``create_image`` / ``create_attached_media`` do.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared import errors
from shared.api_media_models import CreateUploadAttachedMediaRequest, CreateUploadImageRequest
from shared.api_models import parse_request
from shared.services.media import (
    apply_attached_media_policy,
    apply_image_policy,
    attached_media_params,
    image_params,
)
from shared.settings import Settings
from shared.signing import EXTEND_SIG_KEY, EXTEND_UPLOAD_KEY, binding_keys, verify_binding

UPLOAD_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
OWNER = "user-42"
CALLBACK_URL = "https://fc.example.com/vod/callback"
LOCATION = "outin-3f5a7c9e1b2d11ee.oss-cn-shanghai.aliyuncs.com"


def make_settings(**values: Any) -> Settings:
    return Settings(
        **{"upload_binding_key": "binding-key-for-unit-tests", "callback_url": CALLBACK_URL, **values}
    )


def image(**changes: Any) -> CreateUploadImageRequest:
    return parse_request(CreateUploadImageRequest, {"ImageType": "cover", **changes})


def attached(**changes: Any) -> CreateUploadAttachedMediaRequest:
    return parse_request(
        CreateUploadAttachedMediaRequest, {"BusinessType": "subtitle", "MediaExt": "vtt", **changes}
    )


def image_sent(config: Settings | None = None, **changes: Any) -> dict[str, str]:
    config = config or make_settings()
    req = image(**changes)
    return image_params(req, apply_image_policy(req, config), UPLOAD_ID, OWNER, config)


def attached_sent(config: Settings | None = None, **changes: Any) -> dict[str, str]:
    config = config or make_settings()
    req = attached(**changes)
    return attached_media_params(req, apply_attached_media_policy(req, config), UPLOAD_ID, OWNER, config)


def refusal(call: Any, error: type[errors.VodfcError], code: str, field: str) -> str:
    with pytest.raises(error) as info:
        call()
    assert type(info.value) is error
    assert (info.value.code, info.value.field) == (code, field)
    return info.value.message


# --- what is sent -----------------------------------------------------------------------------------


def test_image_params_in_vods_names_with_imageext_always_sent() -> None:
    sent = image_sent(
        Title="封面", OriginalFileName="C:\\pics\\Cover.JPG", ImageExt="JPG", Description="d", Tags=["a", "b"]
    )
    assert {k: v for k, v in sent.items() if k != "UserData"} == {
        "ImageType": "cover",
        "ImageExt": "jpg",
        "Title": "封面",
        "OriginalFileName": "Cover.JPG",
        "Description": "d",
        "Tags": "a,b",
    }
    assert image_sent()["ImageExt"] == "png"  # VOD's default, said out loud


def test_attached_params_send_media_ext_and_file_size_as_strings() -> None:
    config = make_settings(allowed_cate_ids="3,4")
    sent = attached_sent(
        config, MediaExt=None, FileName="/tmp/English.SRT", FileSize=2048, CateIds=[3, 4], Title="EN"
    )
    assert {k: v for k, v in sent.items() if k != "UserData"} == {
        "BusinessType": "subtitle",
        "MediaExt": "srt",
        "Title": "EN",
        "FileName": "English.SRT",
        "FileSize": "2048",
        "CateIds": "3,4",
    }
    assert "FileSize" not in attached_sent() and attached_sent(FileSize=0)["FileSize"] == "0"


@pytest.mark.parametrize("sent", [image_sent, attached_sent], ids=["image", "attached"])
def test_user_data_binds_the_owner_and_names_our_callback(sent: Any) -> None:
    config = make_settings()
    params = sent(
        config,
        UserData={
            "Extend": {"localId": "a1"},
            "AccelerateConfig": {"Type": "oss", "Domain": "https://oss-accelerate.aliyuncs.com"},
        },
    )
    user_data = json.loads(params["UserData"])
    extend = user_data["Extend"]
    assert extend["localId"] == "a1" and extend[EXTEND_UPLOAD_KEY] == UPLOAD_ID
    assert verify_binding(binding_keys(config), UPLOAD_ID, OWNER, extend[EXTEND_SIG_KEY])
    assert user_data["MessageCallback"] == {"CallbackURL": CALLBACK_URL, "CallbackType": "http"}
    assert user_data["AccelerateConfig"]["Type"] == "oss"
    # with MNS delivery VOD ignores a per-media HTTP callback: none is set
    mns = json.loads(sent(make_settings(vod_event_delivery="mns"))["UserData"])
    assert "MessageCallback" not in mns


@pytest.mark.parametrize("make", [image, attached], ids=["image", "attached"])
@pytest.mark.parametrize(
    ("user_data", "code"),
    [
        ({"MessageCallback": {"CallbackURL": "https://evil.example/cb"}}, "InvalidParameter.MessageCallback"),
        ({"Extend": {"vodfc_uid": "x"}}, "InvalidParameter"),
        ({"Extend": {"VODFC_sig": "x"}}, "InvalidParameter"),
        ({"Extend": {"k": "v" * 249}}, "InvalidParameter.Extend"),  # CLIENT_EXTEND_MAX_BYTES 256
    ],
)
def test_user_data_rules_are_the_videos(make: Any, user_data: dict[str, Any], code: str) -> None:
    policy = apply_image_policy if make is image else apply_attached_media_policy
    req = make(UserData=user_data)
    field = "UserData.MessageCallback" if "MessageCallback" in user_data else "UserData.Extend"
    refusal(lambda: policy(req, make_settings()), errors.InvalidParameter, code, field)
    assert policy(make(UserData={"Extend": {"k": "v" * 248}}), make_settings()).extend == {"k": "v" * 248}


# --- the operator's policy ------------------------------------------------------------------------


def test_allowed_image_extensions_on_both_sides() -> None:
    config = make_settings(allowed_image_extensions="png,JPG")
    assert image_sent(config, ImageExt="jpg")["ImageExt"] == "jpg"
    assert image_sent(config)["ImageExt"] == "png"
    message = refusal(
        lambda: apply_image_policy(image(ImageExt="gif"), config),
        errors.InvalidParameter,
        "InvalidParameter.ImageExt",
        "ImageExt",
    )
    assert "png, jpg" in message
    with pytest.raises(ValueError, match="ALLOWED_IMAGE_EXTENSIONS"):
        make_settings(allowed_image_extensions="png,webp")


def test_allowed_business_types_on_both_sides() -> None:
    config = make_settings(allowed_attached_business_types="subtitle")
    assert attached_sent(config)["BusinessType"] == "subtitle"
    refusal(
        lambda: apply_attached_media_policy(attached(BusinessType="watermark", MediaExt="png"), config),
        errors.Forbidden,
        "Forbidden.BusinessType",
        "BusinessType",
    )
    with pytest.raises(ValueError, match="ALLOWED_ATTACHED_BUSINESS_TYPES"):
        make_settings(allowed_attached_business_types="subtitles")


def test_max_attached_media_size_on_the_declared_size() -> None:
    config = make_settings(max_attached_media_size=4096)
    assert attached_sent(config, FileSize=4096)["FileSize"] == "4096"
    refusal(
        lambda: apply_attached_media_policy(attached(FileSize=4097), config),
        errors.InvalidParameter,
        "InvalidParameter.FileSize",
        "FileSize",
    )


@pytest.mark.parametrize(
    ("field", "default_setting", "allowed_setting", "value", "other"),
    [
        (
            "StorageLocation",
            "default_storage_location",
            "allowed_storage_locations",
            LOCATION,
            "outin-o.oss-cn-beijing.aliyuncs.com",
        ),
        ("AppId", "default_app_id", "allowed_app_ids", "app-1000000", "app-2000001"),
    ],
)
@pytest.mark.parametrize("sent", [image_sent, attached_sent], ids=["image", "attached"])
def test_storage_and_app_follow_the_video_allow_lists(
    sent: Any, field: str, default_setting: str, allowed_setting: str, value: str, other: str
) -> None:
    assert field not in sent()
    assert sent(make_settings(**{default_setting: value}))[field] == value
    assert sent(make_settings(**{default_setting: value}), **{field: value})[field] == value
    assert sent(make_settings(**{allowed_setting: other}), **{field: other})[field] == other
    with pytest.raises(errors.Forbidden) as info:
        sent(make_settings(**{default_setting: value}), **{field: other})
    assert info.value.code == f"Forbidden.{field}"


def test_categories_follow_the_video_allow_list() -> None:
    assert image_sent(make_settings(default_cate_id=7))["CateId"] == "7"
    assert attached_sent(make_settings(default_cate_id=7))["CateIds"] == "7"
    allowed = make_settings(default_cate_id=7, allowed_cate_ids="8,9")
    assert image_sent(allowed, CateId=8)["CateId"] == "8"
    assert attached_sent(allowed, CateIds="7,8,9")["CateIds"] == "7,8,9"
    with pytest.raises(errors.Forbidden) as info:
        image_sent(allowed, CateId=10)
    assert (info.value.code, info.value.field) == ("Forbidden.CateId", "CateId")
    with pytest.raises(errors.Forbidden) as info:
        attached_sent(allowed, CateIds="8,10")
    assert (info.value.code, info.value.field) == ("Forbidden.CateIds", "CateIds")
    assert "CateId" not in image_sent() and "CateIds" not in attached_sent()
