"""Where cold-start time goes: ``-X importtime`` of one cold run, self time per top-level package.

The child writes ``BENCH-PHASE import-done`` to stderr once the handler module is imported, so the
imports are split into "at import" (paid by every cold start before any code runs) and "on the
first call" (deferred imports: paid by the first request).
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from typing import Any

__all__ = ["importtime"]

LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def _top(counter: Counter[str], n: int) -> dict[str, float]:
    return {k: round(v / 1000, 1) for k, v in counter.most_common(n)}


def importtime(argv: list[str], env: dict[str, str], *, top: int = 15) -> dict[str, Any]:
    """Run ``argv`` (python first) with ``-X importtime``; self time (ms) per package and phase."""
    argv = [argv[0], "-X", "importtime", *argv[1:]]
    env = {**env, "BENCH_PHASE_MARK": "1"}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    phases = {"import": Counter[str](), "first_call": Counter[str]()}
    modules = {"import": 0, "first_call": 0}
    biggest: list[tuple[int, str, str]] = []
    phase = "import"
    for line in proc.stderr.splitlines():
        if line.startswith("BENCH-PHASE import-done"):
            phase = "first_call"
            continue
        m = LINE.match(line)
        if not m:
            continue
        self_us, name = int(m.group(1)), m.group(4)
        phases[phase][name.split(".")[0]] += self_us
        modules[phase] += 1
        biggest.append((self_us, name, phase))
    biggest.sort(reverse=True)
    return {
        "ok": proc.returncode == 0,
        "total_ms": {p: round(sum(c.values()) / 1000, 1) for p, c in phases.items()},
        "modules": modules,
        "by_package_ms": {p: _top(c, top) for p, c in phases.items()},
        "slowest_modules_ms": [(n, round(s / 1000, 1), p) for s, n, p in biggest[:top]],
    }
