"""Throw-away PostgreSQL databases for the benchmarks (created per run, always dropped)."""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["PgServer", "dbname"]

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


class PgServer:
    """Creates ``vodfc_bench_*`` databases on the server of ``admin_url`` and drops them at close."""

    def __init__(self, admin_url: str | None = None) -> None:
        self.admin_url = admin_url or os.environ.get("BENCH_PG_URL", DEFAULT_URL)
        self.created: list[str] = []
        self.error: str | None = None

    def available(self) -> bool:
        try:
            self._exec("SELECT 1")
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return False
        return True

    def _exec(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)

    def create(self, *, template: str | None = None) -> str:
        """A new database (empty, or a copy of the database of URL ``template``); returns its URL.

        A copy is PostgreSQL's ``CREATE DATABASE ... TEMPLATE`` (a file copy: nobody may be
        connected to the template meanwhile)."""
        name = f"vodfc_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        copy = f' TEMPLATE "{dbname(template)}"' if template else ""
        self._exec(f'CREATE DATABASE "{name}"{copy}')
        self.created.append(name)
        parts = urlsplit(self.admin_url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))

    def query(self, url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query on the database of ``url``."""
        import psycopg

        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            return list(conn.execute(sql, params).fetchall())

    def settings(self, *names: str) -> dict[str, str]:
        """The server's values of ``names`` (``SHOW``)."""
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
            return {n: str((conn.execute(f"SHOW {n}").fetchone() or ("?",))[0]) for n in names}

    def close(self) -> None:
        while self.created:
            name = self.created.pop()
            with contextlib.suppress(Exception):  # best effort at exit
                self._exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def dbname(url: str) -> str:
    return urlsplit(url).path.lstrip("/")
