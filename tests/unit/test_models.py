"""shared/models.py: CreateUploadVideo validation (both sides of every limit), decoders, VOD models."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import errors
from shared.models import (
    DEFAULT_APP_ID,
    CreateUploadVideoRequest,
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
    find_emoji,
    parse_request,
    parse_vod_time,
)
from shared.settings import DEFAULT_EXTENSIONS

DROP = object()  # sentinel: remove the key from the request
CJK = "中"  # 3 bytes in UTF-8


def request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"Title": "Holiday in Hangzhou", "FileName": "clip.mp4"}
    for key, value in changes.items():
        if value is DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def parse(**changes: Any) -> CreateUploadVideoRequest:
    return parse_request(CreateUploadVideoRequest, request(**changes))


def rejected(field: str, *, code: str | None = None, **changes: Any) -> errors.InvalidParameter:
    with pytest.raises(errors.InvalidParameter) as info:
        parse(**changes)
    err = info.value
    assert err.field == field
    if code is not None:
        assert err.code == code
    assert_plain(err.message)
    return err


def assert_plain(message: str) -> None:
    """Validation messages are plain words: no pydantic internals, URLs or echoed input."""
    for leak in ("pydantic", "errors.pydantic.dev", "Value error", "input_value", "type=", "[type"):
        assert leak not in message
    assert len(message) < 300


# --- Title ------------------------------------------------------------------------------------


class TestTitle:
    def test_128_ascii_bytes_is_accepted(self) -> None:
        assert parse(Title="a" * 128).Title == "a" * 128

    def test_129_ascii_bytes_is_rejected(self) -> None:
        err = rejected("Title", code="LengthExceededMax", Title="a" * 129)
        assert "128 bytes" in err.message

    def test_multibyte_limit_counts_bytes_not_characters(self) -> None:
        assert parse(Title=CJK * 42 + "ab").Title == CJK * 42 + "ab"  # 126 + 2 = 128 bytes
        rejected("Title", code="LengthExceededMax", Title=CJK * 42 + "abc")  # 129 bytes
        rejected("Title", code="LengthExceededMax", Title=CJK * 43)  # 43 characters, 129 bytes

    @pytest.mark.parametrize("value", ["", "   ", "\t \u3000"])
    def test_blank_is_missing(self, value: str) -> None:
        with pytest.raises(errors.MissingParameter) as info:
            parse(Title=value)
        assert info.value.field == "Title"
        assert info.value.code == "MissingParameter"

    def test_absent_or_null_is_missing(self) -> None:
        for value in (DROP, None):
            with pytest.raises(errors.MissingParameter) as info:
                parse(Title=value)
            assert info.value.field == "Title"

    @pytest.mark.parametrize("value", [123, 1.5, True, ["a"], {"a": 1}])
    def test_non_string_is_rejected(self, value: Any) -> None:
        err = rejected("Title", code="InvalidParameter", Title=value)
        assert "must be a string" in err.message

    @pytest.mark.parametrize(
        "value",
        [
            "clip \U0001f3ac",  # clapper board, outside the BMP
            "sun \u2600",  # misc symbols block
            "check \u2705",  # dingbats
            "star \u2b50",
            "(c)\ufe0f",  # emoji variation selector
            "keycap 1\ufe0f\u20e3",
            "\U00020000",  # CJK Ext. B: outside the BMP, refused by VOD's 3-byte column too
        ],
    )
    def test_emoji_is_rejected_as_illegal_characters(self, value: str) -> None:
        err = rejected("Title", code="IllegalCharacters", Title=value)
        assert "emoji" in err.message

    @pytest.mark.parametrize("value", ["Über © 2024 — ½", "日本語のタイトル", "Ελληνικά", "a ← b"])
    def test_ordinary_unicode_is_accepted(self, value: str) -> None:
        assert parse(Title=value).Title == value

    @pytest.mark.parametrize("value", ["a\nb", "a\x00b", "a\x1bb", "a\x7fb", "a\x85b", "evil\u202egpj"])
    def test_control_characters_are_rejected(self, value: str) -> None:
        err = rejected("Title", code="IllegalCharacters", Title=value)
        assert "control" in err.message

    def test_lone_surrogate_is_rejected(self) -> None:
        rejected("Title", code="InvalidParameter", Title="a\ud800b")

    def test_surrounding_whitespace_is_kept(self) -> None:
        assert parse(Title=" a ").Title == " a "


# Text VOD accepts: BMP, no controls/format characters/surrogates, no emoji.
_title_chars = st.characters(
    max_codepoint=0xFFFF, exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp", "Co", "Cn")
).filter(lambda c: find_emoji(c) is None)


@settings(max_examples=200, deadline=None)
@given(st.text(_title_chars, min_size=1, max_size=128))
def test_any_valid_title_round_trips(title: str) -> None:
    if not title.strip() or len(title.encode()) > 128:
        return
    req = parse(Title=title)
    assert req.Title == title
    assert req.to_vod_params()["Title"] == title


@settings(max_examples=200, deadline=None)
@given(st.text(_title_chars, min_size=1, max_size=200))
def test_any_title_over_128_bytes_fails(title: str) -> None:
    title = title + "x" * max(0, 129 - len(title.encode()))
    assert len(title.encode()) > 128
    rejected("Title", code="LengthExceededMax", Title=title)


# --- Description ------------------------------------------------------------------------------


class TestDescription:
    def test_1024_bytes_ok_1025_rejected(self) -> None:
        assert parse(Description="d" * 1024).Description == "d" * 1024
        rejected("Description", code="LengthExceededMax", Description="d" * 1025)

    def test_multibyte_boundary(self) -> None:
        ok = CJK * 341 + "a"  # 1023 + 1 = 1024 bytes
        assert parse(Description=ok).Description == ok
        rejected("Description", code="LengthExceededMax", Description=CJK * 342)  # 1026 bytes

    def test_newlines_allowed_other_controls_not(self) -> None:
        assert parse(Description="line 1\r\nline 2\tend").Description == "line 1\r\nline 2\tend"
        rejected("Description", code="IllegalCharacters", Description="bell\x07")

    def test_emoji_rejected(self) -> None:
        rejected("Description", code="IllegalCharacters", Description="great \U0001f600")

    def test_empty_means_absent(self) -> None:
        req = parse(Description="")
        assert req.Description is None
        assert "Description" not in req.to_vod_params()


# --- Tags -------------------------------------------------------------------------------------


class TestTags:
    def test_comma_string_and_list_normalise_to_the_same(self) -> None:
        assert parse(Tags="a,b").Tags == "a,b"
        assert parse(Tags=["a", "b"]).Tags == "a,b"
        assert parse(Tags=" a , b ").Tags == "a,b"

    def test_16_tags_ok_17_rejected(self) -> None:
        sixteen = [f"t{i}" for i in range(16)]
        assert parse(Tags=sixteen).Tags == ",".join(sixteen)
        rejected("Tags", code="TagsExceededMax", Tags=[*sixteen, "t16"])
        rejected("Tags", code="TagsExceededMax", Tags=",".join([*sixteen, "t16"]))

    def test_tag_32_bytes_ok_33_rejected(self) -> None:
        assert parse(Tags=["x" * 32]).Tags == "x" * 32
        err = rejected("Tags", code="LengthExceededMax", Tags=["ok", "x" * 33])
        assert "Tag 2" in err.message

    def test_multibyte_tag_boundary(self) -> None:
        assert parse(Tags=CJK * 10 + "ab").Tags == CJK * 10 + "ab"  # 32 bytes
        rejected("Tags", code="LengthExceededMax", Tags=CJK * 11)  # 33 bytes

    @pytest.mark.parametrize("value", ["a,,b", "a,", ",a", " , ", ["a", ""], ["a", "  "]])
    def test_empty_tags_rejected(self, value: Any) -> None:
        err = rejected("Tags", code="InvalidParameter", Tags=value)
        assert "empty" in err.message

    def test_comma_inside_list_item_rejected(self) -> None:
        rejected("Tags", code="InvalidParameter", Tags=["a,b"])

    @pytest.mark.parametrize("value", [5, {"a": 1}, ["a", 1], True])
    def test_wrong_types_rejected(self, value: Any) -> None:
        rejected("Tags", code="InvalidParameter", Tags=value)

    def test_emoji_in_tag_rejected(self) -> None:
        rejected("Tags", code="IllegalCharacters", Tags=["fun", "\U0001f389"])

    @pytest.mark.parametrize("value", ["", []])
    def test_empty_value_means_no_tags(self, value: Any) -> None:
        assert parse(Tags=value).Tags is None


_tag = st.text(_title_chars.filter(lambda c: c != ","), min_size=1, max_size=10).filter(
    lambda t: t.strip() == t and t and len(t.encode()) <= 32
)


@settings(max_examples=100, deadline=None)
@given(st.lists(_tag, min_size=1, max_size=16))
def test_any_valid_tag_list_round_trips(tags: list[str]) -> None:
    assert parse(Tags=tags).Tags == ",".join(tags)
    assert parse(Tags=",".join(tags)).Tags == ",".join(tags)


# --- FileName ---------------------------------------------------------------------------------


class TestFileName:
    @pytest.mark.parametrize("ext", DEFAULT_EXTENSIONS)
    def test_every_supported_extension_any_case(self, ext: str) -> None:
        assert parse(FileName=f"clip.{ext}").extension == ext
        assert parse(FileName=f"clip.{ext.upper()}").extension == ext

    @pytest.mark.parametrize(
        ("given", "kept"),
        [
            ("C:\\Users\\bob\\Videos\\clip.MOV", "clip.MOV"),
            ("/home/bob/clip.mkv", "clip.mkv"),
            ("../../etc/clip.mp4", "clip.mp4"),
            ("D:\\video_01.mp4", "video_01.mp4"),
            ("my holiday.final.mp4", "my holiday.final.mp4"),
        ],
    )
    def test_only_the_basename_is_kept(self, given: str, kept: str) -> None:
        req = parse(FileName=given)
        assert req.FileName == kept
        assert req.to_vod_params()["FileName"] == kept

    @pytest.mark.parametrize(
        "value", ["clip", "clip.", "dir.mp4/clip", "clip.exe", "clip.mp4.exe", "clip.mp4 "]
    )
    def test_missing_or_unsupported_extension(self, value: str) -> None:
        rejected("FileName", code="InvalidFileName.Extension", FileName=value)

    @pytest.mark.parametrize("value", [".mp4", "  .mp4", "C:\\dir\\.mp4"])
    def test_needs_a_name_before_the_extension(self, value: str) -> None:
        rejected("FileName", code="InvalidFileName.Extension", FileName=value)

    @pytest.mark.parametrize("value", ["cl\x00ip.mp4", "clip\n.mp4", "evil\u202e4pm.exe.mp4"])
    def test_control_characters_rejected(self, value: str) -> None:
        rejected("FileName", code="IllegalCharacters", FileName=value)

    def test_255_bytes_ok_256_rejected(self) -> None:
        assert parse(FileName="n" * 251 + ".mp4").FileName == "n" * 251 + ".mp4"
        rejected("FileName", code="LengthExceededMax", FileName="n" * 252 + ".mp4")

    def test_overlong_path_rejected_without_echo(self) -> None:
        err = rejected("FileName", code="LengthExceededMax", FileName="d/" * 600 + "clip.mp4")
        assert "d/d/" not in err.message

    def test_extension_echoed_only_when_plain(self) -> None:
        assert "'.exe'" in rejected("FileName", FileName="a.exe").message
        assert (
            "z" * 17
            not in rejected("FileName", code="InvalidFileName.Extension", FileName="a." + "z" * 100).message
        )
        assert (
            "<" not in rejected("FileName", code="InvalidFileName.Extension", FileName="a.<script>").message
        )

    @pytest.mark.parametrize("value", [DROP, "", "   ", None])
    def test_missing(self, value: Any) -> None:
        with pytest.raises(errors.MissingParameter) as info:
            parse(FileName=value)
        assert info.value.field == "FileName"


# --- integers ---------------------------------------------------------------------------------


class TestIntegers:
    @pytest.mark.parametrize("value", [0, 1, 10 * 1024**3, 2**63 - 1])
    def test_file_size_ok(self, value: int) -> None:
        assert parse(FileSize=value).FileSize == value

    @pytest.mark.parametrize("value", [-1, 2**63, True, False, "10", 1.0, 1.5, [1]])
    def test_file_size_rejected(self, value: Any) -> None:
        rejected("FileSize", FileSize=value)

    def test_file_size_negative_message(self) -> None:
        assert rejected("FileSize", FileSize=-1).message == "FileSize must be at least 0."
        assert rejected("FileSize", FileSize=True).message == "FileSize must be an integer."

    @pytest.mark.parametrize("value", [1, 1000363456, 2**63 - 1])
    def test_cate_id_ok(self, value: int) -> None:
        assert parse(CateId=value).to_vod_params()["CateId"] == str(value)

    @pytest.mark.parametrize("value", [0, -5, 2**63, "5", 1.5, True, [1]])
    def test_cate_id_rejected(self, value: Any) -> None:
        rejected("CateId", CateId=value)

    def test_cate_id_zero_message(self) -> None:
        assert rejected("CateId", CateId=0).message == "CateId must be a positive integer."


# --- CoverURL ---------------------------------------------------------------------------------


class TestCoverURL:
    @pytest.mark.parametrize(
        "value",
        [
            "https://example.aliyundoc.com/image/D22F553TEST.jpeg",
            "HTTP://example.com/c.jpg",
            "http://example.com:8080/c.jpg?x=1#y",
            "https://[2001:db8::1]/c.png",
        ],
    )
    def test_accepted(self, value: str) -> None:
        assert parse(CoverURL=value).CoverURL == value

    @pytest.mark.parametrize(
        ("value", "words"),
        [
            ("javascript:alert(1)", "http or https"),
            ("ftp://example.com/c.jpg", "http or https"),
            ("data:image/png;base64,AAAA", "http or https"),
            ("//example.com/c.jpg", "http or https"),
            ("example.com/c.jpg", "http or https"),
            ("http:///c.jpg", "host"),
            ("https://user:pw@example.com/c.jpg", "user name or password"),
            ("https://user@example.com/c.jpg", "user name or password"),
            ("https://example.com/a b.jpg", "spaces"),
            ("https://example.com/\nx", "control"),
            ("https:\\\\example.com\\c.jpg", "backslashes"),
            ("https://example.com:99999/c.jpg", "port"),
            ("https://example.com:0/c.jpg", "port"),
            ("http://[::1/c.jpg", "not a valid URL"),
        ],
    )
    def test_rejected(self, value: str, words: str) -> None:
        assert words in rejected("CoverURL", CoverURL=value).message

    def test_1024_chars_ok_1025_rejected(self) -> None:
        base = "https://example.com/"
        assert parse(CoverURL=base + "a" * (1024 - len(base))).CoverURL
        rejected("CoverURL", code="LengthExceededMax", CoverURL=base + "a" * (1025 - len(base)))

    def test_non_string_rejected(self) -> None:
        rejected("CoverURL", CoverURL=5)


# --- UserData ---------------------------------------------------------------------------------


class TestUserData:
    def test_object_and_json_string_are_equivalent(self) -> None:
        value = {"MessageCallback": {"CallbackURL": "http://cb.example.com/vod"}, "Extend": {"localId": "1"}}
        a = parse(UserData=value)
        b = parse(UserData=json.dumps(value))
        assert a.UserData == b.UserData
        assert a.UserData is not None and a.UserData.Extend == {"localId": "1"}
        assert a.to_vod_params()["UserData"] == (
            '{"MessageCallback":{"CallbackURL":"http://cb.example.com/vod"},"Extend":{"localId":"1"}}'
        )

    @pytest.mark.parametrize("value", [[1], "[1]", "not json", 5, True, '"a string"'])
    def test_non_object_rejected(self, value: Any) -> None:
        err = rejected("UserData", UserData=value)
        assert "JSON object" in err.message

    def test_unknown_member_named(self) -> None:
        err = rejected("UserData", UserData={"Foo": 1})
        assert err.message == "UserData.Foo is not a known parameter."

    def test_extend_as_json_string(self) -> None:
        req = parse(UserData={"Extend": '{"a":1}'})
        assert req.UserData is not None and req.UserData.Extend == {"a": 1}

    @pytest.mark.parametrize("value", [[1], "[1]", "x", 3])
    def test_extend_must_be_object(self, value: Any) -> None:
        rejected("UserData", UserData={"Extend": value})

    def test_extend_512_bytes_ok_513_rejected(self) -> None:
        overhead = len('{"k":""}')
        assert parse(UserData={"Extend": {"k": "v" * (512 - overhead)}}).UserData
        err = rejected(
            "UserData", code="LengthExceededMax", UserData={"Extend": {"k": "v" * (513 - overhead)}}
        )
        assert "512" in err.message

    def test_callback_url_checked(self) -> None:
        ok = parse(
            UserData={"MessageCallback": {"CallbackURL": "https://cb.example.com/", "CallbackType": "http"}}
        )
        assert ok.UserData is not None and ok.UserData.MessageCallback is not None
        assert ok.UserData.MessageCallback.CallbackType == "http"
        err = rejected("UserData", UserData={"MessageCallback": {"CallbackURL": "javascript:alert(1)"}})
        assert err.message.startswith("UserData.MessageCallback.CallbackURL")
        rejected("UserData", UserData={"MessageCallback": {"CallbackURL": "https://e.com/" + "a" * 250}})
        rejected("UserData", UserData={"MessageCallback": {}})
        rejected(
            "UserData", UserData={"MessageCallback": {"CallbackURL": "http://e.com", "CallbackType": "h t"}}
        )

    def test_accelerate_config(self) -> None:
        value = {"AccelerateConfig": {"Type": "oss", "Domain": "https://oss-accelerate.aliyuncs.com"}}
        assert json.loads(parse(UserData=value).to_vod_params()["UserData"]) == value
        rejected("UserData", UserData={"AccelerateConfig": {"Type": "oss", "Domain": "ftp://x"}})
        rejected("UserData", UserData={"AccelerateConfig": {"Domain": "https://x.com"}})

    def test_empty_user_data_not_sent(self) -> None:
        assert "UserData" not in parse(UserData={}).to_vod_params()
        assert "UserData" not in parse(UserData="{}").to_vod_params()

    def test_non_ascii_kept_compact(self) -> None:
        params = parse(UserData={"Extend": {"标题": "值"}}).to_vod_params()
        assert params["UserData"] == '{"Extend":{"标题":"值"}}'


# --- ids --------------------------------------------------------------------------------------


class TestIds:
    def test_workflow_wins_over_template_group(self) -> None:
        req = parse(
            WorkflowId="613efff3887ec34af685714cc461abcd", TemplateGroupId="405477f9e214d19ea2c7c854abcd"
        )
        assert req.effective_processing == ("WorkflowId", "613efff3887ec34af685714cc461abcd")
        params = req.to_vod_params()
        assert params["WorkflowId"] == "613efff3887ec34af685714cc461abcd"
        assert "TemplateGroupId" not in params

    def test_template_group_alone(self) -> None:
        req = parse(TemplateGroupId="VOD_NO_TRANSCODE")
        assert req.effective_processing == ("TemplateGroupId", "VOD_NO_TRANSCODE")
        assert req.to_vod_params()["TemplateGroupId"] == "VOD_NO_TRANSCODE"
        assert parse().effective_processing is None

    @pytest.mark.parametrize("field", ["TemplateGroupId", "WorkflowId", "AppId"])
    @pytest.mark.parametrize("value", ["a b", "x" * 65, "id;drop", "ïd", 5])
    def test_bad_ids_rejected(self, field: str, value: Any) -> None:
        rejected(field, **{field: value})

    def test_app_id_default_and_override(self) -> None:
        assert parse().to_vod_params()["AppId"] == DEFAULT_APP_ID == "app-1000000"
        assert parse(AppId="app-2000001").to_vod_params()["AppId"] == "app-2000001"
        assert parse(AppId="").to_vod_params()["AppId"] == DEFAULT_APP_ID

    def test_storage_location(self) -> None:
        loc = "outin-3f5a7c9e1b2d11ee.oss-cn-shanghai.aliyuncs.com"
        assert parse(StorageLocation=loc).to_vod_params()["StorageLocation"] == loc
        rejected("StorageLocation", StorageLocation="bad/location")
        rejected("StorageLocation", StorageLocation="a" * 129)

    @pytest.mark.parametrize("value", ["abcdef", "a" * 64, "123-123", "A_b-C_9"])
    def test_reference_id_ok(self, value: str) -> None:
        assert parse(ReferenceId=value).to_vod_params()["ReferenceId"] == value

    @pytest.mark.parametrize(
        "value", ["abcde", "a" * 65, "abc def", "abc.def", "abc!def", "中文中文中文", 123456]
    )
    def test_reference_id_rejected(self, value: Any) -> None:
        rejected("ReferenceId", ReferenceId=value)


@settings(max_examples=100, deadline=None)
@given(st.from_regex(r"[A-Za-z0-9_-]{6,64}", fullmatch=True))
def test_any_reference_id_of_the_documented_form_is_accepted(value: str) -> None:
    assert parse(ReferenceId=value).ReferenceId == value


# --- parse_request and to_vod_params ----------------------------------------------------------


class TestParseRequest:
    def test_unknown_field_is_named(self) -> None:
        err = rejected("Foo", code="InvalidParameter", Foo=1)
        assert err.message == "Foo is not a known parameter."

    def test_unknown_field_name_is_shortened(self) -> None:
        err = rejected("k" * 64 + "...", **{"k" * 5000: 1})
        assert len(err.message) < 120

    def test_wrong_case_parameter_is_unknown(self) -> None:
        rejected("title", title="x")

    def test_raw_json_bytes_and_str(self) -> None:
        raw = json.dumps(request(Tags=["a"]))
        assert parse_request(CreateUploadVideoRequest, raw).Tags == "a"
        assert parse_request(CreateUploadVideoRequest, raw.encode()).Tags == "a"

    @pytest.mark.parametrize("raw", [b"{", b"\xff\xfe", "not json"])
    def test_malformed_json(self, raw: bytes | str) -> None:
        with pytest.raises(errors.MalformedBody):
            parse_request(CreateUploadVideoRequest, raw)

    @pytest.mark.parametrize("data", [[], "[1]", 5, None])
    def test_non_object_body(self, data: Any) -> None:
        with pytest.raises(errors.MalformedBody):
            parse_request(CreateUploadVideoRequest, data)

    def test_cause_does_not_echo_input(self) -> None:
        with pytest.raises(errors.InvalidParameter) as info:
            parse(Title="SECRET-TITLE" * 20)
        assert "SECRET-TITLE" not in str(info.value.__cause__)
        assert "SECRET-TITLE" not in info.value.message

    def test_to_vod_params_full(self) -> None:
        req = parse(
            Title="Holiday",
            FileName="C:\\v\\clip.MP4",
            FileSize=123,
            Description="desc",
            CoverURL="https://example.com/c.jpg",
            CateId=1000363456,
            Tags=["a", "b"],
            UserData={"Extend": {"localId": "x"}},
            TemplateGroupId="tg1",
            StorageLocation="outin-x.oss-cn-shanghai.aliyuncs.com",
            ReferenceId="ref-000001",
        )
        assert req.extension == "mp4"
        assert req.to_vod_params() == {
            "Title": "Holiday",
            "FileName": "clip.MP4",
            "FileSize": "123",
            "Description": "desc",
            "CoverURL": "https://example.com/c.jpg",
            "CateId": "1000363456",
            "Tags": "a,b",
            "UserData": '{"Extend":{"localId":"x"}}',
            "TemplateGroupId": "tg1",
            "StorageLocation": "outin-x.oss-cn-shanghai.aliyuncs.com",
            "ReferenceId": "ref-000001",
            "AppId": "app-1000000",
        }

    def test_minimal_params_have_no_nones(self) -> None:
        params = parse().to_vod_params()
        assert params == {"Title": "Holiday in Hangzhou", "FileName": "clip.mp4", "AppId": "app-1000000"}
        assert all(isinstance(v, str) for v in params.values())


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
        address = UploadAddress.decode(b64(ADDRESS))
        assert address.model_dump() == ADDRESS
        assert address.bucket_url() == "https://outin-3f5a7c9e1b2d11ee.oss-cn-shanghai.aliyuncs.com"

    def test_address_without_scheme(self) -> None:
        address = UploadAddress.decode(b64({**ADDRESS, "Endpoint": "oss-cn-beijing.aliyuncs.com"}))
        assert address.bucket_url() == "https://outin-3f5a7c9e1b2d11ee.oss-cn-beijing.aliyuncs.com"

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
        assert creds.address().FileName == ADDRESS["FileName"]
        assert creds.auth().AccessKeyId == AUTH["AccessKeyId"]

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
        with pytest.raises(Exception) as info:
            UploadCredentials.model_validate(broken)
        assert body["UploadAuth"] not in str(info.value)


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


# --- times ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-04-10T01:37:14Z", datetime(2024, 4, 10, 1, 37, 14, tzinfo=timezone.utc)),
        ("2024-04-10T01:37:14.627Z", datetime(2024, 4, 10, 1, 37, 14, 627000, tzinfo=timezone.utc)),
        ("2024-04-10T01:37:14:627Z", datetime(2024, 4, 10, 1, 37, 14, 627000, tzinfo=timezone.utc)),
        ("2024-04-10T09:37:14+08:00", datetime(2024, 4, 10, 1, 37, 14, tzinfo=timezone.utc)),
        ("2024-04-10 01:37:14", datetime(2024, 4, 10, 1, 37, 14, tzinfo=timezone.utc)),
        ("2024-04-10T01:37:14.123456789z", datetime(2024, 4, 10, 1, 37, 14, 123456, tzinfo=timezone.utc)),
    ],
)
def test_parse_vod_time(text: str, expected: datetime) -> None:
    assert parse_vod_time(text) == expected


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2024-04-10", "2024-13-10T01:37:14Z", "2024-04-10T01:37:14Zjunk"]
)
def test_parse_vod_time_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_vod_time(text)


# --- import cost ------------------------------------------------------------------------------


def test_import_builds_no_validators_or_regexes() -> None:
    """Cold start: importing the models builds no pydantic validator and compiles no regex."""
    code = (
        "import shared.models as m, shared.events as e\n"
        "from pydantic._internal._mock_val_ser import MockValSer\n"
        "models = [m.CreateUploadVideoRequest, m.UploadCredentials, m.Video, e.FileUploadComplete, "
        "e.TranscodeComplete, e.GenericEvent]\n"
        "assert all(isinstance(c.__pydantic_validator__, MockValSer) for c in models), 'built at import'\n"
        "assert m._time_pattern.cache_info().currsize == 0\n"
        "assert e.event_adapter.cache_info().currsize == 0\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
