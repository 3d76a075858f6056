"""``python -m bench [--quick] [--only SECTION,...] [--runs N] [--runtime auto|package|venv]``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench.core import SECTIONS, Bench, Options
from bench.report import machine_info, render

ROOT = Path(__file__).resolve().parent.parent


def parse(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="a short development run (5 runs, small workloads)")
    p.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    p.add_argument("--runs", type=int, help="cold-start runs per variant (default 20, quick 5)")
    p.add_argument("--runtime", choices=("auto", "package", "venv"), default="auto")
    p.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL measurements")
    p.add_argument("--cleanup-sizes", help="comma-separated upload counts (default 10000,100000)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--keep-tmp", action="store_true", help="keep the work dir (logs, DBs, packages)")
    a = p.parse_args(argv)
    opts = Options(
        quick=a.quick, runtime=a.runtime, out=Path(a.out), keep_tmp=a.keep_tmp, postgres=not a.no_postgres
    )
    if a.quick:
        opts.runs, opts.warm_requests, opts.callback_uploads, opts.cleanup_sizes = (
            5,
            300,
            200,
            (1_000, 10_000),
        )
    if a.runs:
        opts.runs = a.runs
    if a.cleanup_sizes:
        opts.cleanup_sizes = tuple(int(x) for x in a.cleanup_sizes.split(","))
    if a.only:
        wanted = tuple(s.strip() for s in a.only.split(",") if s.strip())
        unknown = set(wanted) - set(SECTIONS)
        if unknown:
            p.error(f"unknown sections: {sorted(unknown)}")
        opts.sections = wanted
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    results: dict[str, Any] = {"machine": machine_info(), "quick": opts.quick, "options": {
        "runs": opts.runs, "sections": list(opts.sections), "runtime": opts.runtime,
        "warm_requests": opts.warm_requests, "callback_uploads": opts.callback_uploads,
        "cleanup_sizes": list(opts.cleanup_sizes), "postgres": opts.postgres,
    }}  # fmt: skip
    started = time.perf_counter()
    bench = Bench(opts)
    errors: dict[str, str] = {}
    try:
        from bench import sec_callbacks, sec_cleanup, sec_cold, sec_package, sec_scale, sec_tls, sec_warm

        # The packages are built first in any case: the "package" runtime runs from them.
        runners = {"package": sec_package.run, "cold": sec_cold.run, "warm": sec_warm.run,
                   "callbacks": sec_callbacks.run, "cleanup": sec_cleanup.run,
                   "scale": sec_scale.run, "tls": sec_tls.run}  # fmt: skip
        for section in SECTIONS:
            if section != "package" and section not in opts.sections:
                continue
            try:
                out = runners[section](bench)
            except Exception:
                errors[section] = traceback.format_exc()
                bench.log(f"{section} FAILED:\n{errors[section]}")
                continue
            if section in opts.sections:
                results[section] = out
    finally:
        bench.close()
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["runtime"] = {"kind": bench.runtime.kind, "python": bench.runtime.python}
    results["elapsed_s"] = time.perf_counter() - started
    if errors:
        results["errors"] = errors
    text = render(results)
    print(text)
    out_dir = opts.out
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(results, indent=1, default=str)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (out_dir / f"{stamp}{'-quick' if opts.quick else ''}.json").write_text(payload)
    (out_dir / "latest.json").write_text(payload)
    (out_dir / "latest.txt").write_text(text + "\n")
    print(f"\nsaved {out_dir / 'latest.json'} ({results['elapsed_s']:.0f} s)", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
