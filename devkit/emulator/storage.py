"""The emulated bucket's bytes on disk, with a size cap that prunes the oldest finished objects.

Layout under ``data_dir``: ``<bucket>/<key>`` objects, ``.meta/<bucket>/<key>.json`` their ETag,
size, MD5 and type, ``.multipart/<upload id>/<part>`` parts, ``.tmp/`` files being written
(every write goes through ``.tmp`` and an atomic rename).

Cap (``max_bytes``): after each finished object, while the finished objects hold more than the
cap, the *oldest* one's bytes are deleted and its sidecar marked ``pruned`` (ETag, size, MD5
kept); the object just finished is never pruned, so one object larger than the cap survives
alone. Parts of unfinished multipart uploads are not counted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CHUNK", "Digest", "ObjectStore", "OssError", "file_chunks"]

log = logging.getLogger("devkit.emulator.storage")

CHUNK = 256 * 1024
_SPECIAL = (".meta", ".multipart", ".tmp")


class OssError(Exception):
    """An OSS error answer (rendered as XML ``<Error>`` by the OSS app)."""

    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def _crc64_function() -> Callable[[bytes, int], int] | None:
    # CRC-64/ECMA-182 as OSS computes it (x-oss-hash-crc64ecma); crcmod comes with oss2.
    try:
        import crcmod  # type: ignore[import-untyped]
    except ImportError:
        return None
    fn: Callable[[bytes, int], int] = crcmod.mkCrcFun(
        0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True
    )
    return fn


_CRC64 = _crc64_function()


class Digest:
    """MD5 + CRC-64 of a stream, fed chunk by chunk."""

    def __init__(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.crc: int | None = 0 if _CRC64 is not None else None
        self.size = 0

    def update(self, chunk: bytes) -> None:
        """Feed one chunk."""
        self.md5.update(chunk)
        if _CRC64 is not None and self.crc is not None:
            self.crc = _CRC64(chunk, self.crc)
        self.size += len(chunk)

    @property
    def etag(self) -> str:
        """OSS's ETag of a simple upload: quoted upper-case hex MD5."""
        return f'"{self.md5.hexdigest().upper()}"'


def file_chunks(path: Path) -> Iterator[bytes]:
    """A file's bytes in :data:`CHUNK`-sized pieces."""
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


@dataclass
class _Finished:
    size: int
    order: tuple[float, int]  # (last_modified, tie-breaker): oldest first


class ObjectStore:
    """Files on disk: objects, their metadata, multipart parts; pruned beyond ``max_bytes``."""

    def __init__(self, root: Path, *, max_bytes: int | None = None) -> None:
        self.root = root
        self.max_bytes = max_bytes or None
        self._lock = threading.Lock()
        self._finished: dict[tuple[str, str], _Finished] = {}
        self._used = 0
        self._pruned = 0
        self._tick = 0
        self._load_index()

    # --- paths ------------------------------------------------------------------------------------

    def _dir(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def object_path(self, bucket: str, key: str) -> Path:
        """Where ``key`` lives; refuses keys that could leave the bucket directory."""
        segments = key.split("/")
        if (
            not key
            or len(key.encode("utf-8")) > 1023
            or "\x00" in key
            or "\\" in key
            or any(seg in ("", ".", "..") for seg in segments)
        ):
            raise OssError(400, "InvalidObjectName", "The specified object is not valid.")
        return self.root / bucket / Path(*segments)

    def meta_path(self, bucket: str, key: str) -> Path:
        """The JSON sidecar of an object."""
        return self.root / ".meta" / bucket / (key + ".json")

    def part_path(self, upload_id: str, number: int) -> Path:
        """Where one uploaded part is kept."""
        return self.root / ".multipart" / upload_id / f"{number:05d}"

    # --- writing ------------------------------------------------------------------------------------

    def write_stream(self, chunks: Iterable[bytes], dest: Path, *, limit: int) -> Digest:
        """Stream ``chunks`` to ``dest`` (atomically), hashing on the way."""
        digest = Digest()
        tmp = self._dir(".tmp") / uuid.uuid4().hex
        try:
            with tmp.open("wb") as fh:
                for chunk in chunks:
                    digest.update(chunk)
                    if digest.size > limit:
                        raise OssError(
                            400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size."
                        )
                    fh.write(chunk)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return digest

    def concat(self, sources: list[Path], dest: Path) -> Digest:
        """Concatenate files into ``dest`` (atomically), hashing the result."""
        digest = Digest()
        tmp = self._dir(".tmp") / uuid.uuid4().hex
        try:
            with tmp.open("wb") as out:
                for src in sources:
                    for chunk in file_chunks(src):
                        digest.update(chunk)
                        out.write(chunk)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return digest

    def _save_meta(self, bucket: str, key: str, meta: dict[str, Any]) -> None:
        path = self.meta_path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._dir(".tmp") / uuid.uuid4().hex
        tmp.write_text(json.dumps(meta), encoding="utf-8")
        os.replace(tmp, path)

    def finish(self, bucket: str, key: str, meta: dict[str, Any]) -> None:
        """Record a finished object's metadata (``size`` and ``last_modified`` required), then cap."""
        with self._lock:
            self._save_meta(bucket, key, {**meta, "pruned": False})
            self._forget(bucket, key)
            self._tick += 1
            entry = _Finished(int(meta["size"]), (float(meta["last_modified"]), self._tick))
            self._finished[(bucket, key)] = entry
            self._used += entry.size
            for victim in self._over_cap(keep=(bucket, key)):
                self._prune(*victim)

    def read_meta(self, bucket: str, key: str) -> dict[str, Any]:
        """An object's metadata ({} if none was saved)."""
        try:
            data = json.loads(self.meta_path(bucket, key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    # --- deleting -----------------------------------------------------------------------------------

    def delete_object(self, bucket: str, key: str) -> None:
        """Remove an object and its metadata (missing is fine)."""
        try:
            self.object_path(bucket, key).unlink(missing_ok=True)
        except OssError:
            return
        self.meta_path(bucket, key).unlink(missing_ok=True)
        with self._lock:
            self._forget(bucket, key)

    def delete_upload(self, upload_id: str) -> None:
        """Remove the parts of a multipart upload."""
        shutil.rmtree(self.root / ".multipart" / upload_id, ignore_errors=True)

    def wipe(self, buckets: Iterable[str]) -> None:
        """Delete the buckets' objects and every sidecar, part and temporary file (nothing else)."""
        with self._lock:
            for name in (*buckets, *_SPECIAL):
                shutil.rmtree(self.root / name, ignore_errors=True)
            self._finished.clear()
            self._used = self._pruned = 0

    # --- the cap --------------------------------------------------------------------------------------

    def _forget(self, bucket: str, key: str) -> None:
        entry = self._finished.pop((bucket, key), None)
        if entry is not None:
            self._used -= entry.size

    def _over_cap(self, *, keep: tuple[str, str]) -> list[tuple[str, str]]:
        """The oldest finished objects to prune (removed from the index already)."""
        if self.max_bytes is None or self._used <= self.max_bytes:
            return []
        victims = []
        for name in sorted(self._finished, key=lambda n: self._finished[n].order):
            if self._used <= self.max_bytes:
                break
            if name == keep:
                continue
            victims.append(name)
            self._forget(*name)
            self._pruned += 1
        return victims

    def _prune(self, bucket: str, key: str) -> None:
        meta = self.read_meta(bucket, key)
        try:
            self.object_path(bucket, key).unlink(missing_ok=True)
        except OssError:
            return
        if meta:
            self._save_meta(bucket, key, {**meta, "pruned": True})
        log.info("storage cap: pruned the bytes of %s/%s (%s bytes)", bucket, key, meta.get("size"))

    def is_pruned(self, bucket: str, key: str) -> bool:
        """True when the object finished once but its bytes were pruned by the cap."""
        return bool(self.read_meta(bucket, key).get("pruned"))

    def usage(self) -> dict[str, Any]:
        """Bytes held by finished objects, the cap, and how many objects were pruned."""
        with self._lock:
            return {
                "used_bytes": self._used,
                "max_bytes": self.max_bytes,
                "objects": len(self._finished),
                "pruned_objects": self._pruned,
            }

    def _load_index(self) -> None:
        """Rebuild the index of finished objects from the sidecars (on start)."""
        meta_root = self.root / ".meta"
        if not meta_root.is_dir():
            return
        for path in meta_root.rglob("*.json"):
            relative = path.relative_to(meta_root).as_posix()
            bucket, _, rest = relative.partition("/")
            key = rest[: -len(".json")]
            try:
                meta = json.loads(path.read_text(encoding="utf-8"))
                size, when = int(meta["size"]), float(meta["last_modified"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if meta.get("pruned"):
                self._pruned += 1
                continue
            self._tick += 1
            self._finished[(bucket, key)] = _Finished(size, (when, self._tick))
            self._used += size
