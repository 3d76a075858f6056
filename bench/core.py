"""The shared machinery of one bench run: temp dir, TLS files, the stub, the runtime, child runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.pg import PgServer
from bench.runtime import Runtime, sdk_env, vodfc_env
from bench.stubctl import Stub
from bench.tls import make_tls

__all__ = ["Bench", "ChildFailed", "Options"]

SECTIONS = ("package", "cold", "warm", "callbacks", "cleanup", "scale", "tls")


class ChildFailed(RuntimeError):
    pass


@dataclass
class Options:
    quick: bool = False
    runs: int = 20
    sections: tuple[str, ...] = SECTIONS
    runtime: str = "auto"  # auto | package | venv
    out: Path = Path("bench/results")
    keep_tmp: bool = False
    postgres: bool = True
    cleanup_sizes: tuple[int, ...] = (10_000, 100_000)
    warm_requests: int = 1000
    callback_uploads: int = 1000
    seed: int = 20261125
    extra: dict[str, Any] = field(default_factory=dict)


class Bench:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.started = time.perf_counter()
        self.tmp = Path(tempfile.mkdtemp(prefix="vodfc-bench-"))
        self.log(f"work dir {self.tmp}")
        self.tls = make_tls(self.tmp / "tls")
        self.stub = Stub(self.tls)
        self.log(f"HTTPS stub VOD on {self.stub.endpoint} (pid {self.stub.proc.pid})")
        self.pg = PgServer()
        self.pg_ok = opts.postgres and self.pg.available()
        if opts.postgres and not self.pg_ok:
            self.log(f"PostgreSQL not available, its measurements are skipped: {self.pg.error}")
        self.runtime: Runtime = Runtime.venv()
        self.results: dict[str, Any] = {}
        self._receiver: Stub | None = None

    @property
    def receiver(self) -> Stub:
        """The app's webhook receiver (``POST /__hook``): a stub process of its own, started on first
        use, as the app is another host than VOD in production (sharing one process would make each
        side's threads wait on the other's)."""
        if self._receiver is None:
            self._receiver = Stub(self.tls)
            self.log(f"HTTPS webhook receiver on {self._receiver.endpoint} (pid {self._receiver.proc.pid})")
        return self._receiver

    # --- logging -------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        print(f"[bench {time.perf_counter() - self.started:7.1f}s] {message}", file=sys.stderr, flush=True)

    # --- environments --------------------------------------------------------------------------
    def vodfc_env(
        self, function: str, database_url: str, *, no_pyc: bool = False, **extra: str
    ) -> dict[str, str]:
        # A PostgreSQL deployment attaches the driver's layer; a SQLite one needs none.
        layer = self.runtime.code_dir("vodfc-postgres-layer") if database_url.startswith("postgres") else ""
        return vodfc_env(
            stub_endpoint=self.stub.endpoint,
            tls=self.tls,
            database_url=database_url,
            code_dir=self.runtime.code_dir(function, no_pyc=no_pyc),
            layer_dir=layer,
            function=function,
            **extra,
        )

    def sdk_env(self, sdk: str, *, no_pyc: bool = False) -> dict[str, str]:
        return sdk_env(
            stub_hostport=self.stub.hostport, tls=self.tls, code_dir=self.runtime.code_dir(sdk, no_pyc=no_pyc)
        )

    # --- databases -----------------------------------------------------------------------------
    def new_db(self, kind: str = "sqlite") -> str:
        if kind == "postgres":
            from bench.seed import migrate

            url = self.pg.create()
            migrate(url)
            return url
        path = self.tmp / "db" / f"{uuid.uuid4().hex[:12]}.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"

    def copy_sqlite(self, url: str) -> str:
        src = Path(url[len("sqlite:///") :])
        dst = self.tmp / "db" / f"{uuid.uuid4().hex[:12]}.sqlite"
        shutil.copy2(src, dst)
        for suffix in ("-wal", "-shm"):
            extra = Path(str(src) + suffix)
            if extra.exists():
                shutil.copy2(extra, Path(str(dst) + suffix))
        return f"sqlite:///{dst}"

    # --- children ------------------------------------------------------------------------------
    def write_events(self, events: list[bytes]) -> Path:
        path = self.tmp / "events" / f"{uuid.uuid4().hex[:12]}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(e.replace(b"\n", b" ") + b"\n" for e in events))
        return path

    def run_json(self, argv: list[str], env: dict[str, str], out: Path, *, timeout: float) -> dict[str, Any]:
        log = out.with_suffix(".log")
        started = time.perf_counter()
        with open(log, "wb") as fh:
            proc = subprocess.run(
                argv, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
        wall = time.perf_counter() - started
        if proc.returncode != 0 or not out.exists():
            tail = log.read_text(errors="replace")[-3000:]
            raise ChildFailed(f"{' '.join(argv[-4:])} exited {proc.returncode}:\n{tail}")
        data: dict[str, Any] = json.loads(out.read_text())
        data["wall_s"] = wall
        data["log"] = str(log)
        return data

    def replay(
        self,
        function: str,
        events: list[bytes],
        database_url: str,
        *,
        warmup: int = 0,
        keep_bodies: bool = False,
        profile: Path | None = None,
        phases: str | None = None,
        timeout: float = 600,
        **extra_env: str,
    ) -> dict[str, Any]:
        """Serve ``events`` with one warm instance of ``function`` (a fresh child process)."""
        path = self.write_events(events)
        out = path.with_suffix(".out.json")
        args = ["replay", str(path), str(out), "--warmup", str(warmup)]
        if keep_bodies:
            args.append("--keep-bodies")
        if profile is not None:
            args += ["--profile", str(profile)]
        if phases:
            args += ["--phases", phases]
        env = self.vodfc_env(function, database_url, **extra_env)
        return self.run_json(self.runtime.argv("vodfc.py", *args), env, out, timeout=timeout)

    def close(self) -> None:
        self.stub.close()
        if self._receiver is not None:
            self._receiver.close()
        self.pg.close()
        if not self.opts.keep_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
