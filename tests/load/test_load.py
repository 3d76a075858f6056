"""Load against ``vodfc serve`` on PostgreSQL (loopback only, bounded in count and time).

1. 600 concurrent credential requests from 50 owners whose quota is 10: exactly 500 answers 200
   (500 records, 500 distinct VideoIds, 10 per owner) and exactly 100 answer 403 QuotaExceeded.
2. 5,000 signed callbacks, 30 % of them duplicates, in shuffled order and concurrently, for 350
   uploads the emulator really holds (uploaded to its OSS, then transcoded; 10 % fail): every
   record ends in VOD's final status and every distinct event is applied exactly once.
   Confirmation with VOD stays on (``CALLBACK_CONFIRM_WITH_VOD=true``): the final events are
   checked against the emulator's GetVideoInfo, which knows these videos.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from shared.settings import Settings
from shared.signing import binding_keys, binding_signature
from tests.load.conftest import CALLBACK_KEY, JWT_SECRET, MAX_PENDING, Served, percentile, record

pytestmark = [pytest.mark.load, pytest.mark.postgres, pytest.mark.timeout(240)]

OWNERS = 50
EXTRA_PER_OWNER = 2
BODY = {"Title": "Load test clip", "FileName": "clip.mp4", "FileSize": 1024}


def bearer(owner: str) -> dict[str, str]:
    token = jwt.encode({"sub": owner, "exp": int(time.time()) + 3600}, JWT_SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def run_all(jobs: Iterable[Callable[[], Any]], workers: int) -> list[Any]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: job(), list(jobs)))


def timed(client: httpx.Client, method: str, url: str, **kw: Any) -> tuple[int, dict[str, Any], float]:
    started = time.perf_counter()
    try:
        response = client.request(method, url, **kw)
    except httpx.HTTPError as exc:
        return -1, {"error": type(exc).__name__}, (time.perf_counter() - started) * 1000
    elapsed = (time.perf_counter() - started) * 1000
    try:
        body = response.json()
    except ValueError:
        body = {"raw": response.text[:200]}
    return response.status_code, body, elapsed


def figures(results: list[tuple[int, dict[str, Any], float]], seconds: float, **extra: Any) -> dict[str, Any]:
    latencies = [r[2] for r in results]
    statuses = Counter(r[0] for r in results)
    return {
        "requests": len(results),
        "errors": sum(n for s, n in statuses.items() if s < 0 or s >= 500),
        "statuses": dict(sorted((str(k), v) for k, v in statuses.items())),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": round(max(latencies), 1),
        "seconds": round(seconds, 2),
        "rps": round(len(results) / seconds, 1),
        **extra,
    }


def db_rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def create_uploads(served: Served, owners: list[str], per_owner: int, workers: int = 50) -> list[Any]:
    requests = [owner for owner in owners for _ in range(per_owner)]
    random.Random(6).shuffle(requests)
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    with httpx.Client(base_url=served.api, timeout=60, limits=limits) as client:
        headers = {owner: bearer(owner) for owner in owners}
        jobs = [
            (lambda o=owner: (o, *timed(client, "POST", "/uploads", json=BODY, headers=headers[o])))
            for owner in requests
        ]
        return run_all(jobs, workers)


# --- 1. credentials ------------------------------------------------------------------------------
def test_500_concurrent_credential_requests_from_50_owners(served: Served) -> None:
    owners = [f"load-{i:02d}" for i in range(OWNERS)]
    started = time.perf_counter()
    results = create_uploads(served, owners, MAX_PENDING + EXTRA_PER_OWNER)
    seconds = time.perf_counter() - started

    plain = [(status, body, ms) for _, status, body, ms in results]
    ok = [(owner, body) for owner, status, body, _ in results if status == 200]
    refused = [(owner, body) for owner, status, body, _ in results if status == 403]
    record("credentials", figures(plain, seconds, owners=OWNERS, quota=MAX_PENDING, accepted=len(ok)))

    others = [(s, b) for _, s, b, _ in results if s not in (200, 403)]
    assert others == [], others[:5]  # no errors of any kind
    assert len(ok) == OWNERS * MAX_PENDING == 500
    assert len(refused) == OWNERS * EXTRA_PER_OWNER
    assert {b["Code"] for _, b in refused} == {"QuotaExceeded.PendingUploads"}
    assert Counter(o for o, _ in ok) == dict.fromkeys(owners, MAX_PENDING)  # quotas exact
    video_ids = [b["VideoId"] for _, b in ok]
    assert len(set(video_ids)) == 500
    assert all(b["UploadAuth"] and b["UploadAddress"] for _, b in ok)

    rows = db_rows(
        served.database_url,
        "SELECT owner, video_id, status FROM uploads WHERE owner LIKE 'load-%%'",
    )
    assert len(rows) == 500 and {r[2] for r in rows} == {"created"}
    assert sorted(r[1] for r in rows) == sorted(video_ids)
    assert Counter(r[0] for r in rows) == dict.fromkeys(owners, MAX_PENDING)


# --- 2. callbacks --------------------------------------------------------------------------------
VIDEOS = 350
FAIL_EVERY = 10  # every 10th video fails to transcode
DUPLICATE_SHARE = 0.30
TOTAL_CALLBACKS = 5000


def _events(video_id: str, extend: str, failed: bool, base: float) -> list[dict[str, Any]]:
    """Ten distinct events of one video's life, in VOD's shapes."""

    def at(seconds: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + seconds))

    outcome = "fail" if failed else "success"
    common = {"VideoId": video_id, "Extend": extend}
    events: list[dict[str, Any]] = [
        {"EventType": "FileUploadComplete", "EventTime": at(0), "Status": "success", "Size": 1024, **common},
        {"EventType": "VideoAnalysisComplete", "EventTime": at(1), "Status": "success", "Duration": "10",
         "VideoId": video_id},
    ]  # fmt: skip
    for n, definition in enumerate(("LD", "SD", "HD", "FHD")):
        events.append(
            {"EventType": "StreamTranscodeComplete", "EventTime": at(2 + n), "Status": outcome,
             "Definition": definition, "Duration": 10.0, "JobId": f"{video_id[:24]}{n:08x}", **common}
        )  # fmt: skip
    events += [
        {"EventType": "SnapshotComplete", "EventTime": at(6), "Status": "success", "CoverUrl": "http://x/c.jpg",
         **common},
        {"EventType": "DynamicImageComplete", "EventTime": at(7), "Status": "success", "VideoId": video_id,
         "JobId": f"dyn{video_id[:29]}"},
        {"EventType": "AIMediaAuditComplete", "EventTime": at(8), "Status": "success", "MediaId": video_id,
         "JobId": f"aud{video_id[:29]}", "Code": "0", "Message": "OK"},
        {"EventType": "TranscodeComplete", "EventTime": at(9), "Status": outcome, **common},
    ]  # fmt: skip
    return events


def test_5000_callbacks_with_30_percent_duplicates_in_shuffled_order(served: Served) -> None:
    import oss2

    from devkit.upload import make_bucket

    owners = [f"cb-{i:02d}" for i in range(VIDEOS // MAX_PENDING)]
    created = create_uploads(served, owners, MAX_PENDING)
    assert {status for _, status, _, _ in created} == {200}
    answers = [body for _, _, body, _ in created]
    emulator = served.emulator_url()

    # The emulator's own callbacks would race ours: drop them; then really upload and transcode.
    httpx.post(f"{emulator}/_emulator/faults", json={"clear": True, "drop_callbacks": -1}, timeout=10)

    def upload(answer: dict[str, Any]) -> None:
        bucket, key = make_bucket(answer)
        assert bucket.put_object(key, b"x" * 1024).status == 200

    run_all([functools.partial(upload, a) for a in answers], 20)
    failed = {a["VideoId"] for i, a in enumerate(answers) if i % FAIL_EVERY == 0}
    with httpx.Client(base_url=emulator, timeout=30) as admin:
        for a in answers:
            vid = a["VideoId"]
            done = admin.post("/_emulator/transcode", json={"VideoId": vid, "success": vid not in failed})
            assert done.status_code == 200, done.text
    assert oss2  # (imported for make_bucket)

    # Build the events, echoing the Extend VOD stores (with our owner binding).
    settings = Settings(callback_auth_key=CALLBACK_KEY)
    rows = db_rows(
        served.database_url, "SELECT video_id, upload_id, owner FROM uploads WHERE owner LIKE 'cb-%%'"
    )
    assert len(rows) == VIDEOS
    base = time.time() - 3600
    distinct: list[dict[str, Any]] = []
    for video_id, upload_id, owner in rows:
        sig = binding_signature(binding_keys(settings)[0], upload_id, owner)
        extend = json.dumps({"vodfc_uid": upload_id, "vodfc_sig": sig}, separators=(",", ":"))
        distinct += _events(video_id, extend, video_id in failed, base)
    assert len(distinct) == VIDEOS * 10 == 3500
    rng = random.Random(2026)
    duplicates = [rng.choice(distinct) for _ in range(TOTAL_CALLBACKS - len(distinct))]
    assert len(duplicates) / TOTAL_CALLBACKS == pytest.approx(DUPLICATE_SHARE)
    deliveries = [json.dumps(e) for e in distinct + duplicates]
    rng.shuffle(deliveries)

    def deliver(client: httpx.Client, body: str) -> tuple[str, int, dict[str, Any], float]:
        ts = str(int(time.time()))
        sig = hashlib.md5(f"{served.callback_url}|{ts}|{CALLBACK_KEY}".encode()).hexdigest()
        headers = {"Content-Type": "application/json", "X-VOD-TIMESTAMP": ts, "X-VOD-SIGNATURE": sig}
        return (body, *timed(client, "POST", "/callbacks/vod", content=body, headers=headers))

    workers = 32
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    started = time.perf_counter()
    with httpx.Client(base_url=served.api, timeout=60, limits=limits) as client:
        results = run_all([functools.partial(deliver, client, b) for b in deliveries], workers)
    seconds = time.perf_counter() - started

    plain = [(status, answer, ms) for _, status, answer, ms in results]
    outcomes = Counter(answer.get("Result") for _, status, answer, _ in results if status == 200)
    record(
        "callbacks",
        figures(plain, seconds, videos=VIDEOS, distinct=len(distinct), duplicates=len(duplicates),
                outcomes=dict(sorted(outcomes.items()))),
    )  # fmt: skip

    bad = [(s, a) for _, s, a, _ in results if s != 200]
    assert bad == [], bad[:5]
    # every distinct event applied (or, arriving after a later one, recorded as stale) exactly once;
    # a copy is a duplicate, or "pending" when it arrived while the first was still being applied
    first_answers: Counter[str] = Counter()
    for body, _, answer, _ in results:
        if answer["Result"] in ("applied", "stale"):
            first_answers[body] += 1
    assert set(first_answers.values()) == {1} and len(first_answers) == len(distinct)
    assert outcomes["duplicate"] + outcomes["pending"] == len(duplicates)
    assert outcomes["applied"] + outcomes["stale"] == len(distinct)
    assert outcomes.keys() <= {"applied", "stale", "duplicate", "pending"}
    ((kept, done),) = db_rows(
        served.database_url,
        "SELECT count(*), count(*) FILTER (WHERE i.state = 'done') FROM event_inbox i"
        " JOIN uploads u ON u.video_id = i.media_id WHERE u.owner LIKE 'cb-%%'",
    )
    assert kept == done == len(distinct)

    # every record ends in VOD's final status, with the transcoding results
    final = db_rows(
        served.database_url,
        "SELECT video_id, status, duration, last_event FROM uploads WHERE owner LIKE 'cb-%%'",
    )
    for video_id, status, duration, _ in final:
        assert status == ("failed" if video_id in failed else "ready"), (video_id, status)
        if video_id not in failed:
            assert duration and duration > 0
    assert Counter(s for _, s, _, _ in final) == {"ready": VIDEOS - len(failed), "failed": len(failed)}
