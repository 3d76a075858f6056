"""VOD events through the in-process SMQ queue and the FC queue-trigger emulator.

Given ``callback_type="mns"``, when media are uploaded, then each event's JSON lands in the queue
byte for byte as the HTTP callback body would be (and nothing is POSTed), and an
:class:`MnsTrigger` hands it to a handler in FC's shapes (array in event-stream mode, one object
otherwise, plain or Base64 body), retrying failed batches, then dead-lettering, discarding or
blocking. The samples in ``events/mns/`` are exactly what the trigger builds.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import oss2
import pytest

from devkit.emulator import Emulator, make_emulator
from devkit.emulator.events import event_payload
from devkit.emulator.mns import (
    SHAPES,
    DeadLetter,
    MnsError,
    MnsQueue,
    MnsTrigger,
    QueueMessage,
    backoff_retry_delays,
    exponential_decay_retry_delays,
)
from shared.context import FakeContext

from .conftest import CallbackSink, OfficialVodClient
from .test_emulator import bucket_for, create, decode

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "events" / "mns"
CLOUD_EVENT_KEYS = {
    "id",
    "source",
    "specversion",
    "type",
    "datacontenttype",
    "subject",
    "time",
    "aliyunaccountid",
    "aliyunpublishtime",
    "aliyunoriginalaccountid",
    "aliyuneventbusname",
    "aliyunregionid",
    "aliyunpublishaddr",
    "data",
}
NO_RETRY = (0.0, 0.0, 0.0)


class Clock:
    """A settable clock for visibility timeouts."""

    def __init__(self, now: float = 1_763_608_365.525) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A handler that records what FC would pass, failing the first ``fail`` calls."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.calls: list[tuple[bytes, Any]] = []

    def __call__(self, event: bytes, context: Any) -> str:
        self.calls.append((event, context))
        if len(self.calls) <= self.fail:
            raise RuntimeError(f"boom {len(self.calls)}")
        return "ok"

    def events(self) -> list[Any]:
        return [json.loads(e) for e, _ in self.calls]


def vod_payload(message_body: str) -> dict[str, Any]:
    """The defensive parser a handler should use: plain JSON, else Base64 JSON."""
    try:
        data: dict[str, Any] = json.loads(message_body)
        return data
    except ValueError:
        pass
    padded = message_body + "=" * (-len(message_body) % 4)
    try:
        decoded = base64.b64decode(padded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("messageBody is neither JSON nor Base64 JSON") from exc
    out: dict[str, Any] = json.loads(decoded)
    return out


def items(event: Any) -> list[dict[str, Any]]:
    return event if isinstance(event, list) else [event]


# --- the queue -------------------------------------------------------------------------------------


def test_queue_visibility_redelivery_and_receipt_handles() -> None:
    clock = Clock()
    queue = MnsQueue("q", region="cn-shanghai", account_id="1234567890123456", clock=clock)
    sent = queue.send('{"EventType":"FileUploadComplete"}')
    assert len(sent.message_id) == 32 and sent.message_id.isupper() and len(sent.request_id) == 24
    assert sent.enqueue_time == clock.now and queue.arn == "acs:mns:cn-shanghai:1234567890123456:queues/q"
    (first,) = queue.receive(visibility_timeout=30)
    assert first.dequeue_count == 1 and first.first_dequeue_time == clock.now
    assert queue.receive() == []  # hidden while in flight
    clock.now += 31
    (again,) = queue.receive(visibility_timeout=30)  # not deleted: delivered again
    assert again.message_id == first.message_id and again.dequeue_count == 2
    assert again.first_dequeue_time == first.first_dequeue_time
    with pytest.raises(MnsError) as exc_info:  # the first handle died with the redelivery
        queue.delete(first.receipt_handle or "")
    assert exc_info.value.code == "MessageNotExist"
    released = queue.change_visibility(again.receipt_handle or "", 0)
    assert released.receipt_handle is None
    (third,) = queue.receive(visibility_timeout=30)
    queue.delete(third.receipt_handle or "")
    assert len(queue) == 0 and queue.receive() == []


def test_queue_limits() -> None:
    queue = MnsQueue(max_message_bytes=10)
    queue.send("x" * 10)
    with pytest.raises(MnsError) as exc_info:
        queue.send("x" * 11)
    assert exc_info.value.code == "InvalidArgument"
    for kwargs in (
        {"max_count": 0},
        {"max_count": 17},
        {"visibility_timeout": 0},
        {"visibility_timeout": 43_201},
    ):
        with pytest.raises(MnsError):
            queue.receive(**kwargs)
    assert len(queue.receive(16)) == 1


def test_retry_policies() -> None:
    delays = backoff_retry_delays(random.Random(7))
    assert len(delays) == 3 and all(10 <= d <= 20 for d in delays)
    decay = exponential_decay_retry_delays()
    assert len(decay) == 176 and decay[:3] == (1.0, 2.0, 4.0) and decay[9:11] == (512.0, 512.0)
    assert 23 * 3600 < sum(decay) <= 24 * 3600


# --- the trigger's shapes -----------------------------------------------------------------------------


def filled(n: int = 2, clock: Clock | None = None) -> MnsQueue:
    queue = MnsQueue(
        "vod-events", region="cn-shanghai", account_id="1234567890123456", clock=clock or Clock()
    )
    for i in range(n):
        queue.send(
            json.dumps({"EventType": "FileUploadComplete", "VideoId": f"{i:032x}"}, separators=(",", ":"))
        )
    return queue


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("base64_body", [False, True])
def test_each_shape_plain_and_base64(shape: str, base64_body: bool) -> None:
    queue = filled(3)
    bodies = [m.body for m in queue.messages()]
    handler = Recorder()
    trigger = MnsTrigger(
        queue,
        handler,
        shape=shape,
        base64_body=base64_body,
        function_name="fn",
        trigger_name="trig",
        retry_delays=(),
    )
    assert trigger.drain(5)
    events = handler.events()
    if shape == "fc3-batch":
        (event,) = events  # one invocation, a JSON array of the three messages
        assert isinstance(event, list) and len(event) == 3
    else:
        assert len(events) == 3 and all(isinstance(e, dict) for e in events)
    got = [item for event in events for item in items(event)]
    for item, body in zip(got, bodies, strict=True):
        assert set(item) == CLOUD_EVENT_KEYS
        assert item["source"] == item["aliyuneventbusname"] == "MNS-fn-trig"
        assert item["type"] == "mns:Queue:SendMessage" and item["specversion"] == "1.0"
        assert item["subject"] == "acs:mns:cn-shanghai:1234567890123456:queues/vod-events"
        assert item["aliyunaccountid"] == item["aliyunoriginalaccountid"] == "1234567890123456"
        assert item["aliyunregionid"] == "cn-shanghai" and item["time"] == "2025-11-20T03:12:45.525Z"
        assert item["datacontenttype"] == (
            "application/json; charset=utf-8" if shape == "fc2" else "application/json;charset=utf-8"
        )
        data = item["data"]
        assert set(data) == {"requestId", "messageId", "messageBody"} and item["id"] == data["messageId"]
        raw = data["messageBody"]
        assert raw == (base64.b64encode(body.encode()).decode() if base64_body else body)
        assert vod_payload(raw) == json.loads(body)
    assert trigger.delivered == 3 and trigger.pending == 0 and trigger.invocations == len(events)


def test_raw_data_schema_and_batch_size() -> None:
    queue = filled(3)
    handler = Recorder()
    trigger = MnsTrigger(queue, handler, schema="RawData", batch_size=2, retry_delays=())
    assert trigger.drain(5)
    first, second = handler.events()
    assert [len(first), len(second)] == [2, 1]
    assert set(first[0]) == {"requestId", "messageId", "messageBody"}


def test_each_invocation_gets_a_fresh_fake_context() -> None:
    handler = Recorder()
    MnsTrigger(filled(2), handler, shape="fc2", function_name="vod-consumer", retry_delays=()).drain(5)
    contexts = [c for _, c in handler.calls]
    assert all(isinstance(c, FakeContext) for c in contexts)
    assert len({c.request_id for c in contexts}) == 2
    assert {(c.function.name, c.region, c.account_id) for c in contexts} == {
        ("vod-consumer", "cn-shanghai", "1234567890123456")
    }


def test_batch_window_collects_messages_sent_meanwhile() -> None:
    queue = filled(1)
    handler = Recorder()
    trigger = MnsTrigger(queue, handler, batch_window_seconds=0.3, retry_delays=())
    timer = threading.Timer(0.05, lambda: queue.send('{"EventType":"TranscodeComplete"}'))
    timer.start()
    try:
        assert trigger.step(wait_seconds=0)
    finally:
        timer.join()
    (event,) = handler.events()
    assert len(event) == 2


# --- failures --------------------------------------------------------------------------------------------


def test_failed_batch_is_retried_whole_then_acknowledged() -> None:
    queue = filled(2)
    handler = Recorder(fail=2)
    trigger = MnsTrigger(queue, handler, retry_delays=NO_RETRY)
    assert trigger.drain(5)
    assert trigger.invocations == 3 and trigger.counters.failures == 2
    assert len({e for e, _ in handler.calls}) == 1  # the same event bytes each time
    assert len({c.request_id for _, c in handler.calls}) == 3
    assert trigger.delivered == 2 and trigger.dead == 0 and trigger.pending == 0


def test_retries_exhausted_go_to_the_dead_letter_list_or_are_discarded() -> None:
    dead: list[DeadLetter] = []
    handler = Recorder(fail=100)
    trigger = MnsTrigger(filled(2), handler, retry_delays=NO_RETRY, dead_letter=dead)
    assert trigger.drain(5)
    (letter,) = dead
    assert letter.attempts == 4 and letter.error == "RuntimeError: boom 4"  # 1 try + 3 retries
    assert json.loads(letter.event) == handler.events()[0] and len(letter.messages) == 2
    assert trigger.dead == 2 and trigger.delivered == 0 and trigger.pending == 0

    dropping = MnsTrigger(filled(1), Recorder(fail=100), retry_delays=(0.0,))
    assert dropping.drain(5)
    assert dropping.discarded == 1 and dropping.invocations == 2 and dropping.pending == 0


def test_errors_tolerance_none_blocks_the_stream() -> None:
    queue = filled(1)
    handler = Recorder(fail=100)
    trigger = MnsTrigger(queue, handler, shape="fc3-single", retry_delays=(0.0,), errors_tolerance="NONE")
    assert trigger.drain(5)
    assert trigger.blocked and trigger.pending == 1 and trigger.invocations == 2
    queue.send('{"EventType":"TranscodeComplete"}')
    assert not trigger.step() and trigger.invocations == 2  # nothing moves any more
    assert queue.receive(2)  # the messages are still there, visible


def test_background_thread_and_stop_during_a_retry_delay() -> None:
    queue = filled(1)
    handler = Recorder(fail=1)
    trigger = MnsTrigger(queue, handler, retry_delays=(0.01,), poll_seconds=0.01).start()
    try:
        assert trigger.drain(5)
        assert trigger.delivered == 1 and trigger.invocations == 2
        queue.send("{}")
        assert trigger.drain(5) and trigger.delivered == 2
    finally:
        trigger.stop()
    stuck = MnsTrigger(filled(1), Recorder(fail=100), retry_delays=(30.0,), poll_seconds=0.01).start()
    try:
        for _ in range(200):
            if stuck.invocations:
                break
            threading.Event().wait(0.01)
    finally:
        stuck.stop()
    assert stuck.invocations == 1 and len(stuck.queue.receive()) == 1  # released on stop


def test_bad_trigger_options() -> None:
    queue = MnsQueue()
    for kwargs in (
        {"shape": "fc4"},
        {"schema": "Json"},
        {"errors_tolerance": "SOME"},
        {"batch_size": 0},
        {"batch_window_seconds": 16},
    ):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            MnsTrigger(queue, Recorder(), **kwargs)


# --- the emulator in MNS mode ------------------------------------------------------------------------------


@pytest.fixture
def mns_emulator(tmp_path: Path, callback_sink: CallbackSink) -> Iterator[Emulator]:
    emu = make_emulator(
        data_dir=tmp_path / "oss",
        callback_type="mns",
        callback_url=callback_sink.url("/callbacks/vod"),  # must not be used in MNS mode
        transcode_delay_seconds=0,
        callback_retry_interval_seconds=0,
        server_threads=4,
    ).start()
    yield emu
    emu.stop()


def test_video_and_image_events_reach_the_handler_through_the_queue(
    mns_emulator: Emulator, callback_sink: CallbackSink
) -> None:
    handler = Recorder()
    trigger = mns_emulator.mns_trigger(handler, shape="fc3-batch", retry_delays=NO_RETRY, poll_seconds=0.01)
    vod = OfficialVodClient(mns_emulator)
    try:
        per_media = callback_sink.url("/callbacks/per-media")
        video = create(
            vod, UserData=json.dumps({"MessageCallback": {"CallbackURL": per_media}, "Extend": {"k": 1}})
        )
        bucket_for(video).put_object(video["address"]["FileName"], b"movie")
        image = vod.call("CreateUploadImage", {"ImageType": "default"})
        address, auth = decode(image["UploadAddress"]), decode(image["UploadAuth"])
        oss2.Bucket(
            oss2.StsAuth(auth["AccessKeyId"], auth["AccessKeySecret"], auth["SecurityToken"]),
            address["Endpoint"],
            address["Bucket"],
        ).put_object(address["FileName"], b"png?")
        assert mns_emulator.drain(10)
    finally:
        vod.close()
    assert callback_sink.received == []  # no HTTP at all, not even to the per-media URL
    bodies = [vod_payload(item["data"]["messageBody"]) for event in handler.events() for item in items(event)]
    kinds = [b["EventType"] for b in bodies]
    assert kinds.count("FileUploadComplete") == 1 and kinds.count("TranscodeComplete") == 1
    assert kinds.count("StreamTranscodeComplete") == 2 and kinds.count("ImageUploadComplete") == 1
    assert json.loads(next(b for b in bodies if b["EventType"] == "FileUploadComplete")["Extend"]) == {"k": 1}
    assert trigger.delivered == 5 and trigger.pending == 0

    deliveries = mns_emulator.deliveries
    assert all(d.channel == "mns" and d.url is None and d.delivered and d.message_id for d in deliveries)
    # Byte-identical to what the HTTP path sends (test_http_body_is_event_payload proves that side).
    sent = {
        item["data"]["messageId"]: item["data"]["messageBody"]
        for event in handler.events()
        for item in items(event)
    }
    for delivery in deliveries:
        assert sent[delivery.message_id or ""].encode("utf-8") == event_payload(delivery.body)
    state = httpx.get(f"{mns_emulator.vod_url}/_emulator/state", trust_env=False).json()
    assert state["config"]["callback_type"] == "mns" and state["mns_queue"]["sent"] == 5
    assert state["mns_queue"]["messages"] == []


def test_http_body_is_event_payload(
    emulator: Emulator, vod: OfficialVodClient, callback_sink: CallbackSink
) -> None:
    video = create(vod, UserData=json.dumps({"Extend": {"note": "é ✓"}}))
    bucket_for(video).put_object(video["address"]["FileName"], b"movie")
    assert emulator.drain(10)
    raw = sorted(r.body for r in callback_sink.received)
    assert len(raw) == 4 and raw == sorted(event_payload(d.body) for d in emulator.deliveries)


def test_base64_bodies_and_a_dead_letter_from_the_emulator(
    mns_emulator: Emulator, vod_client_factory: Any
) -> None:
    dead: list[DeadLetter] = []
    failing = Recorder(fail=100)
    mns_emulator.mns_trigger(
        failing, shape="fc2", base64_body=True, retry_delays=(0.0, 0.0), dead_letter=dead
    )
    vod = vod_client_factory(mns_emulator)
    answer = vod.call("CreateUploadAttachedMedia", {"BusinessType": "watermark", "MediaExt": "png"})
    address, auth = decode(answer["UploadAddress"]), decode(answer["UploadAuth"])
    oss2.Bucket(
        oss2.StsAuth(auth["AccessKeyId"], auth["AccessKeySecret"], auth["SecurityToken"]),
        address["Endpoint"],
        address["Bucket"],
    ).put_object(address["FileName"], b"wm")
    assert mns_emulator.drain(10)
    (letter,) = dead
    event = json.loads(letter.event)
    assert isinstance(event, dict) and letter.attempts == 3
    body = vod_payload(event["data"]["messageBody"])
    assert body["EventType"] == "AttachedMediaUploadComplete" and body["AttachedMediaId"] == answer["MediaId"]
    assert json.loads(base64.b64decode(event["data"]["messageBody"])) == body


@pytest.fixture
def vod_client_factory() -> Iterator[Any]:
    made: list[OfficialVodClient] = []

    def make(emu: Emulator) -> OfficialVodClient:
        client = OfficialVodClient(emu)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def test_mns_enqueue_failures_are_tried_three_times(tmp_path: Path) -> None:
    with make_emulator(
        data_dir=tmp_path / "oss", callback_type="mns", callback_retry_interval_seconds=0
    ) as emu:
        emu.mns_queue.max_message_bytes = 10  # every VOD event is larger
        vod = OfficialVodClient(emu)
        try:
            video = create(vod, TemplateGroupId="VOD_NO_TRANSCODE")
            bucket_for(video).put_object(video["address"]["FileName"], b"x")
            assert emu.drain(10)
        finally:
            vod.close()
        (delivery,) = emu.deliveries
        assert delivery.attempts == 3 and not delivery.delivered and delivery.done
        assert delivery.last_error is not None and delivery.last_error.startswith("InvalidArgument")
    with pytest.raises(ValueError, match="callback_type must be"):
        make_emulator(data_dir=tmp_path / "x", callback_type="smq")


# --- events/mns samples ----------------------------------------------------------------------------------

SAMPLE_SPECS: dict[str, dict[str, Any]] = {
    "fc3_batch.json": {"shape": "fc3-batch"},
    "fc3_batch_base64.json": {"shape": "fc3-batch", "base64_body": True},
    "fc3_single.json": {"shape": "fc3-single"},
    "fc2_event.json": {"shape": "fc2"},
    "fc3_batch_raw_data.json": {"shape": "fc3-batch", "schema": "RawData"},
}


def sample_event(name: str) -> bytes:
    """What the trigger builds for a sample: VOD's FileUploadComplete and TranscodeComplete samples."""
    clock = Clock(1_763_608_365.525)
    queue = MnsQueue("vod-events", region="cn-shanghai", account_id="1234567890123456", clock=clock)
    messages = []
    for n, event_type in enumerate(("FileUploadComplete", "TranscodeComplete")):
        body = event_payload(json.loads((ROOT / "events" / "vod" / f"{event_type}.json").read_text()))
        messages.append(
            QueueMessage(
                message_id=("0FFF111D2A6B444B7FE46AE2C3D4E5F6", "1A2B3C4D5E6F708192A3B4C5D6E7F809")[n],
                request_id=("62D92563354133CA1B2C3D4E", "62D92563354133CA1B2C3D4F")[n],
                body=body.decode("utf-8"),
                enqueue_time=clock.now + 143 * n,
            )
        )
    trigger = MnsTrigger(
        queue, Recorder(), function_name="vod-callback", trigger_name="vod-mns", **SAMPLE_SPECS[name]
    )
    batch = messages if trigger.shape == "fc3-batch" else messages[:1]
    return trigger.build_event(batch, publish_time=clock.now + 0.494 + 143 * (len(batch) - 1))


@pytest.mark.parametrize("name", sorted(SAMPLE_SPECS))
def test_mns_samples_are_what_the_trigger_builds(name: str) -> None:
    on_disk = json.loads((SAMPLES / name).read_text())
    assert on_disk == json.loads(sample_event(name))
    for item in items(on_disk):
        data = item.get("data", item)
        assert vod_payload(data["messageBody"])["EventType"] in ("FileUploadComplete", "TranscodeComplete")
