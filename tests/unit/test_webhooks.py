"""shared/webhooks.py: signing (known answer, and the standardwebhooks package as the verifier),
our verifier, the retry schedule, answer classification, and one attempt on the wire (a real
loopback receiver, over HTTP and HTTPS)."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from shared import errors
from shared.settings import Settings
from shared.webhooks import (
    JITTER,
    MAX_RETRY_AFTER_SECONDS,
    RETRY_DELAYS,
    Deliverer,
    classify,
    parse_retry_after,
    retry_delay,
    secret_key,
    sign,
    signed_headers,
    verify,
)
from tests.receiver import DROP, Receiver, Stall

# Worked vector: secret bytes "example-only-secret-32-bytes!!!!", signed with
# hmac.new(key, f"{id}.{ts}.{body}".encode(), sha256) and checked with standardwebhooks 1.1.0
# (/work/shared/reference/outbound-webhooks.md, section 1).
VECTOR_SECRET = "whsec_ZXhhbXBsZS1vbmx5LXNlY3JldC0zMi1ieXRlcyEhISE="
VECTOR_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
VECTOR_TS = 1674087231
VECTOR_BODY = (
    '{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z",'
    '"data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}'
)
VECTOR_SIGNATURE = "v1,vet7trSSGNX4ypycQTEt4GMIhK2qAW3JPK+dP3SLxCA="

NEW = "whsec_" + base64.b64encode(b"n" * 32).decode()
OLD = "whsec_" + base64.b64encode(b"o" * 24).decode()
URL = "https://hooks.example.com/vodfc?token=receiver-path-token"
BODY = json.dumps(
    {
        "type": "upload.ready",
        "timestamp": "2026-11-25T10:00:00.000000Z",
        "data": {"VideoId": "v1", "Title": "é"},
    },
    ensure_ascii=False,
    separators=(",", ":"),
)
NOW = 1_800_000_000


def _when(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


# --- signing ---------------------------------------------------------------------------------------


def test_sign_reproduces_the_worked_vector() -> None:
    assert sign([VECTOR_SECRET], VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIGNATURE


def test_the_reference_library_signs_the_vector_alike() -> None:
    assert Webhook(VECTOR_SECRET).sign(VECTOR_ID, _when(VECTOR_TS), VECTOR_BODY) == VECTOR_SIGNATURE


def test_standardwebhooks_verifies_what_we_sign() -> None:
    ts = int(datetime.now(timezone.utc).timestamp())
    headers = signed_headers([NEW], "msg_u1_1", ts, BODY)
    assert Webhook(NEW).verify(BODY.encode(), headers) == json.loads(BODY)


def test_during_a_rotation_both_keys_sign_and_either_verifies() -> None:
    ts = int(datetime.now(timezone.utc).timestamp())
    headers = signed_headers([NEW, OLD], "msg_u1_2", ts, BODY)
    entries = headers["webhook-signature"].split(" ")
    assert len(entries) == 2 and all(e.startswith("v1,") for e in entries)
    assert entries[0] == sign([NEW], "msg_u1_2", ts, BODY)  # the current key first
    for secret in (NEW, OLD):
        Webhook(secret).verify(BODY, headers)
        assert verify([secret], headers, BODY, now=ts) == 0


def test_standardwebhooks_refuses_a_tampered_body_and_a_wrong_secret() -> None:
    ts = int(datetime.now(timezone.utc).timestamp())
    headers = signed_headers([NEW], "msg_u1_3", ts, BODY)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(NEW).verify(BODY.replace("ready", "failed"), headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(BODY, headers)


def test_our_verifier_accepts_what_standardwebhooks_signs() -> None:
    headers = {
        "Webhook-Id": "msg_u2_1",
        "Webhook-Timestamp": str(NOW),
        "Webhook-Signature": Webhook(OLD).sign("msg_u2_1", _when(NOW), BODY),
    }
    assert verify([NEW, OLD], headers, BODY.encode(), now=NOW + 10) == 1


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"webhook-id": ""}, "headers are required"),
        ({"webhook-timestamp": "12a"}, "not a number"),
        ({"webhook-timestamp": str(NOW - 301)}, "outside the tolerance"),
        ({"webhook-timestamp": str(NOW + 301)}, "outside the tolerance"),
        ({"webhook-id": "msg_other"}, "No webhook signature matches"),
        ({"webhook-signature": "v1a,abc v2,xyz garbage v1,!!!"}, "No webhook signature matches"),
    ],
)
def test_our_verifier_refuses(change: dict[str, str], match: str) -> None:
    headers = {**signed_headers([NEW], "msg_u3_1", NOW, BODY), **change}
    with pytest.raises(errors.InvalidSignature, match=match):
        verify([NEW], headers, BODY, now=NOW)


def test_our_verifier_skips_unknown_entries_and_may_ignore_the_time() -> None:
    good = sign([NEW], "msg_u3_2", NOW, BODY)
    headers = {**signed_headers([NEW], "msg_u3_2", NOW, BODY), "webhook-signature": f"v1a,xyz garbage {good}"}
    assert verify([NEW], headers, BODY, now=NOW + 86400, tolerance=None) == 0
    with pytest.raises(errors.InvalidSignature, match="No webhook signature"):
        verify([NEW], headers, BODY + " ", now=NOW)
    with pytest.raises(errors.InvalidSignature, match="not UTF-8"):
        verify([NEW], headers, b"\xff", now=NOW)


@pytest.mark.parametrize("bad", ["whsec_", "sk_abc", "whsec_###", "whsec_YWJj!"])
def test_a_malformed_secret_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(ValueError, match="webhook secret") as info:
        secret_key(bad)
    suffix = bad.removeprefix("whsec_")
    assert not suffix or suffix not in str(info.value)


def test_unpadded_secrets_are_read_like_the_reference_library_does() -> None:
    raw = b"k" * 25
    unpadded = "whsec_" + base64.b64encode(raw).decode().rstrip("=")
    assert secret_key(unpadded) == raw
    assert sign([unpadded], "m", 1, "{}") == Webhook(unpadded).sign("m", _when(1), "{}")
    with pytest.raises(ValueError, match="at least one"):
        sign([], "m", 1, "{}")


# --- settings -------------------------------------------------------------------------------------


def test_settings_need_a_secret_beside_the_url_and_never_echo_it() -> None:
    with pytest.raises(pydantic.ValidationError, match="needs WEBHOOK_SECRET"):
        Settings(webhook_url=URL)
    with pytest.raises(pydantic.ValidationError, match="beside WEBHOOK_SECRET"):
        Settings(webhook_secret_previous=OLD)
    short = "whsec_" + base64.b64encode(b"s" * 23).decode()
    with pytest.raises(pydantic.ValidationError, match="24 to 64 bytes") as info:
        Settings(webhook_url=URL, webhook_secret=short)
    assert short[6:] not in str(info.value)
    with pytest.raises(pydantic.ValidationError, match="https://"):
        Settings(webhook_url="http://hooks.example.com/x", webhook_secret=NEW)
    assert Settings(webhook_url="http://127.0.0.1:8000/x", webhook_secret=NEW).webhook_secrets == (NEW,)
    rotating = Settings(webhook_url=URL, webhook_secret=NEW, webhook_secret_previous=OLD)
    assert rotating.webhook_secrets == (NEW, OLD)
    with pytest.raises(pydantic.ValidationError, match="unknown types"):
        Settings(webhook_url=URL, webhook_secret=NEW, webhook_events="upload.ready,upload.exploded")
    assert Settings(
        webhook_url=URL, webhook_secret=NEW, webhook_events="upload.ready"
    ).notification_types == frozenset({"upload.ready"})
    assert Settings(webhook_events="upload.ready").notification_types is None  # no URL: off


# --- the schedule ----------------------------------------------------------------------------------


def test_the_schedule_is_the_reference_one_then_dead() -> None:
    middle = [retry_delay(n, random=lambda: 0.5) for n in range(1, len(RETRY_DELAYS) + 1)]
    assert middle == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert retry_delay(len(RETRY_DELAYS) + 1, random=lambda: 0.5) is None
    with pytest.raises(ValueError, match="at least 1"):
        retry_delay(0)


@pytest.mark.parametrize("attempts", range(1, len(RETRY_DELAYS) + 1))
def test_jitter_stays_within_its_bounds(attempts: int) -> None:
    step = RETRY_DELAYS[attempts - 1]
    low = retry_delay(attempts, random=lambda: 0.0)
    high = retry_delay(attempts, random=lambda: 0.999999)
    assert low == pytest.approx(step * (1 - JITTER))
    assert high is not None and step * (1 - JITTER) < high < step * (1 + JITTER)
    assert all(step * (1 - JITTER) <= (retry_delay(attempts) or 0) <= step * (1 + JITTER) for _ in range(50))


def test_a_longer_retry_after_is_honoured_within_reason() -> None:
    assert retry_delay(1, retry_after=120, random=lambda: 0.5) == 120
    assert retry_delay(1, retry_after=1, random=lambda: 0.5) == 5  # never sooner than the schedule
    assert retry_delay(1, retry_after=10**9, random=lambda: 0.5) == MAX_RETRY_AFTER_SECONDS
    assert retry_delay(len(RETRY_DELAYS) + 1, retry_after=60) is None


def test_retry_after_as_seconds_or_http_date() -> None:
    assert parse_retry_after("120", now=NOW) == 120
    assert parse_retry_after(format_datetime(_when(NOW + 90), usegmt=True), now=NOW) == 90
    assert parse_retry_after(format_datetime(_when(NOW - 90), usegmt=True), now=NOW) == 0
    for unusable in (
        None,
        "",
        "-5",
        "soon",
        "1.5e9",
        "Mon, 99 Foo 2026 00:00:00 GMT",
        "Wed, 25 Nov 2026 10:00:00 -0000",
    ):
        assert parse_retry_after(unusable, now=NOW) is None


# --- classification -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_is_delivered(status: int) -> None:
    assert classify(status, now=NOW).delivered


@pytest.mark.parametrize(
    ("status", "throttle"), [(301, False), (400, False), (401, False), (404, False), (500, False),
                             (429, True), (502, True), (503, True), (504, True)]
)  # fmt: skip
def test_other_answers_are_retried(status: int, throttle: bool) -> None:
    outcome = classify(status, "30", now=NOW)
    assert not outcome.delivered and not outcome.gone
    assert outcome.throttle is throttle and outcome.retry_after == 30
    assert outcome.error is not None and str(status) in outcome.error


def test_410_disables_and_redirects_are_named() -> None:
    gone = classify(410, now=NOW)
    assert gone.gone and not gone.delivered and not gone.throttle
    assert "redirects are not followed" in (classify(308, now=NOW).error or "")


# --- one attempt on the wire -----------------------------------------------------------------------


class Wall:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def _deliverer(url: str = URL, **kw: object) -> Deliverer:
    settings = Settings(webhook_url=url, webhook_secret=NEW, webhook_secret_previous=OLD)
    return Deliverer(settings, **kw)  # type: ignore[arg-type]


def test_an_attempt_sends_exactly_the_standard_headers_and_body(receiver: Receiver) -> None:
    receiver.answer(httpx.Response(204))
    wall = Wall(datetime.now(timezone.utc).timestamp())
    deliverer = _deliverer(receiver.url, wall=wall)
    outcome = deliverer.attempt("msg_abc_1", BODY, timeout=10)
    assert outcome.delivered and outcome.status == 204
    (sent,) = receiver.requests
    assert sent.url == receiver.url
    assert sent.content == BODY.encode()
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["content-length"] == str(len(BODY.encode()))
    assert sent.headers["user-agent"] == "vodfc"
    assert sent.headers["webhook-id"] == "msg_abc_1"
    assert sent.headers["webhook-timestamp"] == str(int(wall.now))
    for secret in (NEW, OLD):  # the reference verifier, under either key of the rotation
        assert Webhook(secret).verify(sent.content, dict(sent.headers))["type"] == "upload.ready"
    deliverer.close()


def test_each_attempt_is_signed_afresh_under_the_same_id(receiver: Receiver) -> None:
    receiver.answer(httpx.Response(500), httpx.Response(200))
    start = datetime.now(timezone.utc).timestamp() - 120
    wall = Wall(start)
    deliverer = _deliverer(receiver.url, wall=wall)
    assert not deliverer.attempt("msg_abc_2", BODY, timeout=5).delivered
    wall.now += 65
    assert deliverer.attempt("msg_abc_2", BODY, timeout=5).delivered
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "msg_abc_2"
    assert int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) == 65
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    for request in (first, second):
        Webhook(NEW).verify(request.content, dict(request.headers))


def test_a_redirect_is_not_followed(receiver: Receiver) -> None:
    with Receiver() as elsewhere:
        receiver.answer(httpx.Response(302, headers={"Location": elsewhere.url}))
        outcome = _deliverer(receiver.url).attempt("msg_r_1", BODY, timeout=5)
        assert not outcome.delivered and outcome.status == 302 and not outcome.throttle
        assert outcome.error == "HTTP 302 (redirects are not followed)"
        assert len(receiver.calls) == 1 and elsewhere.calls == []


def test_answers_become_outcomes(receiver: Receiver) -> None:
    receiver.answer(
        httpx.Response(410),
        httpx.Response(429, headers={"Retry-After": "42"}),
        httpx.Response(503),
        httpx.Response(500, content=b"x" * 100_000),
    )
    deliverer = _deliverer(receiver.url, wall=Wall(NOW))
    gone, throttled, unavailable, broken = (deliverer.attempt("m", BODY, timeout=5) for _ in range(4))
    assert gone.gone and gone.status == 410
    assert throttled.throttle and throttled.retry_after == 42
    assert unavailable.throttle and unavailable.retry_after is None
    assert not broken.throttle and broken.error == "HTTP 500"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (Stall(3.0), "timeout after 2.0 s"),
        (DROP, "RemoteDisconnected: no answer"),
        (None, "ConnectionRefusedError: no answer"),
    ],
)
def test_no_answer_is_a_throttling_failure_that_names_neither_url_nor_secret(
    receiver: Receiver, answer: Any, error: str
) -> None:
    if answer is None:
        url = f"http://127.0.0.1:{_closed_port()}/vodfc?token=receiver-path-token"
    else:
        receiver.answer(answer)
        url = receiver.url
    outcome = _deliverer(url).attempt("msg_t_1", BODY, timeout=2)
    assert not outcome.delivered and outcome.throttle and outcome.status is None
    assert outcome.error == error
    for secret in (NEW, OLD, "receiver-path-token"):
        assert secret not in repr(outcome) and secret[6:] not in repr(outcome)


@pytest.mark.parametrize("timeout", [0.3, 1.2])
def test_an_unanswered_attempt_never_outlives_its_timeout(receiver: Receiver, timeout: float) -> None:
    receiver.answer(Stall(timeout + 1))
    started = time.monotonic()
    outcome = _deliverer(receiver.url).attempt("msg_b_1", BODY, timeout=timeout)
    # Connecting, sending and waiting for the headers are bounded by their shares of the timeout.
    assert time.monotonic() - started <= timeout + 0.1
    assert outcome.error == f"timeout after {timeout:.1f} s"
    with pytest.raises(ValueError, match="positive"):
        _deliverer().attempt("msg_b_1", BODY, timeout=0)


def test_a_connection_the_receiver_closed_is_not_reused() -> None:
    with Receiver(idle_timeout=0.3) as receiver:
        receiver.answer(httpx.Response(200, headers={"Connection": "close"}), httpx.Response(200))
        deliverer = _deliverer(receiver.url)
        assert deliverer.attempt("m1", BODY, timeout=2).delivered
        assert deliverer.attempt("m2", BODY, timeout=2).delivered  # after "Connection: close"
        assert deliverer.attempt("m3", BODY, timeout=2).delivered  # kept alive
        assert receiver.connections == 2
        time.sleep(0.6)  # the receiver drops the idle connection
        assert deliverer.attempt("m4", BODY, timeout=2).delivered  # on a fresh one, no failure
        assert receiver.connections == 3 and len(receiver.calls) == 4
        deliverer.close()
        assert deliverer._idle == []


def test_https_is_verified_against_the_trusted_certificates(tmp_path: Path) -> None:
    from bench.tls import make_tls

    files = make_tls(tmp_path / "tls")
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(files.server_cert, files.server_key)
    trusting = ssl.create_default_context(cafile=str(files.ca_cert))
    with Receiver(tls=served) as receiver:
        trusted = _deliverer(receiver.url, tls=lambda: trusting)
        for n in range(2):
            assert trusted.attempt(f"msg_tls_{n}", BODY, timeout=5).delivered
        assert receiver.connections == 1  # one TLS handshake for both
        Webhook(NEW).verify(receiver.requests[0].content, dict(receiver.requests[0].headers))
        trusted.close()
        # The runtime's default trust (certifi's or the system's roots) does not know the test CA.
        outcome = _deliverer(receiver.url).attempt("msg_tls_x", BODY, timeout=5)
        assert not outcome.delivered and outcome.error == "SSLCertVerificationError: no answer"
        assert len(receiver.calls) == 2


def test_a_deliverer_needs_url_and_secret_and_keeps_them_out_of_its_repr() -> None:
    with pytest.raises(ValueError, match="WEBHOOK_URL and WEBHOOK_SECRET"):
        Deliverer(Settings())
    deliverer = _deliverer()
    assert repr(deliverer) == "Deliverer(host='hooks.example.com')"
    assert deliverer.host == "hooks.example.com"


def test_pause_and_remembered_endpoint_follow_the_monotonic_clock() -> None:
    clock = Wall(100.0)
    deliverer = _deliverer(monotonic=clock)
    assert not deliverer.paused()
    deliverer.pause(5)
    assert deliverer.paused()
    clock.now += 5
    assert not deliverer.paused()
    assert deliverer.remembered_endpoint(60) == (False, None)
    deliverer.remember_endpoint("HTTP 410 Gone")
    assert deliverer.remembered_endpoint(60) == (True, "HTTP 410 Gone")
    assert deliverer.remembered_endpoint(0) == (False, None)
    clock.now += 60
    assert deliverer.remembered_endpoint(60) == (False, None)


def test_webhook_secrets_are_redacted_from_every_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    from shared import log

    log.configure_logging(Settings(webhook_url=URL, webhook_secret=NEW, webhook_secret_previous=OLD))
    log.get_logger("tests.webhooks").warning(f"leak {NEW} {OLD[6:]} end", extra={"detail": NEW[6:]})
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line["message"] == f"leak {log.REDACTED} {log.REDACTED} end"
    assert line["detail"] == log.REDACTED


class _Receiver(http.server.BaseHTTPRequestHandler):
    """A loopback receiver: answers 200 with ``server.body`` (declared ``server.declared`` long),
    dripping one byte every ``server.drip`` seconds when that is set; counts connections."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        srv: Any = self.server
        self.send_response(200)
        self.send_header("Content-Length", str(srv.declared if srv.declared is not None else len(srv.body)))
        self.end_headers()
        try:
            if srv.drip:
                for byte in srv.body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(srv.drip)
            else:
                self.wfile.write(srv.body)
        except (BrokenPipeError, ConnectionResetError):  # the deliverer stopped reading: expected
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A deliverer that drops a connection with an answer unread resets it (the tests that
        # refuse to download a large answer do so on purpose): not worth a traceback on stderr.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture
def loopback() -> Iterator[Any]:
    server: Any = _QuietServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    server.connections, server.body, server.declared, server.drip = 0, b"ok", None, 0.0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _loopback_deliverer(server: Any) -> Deliverer:
    return _deliverer(f"http://127.0.0.1:{server.server_address[1]}/hooks")


def test_a_small_answer_is_read_so_the_next_attempt_reuses_the_connection(loopback: Any) -> None:
    deliverer = _loopback_deliverer(loopback)
    for n in range(3):
        assert deliverer.attempt(f"msg_keep_{n}", BODY, timeout=5).delivered
    assert loopback.connections == 1  # one TCP (and, over HTTPS, TLS) handshake for all three
    deliverer.close()


def test_the_request_is_not_held_back_by_nagles_algorithm(loopback: Any) -> None:
    # Header block and body leave in two writes; a receiver that delays its ACK until it can
    # answer would otherwise stall every notification by its delayed-ACK timer.
    deliverer = _loopback_deliverer(loopback)
    assert deliverer.attempt("msg_nodelay", BODY, timeout=5).delivered
    (conn,) = deliverer._idle
    assert conn.sock is not None
    assert conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    deliverer.close()


@pytest.mark.parametrize("body", [b"x" * (16 * 1024 + 1), b"x" * 1_000_000])
def test_a_large_answer_is_not_downloaded(loopback: Any, body: bytes) -> None:
    loopback.body = body
    deliverer = _loopback_deliverer(loopback)
    for n in range(2):
        assert deliverer.attempt(f"msg_big_{n}", BODY, timeout=5).delivered
    assert loopback.connections == 2  # its connection was dropped, not read to the end
    deliverer.close()


def test_a_dripping_answer_never_holds_the_attempt_past_its_timeout(loopback: Any) -> None:
    loopback.body, loopback.drip = b"x" * 50, 0.05  # 2.5 s for a body of 50 bytes
    deliverer = _loopback_deliverer(loopback)
    started = time.monotonic()
    outcome = deliverer.attempt("msg_drip_1", BODY, timeout=0.6)
    assert time.monotonic() - started <= 0.6 + 0.1
    assert outcome.delivered  # the answer's status counts; its body never mattered
    deliverer.close()


class _RawReceiver:
    """Answers every request on a connection with ``answer`` (raw bytes), then closes the
    connection when ``close`` is set; counts connections."""

    def __init__(self, answer: bytes, *, close: bool = False) -> None:
        self.answer, self.close_after = answer, close
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hooks"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        with conn:
            reader = conn.makefile("rb")
            while True:
                headers = b""
                while not headers.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    headers += line
                length = next(
                    (
                        int(h.split(b":")[1])
                        for h in headers.split(b"\r\n")
                        if h.lower().startswith(b"content-length")
                    ),
                    0,
                )
                reader.read(length)
                conn.sendall(self.answer)
                if self.close_after:
                    conn.shutdown(socket.SHUT_WR)
                    return

    def stop(self) -> None:
        self.sock.close()


def test_a_chunked_answer_is_read_to_its_end_and_the_connection_reused() -> None:
    raw = _RawReceiver(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
    try:
        deliverer = _deliverer(raw.url)
        assert all(deliverer.attempt(f"msg_ch_{n}", BODY, timeout=2).delivered for n in range(3))
        assert raw.connections == 1
    finally:
        raw.stop()


def test_an_answer_cut_short_still_counts_and_its_connection_is_dropped() -> None:
    raw = _RawReceiver(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok", close=True)
    try:
        deliverer = _deliverer(raw.url)
        for n in range(2):
            assert deliverer.attempt(f"msg_cut_{n}", BODY, timeout=2).delivered  # the status counts
        assert raw.connections == 2 and deliverer._idle == []
    finally:
        raw.stop()


def test_a_garbled_chunked_answer_still_counts_and_its_connection_is_dropped() -> None:
    raw = _RawReceiver(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    try:
        deliverer = _deliverer(raw.url)
        assert deliverer.attempt("msg_gb_1", BODY, timeout=2).delivered
        assert deliverer._idle == []
    finally:
        raw.stop()


def test_a_few_idle_connections_are_kept_at_most() -> None:
    import http.client

    deliverer = _deliverer()
    spare = [http.client.HTTPConnection("127.0.0.1", 9) for _ in range(6)]
    for conn in spare:
        deliverer._checkin(conn)
    assert deliverer._idle == spare[:4]


def test_an_idle_connection_with_anything_to_read_is_not_reused() -> None:
    from shared.webhooks import _readable

    class Decrypted:  # a TLS socket holding bytes nobody asked for
        def pending(self) -> int:
            return 1

    closed = socket.socket()
    closed.close()  # select cannot watch it any more
    assert _readable(Decrypted())  # type: ignore[arg-type]
    assert _readable(closed)
    left, right = socket.socketpair()
    with left, right:
        assert not _readable(left)
        right.close()  # the peer's FIN
        assert _readable(left)


def test_a_deliverer_needs_an_http_url() -> None:
    from pydantic import SecretStr

    settings = Settings.model_construct(
        webhook_url="ftp://hooks.example.com/x", webhook_secret=SecretStr(NEW)
    )
    with pytest.raises(ValueError, match="not an http"):
        Deliverer(settings)
