"""shared/validation.py: the pure rules, known answers on both sides of every limit."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from shared.validation import (
    HOST_CHARS,
    ID_CHARS,
    ID_MAX_CHARS,
    INT64_MAX,
    MAX_DEPTH,
    Invalid,
    check_id,
    check_text,
    check_url,
    find_emoji,
    loose_float,
    loose_int,
    loose_time,
    parse_vod_time,
    too_deep,
)

CJK = "中"  # 3 bytes in UTF-8


def invalid(code: str, call: Any, *args: Any, **kwargs: Any) -> Invalid:
    with pytest.raises(Invalid) as info:
        call(*args, **kwargs)
    assert info.value.code == code
    assert str(info.value) == info.value.message
    return info.value


# --- Invalid and the constants ------------------------------------------------------------------


def test_invalid_is_a_value_error_with_code_and_message() -> None:
    err = Invalid("IllegalCharacters", "Title must not contain emoji.")
    assert isinstance(err, ValueError)
    assert (err.code, err.message, str(err)) == (
        "IllegalCharacters",
        "Title must not contain emoji.",
        err.message,
    )


def test_constants() -> None:
    assert INT64_MAX == 9223372036854775807
    assert ID_MAX_CHARS == 64
    assert MAX_DEPTH == 32
    assert set("-_") <= ID_CHARS and "." not in ID_CHARS and len(ID_CHARS) == 64
    assert set(".-") <= HOST_CHARS and "_" not in HOST_CHARS and len(HOST_CHARS) == 64


# --- find_emoji ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "index"),
    [
        ("", None),
        ("plain ASCII", None),
        ("Über © 2024 — ½ 日本語 ←", None),
        ("a \u2605", 2),  # a star in the misc symbols block
        ("a\U0001f3acb", 1),  # outside the BMP
        ("\U00010000", 0),  # the first code point outside the BMP
        ("\uffff", None),  # the last one inside it
        ("\u20e2\u20e3", 1),  # keycap combiner, not its neighbour
        ("\u25ff\u2600", 1),  # misc symbols start at U+2600
        ("\u27bf", 0),
        ("\u27c0", None),  # dingbats end at U+27BF
        ("\u25fa\u25fb", 1),
        ("\u2b4f\u2b50", 1),  # star
        ("©\ufe0f", 1),  # emoji presentation selector
        ("x\ufe0e", 1),  # text presentation selector
        ("\ufe0d\ufe10", None),
        ("\u3030", 0),
        ("\u303d", 0),
        ("\u303c", None),
    ],
)
def test_find_emoji(text: str, index: int | None) -> None:
    assert find_emoji(text) == index


# --- check_text ---------------------------------------------------------------------------------


class TestCheckText:
    def test_byte_limit_both_sides(self) -> None:
        check_text("Title", "a" * 128, max_bytes=128)
        err = invalid("LengthExceededMax", check_text, "Title", "a" * 129, max_bytes=128)
        assert err.message == "Title is too long: at most 128 bytes in UTF-8 (got 129)."

    def test_limit_counts_utf8_bytes(self) -> None:
        check_text("Tag 1", CJK * 10 + "ab", max_bytes=32)  # 32 bytes, 12 characters
        invalid("LengthExceededMax", check_text, "Tag 1", CJK * 11, max_bytes=32)  # 33 bytes

    def test_no_limit(self) -> None:
        check_text("FileName", "a" * 100_000, max_bytes=None)

    def test_empty_text_passes(self) -> None:
        check_text("Title", "", max_bytes=0)
        invalid("LengthExceededMax", check_text, "Title", "a", max_bytes=0)

    @pytest.mark.parametrize(
        "char", ["\x00", "\x09", "\x0a", "\x0d", "\x1f", "\x7f", "\x9f", "\u2028", "\u2029"]
    )
    def test_control_characters(self, char: str) -> None:
        err = invalid("IllegalCharacters", check_text, "Title", f"a{char}b", max_bytes=None)
        assert err.message == "Title must not contain control characters."

    @pytest.mark.parametrize("char", ["\x20", "\x7e", "\xa0", "\u2027", "\u202f", "\u2065", "\u206a"])
    def test_next_to_the_control_ranges_is_accepted(self, char: str) -> None:
        check_text("Title", f"a{char}b", max_bytes=None)

    @pytest.mark.parametrize("char", ["\u202a", "\u202e", "\u2066", "\u2069"])
    def test_bidi_controls_are_control_characters(self, char: str) -> None:
        invalid("IllegalCharacters", check_text, "FileName", f"evil{char}gpj.mp4", max_bytes=None)

    @pytest.mark.parametrize("char", ["\t", "\n", "\r"])
    def test_newlines_and_tabs_only_where_allowed(self, char: str) -> None:
        check_text("Description", f"a{char}b", max_bytes=None, allow_newlines=True)
        invalid("IllegalCharacters", check_text, "Title", f"a{char}b", max_bytes=None)

    @pytest.mark.parametrize("char", ["\x00", "\x07", "\x0b", "\x0c", "\x1f", "\x7f"])
    def test_other_controls_refused_even_with_newlines(self, char: str) -> None:
        invalid(
            "IllegalCharacters", check_text, "Description", f"a{char}b", max_bytes=None, allow_newlines=True
        )

    def test_emoji(self) -> None:
        err = invalid("IllegalCharacters", check_text, "Description", "great \U0001f600", max_bytes=None)
        assert err.message == "Description must not contain emoji."

    @pytest.mark.parametrize("char", [chr(0xD800), chr(0xDFFF)])
    def test_lone_surrogate(self, char: str) -> None:
        err = invalid("InvalidParameter", check_text, "Title", f"a{char}b", max_bytes=10)
        assert err.message == "Title is not valid UTF-8 text."

    def test_characters_are_checked_before_the_length(self) -> None:
        invalid("IllegalCharacters", check_text, "Title", "\x00" * 200, max_bytes=128)

    def test_message_never_echoes_the_value(self) -> None:
        for value in ("SECRET\x00", "SECRET\U0001f600", "SECRET" * 30):
            with pytest.raises(Invalid) as info:
                check_text("Title", value, max_bytes=128)
            assert "SECRET" not in info.value.message


# --- check_url ----------------------------------------------------------------------------------


class TestCheckUrl:
    @pytest.mark.parametrize(
        "value",
        [
            "https://example.com",
            "HTTP://example.com/c.jpg",
            "http://example.com:8080/c.jpg?x=1#y",
            "https://example.com:1/",
            "https://example.com:65535/",
            "https://[2001:db8::1]/c.png",
            "https://例子.com/é",  # non-ASCII is not a control character
        ],
    )
    def test_accepted_and_returned_unchanged(self, value: str) -> None:
        assert check_url("CoverURL", value, max_bytes=1024) == value

    def test_byte_limit_both_sides(self) -> None:
        base = "https://example.com/"
        assert check_url("CoverURL", base + "a" * (64 - len(base)), max_bytes=64)
        err = invalid("LengthExceededMax", check_url, "CoverURL", base + "a" * (65 - len(base)), max_bytes=64)
        assert err.message == "CoverURL is too long: at most 64 bytes."

    def test_limit_counts_utf8_bytes(self) -> None:
        base = "https://example.com/"  # 20 bytes
        check_url("CoverURL", base + CJK * 2, max_bytes=26)
        invalid("LengthExceededMax", check_url, "CoverURL", base + CJK * 2 + "a", max_bytes=26)

    @pytest.mark.parametrize(
        ("value", "words"),
        [
            ("javascript:alert(1)", "http or https"),
            ("ftp://example.com/c.jpg", "http or https"),
            ("//example.com/c.jpg", "http or https"),
            ("example.com/c.jpg", "http or https"),
            ("http:///c.jpg", "host"),
            ("https://user:pw@example.com/c.jpg", "user name or password"),
            ("https://example.com/a b.jpg", "spaces"),
            ("https://example.com/a\x7fb", "control"),
            ("https://example.com/a\x9fb", "control"),
            ("https://example.com/a\x00b", "control"),
            ("https:\\\\example.com\\c.jpg", "backslashes"),
            ("https://example.com:0/c.jpg", "port"),
            ("https://example.com:65536/c.jpg", "port"),
            ("http://[::1/c.jpg", "not a valid URL"),
        ],
    )
    def test_rejected(self, value: str, words: str) -> None:
        err = invalid("InvalidParameter", check_url, "CoverURL", value, max_bytes=1024)
        assert err.message.startswith("CoverURL ")
        assert words in err.message

    def test_lone_surrogate_is_measured_not_crashed_on(self) -> None:
        invalid("LengthExceededMax", check_url, "CoverURL", "https://e.com/\ud800", max_bytes=16)

    def test_message_never_echoes_the_value(self) -> None:
        for value in ("https://SECRET@example.com/", "ftp://SECRET/", "https://SECRET/ x"):
            with pytest.raises(Invalid) as info:
                check_url("CoverURL", value, max_bytes=1024)
            assert "SECRET" not in info.value.message


# --- check_id -----------------------------------------------------------------------------------


class TestCheckId:
    @pytest.mark.parametrize("value", ["a", "A_b-C_9", "x" * 64, "VOD_NO_TRANSCODE"])
    def test_accepted(self, value: str) -> None:
        assert check_id("WorkflowId", value) == value

    @pytest.mark.parametrize("value", ["", "x" * 65, "a b", "a.b", "id;drop", "ïd", "a\x00"])
    def test_rejected(self, value: str) -> None:
        err = invalid("InvalidParameter", check_id, "WorkflowId", value)
        assert err.message == "WorkflowId must be 1 to 64 characters of letters, digits, '-' and '_'."

    def test_max_chars_both_sides(self) -> None:
        assert check_id("StorageLocation", "a" * 128, chars=HOST_CHARS, max_chars=128)
        err = invalid(
            "InvalidParameter", check_id, "StorageLocation", "a" * 129, chars=HOST_CHARS, max_chars=128
        )
        assert err.message == "StorageLocation must be 1 to 128 characters of letters, digits, '.' and '-'."

    def test_host_chars(self) -> None:
        loc = "outin-3f5a7c9e1b2d11ee.oss-cn-shanghai.aliyuncs.com"
        assert check_id("StorageLocation", loc, chars=HOST_CHARS, max_chars=128) == loc
        for value in ("bad/location", "a_b.com", "a:80"):
            invalid("InvalidParameter", check_id, "StorageLocation", value, chars=HOST_CHARS, max_chars=128)


# --- loose_int / loose_float --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (123456, 123456),
        (2**63 - 1, 2**63 - 1),  # the largest value the stores hold
        (2**63, None),  # one more does not fit a signed 64-bit column
        (-(2**63), -(2**63)),
        (-(2**63) - 1, None),
        ("123456", 123456),
        (" 42 ", 42),
        ("-7", -7),
        ("12.9", 12),  # truncated, as int() does
        (-12.9, -12),
        ("1e3", 1000),
        ("1e18", 10**18),
        ("1e19", None),  # finite, but beyond 64 bits
        ("1e308", None),
        ("¹²", None),  # digits of other scripts are not numbers here
        ("1" * 41, None),  # absurdly long
        ("1e309", None),  # overflows to inf
        ("-1e309", None),
        ("inf", None),
        ("nan", None),
        ("", None),
        ("  ", None),
        ("n/a", None),
        ("0x10", None),
        (None, None),
        (True, None),
        (False, None),
        ([1], None),
        ({"a": 1}, None),
    ],
)
def test_loose_int(value: Any, expected: int | None) -> None:
    assert loose_int(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0.0),
        (3, 3.0),
        ("12.5", 12.5),
        (" 767.177 ", 767.177),
        (1.7976931348623157e308, 1.7976931348623157e308),  # the largest finite float
        ("1.7976931348623157e308", 1.7976931348623157e308),
        ("1e309", None),
        (float("inf"), None),
        (float("-inf"), None),
        (float("nan"), None),
        ("nan", None),
        ("", None),
        ("garbage", None),
        (None, None),
        (True, None),
        ([1.5], None),
    ],
)
def test_loose_float(value: Any, expected: float | None) -> None:
    assert loose_float(value) == expected


def test_loose_results_have_the_right_type() -> None:
    assert type(loose_int("12.9")) is int
    assert type(loose_float(3)) is float


# --- parse_vod_time / loose_time ----------------------------------------------------------------

UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-04-10T01:37:14Z", datetime(2024, 4, 10, 1, 37, 14, tzinfo=UTC)),
        ("2024-04-10T01:37:14.627Z", datetime(2024, 4, 10, 1, 37, 14, 627000, tzinfo=UTC)),
        ("2024-04-10T01:37:14:627Z", datetime(2024, 4, 10, 1, 37, 14, 627000, tzinfo=UTC)),
        ("2024-04-10T09:37:14+08:00", datetime(2024, 4, 10, 1, 37, 14, tzinfo=UTC)),
        ("2024-04-10T09:37:14+0800", datetime(2024, 4, 10, 1, 37, 14, tzinfo=UTC)),
        ("2024-04-09T20:07:14-05:30", datetime(2024, 4, 10, 1, 37, 14, tzinfo=UTC)),
        ("2024-04-10 01:37:14", datetime(2024, 4, 10, 1, 37, 14, tzinfo=UTC)),
        (" 2024-04-10T01:37:14Z ", datetime(2024, 4, 10, 1, 37, 14, tzinfo=UTC)),
        ("2024-04-10T01:37:14.1z", datetime(2024, 4, 10, 1, 37, 14, 100000, tzinfo=UTC)),
        ("2024-04-10T01:37:14.123456789z", datetime(2024, 4, 10, 1, 37, 14, 123456, tzinfo=UTC)),
    ],
)
def test_parse_vod_time(text: str, expected: datetime) -> None:
    parsed = parse_vod_time(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2024-04-10",
        "2024-13-10T01:37:14Z",
        "2024-02-30T01:37:14Z",
        "2024-04-10T24:00:00Z",
        "2024-04-10T01:37:14Zjunk",
        "2024-04-10T01:37:14.1234567890Z",  # ten fraction digits: one more than VOD's nine
        "2024-04-10T01:37:14+24:00",
    ],
)
def test_parse_vod_time_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a VOD time"):
        parse_vod_time(text)


class TestLooseTime:
    def test_text_is_parsed(self) -> None:
        assert loose_time("2024-05-20T07:49:17Z") == datetime(2024, 5, 20, 7, 49, 17, tzinfo=UTC)

    @pytest.mark.parametrize(
        "value", ["", "   ", "tomorrow", "2024-02-30T01:37:14Z", None, 1716191357, True, []]
    )
    def test_garbage_is_none(self, value: Any) -> None:
        assert loose_time(value) is None

    def test_naive_datetime_is_read_as_utc(self) -> None:
        assert loose_time(datetime(2024, 5, 20, 7, 49, 17)) == datetime(2024, 5, 20, 7, 49, 17, tzinfo=UTC)

    def test_aware_datetime_keeps_its_instant(self) -> None:
        aware = datetime(2024, 5, 20, 15, 49, 17, tzinfo=timezone(timedelta(hours=8)))
        assert loose_time(aware) == datetime(2024, 5, 20, 7, 49, 17, tzinfo=UTC)


# --- too_deep -----------------------------------------------------------------------------------


def nested(depth: int, kind: str = "list") -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_too_deep_default_limit_both_sides(kind: str) -> None:
    assert not too_deep(nested(MAX_DEPTH, kind))
    assert too_deep(nested(MAX_DEPTH + 1, kind))


def test_too_deep_explicit_limit_both_sides() -> None:
    assert not too_deep({"a": [1, {"b": 2}]}, limit=3)
    assert too_deep({"a": [1, {"b": {}}]}, limit=3)  # an empty container still counts as a level


def test_too_deep_finds_the_deep_branch_among_shallow_ones() -> None:
    value = {"wide": list(range(1000)), "deep": nested(5)}
    assert not too_deep(value, limit=6)
    assert too_deep(value, limit=5)


@pytest.mark.parametrize("value", [0, "text", None, 1.5, True])
def test_scalars_are_never_too_deep(value: Any) -> None:
    assert not too_deep(value, limit=0)


def test_empty_containers_at_limit_zero() -> None:
    assert too_deep([], limit=0)
    assert not too_deep([], limit=1)


def test_too_deep_does_not_recurse() -> None:
    assert too_deep(nested(100_000))  # far past the interpreter's recursion limit
