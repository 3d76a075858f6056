"""shared.triggers: the MNS queue trigger's event shapes, told apart from HTTP trigger events."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import errors
from shared.triggers import MAX_MESSAGES, is_queue_event, parse_queue_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
VOD_BODY = (EVENTS / "vod" / "FileUploadComplete.json").read_text()


def sample(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("mns/fc3_single.json", 1),
        ("mns/fc2_event.json", 1),
        ("mns/fc3_batch.json", 2),
        ("mns/fc3_batch_base64.json", 2),
        ("mns/fc3_batch_raw_data.json", 2),
    ],
)
def test_every_sample_is_a_queue_event_with_vod_bodies(name: str, count: int) -> None:
    event = sample(name)
    assert is_queue_event(event)
    messages = parse_queue_event(json.dumps(event).encode())
    assert len(messages) == count
    for message in messages:
        assert message.problem is None and message.body is not None
        assert json.loads(message.body)["EventType"] in ("FileUploadComplete", "TranscodeComplete")
        assert message.message_id and message.request_id


@pytest.mark.parametrize("name", ["http/vod_callback.json", "http/create_upload.json", "timer/cleanup.json"])
def test_other_trigger_events_are_not_queue_events(name: str) -> None:
    assert not is_queue_event(sample(name))


@pytest.mark.parametrize(
    "value", [None, 1, "x", [], [1], {}, {"data": 1}, {"data": {}}, [{"requestContext": {}}]]
)
def test_shapes_without_a_message_body_are_not_queue_events(value: Any) -> None:
    assert not is_queue_event(value)


def test_message_id_falls_back_to_the_cloudevent_id_and_bad_ids_are_dropped() -> None:
    event = sample("mns/fc3_single.json")
    del event["data"]["messageId"]
    assert parse_queue_event(event)[0].message_id == event["id"]
    event["id"] = "x" * 129
    event["data"]["requestId"] = "bad\nid"
    (message,) = parse_queue_event(event)
    assert message.message_id is None and message.request_id is None and message.body is not None


@pytest.mark.parametrize(
    "body",
    [
        VOD_BODY,
        base64.b64encode(VOD_BODY.encode()).decode(),
        base64.b64encode(VOD_BODY.encode()).decode().rstrip("="),  # padding dropped
        "  " + VOD_BODY,
    ],
    ids=["plain", "base64", "base64-unpadded", "leading-space"],
)
def test_plain_and_base64_bodies_give_vods_json(body: str) -> None:
    (message,) = parse_queue_event({"data": {"messageBody": body}})
    assert message.body is not None and json.loads(message.body) == json.loads(VOD_BODY)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (5, "not a string"),
        ("%%% not base64", "neither JSON nor Base64"),
        (base64.b64encode(b"[1, 2]").decode(), "not a JSON object"),
        (base64.b64encode(b"TEST").decode(), "not a JSON object"),
    ],
)
def test_unusable_bodies_are_reported_per_message(body: Any, problem: str) -> None:
    (bad, good) = parse_queue_event([{"data": {"messageBody": body}}, {"data": {"messageBody": VOD_BODY}}])
    assert bad.body is None and bad.problem is not None and problem in bad.problem
    assert good.body is not None


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"requestContext": {}}',
        json.dumps([{"data": {"messageBody": "{}"}}] * (MAX_MESSAGES + 1)).encode(),
        ("[" * 200 + "]" * 200).encode(),
        json.dumps(
            {
                "data": {
                    "messageBody": "{}",
                    "x": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
                }
            }
        ).encode(),
    ],
    ids=["not-json", "not-utf8", "empty", "http-shape", "too-many", "deep-array", "deep-object"],
)
def test_an_event_that_is_no_queue_event_as_a_whole_is_malformed(raw: bytes) -> None:
    with pytest.raises(errors.MalformedBody):
        parse_queue_event(raw)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(
    st.lists(
        st.fixed_dictionaries(
            {"data": st.fixed_dictionaries({"messageBody": _json})}, optional={"id": _json}
        ),
        min_size=1,
        max_size=5,
    )
    | _json
)
def test_any_json_is_parsed_or_refused_cleanly(event: Any) -> None:
    try:
        messages = parse_queue_event(json.dumps(event))
    except errors.MalformedBody:
        return
    for message in messages:
        assert (message.body is None) == (message.problem is not None)
        if message.body is not None:
            assert message.body.lstrip()[:1] == b"{"
