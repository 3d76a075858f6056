"""shared/api_models.py: CreateUploadVideo validation (both sides of every limit) and parse_request.

What the validated request becomes at VOD (policy, defaults, UserData JSON) is the builders' job:
tests/unit/test_uploads.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import errors
from shared.api_media_models import CreateUploadAttachedMediaRequest, CreateUploadImageRequest
from shared.api_models import (
    AccelerateConfig,
    CreateUploadVideoRequest,
    MessageCallback,
    UserData,
    parse_request,
)
from shared.settings import ATTACHED_MEDIA_EXTENSIONS, DEFAULT_EXTENSIONS
from shared.validation import find_emoji

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
    assert parse(Title=title).Title == title


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
        assert parse(Description="").Description is None


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
        assert parse(FileName=given).FileName == kept

    def test_extension_is_lower_case_without_the_dot(self) -> None:
        assert parse(FileName="C:\\v\\clip.MP4").extension == "mp4"

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
    # No upper bound in the model: the operator's MAX_FILE_SIZE is the limit (tests/unit/test_uploads.py).
    @pytest.mark.parametrize("value", [0, 1, 10 * 1024**3, 2**63 - 1, 10**23])
    def test_file_size_ok(self, value: int) -> None:
        assert parse(FileSize=value).FileSize == value

    @pytest.mark.parametrize("value", [-1, True, False, "10", 1.0, 1.5, [1]])
    def test_file_size_rejected(self, value: Any) -> None:
        rejected("FileSize", FileSize=value)

    def test_file_size_negative_message(self) -> None:
        assert rejected("FileSize", FileSize=-1).message == "FileSize must be at least 0."
        assert rejected("FileSize", FileSize=True).message == "FileSize must be an integer."

    @pytest.mark.parametrize("value", [1, 1000363456, 2**63 - 1])
    def test_cate_id_ok(self, value: int) -> None:
        assert parse(CateId=value).CateId == value

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
        assert a.UserData == UserData(
            MessageCallback=MessageCallback(CallbackURL="http://cb.example.com/vod"), Extend={"localId": "1"}
        )

    @pytest.mark.parametrize("value", [[1], "[1]", "not json", 5, True, '"a string"'])
    def test_non_object_rejected(self, value: Any) -> None:
        err = rejected("UserData", UserData=value)
        assert "JSON" in err.message

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
        req = parse(UserData=value)
        assert req.UserData is not None
        assert req.UserData.AccelerateConfig == AccelerateConfig(
            Type="oss", Domain="https://oss-accelerate.aliyuncs.com"
        )
        rejected("UserData", UserData={"AccelerateConfig": {"Type": "oss", "Domain": "ftp://x"}})
        rejected("UserData", UserData={"AccelerateConfig": {"Domain": "https://x.com"}})

    @pytest.mark.parametrize("value", [{}, "{}"])
    def test_empty_user_data_has_no_members(self, value: Any) -> None:
        assert parse(UserData=value).UserData == UserData()
        assert UserData().model_dump() == {"MessageCallback": None, "Extend": None, "AccelerateConfig": None}

    def test_non_ascii_extend_kept(self) -> None:
        req = parse(UserData={"Extend": {"标题": "值"}})
        assert req.UserData is not None and req.UserData.Extend == {"标题": "值"}

    def test_extend_limit_counts_utf8_bytes_of_compact_json(self) -> None:
        value = CJK * 168  # 504 bytes, 168 characters: with '{"k":""}' exactly 512 bytes
        assert parse(UserData={"Extend": {"k": value}}).UserData
        rejected("UserData", code="LengthExceededMax", UserData={"Extend": {"k": value + "a"}})

    def test_extend_not_representable_as_json(self) -> None:
        rejected("UserData", UserData={"Extend": {"k": float("nan")}})


# --- ids --------------------------------------------------------------------------------------


class TestIds:
    def test_workflow_and_template_group_both_kept(self) -> None:
        # Which one VOD gets (the workflow) is the policy's choice: test_uploads.py.
        req = parse(
            WorkflowId="613efff3887ec34af685714cc461abcd", TemplateGroupId="405477f9e214d19ea2c7c854abcd"
        )
        assert (req.WorkflowId, req.TemplateGroupId) == (
            "613efff3887ec34af685714cc461abcd",
            "405477f9e214d19ea2c7c854abcd",
        )
        assert parse(TemplateGroupId="VOD_NO_TRANSCODE").TemplateGroupId == "VOD_NO_TRANSCODE"
        assert (parse().WorkflowId, parse().TemplateGroupId) == (None, None)

    @pytest.mark.parametrize("field", ["TemplateGroupId", "WorkflowId", "AppId"])
    def test_64_chars_ok(self, field: str) -> None:
        assert getattr(parse(**{field: "x" * 64}), field) == "x" * 64

    @pytest.mark.parametrize("field", ["TemplateGroupId", "WorkflowId", "AppId"])
    @pytest.mark.parametrize("value", ["a b", "x" * 65, "id;drop", "ïd", 5])
    def test_bad_ids_rejected(self, field: str, value: Any) -> None:
        rejected(field, **{field: value})

    def test_app_id_absent_empty_or_given(self) -> None:
        # No default here: the operator's DEFAULT_APP_ID is applied by the policy (test_uploads.py).
        assert parse().AppId is None
        assert parse(AppId="").AppId is None
        assert parse(AppId="app-2000001").AppId == "app-2000001"

    def test_storage_location(self) -> None:
        loc = "outin-3f5a7c9e1b2d11ee.oss-cn-shanghai.aliyuncs.com"
        assert parse(StorageLocation=loc).StorageLocation == loc
        assert parse(StorageLocation="a" * 128).StorageLocation == "a" * 128
        rejected("StorageLocation", StorageLocation="bad/location")
        rejected("StorageLocation", StorageLocation="a" * 129)

    @pytest.mark.parametrize("value", ["abcdef", "a" * 64, "123-123", "A_b-C_9"])
    def test_reference_id_ok(self, value: str) -> None:
        # Well-formed, and still refused by the policy (the server assigns it): test_uploads.py.
        assert parse(ReferenceId=value).ReferenceId == value

    @pytest.mark.parametrize(
        "value", ["abcde", "a" * 65, "abc def", "abc.def", "abc!def", "中文中文中文", 123456]
    )
    def test_reference_id_rejected(self, value: Any) -> None:
        rejected("ReferenceId", ReferenceId=value)


@settings(max_examples=100, deadline=None)
@given(st.from_regex(r"[A-Za-z0-9_-]{6,64}", fullmatch=True))
def test_any_reference_id_of_the_documented_form_is_accepted(value: str) -> None:
    assert parse(ReferenceId=value).ReferenceId == value


# --- parse_request ------------------------------------------------------------------------------


class TestParseRequest:
    def test_unknown_field_is_named(self) -> None:
        err = rejected("Foo", code="InvalidParameter", Foo=1)
        assert err.message == "Foo is not a known parameter."

    def test_unknown_field_name_is_shortened(self) -> None:
        err = rejected("k" * 64 + "...", **{"k" * 5000: 1})  # type: ignore[arg-type]
        assert len(err.message) < 120

    def test_wrong_case_parameter_is_unknown(self) -> None:
        rejected("title", title="x")

    def test_an_unknown_name_is_reported_before_the_missing_one_it_misspells(self) -> None:
        err = rejected("title", code="InvalidParameter", Title=DROP, title="x")
        assert err.message == "title is not a known parameter (did you mean Title?)."

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


# --- import cost --------------------------------------------------------------------------------


# --- CreateUploadImage and CreateUploadAttachedMedia ---------------------------------------------

IMAGE: dict[str, Any] = {"ImageType": "cover"}
ATTACHED: dict[str, Any] = {"BusinessType": "subtitle", "MediaExt": "vtt"}


def image(**changes: Any) -> CreateUploadImageRequest:
    body = {**IMAGE, **changes}
    return parse_request(CreateUploadImageRequest, {k: v for k, v in body.items() if v is not DROP})


def attached(**changes: Any) -> CreateUploadAttachedMediaRequest:
    body = {**ATTACHED, **changes}
    return parse_request(CreateUploadAttachedMediaRequest, {k: v for k, v in body.items() if v is not DROP})


def refused_by(make: Any, field: str, code: str, **changes: Any) -> str:
    with pytest.raises(errors.InvalidParameter) as info:
        make(**changes)
    assert (info.value.field, info.value.code) == (field, code)
    assert_plain(info.value.message)
    return info.value.message


# The rules both share with CreateUploadVideo: (field, at the limit, one past it, VOD's code).
SHARED_LIMITS = [
    ("Title", "a" * 128, "a" * 129, "LengthExceededMax"),
    ("Title", CJK * 42 + "ab", CJK * 43, "LengthExceededMax"),
    ("Title", "plain", "emoji \U0001f600", "IllegalCharacters"),
    ("Title", "plain", "bell\x07", "IllegalCharacters"),
    ("Description", "d" * 1024, "d" * 1025, "LengthExceededMax"),
    ("Description", "two\nlines", "bidi \u202e", "IllegalCharacters"),
    ("Tags", ",".join(f"t{i}" for i in range(16)), ",".join(f"t{i}" for i in range(17)), "TagsExceededMax"),
    ("Tags", "t" * 32, "t" * 33, "LengthExceededMax"),
    ("Tags", ["a", "b"], ["a", ""], "InvalidParameter"),
    ("StorageLocation", "outin-x.oss-cn-shanghai.aliyuncs.com", "a" * 129, "InvalidParameter"),
    ("StorageLocation", "outin-x.oss-cn-shanghai.aliyuncs.com", "outin/x", "InvalidParameter"),
    ("AppId", "app-" + "1" * 60, "app-" + "1" * 61, "InvalidParameter"),
    ("UserData", {"Extend": {"k": "v" * 504}}, {"Extend": {"k": "v" * 505}}, "LengthExceededMax"),
    ("UserData", {"Extend": {"k": "v"}}, {"Extend": "not json"}, "InvalidParameter"),
]


@pytest.mark.parametrize("make", [image, attached], ids=["image", "attached"])
@pytest.mark.parametrize(
    ("field", "ok", "too_far", "code"),
    SHARED_LIMITS,
    ids=[f"{f}-{i}" for i, (f, *_) in enumerate(SHARED_LIMITS)],
)
def test_media_requests_hold_every_shared_limit_exactly(
    make: Any, field: str, ok: Any, too_far: Any, code: str
) -> None:
    make(**{field: ok})
    refused_by(make, field, code, **{field: too_far})


@pytest.mark.parametrize("make", [image, attached], ids=["image", "attached"])
def test_media_titles_are_optional_and_blank_means_absent(make: Any) -> None:
    assert make().Title is None and make(Title="").Title is None and make(Description="").Description is None


@pytest.mark.parametrize("make", [image, attached], ids=["image", "attached"])
@pytest.mark.parametrize("field", ["CoverURL", "TemplateGroupId", "ReferenceId", "Extra"])
def test_media_requests_refuse_unknown_and_video_only_parameters(make: Any, field: str) -> None:
    message = refused_by(make, field, "InvalidParameter", **{field: "x"})
    assert "not a known parameter" in message


class TestImageType:
    @pytest.mark.parametrize("value", ["default", "cover"])
    def test_vods_two_values_are_accepted(self, value: str) -> None:
        assert image(ImageType=value).ImageType == value

    @pytest.mark.parametrize("value", [DROP, None, "", "  "])
    def test_it_is_required(self, value: Any) -> None:
        with pytest.raises(errors.MissingParameter) as info:
            image(ImageType=value)
        assert info.value.field == "ImageType"

    @pytest.mark.parametrize("value", ["Cover", "thumbnail", "CoverSnapshot", 1, ["cover"]])
    def test_anything_else_is_refused(self, value: Any) -> None:
        refused_by(image, "ImageType", "InvalidParameter", ImageType=value)


class TestImageExt:
    @pytest.mark.parametrize(
        ("value", "sent"), [("png", "png"), ("jpg", "jpg"), ("JPEG", "jpeg"), ("gif", "gif")]
    )
    def test_vods_four_values_are_accepted_without_case(self, value: str, sent: str) -> None:
        assert image(ImageExt=value).extension == sent

    @pytest.mark.parametrize("value", [DROP, None, ""])
    def test_absent_is_vods_default_png(self, value: Any) -> None:
        assert image(ImageExt=value).ImageExt == "png"

    @pytest.mark.parametrize("value", ["webp", "heic", "bmp", ".png", "png ", 5])
    def test_other_types_are_refused(self, value: Any) -> None:
        refused_by(image, "ImageExt", "InvalidParameter", ImageExt=value)


class TestOriginalFileName:
    def test_a_path_is_reduced_to_its_basename_with_its_extension(self) -> None:
        assert image(OriginalFileName="C:\\Users\\bob\\Pictures\\Cover.JPG").OriginalFileName == "Cover.JPG"
        assert image(OriginalFileName="../../a.png").OriginalFileName == "a.png"

    @pytest.mark.parametrize("value", ["cover", "cover.", ".png", "dir/", "a.png/"])
    def test_it_needs_a_name_and_an_extension(self, value: str) -> None:
        refused_by(image, "OriginalFileName", "InvalidFileName.Extension", OriginalFileName=value)

    def test_its_basename_holds_255_bytes_at_most(self) -> None:
        assert image(OriginalFileName="a" * 251 + ".png").OriginalFileName is not None
        refused_by(image, "OriginalFileName", "LengthExceededMax", OriginalFileName="a" * 252 + ".png")
        refused_by(image, "OriginalFileName", "LengthExceededMax", OriginalFileName="d/" * 511 + "a.png")

    @pytest.mark.parametrize("value", ["a\x00.png", "evil\u202egnp.png", "a\r\n.png"])
    def test_control_characters_are_refused(self, value: str) -> None:
        refused_by(image, "OriginalFileName", "IllegalCharacters", OriginalFileName=value)


class TestImageCateId:
    def test_a_positive_64_bit_integer(self) -> None:
        assert image(CateId=1).CateId == 1 and image(CateId=2**63 - 1).CateId == 2**63 - 1
        for value in (0, -1, 2**63, "7", 1.0, True):
            refused_by(image, "CateId", "InvalidParameter", CateId=value)


def test_an_image_request_takes_no_file_size() -> None:
    refused_by(image, "FileSize", "InvalidParameter", FileSize=1024)


class TestBusinessType:
    @pytest.mark.parametrize("value", list(ATTACHED_MEDIA_EXTENSIONS))
    def test_vods_three_values_are_accepted(self, value: str) -> None:
        ext = ATTACHED_MEDIA_EXTENSIONS[value][0]
        assert attached(BusinessType=value, MediaExt=ext).BusinessType == value

    @pytest.mark.parametrize("value", [DROP, None, ""])
    def test_it_is_required(self, value: Any) -> None:
        with pytest.raises(errors.MissingParameter) as info:
            attached(BusinessType=value)
        assert info.value.field == "BusinessType"

    @pytest.mark.parametrize("value", ["subtitles", "Subtitle", "watermarks", "video", 3])
    def test_anything_else_is_refused(self, value: Any) -> None:
        refused_by(attached, "BusinessType", "InvalidParameter", BusinessType=value)


class TestMediaExt:
    @pytest.mark.parametrize(
        ("business_type", "ext"), [(t, e) for t, exts in ATTACHED_MEDIA_EXTENSIONS.items() for e in exts]
    )
    def test_every_extension_of_its_business_type_is_accepted(self, business_type: str, ext: str) -> None:
        assert attached(BusinessType=business_type, MediaExt=ext.upper()).extension == ext

    @pytest.mark.parametrize(
        ("business_type", "ext"),
        [
            ("subtitle", "png"),
            ("watermark", "srt"),
            ("material", "mov"),
            ("watermark", "jpg"),
            ("subtitle", "txt"),
        ],
    )
    def test_an_extension_of_another_business_type_is_refused(self, business_type: str, ext: str) -> None:
        message = refused_by(
            attached, "MediaExt", "InvalidParameter", BusinessType=business_type, MediaExt=ext
        )
        assert business_type in message

    def test_absent_it_is_taken_from_file_name(self) -> None:
        assert attached(MediaExt=DROP, FileName="English.SRT").MediaExt == "srt"
        message = refused_by(attached, "MediaExt", "InvalidParameter", MediaExt=DROP, FileName="a.png")
        assert "FileName" in message

    def test_given_it_wins_over_the_file_names_extension(self) -> None:
        req = attached(MediaExt="vtt", FileName="subs.srt")
        assert (req.MediaExt, req.FileName) == ("vtt", "subs.srt")

    @pytest.mark.parametrize("file_name", [DROP, "subs", ".vtt", "subs."])
    def test_one_of_the_two_is_needed(self, file_name: Any) -> None:
        with pytest.raises(errors.MissingParameter) as info:
            attached(MediaExt=DROP, FileName=file_name)
        assert info.value.field == "MediaExt"


class TestAttachedFileNameAndSize:
    def test_file_name_is_a_basename_without_a_required_extension(self) -> None:
        assert attached(FileName="D:\\test\\subs").FileName == "subs"
        assert attached(FileName="a" * 255).FileName == "a" * 255
        refused_by(attached, "FileName", "LengthExceededMax", FileName="a" * 256)
        refused_by(attached, "FileName", "InvalidParameter", FileName="dir/")

    def test_file_size_is_a_non_negative_64_bit_integer(self) -> None:
        # no upper bound in the model: the operator's MAX_ATTACHED_MEDIA_SIZE is what a client is told
        assert attached(FileSize=0).FileSize == 0 and attached(FileSize=2**63).FileSize == 2**63
        for value in (-1, "2048", 1.5, True):
            refused_by(attached, "FileSize", "InvalidParameter", FileSize=value)


class TestCateIds:
    @pytest.mark.parametrize("value", ["1,2,3,4,5", " 1, 2 ,3,4,5", [1, 2, 3, 4, 5]])
    def test_five_ids_as_a_string_or_a_list(self, value: Any) -> None:
        assert attached(CateIds=value).CateIds == (1, 2, 3, 4, 5)

    @pytest.mark.parametrize("value", ["1,2,3,4,5,6", [1, 2, 3, 4, 5, 6]])
    def test_six_are_too_many(self, value: Any) -> None:
        assert "at most 5" in refused_by(attached, "CateIds", "InvalidParameter", CateIds=value)

    @pytest.mark.parametrize("value", ["", [], None])
    def test_empty_means_absent(self, value: Any) -> None:
        assert attached(CateIds=value).CateIds is None

    @pytest.mark.parametrize(
        "value", ["0", "1,,2", "a", "-1", "1.5", [0], [True], ["1"], 7, {"a": 1}, "9" * 20, [2**63]]
    )
    def test_each_must_be_a_positive_integer(self, value: Any) -> None:
        refused_by(attached, "CateIds", "InvalidParameter", CateIds=value)


def test_import_builds_no_validators_or_regexes() -> None:
    """Cold start: importing the request models builds no pydantic validator and compiles no regex."""
    code = (
        "import shared.api_models as m, shared.validation as v\n"
        "from pydantic import BaseModel\n"
        "from pydantic._internal._mock_val_ser import MockValSer\n"
        "models = [c for c in vars(m).values() if isinstance(c, type) and issubclass(c, BaseModel)"
        " and c.__module__ == m.__name__]\n"
        "assert len(models) >= 4, models\n"
        "built = [c.__name__ for c in models if not isinstance(c.__pydantic_validator__, MockValSer)]\n"
        "assert not built, built\n"
        "assert v._time_pattern.cache_info().currsize == 0\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
