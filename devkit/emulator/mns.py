"""VOD events through an SMQ (formerly MNS) queue, and FC's SMQ queue trigger, in process.

:class:`MnsQueue` is a small thread-safe queue with SMQ's message semantics
(https://help.aliyun.com/en/mns/queuemessage): each message has a ``MessageId``, the
``RequestId`` of the send, an enqueue time; a receive hides it for a visibility timeout and
hands out a single-use receipt handle; an undeleted message becomes visible again (redelivery,
``DequeueCount`` grows). VOD writes each event's JSON there, exactly the HTTP callback body
(https://alibabacloud.com/help/en/vod/user-guide/smq-callbacks).

:class:`MnsTrigger` plays the EventBridge-backed queue trigger
(https://www.alibabacloud.com/help/en/functioncompute/fc/mns-queue-triggers): it pulls messages
and calls ``handler(event_bytes, context)`` as FC does, with the CloudEvents shapes of
https://www.alibabacloud.com/help/en/eventbridge/latest/create-a-custom-event-source-of-the-mns-type
(one object in event mode, a JSON array in event-stream mode; ``RawData`` = only the ``data``
objects). A handler that raises fails the whole batch, which is retried per the retry policy
(BACKOFF_RETRY: 3 retries 10-20 s apart), then dead-lettered or discarded (``errorsTolerance``
ALL) or left blocking the stream (NONE); a handler that returns acknowledges the batch
(https://www.alibabacloud.com/help/en/functioncompute/fc/advanced-features-of-triggers).

Invariants: a message is in the queue until it is acknowledged, dead-lettered or discarded, so
``pending`` counts it while it is being retried; every delay (retry, batch window, polling) is a
parameter, so tests run in milliseconds.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from shared.context import FakeContext, FunctionMeta

__all__ = [
    "SHAPES",
    "DeadLetter",
    "MnsError",
    "MnsQueue",
    "MnsTrigger",
    "QueueMessage",
    "backoff_retry_delays",
    "exponential_decay_retry_delays",
]

log = logging.getLogger("devkit.emulator.mns")

# "fc3-batch": FC 3.0 event-stream mode (the console default), a JSON array per invocation.
# "fc3-single": FC 3.0 event mode, one object per invocation. "fc2": FC 2.0, one object.
SHAPES = ("fc3-batch", "fc3-single", "fc2")
MAX_MESSAGE_BYTES = 65_536  # SMQ's default maximum message size, which the VOD FAQ asks to keep
_MAX_VISIBILITY = 43_200.0  # SMQ: at most 12 hours


def _iso_ms(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def backoff_retry_delays(rng: random.Random | None = None) -> tuple[float, ...]:
    """BACKOFF_RETRY (the default push retry strategy): 3 retries, each 10-20 s after the last."""
    draw = rng or random.Random()
    return tuple(draw.uniform(10.0, 20.0) for _ in range(3))


def exponential_decay_retry_delays() -> tuple[float, ...]:
    """EXPONENTIAL_DECAY_RETRY: 176 retries over a day, 1, 2, 4 ... 512 s, then every 512 s."""
    ramp = [float(2**n) for n in range(10)]  # 1 .. 512
    return tuple(ramp + [512.0] * (176 - len(ramp)))


class MnsError(Exception):
    """An SMQ error answer (``MessageNotExist``, ``ReceiptHandleError``, ``InvalidArgument``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class QueueMessage:
    """One message as a receiver sees it (SMQ's ``QueueMessage`` fields, times in seconds)."""

    message_id: str
    request_id: str  # of the SendMessage call that enqueued it
    body: str
    enqueue_time: float
    receipt_handle: str | None = None
    dequeue_count: int = 0
    first_dequeue_time: float | None = None
    next_visible_time: float = 0.0


@dataclass
class _Stored:
    message: QueueMessage
    in_flight: bool = False


class MnsQueue:
    """An SMQ queue in memory: send, receive (with visibility timeout), delete, change visibility."""

    def __init__(
        self,
        name: str = "vod-events",
        *,
        region: str = "cn-shanghai",
        account_id: str = "1000000000000000",
        clock: Callable[[], float] = time.time,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.name = name
        self.region = region
        self.account_id = account_id
        self.clock = clock
        self.max_message_bytes = max_message_bytes
        self._cond = threading.Condition()
        self._messages: dict[str, _Stored] = {}  # insertion order = enqueue order
        self.sent = 0

    @property
    def arn(self) -> str:
        """``acs:mns:<region>:<account>:queues/<name>``, the trigger events' ``subject``."""
        return f"acs:mns:{self.region}:{self.account_id}:queues/{self.name}"

    def send(self, body: str) -> QueueMessage:
        """SendMessage: enqueue ``body`` (visible at once); ``InvalidArgument`` when too large."""
        if len(body.encode("utf-8")) > self.max_message_bytes:
            raise MnsError("InvalidArgument", f"The message body exceeds {self.max_message_bytes} bytes.")
        message = QueueMessage(
            message_id=secrets.token_hex(16).upper(),
            request_id=secrets.token_hex(12).upper(),
            body=body,
            enqueue_time=self.clock(),
        )
        with self._cond:
            self._messages[message.message_id] = _Stored(message)
            self.sent += 1
            self._cond.notify_all()
        return message

    def receive(
        self, max_count: int = 1, *, visibility_timeout: float = 30.0, wait_seconds: float = 0.0
    ) -> list[QueueMessage]:
        """BatchReceiveMessage: up to ``max_count`` visible messages, oldest first, now hidden.

        Waits up to ``wait_seconds`` (real time) for a first message, like long polling.
        """
        if not 1 <= max_count <= 16 or not 0 < visibility_timeout <= _MAX_VISIBILITY:
            raise MnsError("InvalidArgument", "max_count must be 1-16 and the visibility 1 s - 12 h.")
        deadline = time.monotonic() + max(0.0, wait_seconds)
        with self._cond:
            while True:
                now = self.clock()
                got = [s for s in self._messages.values() if s.message.next_visible_time <= now][:max_count]
                if got or time.monotonic() >= deadline:
                    break
                # Visibility runs on the injected clock: re-check at least every 50 ms.
                self._cond.wait(min(0.05, deadline - time.monotonic()))
            out = []
            for stored in got:
                m = stored.message
                stored.message = replace(
                    m,
                    receipt_handle=secrets.token_hex(20).upper(),
                    dequeue_count=m.dequeue_count + 1,
                    first_dequeue_time=m.first_dequeue_time if m.first_dequeue_time is not None else now,
                    next_visible_time=now + visibility_timeout,
                )
                stored.in_flight = True
                out.append(stored.message)
            return out

    def _by_handle(self, receipt_handle: str) -> _Stored:
        for stored in self._messages.values():
            if stored.message.receipt_handle == receipt_handle:
                if stored.message.next_visible_time <= self.clock():
                    break  # SMQ: a handle is only good until the message is visible again
                return stored
        raise MnsError("MessageNotExist", "The message with this receipt handle does not exist.")

    def delete(self, receipt_handle: str) -> None:
        """DeleteMessage with the handle of the latest receive."""
        with self._cond:
            stored = self._by_handle(receipt_handle)
            del self._messages[stored.message.message_id]
            self._cond.notify_all()

    def change_visibility(self, receipt_handle: str, seconds: float) -> QueueMessage:
        """ChangeMessageVisibility: visible again in ``seconds`` (0 = now); a new handle."""
        with self._cond:
            stored = self._by_handle(receipt_handle)
            stored.message = replace(
                stored.message,
                receipt_handle=secrets.token_hex(20).upper() if seconds > 0 else None,
                next_visible_time=self.clock() + max(0.0, seconds),
            )
            stored.in_flight = seconds > 0
            self._cond.notify_all()
            return stored.message

    def __len__(self) -> int:
        """Messages in the queue, visible or not (= not yet deleted)."""
        with self._cond:
            return len(self._messages)

    def messages(self) -> list[QueueMessage]:
        """Every message, oldest first (a copy)."""
        with self._cond:
            return [s.message for s in self._messages.values()]

    def clear(self) -> None:
        """Drop every message."""
        with self._cond:
            self._messages.clear()
            self._cond.notify_all()

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able view (``/_emulator/state``)."""
        now = self.clock()
        return {
            "name": self.name,
            "arn": self.arn,
            "sent": self.sent,
            "messages": [
                {
                    "MessageId": m.message_id,
                    "EnqueueTime": _iso_ms(m.enqueue_time),
                    "DequeueCount": m.dequeue_count,
                    "Visible": m.next_visible_time <= now,
                    "MessageBody": m.body,
                }
                for m in self.messages()
            ],
        }


@dataclass(frozen=True)
class DeadLetter:
    """A batch given up on: the event as pushed, its messages, why, and after how many attempts."""

    event: bytes
    messages: tuple[QueueMessage, ...]
    error: str
    attempts: int


@dataclass
class _Counters:
    invocations: int = 0
    failures: int = 0
    delivered: int = 0  # messages acknowledged (handler returned)
    dead: int = 0  # messages sent to the dead-letter list
    discarded: int = 0  # messages dropped after the retries (no dead-letter list)
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=100))  # the last 100


Handler = Callable[[bytes, Any], Any]


class MnsTrigger:
    """FC's SMQ queue trigger: ``queue`` -> ``handler(event_bytes, context)``, with retries.

    ``shape``: ``fc3-batch`` (array of up to ``batch_size``), ``fc3-single`` or ``fc2`` (one object
    per invocation). ``schema``: ``CloudEvents`` or ``RawData``. ``base64_body``: the body arrives
    Base64-encoded (a Base64 producer with ``IsBase64Decode=false``). ``retry_delays``: the seconds
    before each retry (default: BACKOFF_RETRY drawn per batch from ``rng``). ``errors_tolerance``:
    ``ALL`` (after the retries: ``dead_letter`` list if given, else discard) or ``NONE`` (the
    trigger stops and the messages stay: ``blocked``).
    """

    def __init__(
        self,
        queue: MnsQueue,
        handler: Handler,
        *,
        shape: str = "fc3-batch",
        schema: str = "CloudEvents",
        base64_body: bool = False,
        batch_size: int = 10,
        batch_window_seconds: float = 0.0,
        retry_delays: Sequence[float] | None = None,
        errors_tolerance: str = "ALL",
        dead_letter: list[DeadLetter] | None = None,
        context_factory: Callable[[], Any] | None = None,
        function_name: str = "vod-callback",
        trigger_name: str = "vod-mns",
        publish_addr: str = "127.0.0.1",
        poll_seconds: float = 0.05,
        visibility_timeout: float = _MAX_VISIBILITY,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)}")
        if schema not in ("CloudEvents", "RawData"):
            raise ValueError("schema must be CloudEvents or RawData")
        if errors_tolerance not in ("ALL", "NONE"):
            raise ValueError("errors_tolerance must be ALL or NONE")
        if not 1 <= batch_size <= 10_000:
            raise ValueError("batch_size must be 1-10000")
        if not 0 <= batch_window_seconds <= 15:
            raise ValueError("batch_window_seconds must be 0-15")
        self.queue = queue
        self.handler = handler
        self.shape = shape
        self.schema = schema
        self.base64_body = base64_body
        self.batch_size = batch_size if shape == "fc3-batch" else 1
        self.batch_window_seconds = batch_window_seconds
        self.retry_delays = None if retry_delays is None else tuple(retry_delays)
        self.errors_tolerance = errors_tolerance
        self.dead_letter = dead_letter
        self.function_name = function_name
        self.trigger_name = trigger_name
        self.publish_addr = publish_addr
        self.poll_seconds = poll_seconds
        self.visibility_timeout = visibility_timeout
        self.clock = clock or queue.clock
        self.rng = rng or random.Random()
        self.context_factory = context_factory or self._default_context
        self.counters = _Counters()
        self.blocked = False
        self._cond = threading.Condition()
        self._step_lock = threading.Lock()  # one batch at a time (thread or inline drain)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- what FC receives ---------------------------------------------------------------------

    @property
    def source(self) -> str:
        """``MNS-<function>-<trigger>``, the source (and bus name) a trigger creates."""
        return f"MNS-{self.function_name}-{self.trigger_name}"

    def _default_context(self) -> FakeContext:
        return FakeContext(
            request_id=str(uuid.uuid4()),
            function=FunctionMeta(name=self.function_name, handler="index.handler"),
            region=self.queue.region,
            account_id=self.queue.account_id,
        )

    def cloud_event(self, message: QueueMessage, *, publish_time: float) -> dict[str, Any]:
        """One message as a CloudEvents object (or its ``data`` alone with ``RawData``)."""
        body = message.body
        if self.base64_body:
            body = base64.b64encode(body.encode("utf-8")).decode("ascii")
        data = {"requestId": message.request_id, "messageId": message.message_id, "messageBody": body}
        if self.schema == "RawData":
            return data
        # FC 2.0's documented sample has a space in the content type; FC 3.0's does not.
        content_type = (
            "application/json; charset=utf-8" if self.shape == "fc2" else "application/json;charset=utf-8"
        )
        return {
            "id": message.message_id,
            "source": self.source,
            "specversion": "1.0",
            "type": "mns:Queue:SendMessage",
            "datacontenttype": content_type,
            "subject": self.queue.arn,
            "time": _iso_ms(message.enqueue_time),
            "aliyunaccountid": self.queue.account_id,
            "aliyunpublishtime": _iso_ms(publish_time),
            "aliyunoriginalaccountid": self.queue.account_id,
            "aliyuneventbusname": self.source,
            "aliyunregionid": self.queue.region,
            "aliyunpublishaddr": self.publish_addr,
            "data": data,
        }

    def build_event(self, messages: Sequence[QueueMessage], *, publish_time: float | None = None) -> bytes:
        """The ``event`` bytes of one invocation: an array (``fc3-batch``) or one object."""
        when = self.clock() if publish_time is None else publish_time
        items = [self.cloud_event(m, publish_time=when) for m in messages]
        doc: Any = items if self.shape == "fc3-batch" else items[0]
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    # --- counters ---------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Messages not yet acknowledged, dead-lettered or discarded (in the queue)."""
        return len(self.queue)

    @property
    def delivered(self) -> int:
        """Messages acknowledged by a handler that returned."""
        return self.counters.delivered

    @property
    def dead(self) -> int:
        """Messages handed to the dead-letter list."""
        return self.counters.dead

    @property
    def discarded(self) -> int:
        """Messages dropped after the retries, with no dead-letter list."""
        return self.counters.discarded

    @property
    def invocations(self) -> int:
        """Handler calls, retries included."""
        return self.counters.invocations

    # --- running ----------------------------------------------------------------------------------

    def start(self) -> MnsTrigger:
        """Consume in a background thread (idempotent); returns self."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return self
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"mns-trigger-{self.trigger_name}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop consuming; a batch being retried goes back to the queue, visible at once."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.blocked:
                self._stop.wait(self.poll_seconds)
                continue
            try:
                self.step(wait_seconds=self.poll_seconds)
            except Exception:
                log.exception("MNS trigger step failed")

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until the queue is empty (or the trigger blocked); False on timeout.

        With the background thread running this only waits; without it, it consumes inline.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                if self.blocked or len(self.queue) == 0:
                    return True
                running = self._thread is not None and self._thread.is_alive()
                if running:
                    self._cond.wait(0.01)
                    continue
            if not self.step(wait_seconds=0):
                # What is left is invisible (being retried elsewhere, or hidden on the clock).
                with self._cond:
                    self._cond.wait(0.01)
        return False

    def step(self, *, wait_seconds: float = 0.0) -> bool:
        """Receive one batch and push it (with retries); False if there was nothing to push."""
        if self.blocked or not self._step_lock.acquire(blocking=False):
            return False
        try:
            batch = self._receive(wait_seconds)
            if not batch:
                return False
            self._push(batch)
            return True
        finally:
            self._step_lock.release()
            with self._cond:
                self._cond.notify_all()

    def _receive(self, wait_seconds: float) -> list[QueueMessage]:
        batch: list[QueueMessage] = []
        window_end = time.monotonic() + self.batch_window_seconds
        wait = wait_seconds
        while len(batch) < self.batch_size and not self._stop.is_set():
            got = self.queue.receive(
                min(16, self.batch_size - len(batch)),
                visibility_timeout=self.visibility_timeout,
                wait_seconds=wait,
            )
            batch += got
            remaining = window_end - time.monotonic()
            if not got and (remaining <= 0 or not batch):
                break
            wait = max(0.0, remaining)
        return batch

    def _push(self, batch: list[QueueMessage]) -> None:
        event = self.build_event(batch)
        delays = self.retry_delays if self.retry_delays is not None else backoff_retry_delays(self.rng)
        attempts = 0
        error = ""
        for delay in (None, *delays):
            if delay is not None and self._stop.wait(delay):
                self._release(batch)
                return
            attempts += 1
            self.counters.invocations += 1
            try:
                self.handler(event, self.context_factory())
            except Exception as exc:
                self.counters.failures += 1
                error = f"{type(exc).__name__}: {exc}"
                self.counters.errors.append(error)
                log.info("MNS trigger: handler failed (attempt %d): %s", attempts, error)
                continue
            self.counters.delivered += len(batch)  # before the delete: drain() watches the queue
            self._delete(batch)
            return
        if self.errors_tolerance == "NONE":
            self.blocked = True
            self._release(batch)
            log.warning("MNS trigger blocked after %d attempts: %s", attempts, error)
            return
        if self.dead_letter is not None:
            self.dead_letter.append(DeadLetter(event, tuple(batch), error, attempts))
            self.counters.dead += len(batch)
            log.warning(
                "MNS trigger: %d message(s) dead-lettered after %d attempts: %s", len(batch), attempts, error
            )
        else:
            self.counters.discarded += len(batch)
            log.warning(
                "MNS trigger: %d message(s) discarded after %d attempts: %s", len(batch), attempts, error
            )
        self._delete(batch)

    def _delete(self, batch: list[QueueMessage]) -> None:
        for message in batch:
            if message.receipt_handle is not None:
                try:
                    self.queue.delete(message.receipt_handle)
                except MnsError:
                    log.info("MNS trigger: message %s already gone", message.message_id)

    def _release(self, batch: list[QueueMessage]) -> None:
        for message in batch:
            if message.receipt_handle is not None:
                try:
                    self.queue.change_visibility(message.receipt_handle, 0)
                except MnsError:
                    log.info("MNS trigger: message %s already gone", message.message_id)
