"""A database that refuses, never answers or keeps the instance waiting: a bounded 503, never a hang.

Real servers and real waits (with the VOD deadline tests, the only timed assertions of the suite,
with generous margins): each function whose first step is the store answers
``503 ServiceUnavailable.Store`` with ``Retry-After`` within ``DB_CONNECT_TIMEOUT`` +
``DB_STATEMENT_TIMEOUT`` + the store's 1 s grace + a margin, and serves again once the database
does. What bounds a wait in a pooler's queue is the store's own deadline
(``shared/store/postgres.py``): PgBouncer's ``query_wait_timeout`` is set far beyond it here.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from tests import pg, pgbouncer
from tests.functional.conftest import CALLBACK_KEY, CALLBACK_URL, Stack, load_event

pytestmark = pytest.mark.postgres

CONNECT, STATEMENT = 2, 1  # DB_CONNECT_TIMEOUT (psycopg's minimum is 2 s), DB_STATEMENT_TIMEOUT
BOUND = CONNECT + STATEMENT + 1 + 3  # + the store's grace + a margin for a loaded machine
Answer = tuple[int, dict[str, Any], dict[str, str]]


def _use(monkeypatch: pytest.MonkeyPatch, url: str, *, pooled: bool) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", str(CONNECT))
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT", str(STATEMENT))
    monkeypatch.setenv("DB_PREPARED_STATEMENTS", "false" if pooled else "true")


def _signed_callback(stack: Stack) -> Answer:
    body = load_event("vod/FileUploadComplete.json")
    body["VideoId"] = "vid-never-recorded"
    stamp = str(int(time.time()))
    event = load_event("http/vod_callback.json")
    event["headers"]["X-VOD-TIMESTAMP"] = stamp
    signature = hashlib.md5(f"{CALLBACK_URL}|{stamp}|{CALLBACK_KEY}".encode()).hexdigest()
    event["headers"]["X-VOD-SIGNATURE"] = signature
    event["body"] = json.dumps(body)
    return stack.invoke("vod_callback", event)


def _requests(stack: Stack) -> dict[str, Callable[[], Answer]]:
    """A web client's create and VOD's callback: the first step of each is the store."""
    body = {"Title": "Holiday", "FileName": "holiday.mp4", "FileSize": 1024}
    return {
        "create": lambda: stack.http("upload_credentials", "POST", "/uploads", body=body),
        "callback": lambda: _signed_callback(stack),
    }


def assert_bounded_503(call: Callable[[], Answer]) -> float:
    started = time.monotonic()
    status, body, headers = call()
    seconds = time.monotonic() - started
    assert (status, body.get("Code")) == (503, "ServiceUnavailable.Store"), body
    assert int(headers["Retry-After"]) >= 1
    assert seconds <= BOUND, f"answered after {seconds:.1f} s; the bound is {BOUND} s"
    return seconds


# --- a pooler whose every server connection is taken ----------------------------------------------
@pytest.fixture
def full_pool(postgres_url: str, pgbouncer_url: str) -> Iterator[tuple[str, psycopg.Connection[Any]]]:
    """A PgBouncer with one server connection, held by another client's open transaction."""
    pg.migrate(postgres_url)
    pg.truncate(postgres_url)
    bouncer = pgbouncer.start(pgbouncer.server_url_of(postgres_url), pool_size=1, query_wait_timeout=120)
    url = bouncer.url(pgbouncer.dbname_of(postgres_url))
    holder = psycopg.connect(url)
    try:
        holder.execute("SELECT 1")  # BEGIN ... SELECT 1: the pool's only server, until rollback
        yield url, holder
    finally:
        holder.close()
        bouncer.stop()


def test_a_pooler_with_no_free_server_is_a_bounded_503_then_serves_again(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, full_pool: tuple[str, psycopg.Connection[Any]]
) -> None:
    url, holder = full_pool
    _use(monkeypatch, url, pooled=True)
    for name, call in _requests(stack).items():
        seconds = assert_bounded_503(call)
        # The wait ended at the store's deadline (statement timeout + grace), not by itself.
        assert seconds >= STATEMENT, name
    assert not stack.vod.calls, "nothing reaches VOD before the store has its record"
    holder.rollback()
    status, answer, _ = stack.http("upload_credentials", "GET", "/uploads")
    assert status == 200, answer


# --- a server that accepts the connection and never says a word -----------------------------------
@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP listener that accepts connections and never answers (a hung server, a black hole)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"postgresql://vodfc:not-a-real-password@127.0.0.1:{listener.getsockname()[1]}/vodfc"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()


def test_a_server_that_never_answers_is_a_bounded_503(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, silent_server: str
) -> None:
    _use(monkeypatch, silent_server, pooled=False)
    for call in _requests(stack).values():
        seconds = assert_bounded_503(call)
        assert seconds >= CONNECT - 0.5  # psycopg's connect timeout ended it
    assert not stack.vod.calls


# --- a PostgreSQL at its connection limit ----------------------------------------------------------
@pytest.fixture
def limited_role(postgres_url: str) -> Iterator[tuple[str, str]]:
    """A database owned by a new role allowed one connection (superusers ignore connection
    limits: https://www.postgresql.org/docs/current/sql-createrole.html), its URL and password."""
    admin = pgbouncer.server_url_of(postgres_url)
    name, password = f"vodfc_limited_{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    with psycopg.connect(admin, autocommit=True) as conn:
        try:
            conn.execute(f"CREATE ROLE {name} LOGIN CONNECTION LIMIT 1 PASSWORD '{password}'")
        except psycopg.errors.InsufficientPrivilege:
            pytest.skip("the test account may not create roles")
        conn.execute(f"CREATE DATABASE {name} OWNER {name}")
    server = urlsplit(admin)
    url = f"postgresql://{name}:{password}@{server.hostname}:{server.port or 5432}/{name}"
    try:
        pg.migrate(url)
        yield url, password
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {name}")


def test_a_database_at_its_connection_limit_is_a_503_without_the_password_in_logs(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    limited_role: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, password = limited_role
    _use(monkeypatch, url, pooled=False)
    other_instance = psycopg.connect(url)  # the role's one connection
    try:
        for call in _requests(stack).values():
            assert_bounded_503(call)
    finally:
        other_instance.close()
    status, answer, _ = stack.http("upload_credentials", "GET", "/uploads")
    assert status == 200, answer
    logged = capsys.readouterr()
    assert "too many connections" in logged.out  # the cause is logged for the operator ...
    assert password not in logged.out + logged.err  # ... never the password
