"""The MNS (SMQ) queue trigger's events: VOD's event notifications delivered through a queue.

VOD can write each event notification (exactly the JSON body it would POST over HTTP) into an SMQ
queue; FC's queue trigger, built on EventBridge, then invokes the function with CloudEvents JSON:

- event mode (FC 2.0, and FC 3.0 triggers in "event" mode): one object;
- event-stream mode (what FC 3.0 triggers create): an array of such objects, one per message;
- push format RawData: the same, with each element holding only the ``data`` object.

``data`` is ``{"requestId", "messageId", "messageBody"}``; ``messageBody`` is VOD's JSON as a
string, or its Base64 when the trigger's ``IsBase64Decode`` is off and the producer encoded it
(whether VOD does is not documented: both are accepted). References:
https://www.alibabacloud.com/help/en/functioncompute/fc/mns-queue-triggers,
https://www.alibabacloud.com/help/en/eventbridge/latest/create-a-custom-event-source-of-the-mns-type,
https://www.alibabacloud.com/help/en/vod/user-guide/smq-callbacks.

Only the shape is checked here; each message's body is then an ordinary VOD event
(:func:`shared.events.parse_event`).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, NamedTuple

from shared import errors
from shared.validation import MAX_DEPTH, too_deep

__all__ = ["MAX_MESSAGES", "QueueMessage", "is_queue_event", "parse_queue_event"]

#: More messages than any batch window produces (EventBridge's limit is 10,000 per push).
MAX_MESSAGES = 10_000
_MESSAGE_ID_MAX = 128


class QueueMessage(NamedTuple):
    """One queue message: its ids and VOD's event body (decoded from Base64 when it was)."""

    message_id: str | None
    request_id: str | None
    body: bytes | None  # None: the message is unusable (``problem`` says why)
    problem: str | None = None


def _loads(raw: bytes | bytearray | str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise errors.MalformedBody("The queue trigger event is not JSON.", code="InvalidEvent") from exc


def is_queue_event(event: Any) -> bool:
    """Whether a decoded trigger event has the queue trigger's shape (not an HTTP trigger's)."""
    first = event[0] if isinstance(event, list) and event else event
    if not isinstance(first, dict):
        return False
    if "requestContext" in first:
        return False
    data = first.get("data", first)
    return isinstance(data, dict) and "messageBody" in data


def _body(text: Any) -> tuple[bytes | None, str | None]:
    """VOD's JSON from a ``messageBody``: as given when it is JSON, else decoded from Base64."""
    if not isinstance(text, str):
        return None, "messageBody is not a string"
    stripped = text.strip()
    if stripped[:1] == "{":
        return text.encode("utf-8", "surrogatepass"), None
    try:
        raw = base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None, "messageBody is neither JSON nor Base64"
    if raw.lstrip()[:1] != b"{":
        return None, "messageBody is not a JSON object"
    return raw, None


def _text_id(value: Any) -> str | None:
    if (
        isinstance(value, str)
        and 0 < len(value) <= _MESSAGE_ID_MAX
        and value.isascii()
        and value.isprintable()
    ):
        return value
    return None


def parse_queue_event(raw: bytes | str | Any) -> list[QueueMessage]:
    """The messages of one queue-trigger invocation, in delivery order.

    Raises :class:`errors.MalformedBody` (``InvalidEvent``) when the event as a whole is not a
    queue trigger's; a single unusable message comes back with ``body=None`` and its ``problem``,
    so that it never blocks the others.
    """
    event = _loads(raw) if isinstance(raw, (bytes, bytearray, str)) else raw
    if too_deep(event, MAX_DEPTH):
        raise errors.MalformedBody("The queue trigger event is nested too deeply.", code="InvalidEvent")
    items = event if isinstance(event, list) else [event]
    if not items or len(items) > MAX_MESSAGES or not is_queue_event(items):
        raise errors.MalformedBody("The event is not an MNS queue trigger event.", code="InvalidEvent")
    messages: list[QueueMessage] = []
    for item in items:
        data = item.get("data", item) if isinstance(item, dict) else None
        if not isinstance(data, dict):
            messages.append(QueueMessage(None, None, None, "the message is not an object"))
            continue
        message_id = _text_id(data.get("messageId")) or _text_id(item.get("id"))
        body, problem = _body(data.get("messageBody"))
        messages.append(QueueMessage(message_id, _text_id(data.get("requestId")), body, problem))
    return messages
