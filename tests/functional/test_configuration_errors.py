"""VOD refusing a parameter: the client's own (400, VOD's code) or one the server sets from the
operator's configuration (500 ``ServerMisconfigured``, VOD's code and message in the log only)."""

from __future__ import annotations

import logging

import pytest

from shared import errors
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
