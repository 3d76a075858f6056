"""Section 3, warm overhead: one warm instance serving creates back to back, against the same call
made with each SDK and against a raw-socket floor, all to the same HTTPS stub (kept-alive)."""

from __future__ import annotations

import math
import pstats
import re
import uuid
from pathlib import Path
from typing import Any

from bench import events
from bench.core import Bench
from bench.stats import percentile, ratio

__all__ = ["create_events", "profile_summary", "run"]

PER_OWNER = 8  # below MAX_PENDING_UPLOADS_PER_OWNER (10): the quota never refuses a bench request


def create_events(n: int, prefix: str) -> list[bytes]:
    owners = math.ceil(n / PER_OWNER)
    tokens = [events.jwt_token(f"{prefix}-{uuid.uuid4().hex[:8]}-{i}") for i in range(owners)]
    return [events.create_event(tokens[i // PER_OWNER]) for i in range(n)]


def _latency(data: dict[str, Any]) -> dict[str, Any]:
    samples = data["samples"]
    busy = sum(samples)
    return {
        "n": len(samples),
        "p50_ms": percentile(samples, 50) * 1000,
        "p90_ms": percentile(samples, 90) * 1000,
        "p99_ms": percentile(samples, 99) * 1000,
        "mean_ms": busy / len(samples) * 1000 if samples else math.nan,
        "rps": len(samples) / busy if busy else math.nan,
    }


C_BUCKETS = (
    ("_ssl", "ssl (C)"),
    ("sqlite3", "sqlite3 (C)"),
    ("socket", "socket (C)"),
    ("pydantic_core", "pydantic_core (C)"),
    ("json", "json (C)"),
    ("hmac", "hashlib/hmac (C)"),
    ("_hashlib", "hashlib/hmac (C)"),
)


def _bucket(filename: str, func: str) -> str:
    if filename == "~":
        for key, name in C_BUCKETS:
            if key in func:
                return name
        return "builtins (C)"
    m = re.search(r"/(shared|functions)/(.+?)\.py$", filename)
    if m:
        return f"{m.group(1)}/{m.group(2)}"
    m = re.search(r"/opt/python/([A-Za-z0-9_]+)", filename)  # the PostgreSQL layer (package runtime)
    if m:
        return m.group(1)
    m = re.search(r"(?:site-packages|code/[a-z_-]+|sdk-[a-z]+)/([A-Za-z0-9_]+)", filename)
    if m:
        return m.group(1)
    m = re.search(r"/lib/python3\.\d+/([A-Za-z0-9_]+)", filename)
    if m:
        return f"stdlib:{m.group(1)}"
    return Path(filename).name


def profile_summary(path: Path, *, top: int = 15) -> dict[str, Any]:
    """Self time per package/module and the top functions by cumulative time."""
    st = pstats.Stats(str(path))
    raw: dict[Any, Any] = st.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1.0
    buckets: dict[str, float] = {}
    for (filename, _line, func), (_cc, _nc, tt, _ct, _callers) in raw.items():
        key = _bucket(filename, func)
        buckets[key] = buckets.get(key, 0.0) + tt
    by_cum = sorted(raw.items(), key=lambda kv: -kv[1][3])
    functions = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in by_cum:
        if func.startswith("<") and "built-in" not in func and "method" not in func:
            continue
        functions.append({"function": f"{_bucket(filename, func)}:{func}:{line}", "calls": nc,
                          "cum_pct": 100 * ct / total, "self_pct": 100 * tt / total})  # fmt: skip
        if len(functions) >= top:
            break
    return {
        "self_time_pct": {
            k: round(100 * v / total, 1) for k, v in sorted(buckets.items(), key=lambda kv: -kv[1])[:20]
        },
        "top_cumulative": functions,
    }


# Inclusive wall time per request of the steps of a create (targets that do not exist are skipped).
CREDENTIAL_PHASES = (
    "shared.http:serve",
    "shared.log:configure_logging",
    "shared.auth:authenticate",
    "shared.services.deps:get_deps",
    "shared.services.uploads:create_upload",
    "shared.api_models:parse_request",
    "shared.services.uploads:apply_policy",
    "shared.store.base:SqlStore.find_by_idempotency_key",
    "shared.store.base:SqlStore.reserve_upload",
    "psycopg:Cursor.execute",
    "psycopg:Connection.commit",
    "shared.vod:VodClient.create_upload_video",
    "shared.signing:sign_request",
    "shared.store.base:SqlStore.attach_video",
    "shared.log:log_invocation",
    "shared.log:RedactingFilter.filter",
    "shared.log:JsonFormatter.format",
    "shared.http:json_response",
)


def phase_table(data: dict[str, Any]) -> dict[str, float]:
    """Mean ms per request of each wrapped step (inclusive of what it calls)."""
    n = len(data["samples"]) or 1
    return {k.split(":", 1)[1]: round(v["total_s"] / n * 1000, 3) for k, v in data.get("phases", {}).items()}


def run(bench: Bench) -> dict[str, Any]:
    n = bench.opts.warm_requests
    warmup = max(20, n // 20)
    rt = bench.runtime
    rows: dict[str, Any] = {}

    def vodfc(label: str, db_kind: str) -> None:
        db = bench.new_db(db_kind)
        bench.log(f"warm: {label}, {n} requests ...")
        data = bench.replay("upload_credentials", create_events(warmup + n, "warm"), db, warmup=warmup)
        row = _latency(data)
        row["statuses"] = data["statuses"]
        row["error_bodies"] = data["bodies"][:3]
        rows[label] = row

    vodfc("vodfc credentials (SQLite)", "sqlite")
    if bench.pg_ok:
        vodfc("vodfc credentials (PostgreSQL)", "postgres")
    bench.log(f"warm: vodfc VodClient.create_upload_video alone, {n} calls ...")
    out = bench.tmp / "warm-vodclient.json"
    env = bench.vodfc_env("upload_credentials", bench.new_db())
    data = bench.run_json(rt.argv("vodclient.py", str(n), str(out)), env, out, timeout=600)
    rows["vodfc VodClient alone (no handler)"] = _latency(data)
    for sdk in ("sdk-current", "sdk-legacy"):
        bench.log(f"warm: {sdk} CreateUploadVideo, {n} calls ...")
        out = bench.tmp / f"warm-{sdk}.json"
        argv = rt.argv("sdk.py", sdk.split("-", 1)[1], "create", "warm", str(n), str(out))
        data = bench.run_json(argv, bench.sdk_env(sdk), out, timeout=600)
        rows[f"{sdk} CreateUploadVideo"] = _latency(data)
    bench.log(f"warm: raw TLS socket floor, {n} calls ...")
    out = bench.tmp / "warm-raw.json"
    data = bench.run_json(
        rt.argv("rawsock.py", str(n), str(out)), bench.sdk_env("sdk-legacy"), out, timeout=600
    )
    rows["raw TLS socket (floor)"] = _latency(data)

    bench.log("warm: profiling the credentials handler ...")
    prof = bench.tmp / "warm-credentials.prof"
    np = max(200, n // 3)
    bench.replay(
        "upload_credentials", create_events(warmup + np, "prof"), bench.new_db(), warmup=warmup, profile=prof
    )
    profile = profile_summary(prof)
    def steps(db_kind: str) -> dict[str, float]:
        bench.log(f"warm: timing the steps of a create ({db_kind}) ...")
        timed = bench.replay(
            "upload_credentials",
            create_events(warmup + n, "phases"),
            bench.new_db(db_kind),
            warmup=warmup,
            phases=",".join(CREDENTIAL_PHASES),
        )
        return phase_table(timed)

    phases = steps("sqlite")
    phases_pg = steps("postgres") if bench.pg_ok else {}

    def p50(name: str) -> float | None:
        return rows[name]["p50_ms"] if name in rows else None

    cred = "vodfc credentials (SQLite)"
    cred_pg = "vodfc credentials (PostgreSQL)"
    ratios = {
        "credentials_vs_current_p50": ratio(p50(cred), p50("sdk-current CreateUploadVideo")),
        "credentials_pg_vs_current_p50": ratio(p50(cred_pg), p50("sdk-current CreateUploadVideo")),
        "credentials_vs_legacy_p50": ratio(p50(cred), p50("sdk-legacy CreateUploadVideo")),
        "credentials_vs_raw_p50": ratio(p50(cred), p50("raw TLS socket (floor)")),
        "current_vs_raw_p50": ratio(p50("sdk-current CreateUploadVideo"), p50("raw TLS socket (floor)")),
        "vodclient_vs_current_p50": ratio(
            p50("vodfc VodClient alone (no handler)"), p50("sdk-current CreateUploadVideo")
        ),
    }
    return {
        "requests": n,
        "warmup": warmup,
        "variants": rows,
        "ratios": ratios,
        "goals": {
            "credentials_le_1.5_current_sdk": (ratios["credentials_vs_current_p50"] or 99) <= 1.5,
            "credentials_pg_le_2.5_current_sdk": (
                None if ratios["credentials_pg_vs_current_p50"] is None
                else ratios["credentials_pg_vs_current_p50"] <= 2.5
            ),
        },
        "profile": profile,
        "phases_ms": phases,
        "phases_ms_postgres": phases_pg,
    }
