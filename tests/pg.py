"""A PostgreSQL server for the tests, and a private database on it for one test session.

Where the server comes from, first match wins:

1. ``$VODFC_TEST_DATABASE_URL`` (an account that may ``CREATE DATABASE``, or else ``CREATE SCHEMA``);
2. ``postgresql://postgres@127.0.0.1:5432/test`` when something answers there;
3. a throwaway cluster made with ``initdb`` / ``pg_ctl`` (``PATH``, ``/usr/local/bin``,
   ``/usr/lib/postgresql/*/bin``) in a temporary directory on a free port, run as a non-root
   user when we are root (PostgreSQL refuses to run as root), stopped and deleted at the end.

Each session then works in its own database ``vodfc_test_<random>`` (or, if the account may not
create databases, its own schema through ``search_path``), so concurrent runs never collide.
``python -m tests.pg`` prints what would be used.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

ENV_URL = "VODFC_TEST_DATABASE_URL"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
TABLES = ("uploads", "event_inbox", "webhook_outbox", "webhook_endpoints")


@dataclass
class Server:
    """A reachable server: ``url`` is an administrative URL; ``stop()`` tears down what we started."""

    url: str
    origin: str
    stop: Callable[[], None] = field(default=lambda: None)


@dataclass
class TestDatabase:
    """A private database (or schema) for one session; ``drop()`` removes it."""

    url: str
    drop: Callable[[], None]


def _reachable(url: str) -> str | None:
    """``None`` if ``url`` accepts a connection, else why not."""
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return None


def _pg_bindir() -> Path | None:
    candidates: list[Path] = []
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(found).resolve().parent)
    candidates.append(Path("/usr/local/bin"))
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    )
    candidates += [Path(p) for p in versions]
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> tuple[list[str], str | None]:
    """Command prefix to drop root, and the user it runs as (``None``: already not root)."""
    if os.geteuid() != 0:
        return [], None
    runuser = shutil.which("runuser")
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        if runuser:
            return [runuser, "-u", user, "--"], user
        return ["su", user, "-s", "/bin/sh", "-c", '"$0" "$@"'], user
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


def start_throwaway() -> Server:
    """initdb + pg_ctl start a private cluster on 127.0.0.1:<free port>; raises RuntimeError."""
    bindir = _pg_bindir()
    if bindir is None:
        raise RuntimeError("no initdb/pg_ctl found (PATH, /usr/local/bin, /usr/lib/postgresql/*/bin)")
    prefix, user = _run_as()
    root = Path(tempfile.mkdtemp(prefix="vodfc-pg-"))
    data, log = root / "data", root / "postgres.log"
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    root.chmod(0o700)
    port = _free_port()

    def run(*args: str) -> None:
        proc = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
            if log.exists():
                tail += "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-8:])
            raise RuntimeError(f"{Path(args[0]).name} failed ({proc.returncode}):\n{tail}")

    def stop() -> None:
        with contextlib.suppress(Exception):
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)

    try:
        run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
    except BaseException:
        stop()
        raise
    return Server(
        url=f"postgresql://postgres@127.0.0.1:{port}/postgres", origin="throwaway cluster", stop=stop
    )


def find_server() -> tuple[Server | None, str]:
    """A server to test against, or ``None`` and the reasons each source failed."""
    reasons: list[str] = []
    env_url = os.environ.get(ENV_URL)
    if env_url:
        why = _reachable(env_url)
        if why is None:
            return Server(url=env_url, origin=f"${ENV_URL}"), ""
        # An explicit URL that does not work is an error, not a reason to go elsewhere.
        return None, f"${ENV_URL} is set but not reachable ({why})"
    why = _reachable(DEFAULT_URL)
    if why is None:
        return Server(url=DEFAULT_URL, origin=DEFAULT_URL), ""
    reasons.append(f"{DEFAULT_URL}: {why}")
    try:
        return start_throwaway(), ""
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        reasons.append(f"throwaway cluster: {exc}")
    return None, "; ".join(reasons)


def _with_path(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def with_search_path(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["options"] = (query.get("options", "") + f" -csearch_path={schema}").strip()
    return urlunsplit(parts._replace(query=urlencode(query)))


def create_test_database(admin_url: str) -> TestDatabase:
    """A fresh database ``vodfc_test_<random>`` (or schema, without CREATEDB) on the server."""
    name = f"vodfc_test_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        try:
            conn.execute(f"CREATE DATABASE {name}")
        except psycopg.errors.InsufficientPrivilege:
            conn.execute(f"CREATE SCHEMA {name}")
            return TestDatabase(
                url=with_search_path(admin_url, name), drop=lambda: _drop_schema(admin_url, name)
            )
    return TestDatabase(url=_with_path(admin_url, name), drop=lambda: _drop_database(admin_url, name))


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _drop_schema(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def migrate(url: str) -> None:
    """Create or bring up to date the store's schema at ``url`` (through the store's own migrations)."""
    from shared.store import create_store

    setup = create_store(url)
    try:
        setup.migrate()
    finally:
        setup.close()


def truncate(url: str) -> None:
    """Empty the store's tables (between tests; the schema stays)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f"TRUNCATE {', '.join(TABLES)}")


def terminate(url: str, application_name: str) -> int:
    """Kill the server side of every connection named ``application_name`` (reconnect tests)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


@contextlib.contextmanager
def session_database() -> Iterator[tuple[str | None, str]]:
    """``(url, "")`` of a private database for this session, or ``(None, reason)``."""
    server, reason = find_server()
    if server is None:
        yield None, reason
        return
    try:
        database = create_test_database(server.url)
        try:
            yield database.url, server.origin
        finally:
            database.drop()
    finally:
        server.stop()


if __name__ == "__main__":
    with session_database() as (url, note):
        print(url or f"no PostgreSQL: {note}", f"({note})" if url else "")
