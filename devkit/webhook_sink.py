"""The local stack's own receiver of the app's notifications (``vodfc serve``, route :data:`SINK_PATH`).

With no ``WEBHOOK_URL`` in the environment ``vodfc serve`` points the notifications here, so a
first run shows the whole push side working: every delivery is verified like a real receiver
must (:func:`shared.webhooks.verify`: signature, timestamp window) with the configured secret,
deduplicated on its ``webhook-id``, logged, and kept (the last :data:`KEEP`) for ``GET`` — the
demo page reads them to say "your app was notified: upload.ready".
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

__all__ = ["KEEP", "SINK_PATH", "WebhookSink"]

SINK_PATH = "/_vodfc/webhooks"
KEEP = 200

log = logging.getLogger("vodfc.sink")

StartResponse = Callable[..., Any]


def _settings_secrets() -> tuple[str, ...]:
    from shared.settings import get_settings

    return get_settings().webhook_secrets


class WebhookSink:
    """A WSGI app: ``POST`` verifies and keeps one delivery, ``GET`` lists them (``?VideoId=``)."""

    def __init__(
        self,
        secrets: Callable[[], tuple[str, ...]] = _settings_secrets,
        *,
        keep: int = KEEP,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secrets = secrets
        self._keep = keep
        self._clock = clock
        self._deliveries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "POST":
            return self._receive(environ, start_response)
        if method == "GET":
            query = parse_qs(environ.get("QUERY_STRING") or "")
            return _json(
                start_response, "200 OK", {"Deliveries": self.deliveries(query.get("VideoId", [None])[0])}
            )
        return _json(start_response, "405 Method Not Allowed", {"Code": "MethodNotAllowed"})

    def deliveries(self, media_id: str | None = None) -> list[dict[str, Any]]:
        """What was received, oldest first (of one media, when given)."""
        with self._lock:
            kept = list(self._deliveries.values())
        return [d for d in kept if media_id is None or d["VideoId"] == media_id]

    def _receive(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        from shared import errors
        from shared.webhooks import verify

        length = int(environ.get("CONTENT_LENGTH") or 0)
        body: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        try:
            secrets = self._secrets()
            if not secrets:
                raise errors.InvalidSignature("The sink has no WEBHOOK_SECRET to verify with.")
            verify(secrets, headers, body, now=self._clock())
            payload = json.loads(body)
            data = payload["data"]
        except (errors.InvalidSignature, ValueError, KeyError, TypeError) as exc:
            log.warning("notification refused by the local sink", extra={"reason": str(exc)})
            return _json(
                start_response, "401 Unauthorized", {"Code": "InvalidSignature", "Message": str(exc)}
            )
        msg_id = headers["webhook-id"]
        record = {
            "WebhookId": msg_id,
            "Type": payload.get("type"),
            "Timestamp": payload.get("timestamp"),
            "VideoId": data.get("VideoId") or data.get("ImageId") or data.get("MediaId"),
            "Status": data.get("Status"),
            "Sequence": data.get("Sequence"),
            "ReceivedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock())),
        }
        with self._lock:
            duplicate = msg_id in self._deliveries
            if not duplicate:
                self._deliveries[msg_id] = record
                while len(self._deliveries) > self._keep:
                    self._deliveries.popitem(last=False)
        if not duplicate:
            log.info(
                "your app was notified: %s",
                record["Type"],
                extra={"webhook_id": msg_id, "media_id": record["VideoId"], "sequence": record["Sequence"]},
            )
        return _json(start_response, "200 OK", {"Received": msg_id, "Duplicate": duplicate})


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body, ensure_ascii=False).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
