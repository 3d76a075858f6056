"""The upload to VOD's OSS storage: oss2's resumable upload, refreshed and retried around it.

oss2 speaks the OSS protocol and keeps the multipart checkpoint; this module decides what to do
when a call fails: an expired credential is refreshed (videos) as long as the upload makes
progress, a transient error (5xx, lost connection) is retried with a back-off, anything else
becomes a :class:`~devkit.upload.errors.StorageError` naming OSS's code and request id.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devkit.upload.api import VIDEO, Client, MediaKind
from devkit.upload.errors import NetworkError, StorageError, UploadError
from devkit.upload.progress import View, make_view

__all__ = [
    "DEFAULT_PART_SIZE",
    "EXPIRED_CODES",
    "Recovery",
    "RefreshBudget",
    "Tracker",
    "TransferOptions",
    "decode",
    "make_bucket",
    "object_of",
    "part_size_for",
    "transfer",
    "upload_file",
]

DEFAULT_PART_SIZE = 1024 * 1024
# What OSS answers for an STS credential past its expiry (or replaced by a refresh).
EXPIRED_CODES = frozenset(
    {"SecurityTokenExpired", "InvalidAccessKeyId", "AccessDenied", "InvalidSecurityToken"}
)
# oss2's status for a request that got no answer (connection refused, reset, timeout).
_NO_ANSWER = -2

ProgressCallback = Callable[[int, "int | None"], None]


def decode(blob: str) -> dict[str, Any]:
    """UploadAddress and UploadAuth are Base64 JSON."""
    data: dict[str, Any] = json.loads(base64.b64decode(blob))
    return data


def object_of(credentials: dict[str, Any]) -> tuple[str, str, str]:
    """(endpoint, bucket, object key) of the upload address."""
    address = decode(credentials["UploadAddress"])
    return address["Endpoint"], address["Bucket"], address["FileName"]


def make_bucket(credentials: dict[str, Any]) -> tuple[Any, str]:
    """An oss2 bucket for the upload address, authenticated with the temporary credentials."""
    import oss2

    endpoint, bucket, key = object_of(credentials)
    auth = decode(credentials["UploadAuth"])
    sts = oss2.StsAuth(auth["AccessKeyId"], auth["AccessKeySecret"], auth["SecurityToken"])
    return oss2.Bucket(sts, endpoint, bucket), key


def part_size_for(size: int, preferred: int) -> int:
    """The part size oss2 will use for this file (a single PUT below ``preferred``)."""
    import oss2

    return max(size, 1) if size < preferred else int(oss2.determine_part_size(size, preferred))


@dataclass(frozen=True)
class TransferOptions:
    """How to send: part size, refresh cap (None: while progress is made), rate cap in bytes/s."""

    part_size: int = DEFAULT_PART_SIZE
    max_refreshes: int | None = None
    limit_rate: int | None = None
    threads: int = 2
    retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0)


class RefreshBudget:
    """Refresh whenever the credential expired, as long as bytes were stored since the last refresh.

    A fresh credential that is refused before any new part is stored will not get better with a
    third one (a permission problem, or a part that takes longer than a credential lives), so a
    second refresh in a row without progress is not made. ``limit`` caps the total (--max-refreshes).
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.used = 0
        self.done_at_last: int | None = None

    def exhausted(self) -> bool:
        return self.limit is not None and self.used >= self.limit

    def stalled(self, done: int) -> bool:
        return self.done_at_last is not None and done <= self.done_at_last

    def spend(self, done: int) -> None:
        self.used += 1
        self.done_at_last = done


class Tracker:
    """oss2's progress callback: feeds the view and the caller's callback, paces ``limit_rate``.

    oss2 calls it from its worker threads (one at a time) at the start of every part, with the
    bytes stored so far, so a pause here delays the next part: that is how ``limit_rate`` works.
    """

    def __init__(
        self,
        view: View,
        label: str,
        size: int,
        part_size: int,
        *,
        limit_rate: int | None = None,
        on_progress: ProgressCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.view, self.label, self.size, self.part_size = view, label, size, part_size
        self.limit_rate, self.on_progress, self.clock, self.sleep = limit_rate, on_progress, clock, sleep
        self.done = 0
        self.first: int | None = None
        self.begun_at = 0.0
        self.closed = threading.Event()

    def __call__(self, consumed: int, total: int | None) -> None:
        if self.closed.is_set():
            return
        if self.first is None:
            # A single PUT reports as it reads; only a multipart upload starts with stored parts.
            self.first = consumed if self.part_size < self.size else 0
            self.begun_at = self.clock()
            self.view.begin(self.label, self.size, self.part_size, self.first)
        self.done = max(self.done, consumed)
        self.view.advance(self.done)
        if self.on_progress is not None:
            self.on_progress(consumed, total)
        if self.limit_rate:
            ahead = (self.done - self.first) / self.limit_rate - (self.clock() - self.begun_at)
            if ahead > 0:
                self.sleep(ahead)

    def close(self) -> None:
        """No more reports (oss2's threads may outlive an interrupted upload by a moment)."""
        self.closed.set()
        self.view.end()


def _no_answer_reason(exc: Any) -> str:
    text = str(getattr(exc, "exception", exc))
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return found.group(1).strip().lower() if found else type(getattr(exc, "exception", exc)).__name__


def storage_error(exc: Any, endpoint: str) -> UploadError:
    """oss2's exception as ours."""
    if exc.status == _NO_ANSWER:
        return NetworkError(f"cannot reach storage at {endpoint}: {_no_answer_reason(exc)}")
    request_id = f" (OSS request id {exc.request_id})" if exc.request_id else ""
    if exc.status < 0:
        return StorageError(f"the upload to {endpoint} failed: {exc.body}{request_id}")
    return StorageError(
        f"storage refused the upload: {exc.status} {exc.code or 'Error'}: {exc.message}{request_id}"
    )


def _transient(exc: Any) -> bool:
    return bool(exc.status == _NO_ANSWER or exc.status >= 500)


class Recovery:
    """After a failed attempt: refresh the credential, or wait and retry, or give up (raises)."""

    def __init__(
        self, client: Client, kind: MediaKind, media_id: str, options: TransferOptions, tracker: Tracker
    ) -> None:
        self.client, self.kind, self.media_id, self.tracker = client, kind, media_id, tracker
        self.delays = options.retry_delays
        self.budget = RefreshBudget(options.max_refreshes)
        self.failures, self.done_at_failure = 0, -1

    def after(self, exc: Any, creds: dict[str, Any]) -> dict[str, Any]:
        """The credential for the next attempt."""
        if exc.code in EXPIRED_CODES:
            fresh = self.refresh(exc)
            self.tracker.view.note(f"credential expired ({exc.code}); refreshed it, resuming")
            return fresh
        if self.tracker.done > self.done_at_failure:
            self.failures, self.done_at_failure = 0, self.tracker.done
        if not _transient(exc) or self.failures >= len(self.delays):
            raise storage_error(exc, object_of(creds)[0]) from exc
        delay = self.delays[self.failures]
        self.failures += 1
        what = f"{exc.status} {exc.code}" if exc.status > 0 else _no_answer_reason(exc)
        self.tracker.view.note(
            f"storage: {what}; retrying in {delay:g} s ({self.failures}/{len(self.delays)})"
        )
        time.sleep(delay)
        return creds

    def refresh(self, exc: Any) -> dict[str, Any]:
        kind, budget, done = self.kind, self.budget, self.tracker.done
        seen = f"{exc.code}, OSS request id {exc.request_id}" if exc.request_id else exc.code
        if not kind.refreshable:
            raise StorageError(
                f"the {kind.name} credential expired ({seen}) and cannot be refreshed",
                hint=f"run again with --restart to upload it under a new {kind.id_field}",
            ) from exc
        if budget.exhausted():
            raise StorageError(
                f"the credential expired ({seen}) after {budget.used} refreshes (--max-refreshes)"
            ) from exc
        if budget.stalled(done):
            raise StorageError(
                f"storage refuses the credential ({seen}), also a fresh one, before any new part is stored",
                hint="if one part takes longer than a credential lives (3,000 s), use a smaller --part-size",
            ) from exc
        budget.spend(done)
        return self.client.refresh(self.media_id)


def transfer(
    client: Client,
    kind: MediaKind,
    media_id: str,
    credentials: dict[str, Any],
    path: Path,
    *,
    store: Any,
    options: TransferOptions,
    view: View,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Send ``path`` to the credential's address; returns the credential that finished it."""
    import oss2

    size = path.stat().st_size
    part_size = part_size_for(size, options.part_size)
    tracker = Tracker(
        view, path.name, size, part_size, limit_rate=options.limit_rate, on_progress=on_progress
    )
    recovery = Recovery(client, kind, media_id, options, tracker)
    creds = credentials
    try:
        while True:
            bucket, key = make_bucket(creds)
            try:
                oss2.resumable_upload(
                    bucket,
                    key,
                    str(path),
                    store=store,
                    multipart_threshold=options.part_size,
                    part_size=options.part_size,
                    progress_callback=tracker,
                    num_threads=options.threads,
                )
                return creds
            except oss2.exceptions.OssError as exc:
                creds = recovery.after(exc, creds)
    finally:
        tracker.close()


def upload_file(
    client: Client,
    path: Path,
    title: str,
    *,
    part_size: int = DEFAULT_PART_SIZE,
    max_refreshes: int | None = None,
    quiet: bool = False,
    checkpoint_dir: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Create a video upload for ``path`` and send it; returns the last credentials (with VideoId).

    The library's one call, without ``vodfc upload``'s resume state: the checkpoint goes to
    ``checkpoint_dir`` (default: a new temporary directory).
    """
    import oss2

    creds = client.create(title, path)
    store = oss2.ResumableStore(root=checkpoint_dir or tempfile.mkdtemp(prefix="vodfc-upload-"))
    options = TransferOptions(part_size=part_size, max_refreshes=max_refreshes)
    view = make_view(quiet=quiet)
    return transfer(
        client, VIDEO, creds["VideoId"], creds, path, store=store, options=options, view=view,
        on_progress=on_progress,
    )  # fmt: skip
