"""Section 7, TLS trust: what building the client's SSL context costs a cold start, by its source.

Each way runs in a fresh interpreter (the runtime's flags), builds its context, then sends one
request to the stub (handshake with full verification, one GetVideoInfo); runs interleaved in a
new random order each round. ``bundle`` is httpx's default (``ssl.create_default_context(cafile=)``
on certifi's bundle, here plus the test CA); ``default`` is ``ssl.create_default_context()``
(OpenSSL's default bundle file, parsed whole, and directory); ``store`` is the hashed certificate
directory alone, which ``shared/vod.py`` prefers when the runtime has one: OpenSSL then reads only
the issuer the handshake needs.
"""

from __future__ import annotations

import random
from typing import Any

from bench.core import Bench
from bench.sec_cold import spawn
from bench.stats import summary

__all__ = ["run"]

MODES = ("bundle", "default", "store")


def run(bench: Bench) -> dict[str, Any]:
    if bench.tls.store is None:
        return {"skipped": "no openssl CLI to lay out the hashed test store"}
    runs = max(5, bench.opts.runs)
    env = bench.sdk_env("sdk-current")  # a small FC-like environment; no code directory is used
    env.update({"BENCH_CA_STORE": str(bench.tls.store), "SSL_CERT_DIR": str(bench.tls.store)})
    samples: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    rng = random.Random(bench.opts.seed + 7)
    for mode in MODES:  # one untimed warm-up each (page cache)
        spawn(bench.runtime.argv("tlsctx.py", mode), env)
    for _ in range(runs):
        order = list(MODES)
        rng.shuffle(order)
        for mode in order:
            samples[mode].append(spawn(bench.runtime.argv("tlsctx.py", mode), env))
    table = {}
    for mode, rows in samples.items():
        table[mode] = {
            key: summary([float(r[key]) for r in rows])
            for key in ("context_ms", "request_ms", "in_process_ms", "wall_first_ms")
        }
        table[mode]["certificates_loaded"] = rows[-1]["certificates_loaded"]
        table[mode]["statuses"] = sorted({r["status"] for r in rows})
    chosen = "store"

    def cost(mode: str) -> float:  # what trusting takes: building the context, then the handshake
        return float(table[mode]["context_ms"]["median"] + table[mode]["request_ms"]["median"])

    saved = cost("bundle") - cost(chosen)
    return {"runs": runs, "modes": table, "vodfc_uses": chosen, "saved_ms_vs_bundle": saved}
