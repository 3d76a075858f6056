"""Notifications of the app, the Standard Webhooks way: signing, the retry schedule, one attempt.

Specification: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md

- :func:`sign` is pure: ``v1,<base64 HMAC-SHA256>`` of ``"{id}.{timestamp}.{body}"``, keyed with
  the Base64-decoded part of each ``whsec_`` secret; several secrets give space-separated
  signatures, the current key first (a receiver accepts any that matches: key rotation without
  downtime). :func:`verify` is the receiver's side (the local sink of ``vodfc serve``,
  ``vodfc webhooks verify``), held to the same rules as the ``standardwebhooks`` package.
- :func:`retry_delay` is the schedule the spec's reference implementations use (5 s, 5 min,
  30 min, 2 h, 5 h, 10 h, 10 h after the first attempt), jittered; after its last step a
  notification is dead.
- :class:`Deliverer` makes one attempt: a fresh ``webhook-timestamp`` and signature, a POST
  straight through an httpx transport (which follows no redirect and keeps no cookie), within a
  timeout the caller chooses, and the answer classified as an :class:`Outcome`. Nothing the
  receiver does raises; httpx is imported (and the connection pool built) on the first attempt,
  then reused while the instance is warm.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import random as _random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from shared import errors

if TYPE_CHECKING:
    import httpx

    from shared.settings import Settings

__all__ = [
    "JITTER",
    "MAX_RETRY_AFTER_SECONDS",
    "RETRY_DELAYS",
    "SIGNATURE_TOLERANCE_SECONDS",
    "Deliverer",
    "Outcome",
    "classify",
    "parse_retry_after",
    "retry_delay",
    "secret_key",
    "sign",
    "signed_headers",
    "verify",
]

#: Seconds before each retry, after the first attempt failed: the example schedule of the spec's
#: "Operational considerations", the one its reference implementations (Svix) use, to 10 h.
RETRY_DELAYS: Final[tuple[float, ...]] = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
#: Each delay is drawn from ``delay × [1 − JITTER, 1 + JITTER]``, so that a receiver coming back
#: after an outage is not hit by every pending notification in the same second.
JITTER: Final = 0.2
#: A ``Retry-After`` longer than the schedule's step is honoured up to this (a receiver cannot
#: park its notifications for days).
MAX_RETRY_AFTER_SECONDS: Final = 3600.0
#: The receiver's timestamp window, both ways (the official libraries hard-code 5 minutes).
SIGNATURE_TOLERANCE_SECONDS: Final = 300.0

_PREFIX: Final = "whsec_"
# How one attempt's timeout is shared: connecting (and waiting for a pooled connection),
# sending the body, waiting for the answer's headers, then reading a small answer's body (so
# that the connection goes back to the pool: closing a response with its body unread closes the
# connection, and the next notification would pay a new TCP and TLS handshake). Each read waits
# at most the read share, and the drain only starts a read that fits in the time left, so an
# attempt never outlives the timeout it was given.
_CONNECT_SHARE: Final = 0.3
_WRITE_SHARE: Final = 0.2
_READ_SHARE: Final = 0.25
# A body longer than this is not read: the connection is dropped instead (a receiver cannot
# make us download).
_DRAIN_MAX_BYTES: Final = 16 * 1024
# Answers after which the endpoint is sent nothing more for a while (spec: "throttle").
_THROTTLE_STATUSES: Final = frozenset({429, 502, 503, 504})


# --- signing (pure) -------------------------------------------------------------------------------


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret: its Base64 part, decoded (missing padding tolerated).

    Raises ``ValueError`` (naming no part of the secret) when it is not ``whsec_<base64>``.
    """
    if not secret.startswith(_PREFIX):
        raise ValueError("a webhook secret looks like whsec_<base64>")
    text = secret[len(_PREFIX) :]
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret looks like whsec_<base64>") from None
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def _mac(key: bytes, msg_id: str, timestamp: int, body: str) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header: one ``v1,<base64>`` per secret, space-separated, in order.

    ``body`` is the exact text sent (its UTF-8 bytes are what the receiver holds); ``timestamp``
    the attempt's ``webhook-timestamp`` in Unix seconds.
    """
    if not secrets:
        raise ValueError("at least one webhook secret is needed to sign")
    return " ".join(
        "v1," + base64.b64encode(_mac(secret_key(s), msg_id, timestamp, body)).decode() for s in secrets
    )


def signed_headers(secrets: Sequence[str], msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    """Every header of one attempt (spec, "Webhook headers")."""
    return {
        "content-type": "application/json",
        "user-agent": "vodfc",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets, msg_id, timestamp, body),
    }


def verify(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    now: float,
    tolerance: float | None = SIGNATURE_TOLERANCE_SECONDS,
) -> int:
    """Check a received notification as a receiver must; the index of the secret that matched.

    Header names are case-insensitive; the timestamp must be within ``tolerance`` seconds of
    ``now`` (``None``: any time, for a request captured earlier); entries other than ``v1`` and
    malformed ones are skipped; signatures are compared in constant time. Raises
    :class:`errors.InvalidSignature` saying which check failed.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, signature = (
        lower.get("webhook-id"),
        lower.get("webhook-timestamp"),
        lower.get("webhook-signature"),
    )
    if not (msg_id and stamp and signature):
        raise errors.InvalidSignature(
            "The webhook-id, webhook-timestamp and webhook-signature headers are required."
        )
    if not (stamp.isascii() and stamp.isdigit()):
        raise errors.InvalidSignature("The webhook-timestamp is not a number of seconds.")
    timestamp = int(stamp)
    if tolerance is not None and abs(now - timestamp) > tolerance:
        raise errors.InvalidSignature("The webhook-timestamp is outside the tolerance.")
    try:
        text = body if isinstance(body, str) else body.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidSignature("The body is not UTF-8.") from None
    given: list[bytes] = []
    for entry in signature.split(" "):
        version, _, value = entry.partition(",")
        if version != "v1":
            continue
        try:
            given.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    for index, secret in enumerate(secrets):
        expected = _mac(secret_key(secret), msg_id, timestamp, text)
        if any(hmac.compare_digest(expected, candidate) for candidate in given):
            return index
    raise errors.InvalidSignature("No webhook signature matches.")


# --- the schedule (pure) ----------------------------------------------------------------------------


def retry_delay(
    attempts: int, *, retry_after: float | None = None, random: Callable[[], float] = _random.random
) -> float | None:
    """Seconds until the next attempt, after ``attempts`` failed ones; ``None``: dead.

    The step of :data:`RETRY_DELAYS` jittered by :data:`JITTER`, or the receiver's
    ``retry_after`` when that is longer (up to :data:`MAX_RETRY_AFTER_SECONDS`).
    """
    if attempts < 1:
        raise ValueError("attempts counts the failed attempts, at least 1")
    if attempts > len(RETRY_DELAYS):
        return None
    delay = RETRY_DELAYS[attempts - 1] * (1.0 + JITTER * (2.0 * random() - 1.0))
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return delay


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """A ``Retry-After`` header in seconds from ``now`` (delay-seconds or an HTTP date); ``None``
    when absent or unusable (RFC 9110, section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime  # rare: socket, calendar and email's helpers

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": no zone stated
        return None
    return max(0.0, when.timestamp() - now)


# --- one attempt ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to.

    ``delivered``: the receiver answered 2xx. ``gone``: it answered 410 (disable the endpoint).
    ``throttle``: a timeout, a connection failure, 429, 502, 503 or 504 (send it nothing more
    for a while). ``error`` says what failed in a few words, never a secret nor the URL.
    """

    delivered: bool
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    gone: bool = False
    throttle: bool = False


def classify(status: int, retry_after: str | None = None, *, now: float) -> Outcome:
    """The outcome of an answer with HTTP ``status`` (spec, "Operational considerations")."""
    if 200 <= status < 300:
        return Outcome(delivered=True, status=status)
    if status == 410:
        return Outcome(delivered=False, status=status, error="HTTP 410 Gone", gone=True)
    error = f"HTTP {status}"
    if 300 <= status < 400:
        error += " (redirects are not followed)"
    return Outcome(
        delivered=False,
        status=status,
        error=error,
        retry_after=parse_retry_after(retry_after, now=now),
        throttle=status in _THROTTLE_STATUSES,
    )


class Deliverer:
    """Sends notifications to ``WEBHOOK_URL``, signed with ``WEBHOOK_SECRET`` (and, during a
    rotation, ``WEBHOOK_SECRET_PREVIOUS``); one lazily built ``httpx.HTTPTransport`` (a
    connection pool) per instance, used without an ``httpx.Client``: the client's redirect,
    cookie and event machinery has nothing to do here and costs a quarter of a millisecond.

    ``transport`` (tests: ``httpx.MockTransport``, respx), ``wall`` (the clock of
    ``webhook-timestamp``, Unix seconds), ``monotonic`` (budgets, pauses) and ``random`` (jitter)
    are injectable. Besides the pool it keeps two facts of this warm instance: whether the
    endpoint is known to be disabled (:meth:`remember_endpoint`) and a pause after a throttling
    answer (:meth:`pause`).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if not settings.webhook_url or not settings.webhook_secrets:
            raise ValueError("a Deliverer needs WEBHOOK_URL and WEBHOOK_SECRET")
        self.url: str = settings.webhook_url
        self._secrets = settings.webhook_secrets
        for secret in self._secrets:
            secret_key(secret)  # a malformed secret fails here, not on the first attempt
        self._transport = transport
        self._owns_transport = transport is None
        self._url: httpx.URL | None = None
        self._wall = wall
        self.monotonic = monotonic
        self._random = random
        self._lock = threading.Lock()
        self._paused_until = -math.inf
        self._endpoint: tuple[float, str | None] | None = None  # (checked at, disabled reason)

    def __repr__(self) -> str:
        return f"Deliverer(host={self.host!r})"

    @property
    def host(self) -> str:
        """The receiver's host, the only part of ``WEBHOOK_URL`` logs name (its path may hold a token)."""
        from urllib.parse import urlsplit

        return urlsplit(self.url).hostname or "?"

    def attempt(self, msg_id: str, body: str, *, timeout: float) -> Outcome:
        """POST ``body`` as notification ``msg_id``, signed now, within ``timeout`` seconds in all."""
        import httpx

        if timeout <= 0:
            raise ValueError("timeout must be positive")
        transport, url = self._connection()
        started = self.monotonic()
        stamp = int(self._wall())
        request = httpx.Request(
            "POST",
            url,
            content=body.encode("utf-8"),
            headers=list(signed_headers(self._secrets, msg_id, stamp, body).items()),
            extensions={
                "timeout": {
                    "connect": timeout * _CONNECT_SHARE,
                    "pool": timeout * _CONNECT_SHARE,
                    "write": timeout * _WRITE_SHARE,
                    "read": timeout * _READ_SHARE,
                }
            },
        )
        try:
            # The transport answers with the headers and leaves the body unread; a 3xx is an
            # answer like any other, never followed.
            response = transport.handle_request(request)
        except httpx.TimeoutException:
            return Outcome(delivered=False, error=f"timeout after {timeout:.1f} s", throttle=True)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            # Not the exception's text: it may quote the URL, whose path may hold a token.
            return Outcome(delivered=False, error=f"{type(exc).__name__}: no answer", throttle=True)
        try:
            outcome = classify(response.status_code, response.headers.get("retry-after"), now=self._wall())
            self._drain(response, deadline=started + timeout - timeout * _READ_SHARE)
            return outcome
        finally:
            response.close()

    def _drain(self, response: httpx.Response, *, deadline: float) -> None:
        """Read a small answer's body, so that its connection can serve the next attempt; give up
        (the connection is then closed) on a body over ``_DRAIN_MAX_BYTES`` or when another read
        could end after the attempt's timeout (``deadline``: the last moment one may start)."""
        import httpx

        declared = response.headers.get("content-length", "")
        if declared and not (declared.isascii() and declared.isdigit() and int(declared) <= _DRAIN_MAX_BYTES):
            return
        read = 0
        try:
            stream = response.stream
            if not isinstance(stream, httpx.SyncByteStream):
                return
            for chunk in stream:
                read += len(chunk)
                if read > _DRAIN_MAX_BYTES or self.monotonic() > deadline:
                    return
        except httpx.HTTPError:
            return

    def next_attempt(self, attempts: int, retry_after: float | None = None) -> float | None:
        """:func:`retry_delay` with this deliverer's randomness."""
        return retry_delay(attempts, retry_after=retry_after, random=self._random)

    def pause(self, seconds: float) -> None:
        """Send nothing right after changes for ``seconds`` (the endpoint throttles or is down)."""
        self._paused_until = self.monotonic() + seconds

    def paused(self) -> bool:
        """Whether a pause is running."""
        return self.monotonic() < self._paused_until

    def remember_endpoint(self, disabled_reason: str | None) -> None:
        """What the store says of the endpoint now (``None``: enabled)."""
        self._endpoint = (self.monotonic(), disabled_reason)

    def remembered_endpoint(self, max_age: float) -> tuple[bool, str | None]:
        """``(known, disabled_reason)``: known when remembered less than ``max_age`` seconds ago."""
        if self._endpoint is None or self.monotonic() - self._endpoint[0] >= max_age:
            return False, None
        return True, self._endpoint[1]

    def close(self) -> None:
        """Close the connection pool (unless it was injected); the next attempt dials again."""
        with self._lock:
            transport = self._transport if self._owns_transport else None
            if self._owns_transport:
                self._transport = None
        if transport is not None:
            transport.close()

    def _connection(self) -> tuple[httpx.BaseTransport, httpx.URL]:
        import httpx

        # One CA bundle per instance, loaded once for the VOD client and this one (it costs ms).
        from shared.vod import _ssl_context

        with self._lock:
            if self._url is None:
                self._url = httpx.URL(self.url)  # parsed once, not on every attempt
            if self._transport is None:
                self._transport = httpx.HTTPTransport(verify=_ssl_context())
            return self._transport, self._url
