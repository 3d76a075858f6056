"""No VOD event is lost: the local stack, in each event-delivery mode, takes 300 uploads to the
end while its PostgreSQL is off the network for 30 s and VOD then answers slowly (> 5 s).

``vodfc serve --events http|mns`` runs on a database of its own, reached through a TCP proxy
(tests.netfault) that the test cuts: every connection is reset and new ones are refused, as when
the server stops, while the other tests' server keeps running. Clients create uploads (retrying
503s with one Idempotency-Key each) and store their files with oss2; the emulated VOD fires its
events by HTTP or into its SMQ queue, where the queue trigger s.yaml deploys delivers them.

Afterwards every record matches VOD's final state:
- MNS mode: with no cleanup timer at all, so nothing but the events themselves (redelivered by
  the trigger while the database is away) can have brought the records there;
- HTTP mode: VOD gives up on the events of the outage after its three attempts; the cleanup
  timer (every 3 s here, RECONCILE_SCHEDULE_SECONDS=1) reconciles within two runs once VOD is
  done, and no callback took longer than CALLBACK_BUDGET_SECONDS + 0.5 s. A run the outage cut
  while it held claims cannot release them (the store is gone): those uploads come back when
  the run's lease ends (its budget, CLEANUP_TIME_BUDGET_SECONDS, plus 60 s), so the wait allows
  for one lease.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from devkit.upload import make_bucket
from tests import pg
from tests.load.conftest import percentile, record
from tests.netfault import TcpProxy
from tests.served import Serve, free_port_trio

pytestmark = pytest.mark.load

UPLOADS = 300
CUT_AFTER = 60  # uploads stored before the database goes away
OUTAGE_SECONDS = 30.0
SLOW_SECONDS = 6.0  # each VOD confirmation call while VOD is slow: longer than VOD's 5 s window
SLOW_WINDOW_SECONDS = 15.0
BUDGET_SECONDS = 3.0
CLEANUP_EVERY = 3.0
CLEANUP_BUDGET_SECONDS = 20  # a cut run's claims return after this + 60 s (shared.services.cleanup)
FINAL = {"Normal": "ready"}


@dataclass
class Run:
    """What the clients saw."""

    video_ids: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    stored: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    db = pg.create_test_database(postgres_url)
    try:
        yield db.url
    finally:
        db.drop()


def start(mode: str, database_url: str, tmp_path: Path) -> tuple[Serve, TcpProxy]:
    parts = urlsplit(database_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    home = tmp_path / "home"
    home.mkdir()
    args = [
        "--events", mode,
        "--database-url", proxy.url(database_url),
        "--transcode-delay", "1",
        "--cleanup-every", str(CLEANUP_EVERY) if mode == "http" else "0",
        "--max-storage-mb", "64",
    ]  # fmt: skip
    env = {
        "MAX_PENDING_UPLOADS_PER_OWNER": str(UPLOADS * 2),
        "STALE_UPLOAD_SECONDS": "86400",
        "RECONCILE_SCHEDULE_SECONDS": "1",
        "CLEANUP_TIME_BUDGET_SECONDS": str(CLEANUP_BUDGET_SECONDS),
        "CALLBACK_BUDGET_SECONDS": str(BUDGET_SECONDS),
        "DB_CONNECT_TIMEOUT": "1",
        "LOG_LEVEL": "INFO",
    }
    serve = Serve(port=free_port_trio(), data_dir=tmp_path / "data", home=home, args=tuple(args), env=env)
    return serve.start(), proxy


def upload_one(api: str, n: int, run: Run) -> None:
    """Create (retrying transient answers with one Idempotency-Key) and store the file."""
    key = f"fault-{n}-{uuid.uuid4()}"
    body = {"Title": f"fault {n}", "FileName": f"clip-{n}.mp4", "FileSize": 4096}
    deadline = time.monotonic() + 180
    with httpx.Client(base_url=api, timeout=30, trust_env=False) as http:
        while True:
            try:
                response = http.post("/uploads", json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:
                status = 0
            else:
                status = response.status_code
            with run.lock:
                run.statuses[status] += 1
            if status == 200:
                break
            # 409 IdempotencyKeyInUse: the reservation of an attempt the outage cut short, until
            # no request can still be running on it; then the retry finishes it
            transient = status in (0, 502, 503, 504) or (
                status == 409 and response.json().get("Code") == "IdempotencyKeyInUse"
            )
            assert transient, response.text
            assert time.monotonic() < deadline, f"upload {n} could not be created: {status}"
            time.sleep(1.0)
    answer = response.json()
    bucket, object_key = make_bucket(answer)
    for attempt in range(20):
        try:
            bucket.put_object(object_key, bytes([n % 256]) * 4096)
            break
        except Exception:  # the emulated OSS is not what is under test
            time.sleep(0.5 * (attempt + 1))
    with run.lock:
        run.video_ids.append(answer["VideoId"])
        run.stored += 1


def drive(api: str, run: Run) -> tuple[ThreadPoolExecutor, list[Future[None]]]:
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="client")
    return pool, [pool.submit(upload_one, api, n, run) for n in range(UPLOADS)]


def admin(serve: Serve, route: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    url = f"{serve.line('emulated VOD')}/_emulator/{route}"
    response = (
        httpx.post(url, json=body or {}, timeout=120) if body is not None else httpx.get(url, timeout=30)
    )
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def records(database_url: str) -> dict[str, str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT video_id, status FROM uploads WHERE video_id IS NOT NULL").fetchall()
    return {str(video_id): str(status) for video_id, status in rows}


def mismatches(serve: Serve, database_url: str, run: Run) -> list[str]:
    """Every stored upload ready in the database and Normal at VOD; every media VOD holds a file
    for has a ready record."""
    ours = records(database_url)
    vod = {m["VideoId"]: m["Status"] for m in admin(serve, "state")["media"]}
    wrong = [f"{v}: ours {ours.get(v)}, VOD {vod.get(v)}" for v in run.video_ids if ours.get(v) != "ready"]
    wrong += [
        f"{v}: VOD {s}, ours {ours.get(v)}"
        for v, s in vod.items()
        if s == "Normal" and ours.get(v) != "ready"
    ]
    return wrong


def diagnose(database_url: str, wrong: list[str]) -> str:
    """What the store holds for the first mismatching upload (its row and its inbox events)."""
    if not wrong:
        return ""
    video_id = wrong[0].split(":")[0]
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT status, checks, check_at, claimed_until, updated_at, last_event FROM uploads"
            " WHERE video_id = %s",
            (video_id,),
        ).fetchone()
        events = conn.execute(
            "SELECT event_type, state, result, attempts, next_attempt_at, claimed_until, last_error"
            " FROM event_inbox WHERE media_id = %s ORDER BY event_id",
            (video_id,),
        ).fetchall()
    return f"\n{video_id}: {row}\nevents: {events}"


def invocations(serve: Serve, function: str) -> list[dict[str, Any]]:
    text = (serve.data_dir.parent / f"serve-{serve.port}.log").read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [
        line for line in lines if line.get("message") == "invocation" and line.get("function") == function
    ]


@pytest.mark.parametrize("mode", ["http", "mns"])
def test_no_event_is_lost_through_a_database_outage_and_a_slow_vod(
    mode: str, database: str, tmp_path: Path
) -> None:
    serve, proxy = start(mode, database, tmp_path)
    run = Run()
    began = time.monotonic()
    try:
        pool, futures = drive(serve.api, run)
        while run.stored < CUT_AFTER:
            time.sleep(0.1)

        proxy.cut()  # the database goes away mid-run
        time.sleep(OUTAGE_SECONDS)
        proxy.restore()
        slow = ["GetVideoInfo", "GetVideoInfos", "GetMezzanineInfo"]
        admin(serve, "faults", {"slow_seconds": SLOW_SECONDS, "slow_calls": -1, "actions": slow})
        time.sleep(SLOW_WINDOW_SECONDS)
        admin(serve, "faults", {"clear": True})
        recovered = time.monotonic()

        pool.shutdown(wait=True)
        for future in futures:
            future.result()  # a client's assertion, if any
        assert run.stored == UPLOADS
        assert admin(serve, "drain", {"timeout": 120})["drained"]  # VOD's own work is done

        if mode == "http":
            # the cleanup timer reconciles what VOD gave up on: within two runs from here, or
            # once the lease of a run the outage cut has ended
            runs_before = len(invocations(serve, "cleanup"))
            deadline = time.monotonic() + 4 * CLEANUP_EVERY + 60
            while len(invocations(serve, "cleanup")) < runs_before + 2:
                assert time.monotonic() < deadline, "the cleanup timer stopped running"
                time.sleep(0.5)
            deadline = time.monotonic() + CLEANUP_BUDGET_SECONDS + 60 + 4 * CLEANUP_EVERY
            while (wrong := mismatches(serve, database, run)) and time.monotonic() < deadline:
                time.sleep(1)
            settled = time.monotonic()
        else:
            # nothing but redelivered events: the trigger retries 1, 2, 4 ... s after each failure
            deadline = time.monotonic() + 240
            while (wrong := mismatches(serve, database, run)) and time.monotonic() < deadline:
                time.sleep(2)
            settled = time.monotonic()
            assert not invocations(serve, "cleanup")
        detail = diagnose(database, wrong)
    finally:
        serve.stop()
        proxy.cut()

    assert not wrong, f"{len(wrong)} records differ from VOD, e.g. {wrong[:5]}" + detail
    callbacks = invocations(serve, "vod_callback")
    latencies = [float(line["latency_ms"]) for line in callbacks]
    figures: dict[str, Any] = {
        "uploads": UPLOADS,
        "create_answers": dict(sorted((str(k), v) for k, v in run.statuses.items())),
        "callback_invocations": len(callbacks),
        "callback_results": dict(Counter(str(line.get("status")) for line in callbacks)),
        "callback_p50_ms": percentile(latencies, 50),
        "callback_p99_ms": percentile(latencies, 99),
        "callback_max_ms": round(max(latencies), 1),
        "seconds_total": round(settled - began, 1),
        "seconds_after_recovery": round(settled - recovered, 1),
    }
    record(f"event_faults_{mode}", figures)
    assert run.statuses[503] > 0, "the outage was never seen by a client"
    if mode == "http":
        http_callbacks = [line for line in callbacks if line.get("route") == "POST /callbacks/vod"]
        assert any(line["status"] == 503 for line in http_callbacks), "no callback met the outage"
        slowest = max(float(line["latency_ms"]) for line in http_callbacks)
        assert slowest <= (BUDGET_SECONDS + 0.5) * 1000, f"a callback took {slowest} ms"
    else:
        assert {line.get("route") for line in callbacks} == {"mns"}
