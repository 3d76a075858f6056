"""Section 4, callback throughput: signed VOD events through the vod_callback handler, one process.

Per database: ``U`` uploads are created through the credentials handler (so VOD's echoed ``Extend``
carries our owner binding, as in production); then each upload gets FileUploadComplete and
StreamTranscodeComplete (the non-final events, no call to VOD), and 30 % of all events delivered
are duplicates (VOD's retries: the same body, a new timestamp and signature), each placed at a
random point after its original. A second, smaller pass sends TranscodeComplete (a final event:
confirmed with GetVideoInfo before it is applied) to report that path's rate too.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from typing import Any

from bench import events
from bench.core import Bench
from bench.sec_warm import create_events
from bench.stats import percentile

__all__ = ["callback_stream", "run", "seed_uploads", "signed"]

DUPLICATE_SHARE = 0.30
EPOCH = time.time()


def _iso(offset: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH + offset))


def signed(event_type: str, video_id: str, extend: str, offset: float) -> bytes:
    """One signed callback of ``event_type`` for ``video_id``, its EventTime ``offset`` s after EPOCH."""
    return events.callback_event(
        events.vod_event_body(event_type, video_id, extend=extend, event_time=_iso(offset))
    )


def seed_uploads(bench: Bench, db: str, n: int) -> list[tuple[str, str]]:
    """``n`` uploads created through the credentials handler: (VideoId, the Extend VOD echoes)."""
    data = bench.replay("upload_credentials", create_events(n, "cb"), db, keep_bodies=True)
    ids = []
    for body in data["bodies"]:
        try:
            ids.append(json.loads(body)["VideoId"])
        except (ValueError, KeyError, TypeError):
            continue
    if len(ids) < n:
        raise RuntimeError(
            f"seeding made {len(ids)}/{n} uploads; statuses {data['statuses']}: {data['bodies'][:2]}"
        )
    videos = bench.stub.videos()
    out = []
    for vid in ids:
        user_data = json.loads(videos.get(vid, {}).get("UserData") or "{}")
        out.append((vid, json.dumps(user_data.get("Extend", {}), separators=(",", ":"))))
    return out


def callback_stream(uploads: list[tuple[str, str]], rng: random.Random) -> tuple[list[bytes], int]:
    """FileUploadComplete then StreamTranscodeComplete for every upload, signed, with duplicates
    after their originals (``DUPLICATE_SHARE`` of the deliveries); and how many duplicates."""
    first = [("FileUploadComplete", vid, ext, _iso(0)) for vid, ext in uploads]
    second = [("StreamTranscodeComplete", vid, ext, _iso(60)) for vid, ext in uploads]
    rng.shuffle(first)
    rng.shuffle(second)
    unique = first + second
    bodies = [json.dumps(events.vod_event_body(t, v, extend=e, event_time=ts), separators=(",", ":"))
              for t, v, e, ts in unique]  # fmt: skip
    ts = int(time.time())
    keyed: list[tuple[float, bytes]] = [
        (float(i), events.callback_event(b, timestamp=ts)) for i, b in enumerate(bodies)
    ]
    n_dup = round(DUPLICATE_SHARE / (1 - DUPLICATE_SHARE) * len(bodies))
    for k in range(n_dup):
        j = rng.randrange(len(bodies))
        # a retry: the same body, a new timestamp and signature, somewhere after the original
        keyed.append(
            (rng.uniform(j + 0.01, len(bodies)), events.callback_event(bodies[j], timestamp=ts + 1 + k % 30))
        )
    keyed.sort(key=lambda kv: kv[0])
    stream = [e for _, e in keyed]
    return stream, n_dup


def _rate(data: dict[str, Any]) -> dict[str, Any]:
    samples = data["samples"]
    busy = sum(samples)
    results = Counter()
    for body in data["bodies"]:
        try:
            results[json.loads(body).get("Result", json.loads(body).get("Code", "?"))] += 1
        except (ValueError, AttributeError):
            results["?"] += 1
    return {
        "events": len(samples),
        "events_per_s": len(samples) / busy if busy else None,
        "events_per_s_wall": len(samples) / data["total_s"] if data["total_s"] else None,
        "p50_ms": percentile(samples, 50) * 1000,
        "p99_ms": percentile(samples, 99) * 1000,
        "statuses": data["statuses"],
        "results": dict(results),
    }


def run(bench: Bench) -> dict[str, Any]:
    n = bench.opts.callback_uploads
    warm = 50
    rng = random.Random(bench.opts.seed)
    kinds = ["sqlite"] + (["postgres"] if bench.pg_ok else [])
    rows: dict[str, Any] = {}
    for kind in kinds:
        label = "PostgreSQL" if kind == "postgres" else "SQLite"
        db = bench.new_db(kind)
        bench.log(f"callbacks ({label}): creating {n + warm} uploads through the credentials handler ...")
        uploads = seed_uploads(bench, db, n + warm)
        warm_events = [signed("FileUploadComplete", v, e, 0) for v, e in uploads[:warm]]
        stream, n_dup = callback_stream(uploads[warm:], rng)
        bench.log(f"callbacks ({label}): {len(stream)} events ({n_dup} duplicates) ...")
        data = bench.replay("vod_callback", warm_events + stream, db, warmup=warm, keep_bodies=True)
        row = _rate(data)
        row["duplicates_sent"] = n_dup
        final_n = min(n, 500)
        final = [signed("TranscodeComplete", v, e, 120) for v, e in uploads[warm : warm + final_n]]
        bench.log(f"callbacks ({label}): {final_n} final events (TranscodeComplete, confirmed with VOD) ...")
        fdata = bench.replay("vod_callback", warm_events[:10] + final, db, warmup=10, keep_bodies=True)
        row["final_confirmed"] = _rate(fdata)
        rows[label] = row
    pg_rate = rows.get("PostgreSQL", {}).get("events_per_s")
    return {
        "uploads": n,
        "duplicate_share": DUPLICATE_SHARE,
        "databases": rows,
        # None (shown "n/a") when PostgreSQL was not measured
        "goals": {"postgres_ge_1500_per_s": None if pg_rate is None else pg_rate >= 1500},
    }
