"""Child process: a vodfc handler, imported fresh, serving FC 3.0 events (``handler(bytes, ctx)``).

Run by path: ``python vodfc.py cold <events-file>`` or
``python vodfc.py replay <events-file> <result-file> [--warmup N] [--keep-bodies] [--profile F]
[--phases module:attr,module:Class.method,...] [--ready-file F --start-file G]``.
``BENCH_CODE_DIR`` is the function's code directory (its ``index.py`` at the top, as FC loads it;
in "package" runtime it is the unzipped deployment package); ``BENCH_LAYER_DIR``, when set, is the
unzipped PostgreSQL layer's ``python/`` (FC's ``/opt/python``), searched after it. The events
file holds one JSON event per line; ``cold`` serves the first one and prints ``BENCH {json}`` at
once (the parent's clock stops on that line); ``replay`` serves them all and writes per-event
latencies. With ``--ready-file``/``--start-file`` the instance writes the first file once warm and
waits for the second before its measured events (instances measured together); with
``BENCH_COUNT_PG=1`` it counts psycopg's round trips during the measured events.
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


def _count_round_trips():
    """Count psycopg's round trips (statements, the BEGIN psycopg sends before the first statement
    of a transaction, COMMIT, ROLLBACK, pipelines, connections) by wrapping its public classes;
    the store's cursor class subclasses ``psycopg.Cursor``, so its statements pass through here.
    The statements of a pipeline (and its BEGIN) are sent together when it ends: the pipeline is
    one round trip, they are counted apart (``pipelined``) and not as round trips."""
    import contextlib

    import psycopg

    counts = {"statements": 0, "begin": 0, "commit": 0, "rollback": 0, "pipelines": 0, "connect": 0,
              "pipelined": 0}  # fmt: skip
    _BACKENDS.clear()
    idle = psycopg.pq.TransactionStatus.IDLE
    execute, commit, rollback = psycopg.Cursor.execute, psycopg.Connection.commit, psycopg.Connection.rollback
    connect = psycopg.Connection.connect.__func__
    pipeline = psycopg.Connection.pipeline

    def counted_execute(self, *args, **kwargs):
        conn = self.connection
        if conn.pgconn.pipeline_status:
            counts["pipelined"] += 1
            return execute(self, *args, **kwargs)
        if not conn.autocommit and conn.info.transaction_status == idle:
            counts["begin"] += 1
        counts["statements"] += 1
        return execute(self, *args, **kwargs)

    @contextlib.contextmanager
    def counted_pipeline(self):
        with pipeline(self) as p:
            yield p
        counts["pipelines"] += 1

    def counted_commit(self):
        if self.info.transaction_status != idle:  # psycopg sends nothing outside a transaction
            counts["commit"] += 1
        return commit(self)

    def counted_rollback(self):
        if self.info.transaction_status != idle:
            counts["rollback"] += 1
        return rollback(self)

    def counted_connect(cls, *args, **kwargs):
        counts["connect"] += 1
        conn = connect(cls, *args, **kwargs)
        _BACKENDS.append(conn.info.backend_pid)
        return conn

    psycopg.Cursor.execute = counted_execute
    psycopg.Connection.commit = counted_commit
    psycopg.Connection.rollback = counted_rollback
    psycopg.Connection.pipeline = counted_pipeline
    psycopg.Connection.connect = classmethod(counted_connect)
    psycopg.connect = psycopg.Connection.connect  # the module's alias, which the store calls
    return counts


_BACKENDS = []  # the server processes of the connections opened (a local server: their CPU is read)


def _cpu_of(pids):
    """User + system CPU seconds of processes ``pids`` (Linux /proc; 0 for one that is gone)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _wait_for(path):
    while not os.path.exists(path):
        time.sleep(0.0005)


def _status(result):
    if isinstance(result, dict):
        return result.get("statusCode", 200), result.get("body")
    return 200, result


def main():
    mode, events_file = sys.argv[1], sys.argv[2]
    code_dir = os.environ.get("BENCH_CODE_DIR")
    if code_dir:
        sys.path.insert(0, code_dir)
    layer_dir = os.environ.get("BENCH_LAYER_DIR")
    if layer_dir:  # FC: /opt/python, after the code
        sys.path.insert(1 if code_dir else 0, layer_dir)
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
    ready_file = opts[opts.index("--ready-file") + 1] if "--ready-file" in opts else None
    start_file = opts[opts.index("--start-file") + 1] if "--start-file" in opts else None
    pg_counts = _count_round_trips() if os.environ.get("BENCH_COUNT_PG") else None
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
    if pg_counts is not None:
        pg_counts.update(dict.fromkeys(pg_counts, 0))  # the measured events only
    if ready_file:
        with open(ready_file, "w") as fh:
            fh.write(str(os.getpid()))
    if start_file:  # instances started together: each waits for the parent's signal
        _wait_for(start_file)
    start_mono, start_cpu, start_server = time.monotonic(), time.process_time(), _cpu_of(_BACKENDS)
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
    end_mono, cpu = time.monotonic(), time.process_time() - start_cpu
    server_cpu = _cpu_of(_BACKENDS) - start_server
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_to)
    with open(out, "w") as fh:
        json.dump(
            {
                "samples": samples,
                "total_s": total,
                "start_mono": start_mono,
                "end_mono": end_mono,
                "cpu_s": cpu,
                "server_cpu_s": server_cpu if _BACKENDS else None,
                "pg_round_trips": pg_counts,
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
