"""Child process: a vodfc handler, imported fresh, serving FC 3.0 events (``handler(bytes, ctx)``).

Run by path: ``python vodfc.py cold <events-file>`` or
``python vodfc.py replay <events-file> <result-file> [--warmup N] [--keep-bodies] [--profile F]
[--phases module:attr,module:Class.method,...]``.
``BENCH_CODE_DIR`` is the function's code directory (its ``index.py`` at the top, as FC loads it;
in "package" runtime it is the unzipped deployment package). The events file holds one JSON
event per line; ``cold`` serves the first one and prints ``BENCH {json}`` at once (the parent's
clock stops on that line); ``replay`` serves them all and writes per-event latencies.
"""

import time

T0 = time.perf_counter()

import os  # noqa: E402
import sys  # noqa: E402


def _peak_rss_kb():
    """VmHWM: this process's own peak RSS (getrusage's ru_maxrss keeps the parent's across fork+exec)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


HEAVY = (
    "psycopg", "sqlite3", "cryptography", "jwt", "httpx", "httpcore", "ssl", "pydantic", "pydantic_core",
    "pydantic_settings", "yaml", "waitress", "asyncio", "email", "aliyunsdkcore", "alibabacloud_tea",
    "certifi", "anyio", "h11", "idna", "uuid", "decimal",
)  # fmt: skip


def _context(i):
    from types import SimpleNamespace

    credentials = SimpleNamespace(
        access_key_id="STS.NUbenchexampleaccesskey",
        access_key_secret="bench-secret-not-real-0123456789",
        security_token="CAISbenchtoken" + "x" * 400,
    )
    function = SimpleNamespace(
        name=os.environ.get("BENCH_FUNCTION", "bench"),
        handler="index.handler",
        memory=256,
        timeout=60,
        initializer=None,
    )
    service = SimpleNamespace(name="vodfc", log_project="", log_store="", qualifier="LATEST", version_id="")
    return SimpleNamespace(
        request_id=f"1-bench-{os.getpid()}-{i}",
        credentials=credentials,
        function=function,
        service=service,
        region="cn-shanghai",
        account_id="1234567890123456",
        tracing=None,
    )


def _install_phase_timers(spec):
    """Wrap ``module:attr`` / ``module:Class.method`` callables with timers (inclusive wall time).

    Module-level functions are also replaced wherever another loaded module imported them by name.
    Targets that do not exist are skipped (the code under test moves; the bench must not break).
    """
    import importlib

    timers = {}
    clock = time.perf_counter
    for target in spec.split(","):
        mod_name, _, attr = target.partition(":")
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        owner, name = mod, attr
        if "." in attr:
            cls_name, name = attr.split(".", 1)
            owner = getattr(mod, cls_name, None)
        original = getattr(owner, name, None) if owner is not None else None
        if original is None or not callable(original):
            continue
        stats = timers.setdefault(target, [0, 0.0])

        def wrapper(*args, __f=original, __s=stats, **kwargs):
            t = clock()
            try:
                return __f(*args, **kwargs)
            finally:
                __s[0] += 1
                __s[1] += clock() - t

        setattr(owner, name, wrapper)
        if owner is mod:
            for other in list(sys.modules.values()):
                namespace = getattr(other, "__dict__", None)
                if not namespace or not getattr(other, "__name__", "").startswith(("shared", "index")):
                    continue
                for key, value in list(namespace.items()):
                    if value is original:
                        setattr(other, key, wrapper)
    return timers


def _status(result):
    if isinstance(result, dict):
        return result.get("statusCode", 200), result.get("body")
    return 200, result


def main():
    mode, events_file = sys.argv[1], sys.argv[2]
    code_dir = os.environ.get("BENCH_CODE_DIR")
    if code_dir:
        sys.path.insert(0, code_dir)
    import index

    t_import = time.perf_counter()
    if os.environ.get("BENCH_PHASE_MARK"):
        sys.stderr.write("BENCH-PHASE import-done\n")
    handler = index.handler
    if mode == "cold":
        with open(events_file, "rb") as fh:
            event = fh.readline().rstrip(b"\n")
        status, body = _status(handler(event, _context(0)))
        t1 = time.perf_counter()
        import json

        rss = _peak_rss_kb()
        print(
            "BENCH "
            + json.dumps(
                {
                    "in_process_ms": (t1 - T0) * 1000,
                    "import_ms": (t_import - T0) * 1000,
                    "call_ms": (t1 - t_import) * 1000,
                    "maxrss_kb": rss,
                    "status": status,
                    "answer": str(body)[:300],
                    "modules": len(sys.modules),
                    "heavy": sorted(m for m in HEAVY if m in sys.modules),
                }
            ),
            flush=True,
        )
        return
    import json

    out = sys.argv[3]
    opts = sys.argv[4:]
    keep = "--keep-bodies" in opts
    warmup = int(opts[opts.index("--warmup") + 1]) if "--warmup" in opts else 0
    profile_to = opts[opts.index("--profile") + 1] if "--profile" in opts else None
    phases = opts[opts.index("--phases") + 1] if "--phases" in opts else None
    with open(events_file, "rb") as fh:
        events = [line.rstrip(b"\n") for line in fh if line.strip()]
    contexts = [_context(i) for i in range(len(events))]
    samples = []
    statuses = {}
    bodies = []
    clock = time.perf_counter
    for event, ctx in zip(events[:warmup], contexts[:warmup], strict=True):
        status, body = _status(handler(event, ctx))
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if keep or (status != 200 and len(bodies) < 5):
            bodies.append(body if isinstance(body, str) else str(body))
    rss_before = _peak_rss_kb()
    timers = _install_phase_timers(phases) if phases else {}
    profiler = None
    if profile_to:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start = clock()
    for event, ctx in zip(events[warmup:], contexts[warmup:], strict=True):
        t = clock()
        result = handler(event, ctx)
        samples.append(clock() - t)
        status, body = _status(result)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if keep or (status != 200 and len(bodies) < 5):
            bodies.append(body if isinstance(body, str) else str(body))
    total = clock() - start
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_to)
    with open(out, "w") as fh:
        json.dump(
            {
                "samples": samples,
                "total_s": total,
                "statuses": statuses,
                "bodies": bodies,
                "import_ms": (t_import - T0) * 1000,
                "maxrss_kb_before": rss_before,
                "maxrss_kb": _peak_rss_kb(),
                "phases": {k: {"calls": c, "total_s": t} for k, (c, t) in timers.items()},
            },
            fh,
        )


if __name__ == "__main__":
    main()
