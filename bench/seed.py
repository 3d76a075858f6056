"""Database set-up for the benchmarks: migrate, and bulk-insert abandoned uploads.

Abandoned uploads (status ``created``, credential issued hours ago, nothing arrived) are inserted
in bulk, in one transaction: going through ``reserve_upload`` + ``attach_video`` would take two
transactions per row (minutes for 100,000 rows). Rows are built from :class:`shared.store.Upload`
in ``UPLOAD_COLUMNS`` order, and one row is read back through the store's public API to check that
the bulk format is what the store itself writes.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["migrate", "seed_abandoned"]


def migrate(database_url: str) -> None:
    from shared.store import create_store

    store = create_store(database_url)
    try:
        store.migrate()
    finally:
        store.close()


def _rows(n: int, *, age: timedelta, now: datetime) -> list[dict[str, Any]]:
    """``n`` abandoned uploads as column -> value dicts (ascending ids, one second apart)."""
    base = now - age - timedelta(seconds=n)
    run = uuid.uuid4().hex  # random run prefix + counter: cheap to make, cheap to insert
    rows = []
    for i in range(n):
        created = base + timedelta(seconds=i)
        rows.append(
            {
                "upload_id": f"{run[:16]}{i:016x}",
                "owner": f"bench-owner-{i % 5000}",
                "video_id": f"{run[16:]}{i:016x}",
                "reference_id": f"{run[8:24]}{i:016x}",
                "title": f"abandoned {i}",
                "file_name": "trip.mp4",
                "file_size": 52428800,
                "status": "created",
                "created_at": created,
                "updated_at": created,
                "credential_expires_at": created + timedelta(seconds=3000),
            }
        )
    return rows


def seed_abandoned(database_url: str, n: int, *, age_hours: float = 3.0) -> int:
    """Insert ``n`` abandoned uploads, at least ``age_hours`` old; returns the number inserted."""
    from shared.store import UPLOAD_COLUMNS, Upload, create_store

    now = datetime.now(timezone.utc)
    rows = _rows(n, age=timedelta(hours=age_hours), now=now)
    # Only the columns a row sets: the others take the schema's defaults, as an insert through the
    # store would (kind, notify_seq, checks: NOT NULL with defaults).
    columns = [c for c in UPLOAD_COLUMNS if c in rows[0]]
    cols = ", ".join(columns)
    if database_url.startswith("sqlite"):
        import sqlite3

        from shared.store.sqlite import parse_sqlite_url

        times = ("created_at", "updated_at", "credential_expires_at")
        flat = []
        for row in rows:
            r = dict(row)
            for c in times:
                r[c] = r[c].isoformat(timespec="microseconds")
            flat.append(tuple(r.get(c) for c in columns))
        conn = sqlite3.connect(parse_sqlite_url(database_url), isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            marks = ", ".join("?" * len(columns))
            conn.executemany(f"INSERT INTO uploads ({cols}) VALUES ({marks})", flat)  # noqa: S608
            conn.execute("COMMIT")
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(database_url) as conn:
            with conn.cursor() as cur, cur.copy(f"COPY uploads ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(tuple(row.get(c) for c in columns))
            conn.execute("ANALYZE uploads")
    defaults = Upload._field_defaults
    probe = Upload(**{c: rows[n // 2][c] if c in rows[0] else defaults[c] for c in UPLOAD_COLUMNS})
    # The store must read back exactly what we wrote.
    store = create_store(database_url)
    try:
        got = store.get_by_video_id(probe.video_id) if probe.video_id else None
        if got != probe:
            raise RuntimeError(f"bulk-seeded row does not read back through the store: {got!r} != {probe!r}")
    finally:
        store.close()
    return len(rows)
