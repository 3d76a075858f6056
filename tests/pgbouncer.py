"""A private PgBouncer in transaction-pooling mode, in front of the tests' PostgreSQL.

:func:`start` writes its own ``pgbouncer.ini`` and user list into a temporary directory, listens on
a free port of 127.0.0.1 (no Unix socket), runs in the foreground as a child of the test process
(as a non-root user when we are root: PgBouncer refuses to run as root) and is stopped by
:meth:`Bouncer.stop`, which kills only that child. Clients authenticate the way the server
expects them to: ``trust`` when the server URL has no password, else ``md5`` against a user
list holding it (PgBouncer then logs in to the server with the same name and password).

Where the binary comes from: ``$VODFC_PGBOUNCER``, ``pgbouncer`` on ``PATH``, ``/usr/sbin``
(Debian's package ``pgbouncer``; ``make test`` installs it when apt is usable). The settings
are PgBouncer's (https://www.pgbouncer.org/config.html): ``pool_mode = transaction`` hands a
server connection to a client for one transaction only, ``default_pool_size`` caps the server
connections per database and user, ``query_wait_timeout`` disconnects a client that waited that
long for a server. ``python -m tests.pgbouncer`` starts one in front of the tests' server and
prints its URL until interrupted.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from tests import pg

ENV_BINARY = "VODFC_PGBOUNCER"


class Unavailable(RuntimeError):
    """No PgBouncer binary, or it would not start."""


def find_binary() -> str | None:
    """Path of the ``pgbouncer`` executable, or ``None``."""
    explicit = os.environ.get(ENV_BINARY)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for candidate in (shutil.which("pgbouncer"), "/usr/sbin/pgbouncer", "/usr/local/bin/pgbouncer"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def version(binary: str) -> str:
    """``PgBouncer 1.18.0`` (the first line of ``pgbouncer --version``)."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False)
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


@dataclass
class Bouncer:
    """A running PgBouncer: ``url(dbname)`` reaches ``dbname`` on the server through it."""

    host: str
    port: int
    user: str
    password: str | None
    directory: Path
    process: subprocess.Popen[bytes]
    pool_size: int

    def url(self, dbname: str) -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname}"

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


def _quote(value: str) -> str:
    # auth_file lines are '"name" "password"' with '"' doubled inside a field.
    return '"' + value.replace('"', '""') + '"'


def start(
    server_url: str,
    *,
    pool_size: int = 3,
    query_wait_timeout: float = 10.0,
    max_client_conn: int = 200,
    extra: dict[str, str] | None = None,
) -> Bouncer:
    """A PgBouncer for every database of the server of ``server_url``; raises :class:`Unavailable`."""
    binary = find_binary()
    if binary is None:
        raise Unavailable(
            f"no pgbouncer executable (${ENV_BINARY}, PATH, /usr/sbin); install Debian's 'pgbouncer'"
        )
    parts = urlsplit(server_url)
    user = unquote(parts.username or "postgres")
    password = unquote(parts.password) if parts.password else None
    host, server_port = parts.hostname or "127.0.0.1", parts.port or 5432
    directory = Path(tempfile.mkdtemp(prefix="vodfc-pgbouncer-"))
    port = pg._free_port()
    settings = {
        "listen_addr": "127.0.0.1",
        "listen_port": str(port),
        "unix_socket_dir": "",
        "auth_type": "md5" if password else "trust",
        "auth_file": str(directory / "userlist.txt"),
        "pool_mode": "transaction",
        "default_pool_size": str(pool_size),
        "min_pool_size": "0",
        "reserve_pool_size": "0",
        "max_client_conn": str(max_client_conn),
        "query_wait_timeout": f"{query_wait_timeout:g}",
        "server_login_retry": "1",
        "logfile": str(directory / "pgbouncer.log"),
        "pidfile": str(directory / "pgbouncer.pid"),
        "admin_users": user,
        "stats_users": user,
        **(extra or {}),
    }
    ini = f"[databases]\n* = host={host} port={server_port}\n\n[pgbouncer]\n"
    ini += "".join(f"{k} = {v}\n" for k, v in settings.items())
    (directory / "pgbouncer.ini").write_text(ini, encoding="utf-8")
    (directory / "userlist.txt").write_text(f"{_quote(user)} {_quote(password or '')}\n", encoding="utf-8")
    command = [binary]
    if os.geteuid() == 0:
        _, run_as = pg._run_as()
        assert run_as is not None
        entry = pwd.getpwnam(run_as)
        for path in (directory, *directory.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        command += ["-u", run_as]
    (directory / "userlist.txt").chmod(0o600)
    command.append(str(directory / "pgbouncer.ini"))
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    bouncer = Bouncer("127.0.0.1", port, user, password, directory, process, pool_size)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = bouncer.log()
            bouncer.stop()
            raise Unavailable(f"pgbouncer exited with {process.returncode}:\n{log[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return bouncer
        time.sleep(0.05)
    log = bouncer.log()
    bouncer.stop()
    raise Unavailable(f"pgbouncer did not listen on port {port} within 15 s:\n{log[-2000:]}")


def admin(bouncer: Bouncer, command: str) -> list[dict[str, Any]]:
    """Rows of an admin console command (``SHOW POOLS``, ...) as dicts."""
    import psycopg

    # The admin console speaks the simple query protocol only: psycopg uses it for a query
    # without parameters.
    with psycopg.connect(bouncer.url("pgbouncer"), autocommit=True, connect_timeout=5) as conn:
        cur = conn.execute(command)
        names = [c.name for c in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def dbname_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def server_url_of(url: str) -> str:
    """The URL without its database (what :func:`start` needs)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres", query=""))


if __name__ == "__main__":
    with pg.session_database() as (url, note):
        if url is None:
            raise SystemExit(f"no PostgreSQL: {note}")
        bouncer = start(server_url_of(url))
        try:
            print(bouncer.url(dbname_of(url)), version(find_binary() or ""), flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                bouncer.process.wait()
        finally:
            bouncer.stop()
