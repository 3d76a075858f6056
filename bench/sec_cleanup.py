"""Section 5, cleanup at scale: one timer run over N abandoned uploads against the stub.

The stub says every queried video is still ``Uploading`` (abandoned), so each batch of 20 costs one
GetVideoInfos and one DeleteVideo. VOD calls are counted by the stub; peak RSS is the child's.
SQLite runs the configured sizes (10,000 and 100,000); PostgreSQL a tenth of them (the same 10x
step). The run's time budget is the production one (``CLEANUP_TIME_BUDGET_SECONDS=240``): a run that
cannot finish in it reports ``out_of_time`` and its rate is extrapolated.
"""

from __future__ import annotations

import json
import math
from typing import Any

from bench import events, seed
from bench.core import Bench
from bench.stats import ratio

__all__ = ["run"]

BUDGET_SECONDS = 240


def _one(bench: Bench, kind: str, n: int) -> dict[str, Any]:
    db = bench.new_db(kind)
    if kind == "sqlite":
        seed.migrate(db)
    label = "PostgreSQL" if kind == "postgres" else "SQLite"
    bench.log(f"cleanup ({label}): seeding {n:,} abandoned uploads ...")
    seed.seed_abandoned(db, n)
    bench.stub.reset()
    bench.stub.configure(infos_status="Uploading")
    bench.log(f"cleanup ({label}): one run over {n:,} abandoned uploads ...")
    data = bench.replay(
        "cleanup", [events.timer_event()], db, keep_bodies=True, timeout=BUDGET_SECONDS + 300,
        CLEANUP_TIME_BUDGET_SECONDS=str(BUDGET_SECONDS), CLEANUP_MAX_UPLOADS_PER_RUN=str(max(n, 200_000)),
    )  # fmt: skip
    stats = bench.stub.stats()
    calls = stats["calls"]
    try:
        summary = json.loads(data["bodies"][0])
    except (ValueError, IndexError, TypeError):
        summary = {"raw": data["bodies"][:1]}
    wall = data["samples"][0] if data["samples"] else data["total_s"]
    scanned = summary.get("scanned") or 0
    pages = calls.get("SearchMedia", 0)
    allowed = 2 * math.ceil(n / 20) + pages
    total_calls = sum(calls.values())
    return {
        "uploads": n,
        "database": label,
        "wall_s": wall,
        "uploads_per_s": scanned / wall if wall else None,
        "extrapolated_wall_s": wall * n / scanned if scanned and scanned < n else wall,
        "vod_calls": total_calls,
        "vod_calls_by_action": calls,
        "vod_calls_allowed": allowed,
        "connections": stats.get("connections"),
        "summary": summary,
        "maxrss_mb": data["maxrss_kb"] / 1024,
        "maxrss_after_import_mb": data["maxrss_kb_before"] / 1024,
        "statuses": data["statuses"],
    }


def run(bench: Bench) -> dict[str, Any]:
    sizes = sorted(bench.opts.cleanup_sizes)
    kinds = ["sqlite"] + (
        ["postgres"] if bench.pg_ok and bench.opts.extra.get("cleanup_postgres", True) else []
    )
    rows: dict[str, list[dict[str, Any]]] = {}
    for kind in kinds:
        # PostgreSQL at a tenth of the sizes: same 10x step, and the whole bench stays < 10 min.
        scaled = sizes if kind == "sqlite" else [max(100, n // 10) for n in sizes]
        rows[kind] = [_one(bench, kind, n) for n in scaled]
    bench.stub.configure(infos_status="Uploading")
    checks: dict[str, Any] = {}
    for kind, results in rows.items():
        small, big = results[0], results[-1]
        checks[kind] = {
            "calls_within_bound": all(r["vod_calls"] <= r["vod_calls_allowed"] for r in results),
            "time_ratio": ratio(big["extrapolated_wall_s"], small["extrapolated_wall_s"]),
            "size_ratio": big["uploads"] / small["uploads"],
            "rss_growth_mb": big["maxrss_mb"] - small["maxrss_mb"],
            "all_expired": all((r["summary"].get("deleted") or 0) == r["uploads"] for r in results),
        }
    sqlite = checks.get("sqlite", {})
    goals = {
        "calls_le_2x_batches_plus_pages": all(c["calls_within_bound"] for c in checks.values()),
        "time_ratio_le_11": all((c["time_ratio"] or 99) <= 1.1 * c["size_ratio"] for c in checks.values()),
        # "flat": the larger run needs at most 16 MiB more peak RSS than the smaller one
        "memory_flat": all(c["rss_growth_mb"] <= 16 for c in checks.values()),
    }
    return {"sizes": sizes, "runs": rows, "checks": checks, "goals": goals, "sqlite": sqlite}
