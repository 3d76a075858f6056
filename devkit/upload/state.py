"""Where an interrupted upload is remembered, so that ``--resume`` continues it.

Layout of the state directory (``$XDG_CACHE_HOME/vodfc/uploads``, ``~/.cache/vodfc/uploads``
without it, or ``--state-dir``)::

    <key>.json     one unfinished upload: kind, media id, API, file identity, part size, object
    oss2/          oss2's own checkpoints (``oss2.ResumableStore``): the multipart upload id
    upload.log     what oss2, urllib3 and httpx log (never the terminal), rotated at 1 MiB

``<key>`` is a hash of the file (absolute path, size, mtime), the API URL and the kind, so an
edited file or another API never resumes a stale upload. No secret is written here: a video's
credential is refreshed on resume, and the other kinds cannot be resumed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["FileIdentity", "StateDir", "UploadState", "default_state_dir"]

OSS2_DIR = "oss2"
LOG_NAME = "upload.log"


def default_state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_CACHE_HOME/vodfc/uploads``, else ``~/.cache/vodfc/uploads``."""
    cache = environ.get("XDG_CACHE_HOME") or ""
    base = Path(cache) if Path(cache).is_absolute() else Path.home() / ".cache"
    return base / "vodfc" / "uploads"


@dataclass(frozen=True)
class FileIdentity:
    """A local file as oss2's checkpoint also sees it: same path, size and mtime = same file."""

    path: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        resolved = path.resolve()
        st = resolved.stat()
        return cls(str(resolved), st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class UploadState:
    """One unfinished upload."""

    kind: str
    media_id: str
    api: str
    file: str
    size: int
    mtime_ns: int
    part_size: int
    bucket: str
    object_key: str
    created_at: str


class StateDir:
    """The state directory; created (mode 0700) on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def log_path(self) -> Path:
        return self.root / LOG_NAME

    def ensure(self) -> StateDir:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self

    @staticmethod
    def key(file: FileIdentity, api: str, kind: str) -> str:
        raw = json.dumps([file.path, file.size, file.mtime_ns, api.rstrip("/"), kind])
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def load(self, key: str) -> UploadState | None:
        """The recorded upload, or None (also for a file that is unreadable or of another shape)."""
        try:
            data: dict[str, Any] = json.loads(self._path(key).read_text(encoding="utf-8"))
            return UploadState(**data)
        except (OSError, ValueError, TypeError):
            return None

    def save(self, key: str, state: UploadState) -> None:
        """Write atomically, so that a killed process leaves the old record or the new one."""
        self.ensure()
        tmp = self._path(key).with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(state), out, indent=2)
        os.replace(tmp, self._path(key))

    def oss2_store(self) -> Any:
        """oss2's checkpoint store in this directory (it keys records by object and file)."""
        import oss2

        return oss2.ResumableStore(root=str(self.ensure().root), dir=OSS2_DIR)

    def remove(self, key: str, state: UploadState | None = None) -> None:
        """Forget an upload: our record and, given the state, oss2's checkpoint for its object."""
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()
        if state is not None:
            store = self.oss2_store()
            with contextlib.suppress(FileNotFoundError):
                store.delete(store.make_store_key(state.bucket, state.object_key, state.file))
