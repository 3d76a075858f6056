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
- :class:`Deliverer` makes one attempt: a fresh ``webhook-timestamp`` and signature, a POST over
  ``http.client`` (which follows no redirect, keeps no cookie and reads no proxy setting),
  within a timeout the caller chooses, and the answer classified as an :class:`Outcome`. Nothing
  the receiver does raises; the connection is kept alive for the next attempt while the instance
  is warm.
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
from typing import TYPE_CHECKING, Final, NamedTuple

from shared import errors

if TYPE_CHECKING:
    import http.client
    import socket
    import ssl

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
# How one attempt's timeout is shared: connecting (TCP and TLS), sending the request, waiting
# for the answer's headers, then reading a small answer's body (so that the connection can be
# kept: one whose answer is left unread cannot carry the next request, and the next notification
# would pay a new TCP and TLS handshake). Each socket operation waits at most its share, and the
# drain only starts a read that fits in the time left, so an attempt never outlives its timeout.
_CONNECT_SHARE: Final = 0.3
_WRITE_SHARE: Final = 0.2
_READ_SHARE: Final = 0.25
# A body longer than this is not read: the connection is dropped instead (a receiver cannot
# make us download).
_DRAIN_MAX_BYTES: Final = 16 * 1024
# Idle connections kept for the next attempts: FC runs one request per instance, so one is in use
# at a time there; a threaded local server may send a few at once.
_MAX_IDLE: Final = 4
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


class Outcome(NamedTuple):
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
    rotation, ``WEBHOOK_SECRET_PREVIOUS``), over the standard library's ``http.client``.

    Not httpx, which the VOD client uses: an attempt is one POST to one fixed endpoint, right after
    a state change and on the callback's clock, and needs none of what a client library adds
    (redirects, cookies, proxies, a request model, a pool's bookkeeping); ``http.client`` costs a
    third of the CPU per request (bench/README.md, section 4), follows no redirect and reads no
    proxy setting. Connections are kept alive: each one goes back to a small idle list once its
    answer has been read, and one that the receiver closed meanwhile (readable while idle) is
    dropped before it is used again.

    ``wall`` (the clock of ``webhook-timestamp``, Unix seconds), ``monotonic`` (budgets, pauses),
    ``random`` (jitter) and ``tls`` (the TLS context of an HTTPS endpoint; by default the one the
    VOD client uses) are injectable. Besides its connections it keeps two facts of this warm
    instance: whether the endpoint is known to be disabled (:meth:`remember_endpoint`) and a
    pause after a throttling answer (:meth:`pause`).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
        tls: Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        from urllib.parse import urlsplit

        if not settings.webhook_url or not settings.webhook_secrets:
            raise ValueError("a Deliverer needs WEBHOOK_URL and WEBHOOK_SECRET")
        self.url: str = settings.webhook_url
        self._secrets = settings.webhook_secrets
        for secret in self._secrets:
            secret_key(secret)  # a malformed secret fails here, not on the first attempt
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("WEBHOOK_URL is not an http(s) URL")
        self._https = parts.scheme == "https"
        self._hostname: str = parts.hostname
        self._port = parts.port  # None: the scheme's
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._tls = tls
        self._wall = wall
        self.monotonic = monotonic
        self._random = random
        self._lock = threading.Lock()
        self._idle: list[http.client.HTTPConnection] = []
        self._paused_until = -math.inf
        self._endpoint: tuple[float, str | None] | None = None  # (checked at, disabled reason)

    def __repr__(self) -> str:
        return f"Deliverer(host={self.host!r})"

    @property
    def host(self) -> str:
        """The receiver's host, the only part of ``WEBHOOK_URL`` logs name (its path may hold a token)."""
        return self._hostname

    def attempt(self, msg_id: str, body: str, *, timeout: float) -> Outcome:
        """POST ``body`` as notification ``msg_id``, signed now, within ``timeout`` seconds in all."""
        import http.client
        import socket

        if timeout <= 0:
            raise ValueError("timeout must be positive")
        started = self.monotonic()
        headers = signed_headers(self._secrets, msg_id, int(self._wall()), body)
        conn = self._checkout()
        try:
            if conn.sock is None:
                conn.timeout = timeout * _CONNECT_SHARE
                conn.connect()
                # http.client writes the header block and the body in two send() calls; with
                # Nagle's algorithm on, the body waits for the ACK of the headers, which a
                # receiver delaying its ACKs (it answers nothing before the body) holds up to
                # 40 ms on Linux, 200 ms elsewhere. Each notification is one small request.
                assert conn.sock is not None  # connect() set it or raised
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock = conn.sock
            assert sock is not None
            sock.settimeout(timeout * _WRITE_SHARE)
            # Sent as a header block and then the body (http.client); a 3xx is an answer like
            # any other, never followed.
            conn.request("POST", self._target, body=body.encode("utf-8"), headers=headers)
            sock.settimeout(timeout * _READ_SHARE)
            response = conn.getresponse()
        except TimeoutError:
            conn.close()
            return Outcome(delivered=False, error=f"timeout after {timeout:.1f} s", throttle=True)
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            # Not the exception's text: it may quote the URL, whose path may hold a token.
            return Outcome(delivered=False, error=f"{type(exc).__name__}: no answer", throttle=True)
        outcome = classify(response.status, response.getheader("retry-after"), now=self._wall())
        if self._drain(response, deadline=started + timeout - timeout * _READ_SHARE):
            self._checkin(conn)
        else:
            conn.close()
        return outcome

    def _drain(self, response: http.client.HTTPResponse, *, deadline: float) -> bool:
        """Read a small answer's body, so that its connection can serve the next attempt; whether
        it was read to its end. Gives up (the caller closes the connection) on a body over
        ``_DRAIN_MAX_BYTES`` or when another read could end after the attempt's timeout
        (``deadline``: the last moment one may start)."""
        import http.client

        if response.length is not None and response.length > _DRAIN_MAX_BYTES:
            return False
        read = 0
        try:
            while not response.isclosed():
                if response.length == 0:
                    response.read()  # all declared bytes are in: this marks the answer complete
                    break
                if self.monotonic() > deadline:
                    return False
                chunk = response.read1(_DRAIN_MAX_BYTES + 1 - read)  # one recv at most
                read += len(chunk)
                if not chunk or read > _DRAIN_MAX_BYTES:
                    break
        except (OSError, http.client.HTTPException):
            return False
        # Closed early, short of its declared length: the receiver hung up mid-answer.
        return response.isclosed() and read <= _DRAIN_MAX_BYTES and not response.length

    def _checkout(self) -> http.client.HTTPConnection:
        """An idle connection still open, or a new one (not yet connected)."""
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if conn.sock is None or not _readable(conn.sock):
                    return conn
                conn.close()  # the receiver closed it (or wrote out of turn) while it was idle
        return self._new_connection()

    def _checkin(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < _MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def _new_connection(self) -> http.client.HTTPConnection:
        import http.client

        if not self._https:
            return http.client.HTTPConnection(self._hostname, self._port)
        if self._tls is None:
            # One TLS context per instance, built once for the VOD client and this one (it costs ms).
            from shared.vod import _ssl_context

            self._tls = _ssl_context
        return http.client.HTTPSConnection(self._hostname, self._port, context=self._tls())

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
        """Close the idle connections; the next attempt dials again."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _readable(sock: socket.socket) -> bool:
    """Whether an idle connection has something to read: the receiver closed it (EOF), or sent
    bytes nobody asked for; either way it cannot carry the next request."""
    import select

    pending = getattr(sock, "pending", None)  # TLS: bytes already decrypted count too
    if pending is not None and pending():
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):  # closed, or a descriptor select cannot watch
        return True
