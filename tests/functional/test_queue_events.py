"""VOD events delivered through an MNS queue: ``vod_callback`` invoked by FC's queue trigger.

Every shape in the reference (FC 3.0 CloudEvents object and batch array, RawData, Base64 bodies,
FC 2.0 event mode) goes through the same handler as the HTTP callback. Each message is applied on
its own; one that can never be applied is acknowledged, one that cannot be applied *now* fails the
invocation so that the trigger delivers the batch again, and the redelivery is harmless.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest

from shared.context import make_context
from shared.services.deps import get_deps, set_deps
from shared.signing import EXTEND_SIG_KEY
from tests.functional.conftest import Stack, load_event
from tests.security.helpers import FlakyStore, install, throttled

SHAPES = ("fc3_single", "fc3_batch", "fc3_batch_base64", "fc3_batch_raw_data", "fc2_event")


@pytest.fixture
def mns(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The stack deployed with VOD_EVENT_DELIVERY=mns (no per-upload HTTP callback)."""
    monkeypatch.setenv("VOD_EVENT_DELIVERY", "mns")
    monkeypatch.delenv("CALLBACK_AUTH_KEY")
    from tests.functional.conftest import reset_instance_state

    reset_instance_state()
    return stack


def queue_event(shape: str, bodies: list[Any]) -> Any:
    """A trigger event of ``shape`` (named after its sample in events/mns) carrying ``bodies``:
    dicts are VOD events; strings are put in ``messageBody`` as they are."""
    sample = load_event(f"mns/{shape}.json")
    template = sample[0] if isinstance(sample, list) else sample
    base64_body = shape.endswith("base64")
    items = []
    for n, body in enumerate(bodies):
        text = body if isinstance(body, str) else json.dumps(body)
        if base64_body and not isinstance(body, str):
            text = base64.b64encode(text.encode()).decode()
        item = json.loads(json.dumps(template))
        data = item.get("data", item)
        data["messageBody"] = text
        data["messageId"] = f"{n:032X}"
        items.append(item)
    if isinstance(sample, list):
        return items
    assert len(items) == 1, "event mode carries one message"
    return items[0]


def deliver(stack: Stack, event: Any) -> dict[str, int]:
    """Invoke vod_callback as the queue trigger does; the counts it returns."""
    result = stack.modules["vod_callback"].handler(
        json.dumps(event).encode(), make_context(function_name="vod_callback")
    )
    counts: dict[str, int] = json.loads(result)
    return counts


def status_of(stack: Stack, video_id: str) -> str:
    status: str = stack.http("upload_credentials", "GET", f"/uploads/{video_id}")[1]["Status"]
    return status


def deliver_again_error(stack: Stack) -> type[Exception]:
    error: type[Exception] = stack.modules["vod_callback"].DeliverAgain
    return error


@pytest.mark.parametrize("shape", SHAPES)
def test_every_trigger_shape_applies_the_event(mns: Stack, shape: str) -> None:
    video_id = mns.create()["VideoId"]
    counts = deliver(mns, queue_event(shape, [mns.vod_event("FileUploadComplete", video_id)]))
    assert counts == {"applied": 1}
    assert status_of(mns, video_id) == "uploaded"


def test_in_mns_mode_no_per_upload_callback_is_set(mns: Stack) -> None:
    mns.create()
    (params,) = mns.vod.action_calls("CreateUploadVideo")
    assert "MessageCallback" not in json.loads(params["UserData"])


def test_a_batch_applies_each_message_and_acknowledges_the_bad_ones(mns: Stack) -> None:
    first, second = mns.create()["VideoId"], mns.create()["VideoId"]
    mns.vod.videos[second]["Status"] = "Normal"
    bodies: list[Any] = [
        mns.vod_event("FileUploadComplete", first),
        "not json and not base64 %%%",
        {"EventType": "NoSuchEvent", "VideoId": first, "EventTime": "2024-05-20T07:49:17Z"},
        mns.vod_event("TranscodeComplete", second),
        "eyJub3QiOiAidm9kIn0",  # Base64 of a JSON object that is no VOD event
    ]
    counts = deliver(mns, queue_event("fc3_batch", bodies))
    assert counts.get("applied") == 2 and sum(counts.values()) == 5, counts
    assert status_of(mns, first) == "uploaded"
    assert status_of(mns, second) == "ready"


def test_a_redelivered_batch_changes_nothing(mns: Stack) -> None:
    video_id = mns.create()["VideoId"]
    event = queue_event("fc3_batch", [mns.vod_event("FileUploadComplete", video_id)])
    assert deliver(mns, event) == {"applied": 1}
    assert deliver(mns, event) == {"duplicate": 1}
    assert status_of(mns, video_id) == "uploaded"


def test_store_down_fails_the_invocation_and_the_redelivery_applies(mns: Stack) -> None:
    first, second = mns.create()["VideoId"], mns.create()["VideoId"]
    deps = get_deps()
    store = FlakyStore(deps.store)
    store.fail["record_event"] = {2}  # the second message of the batch cannot be recorded
    set_deps(replace(deps, store=store))
    event = queue_event(
        "fc3_batch",
        [mns.vod_event("FileUploadComplete", first), mns.vod_event("FileUploadComplete", second)],
    )
    with pytest.raises(deliver_again_error(mns), match="1 of 2"):
        deliver(mns, event)
    assert status_of(mns, first) == "uploaded"  # the first message was not held up
    assert status_of(mns, second) == "created"

    assert deliver(mns, event) == {"duplicate": 1, "applied": 1}
    assert status_of(mns, second) == "uploaded"


def test_vod_unavailable_during_confirmation_fails_the_invocation_until_vod_answers(mns: Stack) -> None:
    video_id = mns.create()["VideoId"]
    mns.vod.videos[video_id]["Status"] = "Normal"
    vod, _, _ = install(mns)
    vod.always["GetVideoInfo"] = throttled()
    event = queue_event("fc3_single", [mns.vod_event("TranscodeComplete", video_id)])
    with pytest.raises(deliver_again_error(mns)):
        deliver(mns, event)
    assert status_of(mns, video_id) == "created"

    vod.always.clear()
    assert deliver(mns, event) == {"applied": 1}
    assert status_of(mns, video_id) == "ready"


def test_a_forged_owner_binding_is_acknowledged_and_changes_nothing(mns: Stack) -> None:
    video_id = mns.create()["VideoId"]
    forged = mns.vod_event("FileUploadComplete", video_id)
    extend = json.loads(forged["Extend"])
    extend[EXTEND_SIG_KEY] = "0" * len(extend[EXTEND_SIG_KEY])
    forged["Extend"] = json.dumps(extend)
    counts = deliver(mns, queue_event("fc3_single", [forged]))
    assert sum(counts.values()) == 1 and "applied" not in counts, counts
    assert status_of(mns, video_id) == "created"


@pytest.mark.parametrize(
    ("event", "invalid"),
    [
        ([{"data": {"messageBody": 5}}], 1),
        ({"data": {"messageId": "x", "messageBody": ["a"]}}, 1),
        ([{"data": {"messageBody": "{}"}}, "not an object"], 2),
    ],
    ids=["body-not-a-string", "body-a-list", "element-not-an-object"],
)
def test_unusable_messages_are_acknowledged_never_retried_forever(
    mns: Stack, event: Any, invalid: int
) -> None:
    assert deliver(mns, event) == {"invalid": invalid}


def test_an_empty_batch_is_no_queue_event_and_gets_an_error_answer(mns: Stack) -> None:
    result = mns.modules["vod_callback"].handler(b"[]", make_context(function_name="vod_callback"))
    assert result["statusCode"] == 400 and json.loads(result["body"])["Code"] == "InvalidEvent"


@pytest.mark.parametrize("shape", SHAPES)
def test_the_samples_as_they_are_do_not_fail_the_invocation(mns: Stack, shape: str) -> None:
    """The samples name a video this store does not know: acknowledged as such, never retried."""
    counts = deliver(mns, load_event(f"mns/{shape}.json"))
    assert "failed" not in counts and "pending" not in counts, counts
