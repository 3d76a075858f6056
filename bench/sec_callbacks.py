"""Section 4, callback throughput: VOD events through the vod_callback handler, one process.

Per database and per delivery mode (VOD's signed HTTP callback; an FC 3.0 MNS queue-trigger
invocation carrying one message): ``U`` uploads are created through the credentials handler (so
VOD's echoed ``Extend`` carries our owner binding, as in production); then each upload gets
FileUploadComplete and StreamTranscodeComplete (the non-final events, no call to VOD), and 30 % of
all events delivered are duplicates (VOD's retries: the same body with a new timestamp and
signature; the queue's redeliveries: the same message), each placed at a random point after its
original. A second, smaller pass sends TranscodeComplete (a final event: confirmed with
GetVideoInfo before it is applied) to report that path's rate too.

Webhooks on against off (HTTP mode) is measured as interleaved rounds on the same database,
each pass on uploads of its own: off, on (``WEBHOOK_DELIVERY=immediate``: sent right after each
change) and timer (``WEBHOOK_DELIVERY=timer``: only written to the outbox, for the next cleanup
run), the order rotating from round to round, so that the machine's drift over minutes weighs on
every side alike; each ratio is the median of the rounds' ratios against off.
"""

from __future__ import annotations

import json
import random
import statistics
import time
import uuid
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


def callback_stream(
    uploads: list[tuple[str, str]], rng: random.Random, *, mode: str = "http"
) -> tuple[list[bytes], int]:
    """FileUploadComplete then StreamTranscodeComplete for every upload, as signed HTTP callbacks
    or (``mode="mns"``) queue-trigger invocations, with duplicates after their originals
    (``DUPLICATE_SHARE`` of the deliveries); and how many duplicates."""
    first = [("FileUploadComplete", vid, ext, _iso(0)) for vid, ext in uploads]
    second = [("StreamTranscodeComplete", vid, ext, _iso(60)) for vid, ext in uploads]
    rng.shuffle(first)
    rng.shuffle(second)
    unique = first + second
    bodies = [json.dumps(events.vod_event_body(t, v, extend=e, event_time=ts), separators=(",", ":"))
              for t, v, e, ts in unique]  # fmt: skip
    ts = int(time.time())
    ids = [uuid.UUID(int=rng.getrandbits(128)).hex.upper() for _ in bodies]

    def deliver(j: int, k: int) -> bytes:
        # a retry: the same body with a new timestamp and signature, or the same queue message
        if mode == "mns":
            return events.queue_event(bodies[j], message_id=ids[j])
        return events.callback_event(bodies[j], timestamp=ts + (0 if k < 0 else 1 + k % 30))

    keyed: list[tuple[float, bytes]] = [(float(i), deliver(i, -1)) for i in range(len(bodies))]
    n_dup = round(DUPLICATE_SHARE / (1 - DUPLICATE_SHARE) * len(bodies))
    for k in range(n_dup):
        j = rng.randrange(len(bodies))
        keyed.append((rng.uniform(j + 0.01, len(bodies)), deliver(j, k)))
    keyed.sort(key=lambda kv: kv[0])
    stream = [e for _, e in keyed]
    return stream, n_dup


def _rate(data: dict[str, Any]) -> dict[str, Any]:
    samples = data["samples"]
    busy = sum(samples)
    results = Counter()
    for body in data["bodies"]:
        try:
            answer = json.loads(body)
            if "Result" in answer or "Code" in answer:  # an HTTP callback's answer
                results[answer.get("Result", answer.get("Code"))] += 1
            else:  # a queue invocation's: the count of each result
                results.update({k: int(v) for k, v in answer.items()})
        except (ValueError, AttributeError, TypeError):
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


# The app's notifications (issue: webhooks on costs at most 15 % of the callback throughput): an
# HTTPS receiver (a stub process of its own: the app is not VOD), signed and sent right after each
# state change's commit.
WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WEBHOOK_ROUNDS = 6  # off/on/timer rounds per database (quick: 2)
_SIDES = ("off", "on", "timer")


def _pass(
    bench: Bench,
    db: str,
    label: str,
    mode: str,
    n: int,
    rng: random.Random,
    *,
    final: bool = True,
    **env: str,
) -> dict[str, Any]:
    """One database's and one delivery mode's measurement, on uploads of its own; with ``final``,
    a second pass of final events (confirmed with VOD) too."""
    warm = 50
    wrap = events.queue_event if mode == "mns" else events.callback_event
    bench.log(f"callbacks ({label}, {mode}): creating {n + warm} uploads through the credentials handler ...")
    uploads = seed_uploads(bench, db, n + warm)
    warm_events = [wrap(events.vod_event_body("FileUploadComplete", v, extend=e, event_time=_iso(0)))
                   for v, e in uploads[:warm]]  # fmt: skip
    stream, n_dup = callback_stream(uploads[warm:], rng, mode=mode)
    bench.log(f"callbacks ({label}, {mode}): {len(stream)} events ({n_dup} duplicates) ...")
    data = bench.replay("vod_callback", warm_events + stream, db, warmup=warm, keep_bodies=True, **env)
    row = _rate(data)
    row["duplicates_sent"] = n_dup
    if not final:
        return row
    final_n = min(n, 500)
    final = [wrap(events.vod_event_body("TranscodeComplete", v, extend=e, event_time=_iso(120)))
             for v, e in uploads[warm : warm + final_n]]  # fmt: skip
    bench.log(
        f"callbacks ({label}, {mode}): {final_n} final events (TranscodeComplete, confirmed with VOD) ..."
    )
    fdata = bench.replay("vod_callback", warm_events[:10] + final, db, warmup=10, keep_bodies=True)
    row["final_confirmed"] = _rate(fdata)
    return row


def _outbox(db: str) -> dict[str, int]:
    from shared.store import create_store

    store = create_store(db)
    try:
        counts = store.notification_counts()
    finally:
        store.close()
    return {"pending": counts.pending, "delivered": counts.delivered, "dead": counts.dead}


def _webhook_pairs(bench: Bench, db: str, label: str, n: int, rng: random.Random) -> dict[str, Any]:
    """Interleaved off/on/timer passes of ``n`` uploads each (see the module docstring)."""
    hooks = {"WEBHOOK_URL": f"{bench.receiver.endpoint}/__hook", "WEBHOOK_SECRET": WEBHOOK_SECRET}
    env = {"off": {}, "on": hooks, "timer": {**hooks, "WEBHOOK_DELIVERY": "timer"}}
    rounds = 2 if bench.opts.quick else WEBHOOK_ROUNDS
    passes: dict[str, list[dict[str, Any]]] = {side: [] for side in _SIDES}
    ratios: dict[str, list[float]] = {"on": [], "timer": []}
    for i in range(rounds):
        got: dict[str, dict[str, Any]] = {}
        for side in _SIDES[i % 3 :] + _SIDES[: i % 3]:
            bench.log(f"callbacks ({label}): webhooks {side}, round {i + 1}/{rounds}")
            before, written = bench.receiver.stats()["calls"].get("webhook", 0), _outbox(db)
            row = _pass(bench, db, label, "http", n, rng, final=False, **env[side])
            row["delivered"] = bench.receiver.stats()["calls"].get("webhook", 0) - before
            # what the pass wrote to the outbox: every change's notification (left pending by timer)
            row["outbox"] = {k: v - written[k] for k, v in _outbox(db).items()}
            got[side] = row
            passes[side].append(row)
        for side, each in ratios.items():
            if got["off"]["events_per_s"] and got[side]["events_per_s"]:
                each.append(got[side]["events_per_s"] / got["off"]["events_per_s"])
    return {
        "uploads": n,
        **passes,
        "pair_ratios": ratios["on"],  # the key older results use for on/off
        "ratio": statistics.median(ratios["on"]) if ratios["on"] else None,
        "timer_ratios": ratios["timer"],
        "timer_ratio": statistics.median(ratios["timer"]) if ratios["timer"] else None,
    }


def run(bench: Bench) -> dict[str, Any]:
    n = bench.opts.callback_uploads
    rng = random.Random(bench.opts.seed)
    kinds = ["sqlite"] + (["postgres"] if bench.pg_ok else [])
    rows: dict[str, Any] = {}
    for kind in kinds:
        label = "PostgreSQL" if kind == "postgres" else "SQLite"
        db = bench.new_db(kind)
        rows[label] = _pass(bench, db, label, "http", n, rng)
        rows[label]["mns"] = _pass(bench, db, label, "mns", n, rng)
        rows[label]["webhooks"] = _webhook_pairs(bench, db, label, max(100, n // 3), rng)
    pg_rate = rows.get("PostgreSQL", {}).get("events_per_s")
    ratios = {
        f"webhooks_on_vs_off_{label.lower()}": row["webhooks"]["ratio"]
        for label, row in rows.items()
        if row["webhooks"]["ratio"] is not None
    }
    timer = {
        f"webhooks_timer_vs_off_{label.lower()}": row["webhooks"]["timer_ratio"]
        for label, row in rows.items()
        if row["webhooks"]["timer_ratio"] is not None
    }
    return {
        "uploads": n,
        "duplicate_share": DUPLICATE_SHARE,
        "databases": rows,
        "ratios": {**ratios, **timer},
        # None (shown "n/a") when PostgreSQL was not measured
        "goals": {
            "postgres_ge_1500_per_s": None if pg_rate is None else pg_rate >= 1500,
            # the goal is for the default, immediate delivery; timer is the operator's option
            "webhooks_on_ge_0_85_of_off": all(r >= 0.85 for r in ratios.values()) if ratios else None,
            "webhooks_timer_ge_0_85_of_off": all(r >= 0.85 for r in timer.values()) if timer else None,
        },
    }
