"""``vodfc upload``: the reference client. Works against ``vodfc serve`` and, unchanged, a deployment.

1. ``POST /uploads`` for credentials; 2. oss2's resumable multipart upload straight to storage
(the OSS protocol is oss2's job, not ours); 3. when the temporary credential expires mid-upload,
``POST /uploads/{VideoId}/refresh`` and resume from oss2's checkpoint; 4. poll
``GET /uploads/{VideoId}`` until ``ready`` (or a final failure).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

FINAL = {"ready", "failed", "expired", "deleted"}
EXPIRED_CODES = {"SecurityTokenExpired", "InvalidAccessKeyId", "AccessDenied", "InvalidSecurityToken"}


class ApiError(Exception):
    """An error answer of the vodfc API, in its own words."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.code = status, str(body.get("Code", "Error"))
        super().__init__(f"{status} {self.code}: {body.get('Message', '')}")


class Client:
    """The vodfc API over HTTP."""

    def __init__(self, api: str, token: str | None, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=api.rstrip("/"), headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        response = self.http.request(method, path, **kw)
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            body = {"Code": "BadResponse", "Message": response.text[:200]}
        if response.status_code != 200:
            raise ApiError(response.status_code, body)
        return body

    def create(self, title: str, path: Path) -> dict[str, Any]:
        body = {"Title": title, "FileName": path.name, "FileSize": path.stat().st_size}
        return self._call("POST", "/uploads", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})

    def refresh(self, video_id: str) -> dict[str, Any]:
        return self._call("POST", f"/uploads/{video_id}/refresh")

    def status(self, video_id: str) -> dict[str, Any]:
        return self._call("GET", f"/uploads/{video_id}")


def decode(blob: str) -> dict[str, Any]:
    """UploadAddress and UploadAuth are Base64 JSON."""
    data: dict[str, Any] = json.loads(base64.b64decode(blob))
    return data


def make_bucket(credentials: dict[str, Any]) -> tuple[Any, str]:
    """An oss2 bucket for the upload address, authenticated with the temporary credentials."""
    import oss2

    address, auth = decode(credentials["UploadAddress"]), decode(credentials["UploadAuth"])
    sts = oss2.StsAuth(auth["AccessKeyId"], auth["AccessKeySecret"], auth["SecurityToken"])
    return oss2.Bucket(sts, address["Endpoint"], address["Bucket"]), address["FileName"]


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total: int, quiet: bool = False) -> None:
        self.total, self.quiet, self.last = max(total, 1), quiet, -1

    def __call__(self, done: int, total: int | None) -> None:
        pct = int(100 * done / (total or self.total))
        if self.quiet or pct == self.last:
            return
        self.last = pct
        bar = "#" * (pct // 4)
        sys.stderr.write(f"\r  uploading [{bar:<25}] {pct:3d}%")
        if pct >= 100:
            sys.stderr.write("\n")
        sys.stderr.flush()


def upload_file(
    client: Client,
    path: Path,
    title: str,
    *,
    part_size: int = 1024 * 1024,
    max_refreshes: int = 5,
    quiet: bool = False,
    checkpoint_dir: str | None = None,
    on_progress: Any = None,
) -> dict[str, Any]:
    """Upload one file; returns the credentials answer of the last refresh (VideoId included)."""
    import oss2

    creds = client.create(title, path)
    video_id = creds["VideoId"]
    bar = Progress(path.stat().st_size, quiet)

    def progress(done: int, total: int | None) -> None:
        bar(done, total)
        if on_progress is not None:
            on_progress(done, total)

    store = oss2.ResumableStore(root=checkpoint_dir or tempfile.mkdtemp(prefix="vodfc-upload-"))
    for attempt in range(max_refreshes + 1):
        bucket, key = make_bucket(creds)
        try:
            oss2.resumable_upload(
                bucket,
                key,
                str(path),
                store=store,
                multipart_threshold=part_size,
                part_size=part_size,
                progress_callback=progress,
                num_threads=2,
            )
            return creds
        except oss2.exceptions.OssError as exc:
            if exc.code not in EXPIRED_CODES or attempt == max_refreshes:
                raise
            # The temporary credential expired mid-upload: a fresh one for the same address,
            # then oss2 resumes from its checkpoint (parts already sent are not sent again).
            if not quiet:
                sys.stderr.write(f"\n  credential expired ({exc.code}); refreshing and resuming\n")
            creds = client.refresh(video_id)
    raise AssertionError("unreachable")


def wait_until_final(client: Client, video_id: str, timeout: float, *, quiet: bool = False) -> dict[str, Any]:
    """Poll the record until it is ready, failed, expired or deleted (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        record = client.status(video_id)
        if record["Status"] != last and not quiet:
            sys.stderr.write(f"  status: {record['Status']}\n")
            last = record["Status"]
        if record["Status"] in FINAL or time.monotonic() > deadline:
            return record
        time.sleep(0.5)


def upload(args: argparse.Namespace) -> int:
    """The ``vodfc upload`` command."""
    path = Path(args.file)
    if not path.is_file():
        print(f"vodfc upload: no such file: {path}", file=sys.stderr)
        return 2
    client = Client(args.api, args.token)
    try:
        creds = upload_file(client, path, args.title or path.stem, part_size=args.part_size)
        video_id = creds["VideoId"]
        print(f"VideoId {video_id}")
        if args.no_wait:
            return 0
        record = wait_until_final(client, video_id, args.timeout)
    except ApiError as exc:
        print(f"vodfc upload: the API refused: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"vodfc upload: cannot reach the API: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(json.dumps(record, ensure_ascii=False, indent=2))
    return 0 if record["Status"] == "ready" else 1
