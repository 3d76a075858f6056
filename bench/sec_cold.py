"""Section 1, cold start: a fresh interpreter imports the handler and serves its first request.

Every variant runs ``runs`` times, interleaved (each round in a new random order), after one
untimed warm-up run each (page cache, and .pyc in the venv runtime). The parent's clock runs from
spawning the process to reading the child's ``BENCH`` line, which the child prints as soon as the
first answer is in; the child also reports its own in-process time and peak RSS.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import events, seed
from bench.core import Bench
from bench.importtime import importtime
from bench.stats import ratio, summary

__all__ = ["run", "spawn"]

Prepare = Callable[[int], tuple[list[str], dict[str, str]]]


@dataclass
class Variant:
    name: str
    group: str  # floor | vodfc | sdk-current | sdk-legacy
    prepare: Prepare
    runs: int
    expect: Callable[[dict[str, Any]], bool] = lambda r: True
    samples: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def spawn(argv: list[str], env: dict[str, str], *, timeout: float = 120) -> dict[str, Any]:
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    first: float | None = None
    data: dict[str, Any] = {}
    for raw in proc.stdout:
        if raw.startswith(b"BENCH "):
            first = time.perf_counter() - started
            data = json.loads(raw[6:])
            break
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    exited = time.perf_counter() - started
    if "-c" in argv:  # floors print nothing: their time is the process's whole life
        first = exited
    if proc.returncode != 0 or first is None:
        raise RuntimeError(f"exit {proc.returncode}: {err.decode(errors='replace')[-1500:]}")
    data["wall_first_ms"] = first * 1000
    data["wall_exit_ms"] = exited * 1000
    return data


def _variants(bench: Bench, runs: int, prep_errors: dict[str, str]) -> list[Variant]:
    rt = bench.runtime
    nopyc_runs = max(3, runs // 3)  # diagnostics, and slow: fewer runs
    variants: list[Variant] = [
        Variant("python -c pass", "floor", lambda i: (rt.floor_argv(), {"PATH": "/usr/bin:/bin"}), runs)
    ]
    # The floor of the chosen stack: what any handler built on pydantic + httpx + PyJWT pays first.
    stack = (
        "import sys; sys.path.insert(0, sys.argv[1]) if sys.argv[1] else None; "
        "import pydantic, httpx, jwt; from pydantic import BaseModel"
    )
    code = rt.code_dir("upload_credentials")
    variants.append(
        Variant(
            "stack floor: import pydantic+httpx+jwt",
            "floor",
            lambda i: ([rt.python, *rt.flags, "-c", stack, code], {"PATH": "/usr/bin:/bin"}),
            runs,
        )
    )

    # --- vodfc credentials: a real create (JWT, validation, policy, signing, HTTPS to the stub, SQLite)
    cred_db = bench.new_db()
    seed.migrate(cred_db)

    def cred(database: str, *, no_pyc: bool = False, copy: bool = True) -> Prepare:
        def prepare(i: int) -> tuple[list[str], dict[str, str]]:
            token = events.jwt_token(f"cold-{uuid.uuid4().hex[:12]}")
            path = bench.write_events([events.create_event(token)])
            url = bench.copy_sqlite(database) if copy else database
            env = bench.vodfc_env("upload_credentials", url, no_pyc=no_pyc)
            return rt.argv("vodfc.py", "cold", str(path), no_pyc=no_pyc), env

        return prepare

    ok200 = _ok200

    variants.append(Variant("vodfc credentials (SQLite)", "vodfc", cred(cred_db), runs, ok200))
    pg = bench.new_db("postgres") if bench.pg_ok else None
    if pg is not None:
        variants.append(Variant("vodfc credentials (PostgreSQL)", "vodfc", cred(pg, copy=False), runs, ok200))
    variants += _floor_variants(bench, runs, cred_db, pg)
    if rt.nopyc:
        variants.append(
            Variant(
                "vodfc credentials (SQLite, no .pyc)", "vodfc", cred(cred_db, no_pyc=True), nopyc_runs, ok200
            )
        )

    # --- vodfc callback: one signed TranscodeComplete for an upload we created (confirmed with VOD)
    # --- vodfc cleanup: one timer run over 20 abandoned uploads (GetVideoInfos + DeleteVideo)
    for kind in ("sqlite", "postgres") if bench.pg_ok else ("sqlite",):
        label = "PostgreSQL" if kind == "postgres" else "SQLite"
        try:
            variants.append(_callback_variant(bench, runs, kind))
        except Exception as exc:
            bench.log(f"cold start: callback variant not prepared: {exc}")
            prep_errors[f"vodfc callback ({label})"] = str(exc)[-1500:]
        try:
            variants.append(_cleanup_variant(bench, runs, kind))
        except Exception as exc:
            bench.log(f"cold start: cleanup variant not prepared: {exc}")
            prep_errors[f"vodfc cleanup ({label}, 20 abandoned)"] = str(exc)[-1500:]

    # --- the SDKs: the same first calls
    calls = {"create": "CreateUploadVideo", "info": "GetVideoInfo", "cleanup": "GetVideoInfos+DeleteVideo"}
    for sdk in ("sdk-current", "sdk-legacy"):
        which = sdk.split("-", 1)[1]
        for kind, label in calls.items():

            def prepare(
                i: int, sdk: str = sdk, which: str = which, kind: str = kind
            ) -> tuple[list[str], dict[str, str]]:
                return rt.argv("sdk.py", which, kind, "cold"), bench.sdk_env(sdk)

            variants.append(Variant(f"{sdk} {label}", sdk, prepare, runs))
        if rt.nopyc:

            def prepare_nopyc(i: int, sdk: str = sdk, which: str = which) -> tuple[list[str], dict[str, str]]:
                return rt.argv("sdk.py", which, "create", "cold", no_pyc=True), bench.sdk_env(
                    sdk, no_pyc=True
                )

            variants.append(Variant(f"{sdk} CreateUploadVideo (no .pyc)", sdk, prepare_nopyc, nopyc_runs))
    return variants


def _ok200(r: dict[str, Any]) -> bool:
    return r.get("status") == 200


def _database(bench: Bench, kind: str) -> tuple[str, Callable[[], str]]:
    """A migrated database of ``kind`` to seed, and a function giving a fresh copy of it per run."""
    seeded = bench.new_db(kind)
    if kind == "sqlite":
        seed.migrate(seeded)
        return seeded, lambda: bench.copy_sqlite(seeded)
    return seeded, lambda: bench.pg.create(template=seeded)


def _callback_variant(bench: Bench, runs: int, kind: str) -> Variant:
    rt = bench.runtime
    cb_db, fresh = _database(bench, kind)
    seeded = bench.replay(
        "upload_credentials",
        [events.create_event(events.jwt_token("cold-callback-owner"))],
        cb_db,
        keep_bodies=True,
    )
    try:
        video_id = json.loads(seeded["bodies"][0])["VideoId"]
    except (KeyError, ValueError, IndexError) as exc:
        raise RuntimeError(f"seeding an upload failed: {seeded['statuses']} {seeded['bodies'][:1]}") from exc
    user_data = json.loads(bench.stub.videos()[video_id]["UserData"] or "{}")
    extend = json.dumps(user_data.get("Extend", {}), separators=(",", ":"))

    def callback(i: int) -> tuple[list[str], dict[str, str]]:
        body = events.vod_event_body("TranscodeComplete", video_id, extend=extend, event_time=_now_iso())
        path = bench.write_events([events.callback_event(body)])
        env = bench.vodfc_env("vod_callback", fresh())
        return rt.argv("vodfc.py", "cold", str(path)), env

    label = "PostgreSQL" if kind == "postgres" else "SQLite"
    return Variant(
        f"vodfc callback ({label})", "vodfc", callback, runs, lambda r: _ok200(r) and "applied" in r["answer"]
    )


def _cleanup_variant(bench: Bench, runs: int, kind: str) -> Variant:
    rt = bench.runtime
    clean_db, fresh = _database(bench, kind)
    seed.seed_abandoned(clean_db, 20)

    def cleanup(i: int) -> tuple[list[str], dict[str, str]]:
        path = bench.write_events([events.timer_event()])
        env = bench.vodfc_env("cleanup", fresh())
        return rt.argv("vodfc.py", "cold", str(path)), env

    label = "PostgreSQL" if kind == "postgres" else "SQLite"
    return Variant(
        f"vodfc cleanup ({label}, 20 abandoned)", "vodfc", cleanup, runs,
        lambda r: _ok200(r) and '"deleted":20' in r["answer"].replace(" ", ""),
    )  # fmt: skip


def _floor_variants(bench: Bench, runs: int, sqlite_db: str, pg_db: str | None) -> list[Variant]:
    """The floor of each function's first call on the same stack (``children/floor.py``)."""
    rt = bench.runtime
    first_events = {
        "credentials": ("upload_credentials", lambda: events.create_event(events.jwt_token("floor"))),
        "callback": ("vod_callback", lambda: events.callback_event(
            events.vod_event_body("TranscodeComplete", uuid.uuid4().hex, extend=None, event_time=_now_iso())
        )),
        "cleanup": ("cleanup", events.timer_event),
    }  # fmt: skip
    out = []
    for mode, (function, make) in first_events.items():
        for label, url in (("SQLite", sqlite_db), ("PostgreSQL", pg_db)):
            if url is None:
                continue

            def prepare(
                i: int, mode: str = mode, function: str = function, make: Any = make, url: str = url
            ) -> tuple[list[str], dict[str, str]]:
                path = bench.write_events([make()])
                return rt.argv("floor.py", mode, str(path)), bench.vodfc_env(function, url)

            out.append(Variant(f"floor {mode} ({label})", "floor", prepare, runs, _ok200))
    return out


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _summarize(v: Variant) -> dict[str, Any]:
    s = v.samples

    def col(key: str) -> list[float]:
        return [float(x[key]) for x in s if key in x]

    out: dict[str, Any] = {
        "group": v.group,
        "runs": len(s),
        "errors": len(v.errors),
        "error_samples": v.errors[:3],
        "wall_first_ms": summary(col("wall_first_ms")),
        "wall_exit_ms": summary(col("wall_exit_ms")),
    }
    for key in ("in_process_ms", "import_ms", "setup_ms", "call_ms"):
        if col(key):
            out[key] = summary(col(key))
    if col("maxrss_kb"):
        out["maxrss_mb"] = summary([x / 1024 for x in col("maxrss_kb")])
    if s:
        last = s[-1]
        for key in ("modules", "heavy", "answer", "status"):
            if key in last:
                out[key] = last[key]
        out["unexpected_answers"] = sum(1 for x in s if not x.get("ok", True))
    return out


def run(bench: Bench) -> dict[str, Any]:
    runs = bench.opts.runs
    bench.log(f"cold start: preparing variants ({bench.runtime.kind} runtime, {runs} runs each) ...")
    prep_errors: dict[str, str] = {}
    variants = _variants(bench, runs, prep_errors)
    rng = random.Random(bench.opts.seed)
    bench.stub.reset()
    for v in variants:  # one untimed warm-up each
        try:
            spawn(*v.prepare(-1))
        except Exception as exc:
            v.errors.append(f"warm-up: {exc}")
    max_runs = max(v.runs for v in variants)
    for r in range(max_runs):
        order = [v for v in variants if v.runs > r]
        rng.shuffle(order)
        for v in order:
            argv, env = v.prepare(r)
            try:
                data = spawn(argv, env)
            except Exception as exc:
                v.errors.append(str(exc)[-800:])
                continue
            data["ok"] = v.expect(data)
            data["round"] = r
            v.samples.append(data)
        if r == 0 or (r + 1) % 5 == 0:
            bench.log(f"cold start: round {r + 1}/{max_runs} done")
    table = {v.name: _summarize(v) for v in variants}
    bench.log("cold start: -X importtime of one run per main variant ...")
    diagnostics: dict[str, Any] = {}
    for v in variants:
        if v.group == "floor" or "no .pyc" in v.name or "PostgreSQL" in v.name:
            continue
        if v.group != "vodfc" and "CreateUploadVideo" not in v.name:
            continue
        try:
            diagnostics[v.name] = importtime(*v.prepare(-2))
        except Exception as exc:
            diagnostics[v.name] = {"ok": False, "error": str(exc)[-500:]}
    diagnostics["python -c pass"] = importtime(bench.runtime.floor_argv(), {"PATH": "/usr/bin:/bin"})

    def med(name: str) -> float | None:
        row = table.get(name)
        return row["wall_first_ms"]["median"] if row and row["runs"] else None

    floor = med("python -c pass") or 0.0

    def net(name: str) -> float | None:
        m = med(name)
        return None if m is None else m - floor

    pairs = {
        "credentials_vs_floor": ("vodfc credentials (SQLite)", "floor credentials (SQLite)"),
        "credentials_pg_vs_floor": ("vodfc credentials (PostgreSQL)", "floor credentials (PostgreSQL)"),
        "callback_vs_floor": ("vodfc callback (SQLite)", "floor callback (SQLite)"),
        "callback_pg_vs_floor": ("vodfc callback (PostgreSQL)", "floor callback (PostgreSQL)"),
        "cleanup_vs_floor": ("vodfc cleanup (SQLite, 20 abandoned)", "floor cleanup (SQLite)"),
        "cleanup_pg_vs_floor": ("vodfc cleanup (PostgreSQL, 20 abandoned)", "floor cleanup (PostgreSQL)"),
        "credentials_vs_current": ("vodfc credentials (SQLite)", "sdk-current CreateUploadVideo"),
        "credentials_vs_legacy": ("vodfc credentials (SQLite)", "sdk-legacy CreateUploadVideo"),
        "credentials_pg_vs_current": ("vodfc credentials (PostgreSQL)", "sdk-current CreateUploadVideo"),
        "credentials_pg_vs_legacy": ("vodfc credentials (PostgreSQL)", "sdk-legacy CreateUploadVideo"),
        "callback_vs_current": ("vodfc callback (SQLite)", "sdk-current GetVideoInfo"),
        "callback_pg_vs_current": ("vodfc callback (PostgreSQL)", "sdk-current GetVideoInfo"),
        "cleanup_pg_vs_current": (
            "vodfc cleanup (PostgreSQL, 20 abandoned)",
            "sdk-current GetVideoInfos+DeleteVideo",
        ),
        "callback_vs_legacy": ("vodfc callback (SQLite)", "sdk-legacy GetVideoInfo"),
        "cleanup_vs_current": (
            "vodfc cleanup (SQLite, 20 abandoned)",
            "sdk-current GetVideoInfos+DeleteVideo",
        ),
        "cleanup_vs_legacy": ("vodfc cleanup (SQLite, 20 abandoned)", "sdk-legacy GetVideoInfos+DeleteVideo"),
        "credentials_nopyc_vs_current_nopyc": (
            "vodfc credentials (SQLite, no .pyc)",
            "sdk-current CreateUploadVideo (no .pyc)",
        ),
        "credentials_nopyc_vs_legacy_nopyc": (
            "vodfc credentials (SQLite, no .pyc)",
            "sdk-legacy CreateUploadVideo (no .pyc)",
        ),
    }
    ratios = {k: ratio(med(a), med(b)) for k, (a, b) in pairs.items() if med(a) and med(b)}
    net_ratios = {k: ratio(net(a), net(b)) for k, (a, b) in pairs.items() if med(a) and med(b)}
    by_name = {v.name: v for v in variants}

    def paired(a: str, b: str) -> float | None:
        # The median of the rounds' own ratios: both runs of a round are minutes closer in time
        # than the rest, so a machine that slows down and speeds up again (a shared host) moves
        # both alike, where it moves the two medians apart.
        firsts = {x["round"]: x["wall_first_ms"] for x in by_name[b].samples} if b in by_name else {}
        values = [
            x["wall_first_ms"] / firsts[x["round"]]
            for x in (by_name[a].samples if a in by_name else [])
            if firsts.get(x["round"])
        ]
        return statistics.median(values) if values else None

    paired_ratios = {k: paired(a, b) for k, (a, b) in pairs.items() if med(a) and med(b)}

    def le(key: str, limit: float) -> bool | None:
        value = paired_ratios.get(key)
        return None if value is None else value <= limit

    goals = {
        "credentials_le_1.2_floor": le("credentials_vs_floor", 1.2),
        "credentials_pg_le_1.2_floor": le("credentials_pg_vs_floor", 1.2),
        "callback_le_1.2_floor": le("callback_vs_floor", 1.2),
        "callback_pg_le_1.2_floor": le("callback_pg_vs_floor", 1.2),
        "cleanup_le_1.2_floor": le("cleanup_vs_floor", 1.2),
        "cleanup_pg_le_1.2_floor": le("cleanup_pg_vs_floor", 1.2),
        "credentials_le_0.45_current": le("credentials_vs_current", 0.45),
        "credentials_pg_le_0.45_current": le("credentials_pg_vs_current", 0.45),
    }
    return {
        "runtime": bench.runtime.kind,
        "python": bench.runtime.python,
        "runs": runs,
        "variants": table,
        "ratios": ratios,
        "ratios_net_of_floor": net_ratios,
        "ratios_paired": paired_ratios,
        "goals": goals,
        "preparation_errors": prep_errors,
        "importtime": diagnostics,
    }
