"""tests.netfault.TcpProxy against the real test PostgreSQL: a cut is a refused connection and a
reset session, a restore is the server back on the same address."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.netfault import TcpProxy


def test_cut_refuses_and_resets_then_restore_serves_again(postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        url = proxy.url(postgres_url)
        conn = psycopg.connect(url, connect_timeout=2, autocommit=True)
        assert conn.execute("SELECT 1").fetchone() == (1,)

        proxy.cut()
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
        assert time.monotonic() - started < 2  # refused at once, no timeout waited for
        conn.close()

        proxy.restore()
        with psycopg.connect(url, connect_timeout=2) as again:
            assert again.execute("SELECT 2").fetchone() == (2,)
        assert proxy.connections == 2
