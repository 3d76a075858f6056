"""The store through a transaction-pooling PgBouncer (Debian's 1.18 in CI), beyond the contract suite.

``test_store_contract.py`` already runs whole through the session's PgBouncer (``[pgbouncer]``,
``DB_PREPARED_STATEMENTS=false``). Here: why the setting is needed (with prepared statements on,
psycopg fails the way PgBouncer 1.18 makes it fail), and a storm of separate processes connecting
at once like cold FC instances, more of them than the pool has server connections.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from shared import errors
from shared.store import Store, create_store
from tests import pg, pgbouncer

pytestmark = [pytest.mark.postgres, pytest.mark.pgbouncer]

ROOT = Path(__file__).resolve().parents[2]


def test_prepared_statements_on_cannot_even_connect_through_pgbouncer(pgbouncer_url: str) -> None:
    """DB_PREPARED_STATEMENTS=true also sends the statement timeout in the startup packet, which
    PgBouncer refuses (https://www.pgbouncer.org/config.html#ignore_startup_parameters)."""
    store = create_store(pgbouncer_url, prepare=True)
    try:
        with pytest.raises(errors.StoreUnavailable) as refused:
            store.get_by_video_id("vid-none")
        assert "unsupported startup parameter: options" in str(refused.value.__cause__)
    finally:
        store.close()


@pytest.fixture
def two_servers(postgres_url: str, pgbouncer_url: str) -> Iterator[str]:
    """The session's database through a PgBouncer of its own with two server connections, told
    to ignore the ``options`` startup parameter (so that prepared statements can be tried).

    Which server session a client gets is then known: PgBouncer hands out the most recently used
    idle one (``server_round_robin = 0``, https://www.pgbouncer.org/config.html#server_round_robin).
    ``pgbouncer_url`` is asked for so that a missing PgBouncer skips (or fails under CI) as one.
    """
    pg.migrate(postgres_url)
    bouncer = pgbouncer.start(
        pgbouncer.server_url_of(postgres_url), pool_size=2, extra={"ignore_startup_parameters": "options"}
    )
    try:
        yield bouncer.url(pgbouncer.dbname_of(postgres_url))
    finally:
        bouncer.stop()


def _repeat_a_read(store: Store, times: int = 8) -> None:
    # psycopg prepares a statement once it has run prepare_threshold (5) times on a connection.
    for _ in range(times):
        assert store.get_by_video_id("vid-none") is None


def test_prepared_statements_break_through_transaction_pooling(two_servers: str) -> None:
    """Even connected, prepared statements through PgBouncer 1.18 collide and vanish."""
    first, second = create_store(two_servers, prepare=True), create_store(two_servers, prepare=True)
    holder = psycopg.connect(two_servers)
    try:
        _repeat_a_read(first)  # now prepared as _pg3_0 in the server session it ran in
        # The second client names its statement alike and runs in the same (idle) session:
        # PostgreSQL refuses the second PREPARE.
        with pytest.raises(errors.StoreUnavailable) as refused:
            _repeat_a_read(second)
        assert isinstance(refused.value.__cause__, psycopg.errors.DuplicatePreparedStatement)
        # With that session busy in another client's transaction, the first client's next
        # statement runs in the other session, which never saw its statement.
        holder.execute("SELECT 1")
        with pytest.raises(errors.StoreUnavailable) as missing:
            first.get_by_video_id("vid-none")
        assert isinstance(missing.value.__cause__, psycopg.errors.InvalidSqlStatementName)
    finally:
        holder.close()
        first.close()
        second.close()


def test_without_prepared_statements_the_same_clients_work(two_servers: str) -> None:
    first, second = create_store(two_servers, prepare=False), create_store(two_servers, prepare=False)
    holder = psycopg.connect(two_servers)
    try:
        _repeat_a_read(first)
        _repeat_a_read(second)
        holder.execute("SELECT 1")
        _repeat_a_read(first)
    finally:
        holder.close()
        first.close()
        second.close()


# --- a storm of cold starts -------------------------------------------------------------------

INSTANCE = r"""
import json, os, sys, time, uuid
from datetime import datetime, timedelta, timezone
from shared.store import open_store, new_reservation
from shared import errors

print("ready", flush=True)
sys.stdin.readline()                       # everyone starts together
started = time.monotonic()
now = datetime.now(timezone.utc)
# What get_store(settings) opens with DB_PREPARED_STATEMENTS=false (pydantic left out: 16 imports
# of it would only slow the test down).
store = open_store(os.environ["DATABASE_URL"], prepare=False, connect_timeout=5, statement_timeout=20)
out = {}
try:
    tag = uuid.uuid4().hex
    up = store.reserve_upload(
        new_reservation(upload_id=f"up-{tag}", owner=f"owner-{tag[:6]}", reference_id=f"ref-{tag}",
                        title="storm", file_name="storm.mp4", file_size=1, now=now,
                        idempotency_key=None, request_hash=None),
        max_pending=10)
    assert store.attach_video(up.upload_id, f"vid-{tag}", now + timedelta(hours=1), now)
    event, owned, found = store.record_event(
        dedupe_key=f"key-{tag}", media_id=f"vid-{tag}", event_type="FileUploadComplete",
        event_time=now, source="http", message_id=None, body="{}", now=now, lease_seconds=60)
    assert owned and found is not None
    result = store.apply_event(event.event_id, video_id=f"vid-{tag}", event_type="FileUploadComplete",
                               event_time=now, to="uploaded", now=now)
    out = {"result": result.result.value, "status": store.get_by_video_id(f"vid-{tag}").status}
except errors.VodfcError as exc:
    out = {"error": exc.code}
out["seconds"] = time.monotonic() - started
print(json.dumps(out), flush=True)
sys.stdin.readline()                       # keep the client connection until the parent has looked
"""


def _server_sessions(admin_url: str, dbname: str, stop: threading.Event, peak: list[int]) -> None:
    """Sample how many server sessions the database has (PostgreSQL's own count) until ``stop``."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        while not stop.is_set():
            (count,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (dbname,)
            ).fetchone() or (0,)
            peak[0] = max(peak[0], int(count))
            time.sleep(0.01)


def test_sixteen_instances_starting_at_once_share_two_server_connections(
    postgres_url: str, pgbouncer_url: str, tmp_path: Path
) -> None:
    """16 processes connect at once through a pool of 2: all succeed, the server sees at most 2."""
    admin = pgbouncer.server_url_of(postgres_url)
    database = pg.create_test_database(admin)
    pg.migrate(database.url)
    bouncer = pgbouncer.start(admin, pool_size=2, query_wait_timeout=30)
    dbname = pgbouncer.dbname_of(database.url)
    script = tmp_path / "instance.py"
    script.write_text(INSTANCE, encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": bouncer.url(dbname),
    }
    procs: list[subprocess.Popen[str]] = []
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=_server_sessions, args=(admin, dbname, stop, peak), daemon=True)
    try:
        for _ in range(16):
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(script)],
                    env=env,
                    cwd=tmp_path,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        sampler.start()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        answers = [json.loads(proc.stdout.readline()) for proc in procs if proc.stdout is not None]
        (pool,) = [p for p in pgbouncer.admin(bouncer, "SHOW POOLS") if p["database"] == dbname]
        stop.set()
        sampler.join(timeout=10)
    finally:
        stop.set()
        for proc in procs:
            if proc.poll() is None and proc.stdin is not None:
                proc.stdin.close()  # its second readline ends: it exits
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        bouncer.stop()
        database.drop()
    assert answers == [{"result": "applied", "status": "uploaded", "seconds": a["seconds"]} for a in answers]
    assert pool["cl_active"] + pool["cl_waiting"] == 16, pool  # every instance still connected ...
    assert 1 <= peak[0] <= 2, peak  # ... and never more than the pool's two sessions on the server
