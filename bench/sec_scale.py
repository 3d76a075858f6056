"""Section 6, scale-out: N warm instances (separate processes) at once on one PostgreSQL.

FC runs one request per Python instance and scales by adding instances, each with its own
connection. For N = 1, 4, 8, 16 (``--quick``: 1, 4, 8), on a copy of one seeded database, with
durable commits (``synchronous_commit`` on, the server's ``fsync`` reported):

- **callbacks**: one callback stream (``sec_callbacks.callback_stream``: FileUploadComplete, which
  is confirmed with GetVideoInfo, and StreamTranscodeComplete for every upload, 30 % of the
  deliveries duplicates) split into N shards by VideoId, each shard in stream order (VOD calls
  back once per event and retries a failed one; one upload's events in one instance keeps the
  final state deterministic). Checked exactly: every upload ends ``processing`` (the stub reports
  ``UploadSucc``, so FileUploadComplete moves to ``uploaded`` and StreamTranscodeComplete on),
  every unique event is in the inbox once and done, every duplicate was answered ``duplicate``;
- **creates**: N instances creating uploads through the credentials handler against the stub
  (its own process). Checked: one ``created`` row with a VideoId per answer, one
  CreateUploadVideo per answer.

Each instance warms up on events of its own (connection, TLS session, imports), writes a ready
file and waits for the parent's start file; the rate is all measured events over the span from
the first start to the last end. PostgreSQL round trips per event are counted in every instance
(statements, the BEGIN psycopg sends before a transaction's first statement, COMMIT, ROLLBACK),
and the server's committed transactions are read from ``pg_stat_database`` (deltas over the run).
"""

from __future__ import annotations

import json
import random
import subprocess
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

from bench.core import Bench, ChildFailed
from bench.sec_callbacks import DUPLICATE_SHARE, callback_stream, seed_uploads, signed
from bench.sec_warm import create_events, profile_summary
from bench.stats import percentile

__all__ = ["run"]

WARM = 5  # warm-up events per instance (its own uploads)
GOAL_EVENTS_PER_S = 1500.0
GOAL_INSTANCES = 8
GOAL_ROUND_TRIPS = 2.0


def _shards(stream: list[bytes], n: int) -> list[list[bytes]]:
    out: list[list[bytes]] = [[] for _ in range(n)]
    for event in stream:
        video_id = json.loads(json.loads(event)["body"])["VideoId"]
        out[zlib.crc32(video_id.encode()) % n].append(event)
    return out


def _instances(
    bench: Bench,
    function: str,
    shards: list[list[bytes]],
    warmups: list[list[bytes]],
    database_url: str,
    *,
    profile: Path | None = None,
    timeout: float = 900,
) -> tuple[list[dict[str, Any]], float]:
    """Run one instance per shard at once; their results and the span of the measured events."""
    run_dir = bench.tmp / "scale" / uuid.uuid4().hex[:8]
    run_dir.mkdir(parents=True)
    start = run_dir / "start"
    env = bench.vodfc_env(function, database_url, BENCH_COUNT_PG="1")
    procs: list[tuple[subprocess.Popen[bytes], Path, Path, Any]] = []
    try:
        for i, (shard, warm) in enumerate(zip(shards, warmups, strict=True)):
            path = bench.write_events(warm + shard)
            out, ready, log = run_dir / f"{i}.json", run_dir / f"{i}.ready", run_dir / f"{i}.log"
            args = ["replay", str(path), str(out), "--warmup", str(len(warm)), "--keep-bodies",
                    "--ready-file", str(ready), "--start-file", str(start)]  # fmt: skip
            if profile is not None and i == 0:
                args += ["--profile", str(profile)]
            fh = open(log, "wb")  # noqa: SIM115 - closed below, after the child
            proc = subprocess.Popen(bench.runtime.argv("vodfc.py", *args), env=env, stdout=fh, stderr=fh)
            procs.append((proc, out, ready, fh))
        deadline = time.monotonic() + timeout
        while not all(ready.exists() for _, _, ready, _ in procs):
            dead = [p for p, _, _, _ in procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise ChildFailed(f"an instance did not get ready: {_tails(procs)}")
            time.sleep(0.01)
        start.write_text("go")
        for proc, _, _, _ in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for proc, _, _, fh in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            fh.close()
    results = []
    for proc, out, _, _ in procs:
        if proc.returncode != 0 or not out.exists():
            raise ChildFailed(f"an instance exited {proc.returncode}: {_tails(procs)}")
        results.append(json.loads(out.read_text()))
    span = max(r["end_mono"] for r in results) - min(r["start_mono"] for r in results)
    return results, span


def _tails(procs: list[tuple[subprocess.Popen[bytes], Path, Path, Any]]) -> str:
    tails = []
    for _, out, _, _ in procs:
        log = out.with_suffix(".log")
        if log.exists():
            tails.append(log.read_text(errors="replace")[-800:])
    return "\n---\n".join(tails[:3])


def _summary(results: list[dict[str, Any]], span: float, n: int) -> dict[str, Any]:
    samples = [s for r in results for s in r["samples"]]
    statuses: dict[str, int] = {}
    answers: dict[str, int] = {}
    trips: dict[str, int] = {}
    for r in results:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
        for k, v in (r.get("pg_round_trips") or {}).items():
            trips[k] = trips.get(k, 0) + v
        for body in r["bodies"][-len(r["samples"]) :] if r["samples"] else []:
            try:
                answer = json.loads(body)
                key = str(
                    answer.get("Result") or answer.get("Code") or ("created" if "VideoId" in answer else "?")
                )
            except (ValueError, AttributeError):
                key = "?"
            answers[key] = answers.get(key, 0) + 1
    sent = sum(v for k, v in trips.items() if k not in {"connect", "pipelined"})
    per_event = sent / len(samples) if samples else None
    cpu = sum(r.get("cpu_s", 0.0) for r in results)
    server_cpu = sum(r.get("server_cpu_s") or 0.0 for r in results)
    return {
        "cpu_ms_per_event": cpu / len(samples) * 1000 if samples else None,
        "server_cpu_ms_per_event": server_cpu / len(samples) * 1000 if samples else None,
        "instances": n,
        "events": len(samples),
        "span_s": span,
        "events_per_s": len(samples) / span if span else None,
        "p50_ms": percentile(samples, 50) * 1000,
        "p99_ms": percentile(samples, 99) * 1000,
        "statuses": statuses,
        "answers": answers,
        "round_trips": trips,
        "round_trips_per_event": per_event,
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _xacts(bench: Bench, url: str) -> int:
    name = url.rsplit("/", 1)[1]
    rows = bench.pg.query(
        bench.pg.admin_url,
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
        (name,),
    )
    return int(rows[0][0]) if rows else 0


def _check_callbacks(bench: Bench, url: str, uploads: list[tuple[str, str]], unique: int) -> dict[str, Any]:
    ids = [v for v, _ in uploads]
    statuses = dict(
        bench.pg.query(
            url, "SELECT status, count(*) FROM uploads WHERE video_id = ANY(%s) GROUP BY 1", (ids,)
        )
    )
    inbox = bench.pg.query(
        url,
        "SELECT count(*), count(DISTINCT dedupe_key), count(*) FILTER (WHERE state = 'done')"
        " FROM event_inbox WHERE media_id = ANY(%s)",
        (ids,),
    )[0]
    return {
        "final_statuses": {k: int(v) for k, v in statuses.items()},
        "all_processing": statuses == {"processing": len(ids)},
        "inbox_rows": int(inbox[0]),
        "inbox_unique": int(inbox[1]),
        "inbox_done": int(inbox[2]),
        "inbox_exact": int(inbox[0]) == int(inbox[1]) == int(inbox[2]) == unique,
    }


def _callbacks(bench: Bench, counts: tuple[int, ...], n_uploads: int, rng: random.Random) -> dict[str, Any]:
    warm_total = WARM * max(counts)
    seed_db = bench.new_db("postgres")
    bench.log(f"scale-out: seeding {n_uploads + warm_total} uploads through the credentials handler ...")
    uploads = seed_uploads(bench, seed_db, n_uploads + warm_total)
    warm, measured = uploads[:warm_total], uploads[warm_total:]
    stream, n_dup = callback_stream(measured, rng)
    unique = len(stream) - n_dup
    warm_events = [signed("FileUploadComplete", v, e, 0) for v, e in warm]
    rows: dict[str, Any] = {}
    bench.stub.configure(info_status="UploadSucc")  # FileUploadComplete confirmed as uploaded
    try:
        for n in counts:
            db = bench.pg.create(template=seed_db)
            before, stub_cpu = _xacts(bench, db), _cpu_seconds(bench.stub.proc.pid)
            bench.log(f"scale-out: callbacks, {n} instance(s), {len(stream)} events ...")
            results, span = _instances(
                bench,
                "vod_callback",
                _shards(stream, n),
                [warm_events[i * WARM : (i + 1) * WARM] for i in range(n)],
                db,
            )
            row = _summary(results, span, n)
            stub_cpu = _cpu_seconds(bench.stub.proc.pid) - stub_cpu
            row["stub_cpu_ms_per_event"] = stub_cpu / row["events"] * 1000
            # The server's transactions over the run, less the instances' warm-up events (one
            # FileUploadComplete each: record_event + apply_event, two autocommit statements).
            row["server_xacts_per_event"] = (_xacts(bench, db) - before - 2 * WARM * n) / row["events"]
            row["check"] = _check_callbacks(bench, db, measured, unique)
            row["check"]["duplicates_answered"] = row["answers"].get("duplicate", 0) == n_dup
            rows[str(n)] = row
        # Where one instance's time goes: a run of its own under cProfile (never a measured one).
        profile = bench.tmp / "scale-callbacks.prof"
        bench.log("scale-out: callbacks, 1 instance under cProfile ...")
        _instances(bench, "vod_callback", [stream], [warm_events[:WARM]], bench.pg.create(template=seed_db),
                   profile=profile)  # fmt: skip
        profiled = profile_summary(profile) if profile.exists() else {}
    finally:
        bench.stub.configure(info_status="Normal")
    return {
        "uploads": len(measured),
        "duplicates": n_dup,
        "unique_events": unique,
        "by_instances": rows,
        "profile": profiled,
    }


def _creates(bench: Bench, counts: tuple[int, ...], per_instance: int) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for n in counts:
        db = bench.new_db("postgres")
        shards = [create_events(per_instance, f"scale{n}-{i}") for i in range(n)]
        warmups = [create_events(WARM, f"scale{n}-warm{i}") for i in range(n)]
        calls_before = bench.stub.stats().get("calls", {}).get("CreateUploadVideo", 0)
        bench.log(f"scale-out: creates, {n} instance(s), {n * per_instance} creates ...")
        results, span = _instances(bench, "upload_credentials", shards, warmups, db)
        row = _summary(results, span, n)
        calls = bench.stub.stats().get("calls", {}).get("CreateUploadVideo", 0) - calls_before
        answered = row["statuses"].get("200", 0)
        created = dict(
            bench.pg.query(db, "SELECT status, count(*) FROM uploads WHERE video_id IS NOT NULL GROUP BY 1")
        )
        row["check"] = {
            "answered_200": answered,
            "rows_created": int(created.get("created", 0)),
            "create_calls": calls,
            # Warm-up creates included: every answer a row and one CreateUploadVideo, no more.
            "exact": answered == int(created.get("created", 0)) == calls == n * (per_instance + WARM),
        }
        rows[str(n)] = row
    return {"per_instance": per_instance, "by_instances": rows}


def run(bench: Bench) -> dict[str, Any]:
    if not bench.pg_ok:
        return {"skipped": f"PostgreSQL not available: {bench.pg.error}"}
    counts = (1, 4, 8) if bench.opts.quick else (1, 4, 8, 16)
    n_uploads = 300 if bench.opts.quick else 1000
    server = bench.pg.settings("fsync", "synchronous_commit", "max_connections", "server_version")
    rng = random.Random(bench.opts.seed + 6)
    callbacks = _callbacks(bench, counts, n_uploads, rng)
    creates = _creates(bench, counts, 100 if bench.opts.quick else 250)
    goal_row = callbacks["by_instances"].get(str(GOAL_INSTANCES), {})
    rate, trips = goal_row.get("events_per_s"), goal_row.get("round_trips_per_event")
    checks = [r["check"] for r in callbacks["by_instances"].values()]
    return {
        "server": server,
        "duplicate_share": DUPLICATE_SHARE,
        "callbacks": callbacks,
        "creates": creates,
        "goals": {
            f"callbacks_{GOAL_INSTANCES}_instances_ge_{GOAL_EVENTS_PER_S:.0f}_per_s": None
            if rate is None
            else rate >= GOAL_EVENTS_PER_S,
            f"callback_round_trips_le_{GOAL_ROUND_TRIPS:.0f}_per_event": None
            if trips is None
            else trips <= GOAL_ROUND_TRIPS,
            "callback_final_states_exact": all(c["all_processing"] and c["inbox_exact"] for c in checks),
            "creates_exact": all(r["check"]["exact"] for r in creates["by_instances"].values()),
        },
    }
