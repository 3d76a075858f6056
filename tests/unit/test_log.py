"""shared/log.py: JSON lines on stdout, the invocation line, request-id binding, redaction."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import log
from shared.settings import Settings


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def _info_level() -> None:
    log.configure_logging(level="INFO")


def test_one_json_line_per_record(capsys: pytest.CaptureFixture[str]) -> None:
    logger = log.get_logger("tests.log")
    logger.info("hello %s", "world", extra={"video_id": "v1", "count": 3})
    logger.info("multi\nline")
    out = lines(capsys)
    assert len(out) == 2
    first = out[0]
    assert first["message"] == "hello world"
    assert first["level"] == "INFO"
    assert first["logger"] == "vodfc.tests.log"
    assert first["video_id"] == "v1" and first["count"] == 3
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert out[1]["message"] == "multi\nline"


def test_get_logger_keeps_vodfc_names() -> None:
    assert log.get_logger("vodfc.x").name == "vodfc.x"
    assert log.get_logger("shared.http").name == "vodfc.shared.http"


def test_configuration_is_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(5):
        log.get_logger("a")
        log.configure_logging(Settings(log_level="INFO"))
    root = logging.getLogger("vodfc")
    assert sum(isinstance(h, log._StdoutHandler) for h in root.handlers) == 1
    assert root.propagate is False
    log.get_logger("a").info("once")
    assert len(lines(capsys)) == 1


def test_level_comes_from_settings(capsys: pytest.CaptureFixture[str]) -> None:
    log.configure_logging(Settings(log_level="warning"))
    logger = log.get_logger("lvl")
    logger.info("hidden")
    logger.warning("shown")
    assert [line["message"] for line in lines(capsys)] == ["shown"]
    log.configure_logging(Settings(log_level="NOT-A-LEVEL"))
    assert logging.getLogger("vodfc").level == logging.INFO


def test_log_invocation_emits_exactly_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    log.log_invocation(
        "upload_credentials", "POST /uploads", 201, 12.345, "user-1", "vid-1", "req-1", method="POST"
    )
    out = lines(capsys)
    assert out == [
        {
            "time": out[0]["time"],
            "level": "INFO",
            "logger": "vodfc.invocation",
            "message": "invocation",
            "request_id": "req-1",
            "function": "upload_credentials",
            "route": "POST /uploads",
            "status": 201,
            "latency_ms": 12.3,
            "owner": "user-1",
            "video_id": "vid-1",
            "method": "POST",
        }
    ]


def test_log_invocation_5xx_is_error(capsys: pytest.CaptureFixture[str]) -> None:
    log.log_invocation("f", None, 503, 1.0, None, None, "r")
    assert lines(capsys)[0]["level"] == "ERROR"


def test_request_id_binding(capsys: pytest.CaptureFixture[str]) -> None:
    logger = log.get_logger("rid")
    with log.bound_request_id("req-42"):
        assert log.current_request_id() == "req-42"
        logger.info("inside")
    logger.info("outside")
    inside, outside = lines(capsys)
    assert inside["request_id"] == "req-42"
    assert outside["request_id"] is None


def test_broken_format_arguments_do_not_lose_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    log.get_logger("fmt").info("%s %s", "only-one")
    out = lines(capsys)
    assert len(out) == 1 and "only-one" in out[0]["message"]


# --- redaction ---------------------------------------------------------------------------------
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjF9.c2lnbmF0dXJlLWJ5dGVz"
UPLOAD_AUTH = base64.b64encode(
    json.dumps(
        {"AccessKeyId": "STS.abc", "AccessKeySecret": "topsecret", "SecurityToken": "CAIS" + "x" * 40}
    ).encode()
).decode()


@pytest.mark.parametrize(
    ("message", "leak"),
    [
        (f"headers={{'Authorization': 'Bearer {JWT}'}}", JWT),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
        (f"got token {JWT} from client", JWT),
        (f"bearer {JWT}", JWT),
        (f"UploadAuth={UPLOAD_AUTH}", UPLOAD_AUTH[:40]),
        (f"vod said {UPLOAD_AUTH}", UPLOAD_AUTH[:40]),
        ("connect postgresql://vodfc:s3cr3t-pw@db.internal:5432/vodfc failed", "s3cr3t-pw"),
        ('{"AccessKeySecret": "abc123XYZ", "x": 1}', "abc123XYZ"),
        ("access_key_secret=abc123XYZ&other=1", "abc123XYZ"),
        ("SecurityToken=CAISabcdefghijklmnopqrstuvwxyz0123", "CAISabcdefghijklmnop"),
        ("X-VOD-Signature: 9b1d2f0c6e0d4b8f8a7e6c5d4b3a2910", "9b1d2f0c6e0d4b8f8a7e6c5d4b3a2910"),
        ("password='hunter22'", "hunter22"),
        ("token: abc123XYZ (from the header)", "abc123XYZ"),
    ],
)
def test_patterns_are_redacted(capsys: pytest.CaptureFixture[str], message: str, leak: str) -> None:
    log.get_logger("redact").warning(message)
    out = capsys.readouterr().out
    assert leak not in out
    assert log.REDACTED in out


def test_ordinary_text_is_untouched() -> None:
    text = "video_id=4f2a0c1e9b7d status=ready owner=user-1 latency=12ms url=https://vod.cn-shanghai.aliyuncs.com/"
    assert log.redact_text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "ServiceUnavailable AuthNotConfigured: Authentication is not configured on the server.",
        "ServiceUnavailable CallbackNotConfigured: Callbacks are not configured.",
        "Unauthorized InvalidToken: The token has expired.",
        "BadGateway IncompleteSignature: The request signature does not conform to the standard.",
    ],
)
def test_an_error_code_before_its_message_is_not_a_secret(text: str) -> None:
    assert log.redact_text(text) == text


def test_extra_fields_are_redacted_by_name_and_content(capsys: pytest.CaptureFixture[str]) -> None:
    log.get_logger("extra").info(
        "call",
        extra={
            "upload_auth": "anything",
            "client_secret": "s",
            "SecurityToken": "t",
            "db_password": "p",
            "signature": "sig",
            "headers": {"Authorization": "Bearer x", "Content-Type": "application/json"},
            "nested": [{"refresh_token": "r"}, f"see {JWT}"],
            "video_id": "v1",
            "has_token": True,
        },
    )
    line = lines(capsys)[0]
    for key in ("upload_auth", "client_secret", "SecurityToken", "db_password", "signature"):
        assert line[key] == log.REDACTED
    assert line["headers"] == {"Authorization": log.REDACTED, "Content-Type": "application/json"}
    assert line["nested"] == [{"refresh_token": log.REDACTED}, f"see {log.REDACTED}"]
    assert line["video_id"] == "v1"
    assert line["has_token"] is True


def test_settings_secrets_are_registered(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(
        jwt_secret="jwt-secret-0123456789abcdef0123456789",
        database_url="postgresql://vodfc:p%40ss-word-9@db:5432/vodfc",
        alibaba_cloud_access_key_secret="ak-secret-value-xyz",
        callback_auth_key="cb-key-value-123",
    )
    log.configure_logging(settings)
    log.get_logger("s").info(
        "values jwt-secret-0123456789abcdef0123456789 p@ss-word-9 ak-secret-value-xyz cb-key-value-123 end"
    )
    message = lines(capsys)[0]["message"]
    assert message == "values [REDACTED] [REDACTED] [REDACTED] [REDACTED] end"


def test_short_values_are_not_registered() -> None:
    log.register_secrets("abc", None, "")
    assert log.redact_text("abc is fine") == "abc is fine"


def test_tracebacks_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    log.register_secrets("tb-secret-value-777")
    try:
        raise ValueError("failed with tb-secret-value-777 and Bearer abc.def.ghi")
    except ValueError:
        log.get_logger("tb").exception("boom")
    line = lines(capsys)[0]
    assert "Traceback" in line["exc"] and "ValueError" in line["exc"]
    assert "tb-secret-value-777" not in line["exc"] and "abc.def.ghi" not in line["exc"]


@settings(max_examples=50, deadline=None)
@given(
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=12, max_size=40),
    before=st.text(max_size=20),
    after=st.text(max_size=20),
)
def test_registered_secret_never_survives(secret: str, before: str, after: str) -> None:
    log.register_secrets(secret)
    assert secret not in log.redact_text(before + secret + after)
    assert secret not in json.dumps(log.redact({"k": [before + secret + after]}))


def test_import_is_cheap() -> None:
    code = (
        "import sys, shared.log, shared.http, shared.auth, shared.context\n"
        "heavy = ('jwt', 'cryptography', 'pydantic', 'shared.settings', 'httpx')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert shared.log._patterns.cache_info().currsize == 0\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the fast paths must not change what is redacted ---------------------------------------------
def _full_redaction(text: str) -> str:
    """redact_text without its prefilter and memo: every secret, every pattern, every time."""
    for secret in log._by_length:
        text = text.replace(secret, log.REDACTED)
    for pattern, replacement in log._patterns():
        text = pattern.sub(replacement, text)
    return text


_FRAGMENTS = [
    "Authorization: ", "authorization=", "Bearer ", "basic ", "eyJ", "eyj", "CAIS", "cais", "://",
    "u:p@h", "secret", "Token", "PASSWORD", "pwd", "auth", "AUTH_MODE", "auth-mode", "signature",
    "cookie", "private_key", "apikey", "=", ": ", '"', "'", " ", ",", ";", "}", "]", "&", ".", "-",
    "abcdefghijklmnop", "0123456789+/", "==", "é", "\n", "registered-fast-path-secret",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.sampled_from(_FRAGMENTS) | st.text(max_size=6), max_size=14))
def test_prefilter_and_memo_agree_with_the_full_pass(parts: list[str]) -> None:
    log.register_secrets("registered-fast-path-secret")
    text = "".join(parts)
    expected = _full_redaction(text)
    assert log.redact_text(text) == expected
    assert log.redact_text(text) == expected  # the memoised answer too


def test_memo_is_dropped_when_a_secret_is_registered() -> None:
    text = "value late-registered-secret-4242 here"
    assert log.redact_text(text) == text  # remembered as harmless...
    log.register_secrets("late-registered-secret-4242")
    assert log.redact_text(text) == "value [REDACTED] here"  # ...until the secret is known


def test_long_text_is_redacted_without_the_memo() -> None:
    log.register_secrets("long-text-secret-value-1")
    text = "x" * 5000 + " long-text-secret-value-1 token=abcdef " + JWT
    out = log.redact_text(text)
    assert "long-text-secret-value-1" not in out and "abcdef" not in out and JWT not in out


def test_secret_named_numbers_are_still_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    log.get_logger("num").info("n", extra={"pin_password": 123456, "retry_count": 3, "token_ok": False})
    line = lines(capsys)[0]
    assert line["pin_password"] == log.REDACTED
    assert line["retry_count"] == 3 and line["token_ok"] is False


def test_invocation_line_is_redacted_too(capsys: pytest.CaptureFixture[str]) -> None:
    log.log_invocation("f", "GET /x", 200, 1.0, "user-1", "v1", "rid", detail=f"got {JWT}", api_key="k1")
    line = lines(capsys)[0]
    assert line["detail"] == f"got {log.REDACTED}" and line["api_key"] == log.REDACTED


def test_configure_logging_does_not_reset_the_level_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger(log.ROOT)
    calls: list[object] = []
    monkeypatch.setattr(root, "setLevel", lambda level: calls.append(level))
    log.configure_logging(level="INFO")  # already INFO (autouse fixture)
    log.configure_logging(level="INFO")
    assert calls == []
    log.configure_logging(level="DEBUG")
    assert calls == [logging.DEBUG]


def test_timestamps_are_iso_utc_millis() -> None:
    assert log._iso_utc(0.25) == "1970-01-01T00:00:00.250Z"
    assert log._iso_utc(86399.5) == "1970-01-01T23:59:59.500Z"
    assert log._iso_utc(86400.0) == "1970-01-02T00:00:00.000Z"
