"""VOD refusing a parameter: the client's own (400, VOD's code) or one the server sets from the
operator's configuration (500 ``ServerMisconfigured``, VOD's code and message in the log only)."""

from __future__ import annotations

import json
import logging

import pytest

from shared import errors
from shared.context import make_context
from tests.functional.conftest import Stack
from tests.security.helpers import install, vod_error

BODY = {"Title": "Holiday", "FileName": "holiday.mp4", "FileSize": 1024}


def create(stack: Stack, **fields: object) -> tuple[int, dict, dict]:
    return stack.http("upload_credentials", "POST", "/uploads", body={**BODY, **fields})


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("InvalidParameter", 'The specified parameter "CallbackURL" is not valid.'),
        ("InvalidParameter.MessageCallback", "MessageCallback cannot be reached."),
        ("InvalidParameter", "The specified parameter ReferenceId is not valid."),
        ("MissingParameter", "AppId is mandatory for this action."),
        ("InvalidTemplateGroupId.NotFound", "The template group does not exist."),
        ("InvalidStorage.NotFound", "The storage location does not exist."),
    ],
)
def test_vod_refusing_a_value_the_server_sets_is_a_server_configuration_error(
    stack: Stack, caplog: pytest.LogCaptureFixture, code: str, message: str
) -> None:
    vod, _, _ = install(stack)
    vod.fail("CreateUploadVideo", vod_error(400, code, message))
    with caplog.at_level(logging.ERROR):
        status, body, _ = create(stack)
    assert status == 500, body
    assert body["Code"] == "ServerMisconfigured"
    assert message not in body["Message"]  # VOD's words are for the operator
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(code in line and message in line for line in logged), logged


@pytest.mark.parametrize(
    ("code", "message", "fields"),
    [
        ("InvalidParameter", 'The specified parameter "Title" is not valid.', {}),
        ("InvalidParameter", "CoverURL cannot be fetched.", {"CoverURL": "https://img.example.com/c.jpg"}),
        ("InvalidParameter", "The UserData Extend is not valid.", {"UserData": {"Extend": {"a": "b"}}}),
        ("InvalidParameter", "The specified parameter is not valid.", {}),  # names nothing: VOD's verdict
        ("IllegalCharacters", "Title has illegal characters.", {}),
    ],
)
def test_vod_refusing_a_value_the_client_chose_stays_a_400_with_vods_code(
    stack: Stack, code: str, message: str, fields: dict[str, object]
) -> None:
    vod, _, _ = install(stack)
    vod.fail("CreateUploadVideo", vod_error(400, code, message))
    status, body, _ = create(stack, **fields)
    assert status == 400, body
    assert body["Code"] == code and body["Message"] == message


def test_a_parameter_named_by_both_sides_is_the_clients() -> None:
    error = errors.VodApiError("Title and TemplateGroupId conflict.", code="InvalidParameter", status=400)
    assert errors.blame(error, ["Title", "TemplateGroupId"], {"Title"}) is error
    assert isinstance(errors.blame(error, ["Title", "TemplateGroupId"], set()), errors.Misconfigured)


def test_non_parameter_errors_are_left_alone() -> None:
    throttled = errors.Throttled()
    assert errors.blame(throttled, ["TemplateGroupId"], set()) is throttled
    denied = errors.VodApiError("TemplateGroupId denied", code="Forbidden.RAM", status=502)
    assert errors.blame(denied, ["TemplateGroupId"], set()) is denied


# --- invalid settings: the operator's fault, a 500 on every path, the variable named -------------

INVALID_SETTINGS = [
    ("MAX_PENDING_UPLOADS_PER_OWNER", "abc", "valid integer"),
    ("WEBHOOK_URL", "http://hooks.example.com/x", "https://"),
    ("WEBHOOK_SECRET", "whsec_not-base64-but-a-secret!", "whsec_"),
    ("AUTH_MODE", "maybe", "AUTH_MODE"),
    ("WEBHOOK_DELIVERY", "later", "'immediate' or 'timer'"),
]


def _invalid(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    if name == "WEBHOOK_SECRET":
        monkeypatch.setenv("WEBHOOK_URL", "https://hooks.example.com/vodfc")
    monkeypatch.setenv(name, value)
    from shared.settings import get_settings

    get_settings.cache_clear()


def _logged_cleanly(caplog: pytest.LogCaptureFixture, name: str, value: str, why: str) -> None:
    lines = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(name in r.getMessage() and why in r.getMessage() for r in lines), [
        r.getMessage() for r in lines
    ]
    assert all(r.exc_info is None for r in caplog.records)  # no traceback
    assert all(value not in r.getMessage() for r in caplog.records)  # the value (a secret?) never


@pytest.mark.parametrize(("name", "value", "why"), INVALID_SETTINGS)
def test_invalid_settings_answer_every_http_route_with_a_500_that_names_the_variable_in_the_log(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    name: str,
    value: str,
    why: str,
) -> None:
    _invalid(monkeypatch, name, value)
    with caplog.at_level(logging.INFO):
        status, body, headers = create(stack)
        assert (status, body["Code"]) == (500, "ServerMisconfigured"), body
        assert set(body) == {"RequestId", "Code", "Message"} and name not in body["Message"]
        assert headers["X-Request-Id"] == body["RequestId"]
        status, body = stack.callback(stack.vod_event("FileUploadComplete", "a" * 32))
        assert (status, body["Code"]) == (500, "ServerMisconfigured")
    _logged_cleanly(caplog, name, value, why)
    assert not stack.vod.calls  # nothing reached VOD


@pytest.mark.parametrize(("name", "value", "why"), INVALID_SETTINGS[:2])
def test_invalid_settings_fail_a_queue_batch_so_it_comes_back_and_count_a_cleanup_error(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    name: str,
    value: str,
    why: str,
) -> None:
    from tests.functional.conftest import load_event

    _invalid(monkeypatch, name, value)
    module = stack.modules["vod_callback"]
    with caplog.at_level(logging.INFO):
        with pytest.raises(module.DeliverAgain):
            module.handler(json.dumps(load_event("mns/fc3_single.json")).encode(), make_context())
        assert stack.cleanup()["errors"] == 1
    _logged_cleanly(caplog, name, value, why)


def test_an_invalid_setting_is_one_line_and_exit_2_from_the_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from devkit.cli import main
    from shared.settings import get_settings

    monkeypatch.setenv("MAX_PENDING_UPLOADS_PER_OWNER", "-1")
    get_settings.cache_clear()
    try:
        assert main(["migrate"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "vodfc: invalid settings: MAX_PENDING_UPLOADS_PER_OWNER: Input should be greater than or equal"
        " to 1 (see README.md, Settings)"
    ], err


@pytest.mark.parametrize("name", ["MAX_FILE_SIZE", "MAX_IMAGE_SIZE", "MAX_ATTACHED_MEDIA_SIZE"])
def test_size_limits_take_any_int64_and_nothing_beyond(name: str) -> None:
    from shared.settings import Settings

    assert getattr(Settings.from_env({name: str(2**63 - 1)}), name.lower()) == 2**63 - 1
    for value, why in ((str(2**63), "less than or equal to"), ("0", "greater than or equal to 1")):
        with pytest.raises(errors.Misconfigured) as caught:
            Settings.from_env({name: value})
        assert f"{name}: Input should be {why}" in caught.value.detail
