"""The emulator's records on disk, so a restarted emulator knows what the product's database knows.

:class:`StateFile` keeps one SQLite row per record (stdlib ``sqlite3``, WAL): assets of every
kind with their statuses, upload credentials with their expiry, multipart uploads in progress
and the STS credentials issued for the OpenAPI. :class:`~devkit.emulator.state.EmulatorState`
writes a record through *before* the change is visible to a client (every mutation happens under
the state lock, which also serialises the one connection), so an answer is never sent for a
record that a restart would lose. Not kept: nonces, deliveries, SearchMedia scroll tokens, the
in-process SMQ queue.

A file with another schema version is not migrated: it is emptied (a development tool's data).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

from .state import ApiCredential, Asset, AttachedMedia, Image, MultipartUpload, Part, UploadCredential, Video

__all__ = ["STATE_FILE_NAME", "Record", "StateFile"]

log = logging.getLogger("devkit.emulator.persist")

STATE_FILE_NAME = "emulator-state.sqlite3"
SCHEMA_VERSION = 1

Record = Asset | UploadCredential | ApiCredential | MultipartUpload

_ASSET_KINDS: dict[str, type[Asset]] = {"video": Video, "image": Image, "attached": AttachedMedia}


def _kind_and_id(record: Record) -> tuple[str, str]:
    if isinstance(record, Asset):
        return record.kind, record.media_id
    if isinstance(record, UploadCredential):
        return "upload_credential", record.access_key_id
    if isinstance(record, ApiCredential):
        return "api_credential", record.access_key_id
    return "multipart", record.upload_id


def _encode(record: Record) -> str:
    data = dataclasses.asdict(record)
    if isinstance(record, MultipartUpload):
        data["parts"] = [dataclasses.asdict(p) for p in record.parts.values()]
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _build(cls: type[Any], data: dict[str, Any]) -> Any:
    """``cls(**data)`` keeping only known fields (a field added later takes its default)."""
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    return cls(**{k: v for k, v in data.items() if k in names})


def _decode(kind: str, raw: str) -> Record:
    data = json.loads(raw)
    if kind in _ASSET_KINDS:
        asset: Asset = _build(_ASSET_KINDS[kind], data)
        return asset
    if kind == "upload_credential":
        upload_cred: UploadCredential = _build(UploadCredential, data)
        return upload_cred
    if kind == "api_credential":
        api_cred: ApiCredential = _build(ApiCredential, data)
        return api_cred
    if kind == "multipart":
        parts = {int(p["number"]): _build(Part, p) for p in data.pop("parts", [])}
        upload: MultipartUpload = _build(MultipartUpload, {**data, "parts": parts})
        return upload
    raise ValueError(f"unknown record kind {kind!r}")


class StateFile:
    """``<data_dir>/emulator-state.sqlite3``: put / delete one record, load them all, clear."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS records ("
                "kind TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, id))"
            )
            row = conn.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if row is None or row[0] != str(SCHEMA_VERSION):
                if row is not None:
                    log.warning("%s has schema %s, not %s: starting empty", self.path, row[0], SCHEMA_VERSION)
                conn.execute("DELETE FROM records")
                conn.execute(
                    "INSERT OR REPLACE INTO meta (name, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )
            self._conn = conn
        return self._conn

    def put(self, *records: Record) -> None:
        """Insert or replace these records, in one transaction."""
        rows = [(*_kind_and_id(r), _encode(r)) for r in records]
        db = self._db()
        with db:
            db.execute("BEGIN")
            db.executemany(
                "INSERT INTO records (kind, id, data) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, id) DO UPDATE SET data = excluded.data",  # keeps the row: creation order
                rows,
            )

    def delete(self, *records: Record) -> None:
        """Remove these records (missing ones are fine), in one transaction."""
        keys = [_kind_and_id(r) for r in records]
        db = self._db()
        with db:
            db.execute("BEGIN")
            db.executemany("DELETE FROM records WHERE kind = ? AND id = ?", keys)

    def load(self) -> list[Record]:
        """Every record (unreadable rows are skipped with a warning)."""
        out: list[Record] = []
        for kind, record_id, raw in self._db().execute("SELECT kind, id, data FROM records ORDER BY rowid"):
            try:
                out.append(_decode(kind, raw))
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("skipping unreadable %s record %s: %s", kind, record_id, exc)
        return out

    def clear(self) -> None:
        """Forget every record."""
        self._db().execute("DELETE FROM records")

    def close(self) -> None:
        """Close the connection (the next call reopens it)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
