"""The text table and the machine description saved with every run."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["machine_info", "render"]

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = (
    "httpx",
    "pydantic",
    "pydantic-settings",
    "PyJWT",
    "psycopg",
    "alibabacloud-vod20170321",
    "alibabacloud-tea-openapi",
    "darabonba-core",
    "aliyun-python-sdk-core",
    "aliyun-python-sdk-vod",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info() -> dict[str, Any]:
    versions = {}
    for dist in VERSIONS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    mem = ""
    with contextlib.suppress(OSError, StopIteration):
        lines = Path("/proc/meminfo").read_text().splitlines()
        mem = next(ln for ln in lines if ln.startswith("MemTotal")).split(":")[1].strip()
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory": mem,
        "kernel": platform.release(),
        "python_orchestrator": sys.version.split()[0],
        "loadavg_start": os.getloadavg(),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--", "shared", "functions")),
        "versions": versions,
    }


def _f(value: Any, fmt: str = "{:.1f}") -> str:
    if value is None:
        return "-"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def _goal(ok: bool | None) -> str:
    if ok is None:
        return "n/a (not measured)"
    return "MET" if ok else "MISSED"


def _table(headers: list[str], rows: list[list[str]], *, indent: str = "  ") -> list[str]:
    """Left-align the first column, right-align the others; the last column may run long."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [str(row[0]).ljust(widths[0])]
        for i in range(1, len(headers)):
            cell = str(row[i])
            cells.append(
                cell if i == len(headers) - 1 and i > 1 and not cell[:1].isdigit() else cell.rjust(widths[i])
            )
        lines.append(indent + "  ".join(cells).rstrip())
    return lines


def _ratios_and_goals(
    section: dict[str, Any], net: dict[str, Any] | None = None, paired: dict[str, Any] | None = None
) -> list[str]:
    out = []
    for key, value in section.get("ratios", {}).items():
        extra = f"   (net of `python -c pass`: {_f(net.get(key), '{:.2f}')})" if net else ""
        if paired:
            extra = f"   paired {_f(paired.get(key), '{:.2f}')}" + extra
        out.append(f"  ratio {key:<40} {_f(value, '{:.2f}'):>6}{extra}")
    for goal, ok in section.get("goals", {}).items():
        out.append(f"  goal  {goal:<40} {_goal(ok)}")
    return out


def _cold(cold: dict[str, Any]) -> list[str]:
    out = [
        f"1. COLD START  runtime={cold['runtime']} ({cold['python']}), {cold['runs']} interleaved runs each"
    ]
    rows = []
    for name, v in cold["variants"].items():
        w = v["wall_first_ms"]
        imp = v.get("import_ms") or v.get("setup_ms") or {}
        rows.append(
            [
                name,
                str(v["runs"]),
                f"{_f(w['median'], '{:.0f}')} ({_f(w['p25'], '{:.0f}')}-{_f(w['p75'], '{:.0f}')})",
                _f((v.get("in_process_ms") or {}).get("median"), "{:.0f}"),
                _f(imp.get("median"), "{:.0f}"),
                _f((v.get("call_ms") or {}).get("median"), "{:.0f}"),
                _f((v.get("maxrss_mb") or {}).get("median"), "{:.1f}"),
                str(v["errors"] + v.get("unexpected_answers", 0)),
            ]
        )
    head = ["variant", "n", "wall ms (p25-p75)", "in-proc", "import", "1st call", "peak RSS MB", "err"]
    out += _table(head, rows)
    out.append(
        "  ratio: of the medians; paired: the median of the rounds' own ratios (what the goals use)"
    )
    out += _ratios_and_goals(cold, cold.get("ratios_net_of_floor"), cold.get("ratios_paired"))
    diag = cold.get("importtime", {})
    if diag:
        out.append("  -X importtime, self ms by package (at import | on the first call):")
        for name, d in diag.items():
            if not d.get("ok"):
                continue
            total = d["total_ms"]
            top = ", ".join(f"{k} {v:.0f}" for k, v in list(d["by_package_ms"]["import"].items())[:6])
            first = ", ".join(f"{k} {v:.0f}" for k, v in list(d["by_package_ms"]["first_call"].items())[:4])
            out.append(f"    {name}: {total['import']:.0f} | {total['first_call']:.0f} ms; {top} | {first}")
    return out


def _package(pkg: dict[str, Any]) -> list[str]:
    out = ["2. PACKAGE SIZE  (zip, deflate -9; CPython 3.10, manylinux2014_x86_64)"]
    rows = []
    for name, p in pkg["packages"].items():
        top = ", ".join(f"{k} {v / 1024:.0f}" for k, v in p["top"][:4])
        mib = 2**20
        label = f"{name} (FC layer, shared)" if name == pkg.get("layer") else name
        rows.append(
            [label, f"{p['zip_bytes'] / mib:.2f}", f"{p['unpacked_bytes'] / mib:.2f}", str(p["files"]), top]
        )
    out += _table(["package", "zip MiB", "unpacked MiB", "files", "biggest entries (KiB in the zip)"], rows)
    return out + _ratios_and_goals(pkg)


def _warm(warm: dict[str, Any]) -> list[str]:
    out = [
        f"3. WARM OVERHEAD  {warm['requests']} requests each after {warm['warmup']} warm-up, same HTTPS stub"
    ]
    rows = []
    for name, v in warm["variants"].items():
        bad = {k: c for k, c in v.get("statuses", {}).items() if k != "200"}
        rows.append(
            [
                name,
                f"{v['p50_ms']:.2f}",
                f"{v['p90_ms']:.2f}",
                f"{v['p99_ms']:.2f}",
                f"{v['rps']:.0f}",
                str(bad or ""),
            ]
        )
    out += _table(["variant", "p50 ms", "p90 ms", "p99 ms", "req/s", "non-200"], rows)
    out += _ratios_and_goals(warm)
    for key, db in (("phases_ms", "SQLite"), ("phases_ms_postgres", "PostgreSQL")):
        if phases := warm.get(key, {}):
            items = ", ".join(f"{k} {v:.2f}" for k, v in phases.items())
            out.append(f"  steps of a warm create on {db}, mean ms per request (inclusive): {items}")
    prof = warm.get("profile", {}).get("self_time_pct", {})
    if prof:
        items = ", ".join(f"{k} {v}" for k, v in list(prof.items())[:10])
        out.append(f"  where a warm create spends its time (self %): {items}")
    return out


def _callbacks(cb: dict[str, Any]) -> list[str]:
    out = [
        f"4. CALLBACK THROUGHPUT  {cb['uploads']} uploads x 2 events"
        f" + {cb['duplicate_share']:.0%} duplicates",
        "  http: VOD's signed callback; mns: one FC 3.0 queue-trigger message per invocation;"
        " webhooks off/on/timer: http in interleaved rounds, the app's notifications off, sent"
        " right after each change to an HTTPS receiver (on), or only written for the timer (timer)",
    ]
    rows = []
    for name, by_db in cb["databases"].items():
        hooks = by_db.get("webhooks") or {}
        sides = [side for side in ("off", "on", "timer") if hooks.get(side)]
        pairs = [
            (f"webhooks {side} #{i + 1}", hooks[side][i])
            for i in range(len(hooks.get("off", [])))
            for side in sides
        ]
        for mode, v in (
            ("http", by_db),
            ("mns", by_db.get("mns")),
            *pairs,
        ):
            if not v:
                continue
            fin = v.get("final_confirmed", {})
            res = ", ".join(f"{k} {c}" for k, c in sorted(v["results"].items()))
            if v.get("outbox") and (v["outbox"]["pending"] or v["outbox"]["delivered"]):
                res += f"; notifications sent {v['delivered']}, left pending {v['outbox']['pending']}"
            rows.append(
                [
                    name,
                    mode,
                    str(v["events"]),
                    _f(v["events_per_s"], "{:.0f}"),
                    f"{v['p50_ms']:.2f}",
                    f"{v['p99_ms']:.2f}",
                    _f(fin.get("events_per_s"), "{:.0f}"),
                    _f(fin.get("p99_ms"), "{:.1f}"),
                    res,
                ]
            )
    out += _table(
        [
            "database",
            "mode",
            "events",
            "ev/s",
            "p50 ms",
            "p99 ms",
            "final+confirm ev/s",
            "its p99 ms",
            "results",
        ],
        rows,
    )
    for name, by_db in cb["databases"].items():
        for key, what in (("pair_ratios", "on/off"), ("timer_ratios", "timer/off")):
            got = (by_db.get("webhooks") or {}).get(key)
            if got:
                each = ", ".join(f"{r:.2f}" for r in got)
                out.append(f"  {name}: webhooks {what} per round {each} (median below)")
    return out + _ratios_and_goals(cb)


def _cleanup(cl: dict[str, Any]) -> list[str]:
    out = ["5. CLEANUP AT SCALE  one timer run; every upload abandoned (GetVideoInfos + DeleteVideo per 20)"]
    rows = []
    for results in cl["runs"].values():
        for r in results:
            s = r["summary"]
            brief = {k: s.get(k) for k in ("scanned", "deleted", "errors", "out_of_time") if k in s}
            rows.append(
                [
                    r["database"],
                    f"{r['uploads']:,}",
                    f"{r['wall_s']:.1f}",
                    _f(r["uploads_per_s"], "{:.0f}"),
                    f"{r['vod_calls']:,}",
                    f"{r['vod_calls_allowed']:,}",
                    f"{r['maxrss_mb']:.1f}",
                    str(brief),
                ]
            )
    out += _table(
        ["database", "uploads", "wall s", "up/s", "VOD calls", "allowed", "peak RSS MB", "summary"], rows
    )
    for kind, c in cl["checks"].items():
        out.append(
            f"  {kind}: time ratio {_f(c['time_ratio'], '{:.2f}')} for {c['size_ratio']:.0f}x uploads, "
            f"peak RSS {c['rss_growth_mb']:+.1f} MB, all expired: {c['all_expired']}"
        )
    return out + _ratios_and_goals(cl)


def _scale(sc: dict[str, Any]) -> list[str]:
    if sc.get("skipped"):
        return [f"6. SCALE-OUT  skipped: {sc['skipped']}"]
    srv = sc["server"]
    cb = sc["callbacks"]
    version = srv.get("server_version", "?")
    out = [
        f"6. SCALE-OUT  N warm instances (processes) at once on one PostgreSQL {version}"
        f" (fsync={srv.get('fsync')}, synchronous_commit={srv.get('synchronous_commit')})",
        f"  callbacks: {cb['uploads']} uploads x 2 events + {cb['duplicates']} duplicates, by VideoId",
    ]
    head = ["instances", "events", "ev/s", "p50 ms", "p99 ms", "CPU ms/ev", "PG CPU", "stub CPU"]
    head.append("PG trips/ev")
    head += ["server xacts/ev", "exact"]
    rows = []
    for n, r in cb["by_instances"].items():
        c = r["check"]
        ok = c["all_processing"] and c["inbox_exact"] and c.get("duplicates_answered", True)
        rows.append([n, str(r["events"]), _f(r["events_per_s"], "{:.0f}"), f"{r['p50_ms']:.2f}",
                     f"{r['p99_ms']:.2f}", _f(r.get("cpu_ms_per_event"), "{:.2f}"),
                     _f(r.get("server_cpu_ms_per_event"), "{:.2f}"),
                     _f(r.get("stub_cpu_ms_per_event"), "{:.2f}"), _f(r["round_trips_per_event"], "{:.2f}"),
                     _f(r.get("server_xacts_per_event"), "{:.2f}"), "yes" if ok else f"NO {c}"])  # fmt: skip
    out += _table(head, rows)
    cr = sc["creates"]
    out.append(f"  creates: {cr['per_instance']} per instance through the credentials handler, HTTPS stub")
    rows = []
    for n, r in cr["by_instances"].items():
        rows.append([n, str(r["events"]), _f(r["events_per_s"], "{:.0f}"), f"{r['p50_ms']:.2f}",
                     f"{r['p99_ms']:.2f}", _f(r.get("cpu_ms_per_event"), "{:.2f}"),
                     _f(r.get("server_cpu_ms_per_event"), "{:.2f}"), "",
                     _f(r["round_trips_per_event"], "{:.2f}"), "",
                     "yes" if r["check"]["exact"] else f"NO {r['check']}"])  # fmt: skip
    out += _table(["instances", "creates", "req/s", *head[3:]], rows)
    prof = (cb.get("profile") or {}).get("self_time_pct", {})
    if prof:
        items = ", ".join(f"{k} {v}" for k, v in list(prof.items())[:10])
        out.append(f"  where one instance's callback time goes (self %): {items}")
    return out + _ratios_and_goals(sc)


def _tls(tls: dict[str, Any]) -> list[str]:
    if tls.get("skipped"):
        return [f"7. TLS TRUST  skipped: {tls['skipped']}"]
    out = [
        f"7. TLS TRUST  a fresh interpreter builds its SSL context, one verified request; {tls['runs']} runs"
    ]
    rows = []
    for mode, m in tls["modes"].items():
        rows.append([mode + (" (vodfc)" if mode == tls["vodfc_uses"] else ""),
                     f"{m['context_ms']['median']:.1f}", f"{m['request_ms']['median']:.1f}",
                     f"{m['in_process_ms']['median']:.1f}", str(m["certificates_loaded"])])  # fmt: skip
    out += _table(["trust", "context ms", "1st request ms", "in-process ms", "certs loaded"], rows)
    out.append(
        f"  vodfc's choice saves {tls['saved_ms_vs_bundle']:.1f} ms of a cold start against the bundle"
    )
    return out


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    load = f"load {m['loadavg_start'][0]:.2f}->{m.get('loadavg_end', [0])[0]:.2f}"
    git = f"git {m['git_commit']}{' (dirty)' if m['git_dirty'] else ''}"
    out = [f"vodfc bench  {m['date']}  {m['nproc']} CPU x {m['cpu_model']}  {load}  {git}"]
    if results.get("quick"):
        out.append("QUICK RUN (--quick): fewer runs, smaller workloads; indicative numbers only")
    for key, fn in (("cold", _cold), ("package", _package), ("warm", _warm), ("callbacks", _callbacks),
                    ("cleanup", _cleanup), ("scale", _scale), ("tls", _tls)):  # fmt: skip
        if results.get(key):
            out += ["", *fn(results[key])]
    errors = results.get("errors")
    if errors:
        out += ["", "ERRORS (full tracebacks in the JSON)"]
        for section, msg in errors.items():
            lines = msg.strip().splitlines()
            out.append(f"  {section}: {lines[-1] if lines else msg}")
    return "\n".join(out)
