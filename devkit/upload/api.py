"""The vodfc API over httpx: create, refresh and look up uploads of each media kind.

Every httpx exception and every error answer is translated here, in :meth:`Client._call`, into
:mod:`devkit.upload.errors`; callers never see httpx.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from devkit.upload.errors import (
    AuthError,
    NetworkError,
    PolicyError,
    ProcessingError,
    UploadError,
    UsageError,
)

__all__ = [
    "ATTACHED",
    "FINAL",
    "IMAGE",
    "VIDEO",
    "ApiAuthError",
    "ApiError",
    "ApiRefusal",
    "ApiUnavailable",
    "Client",
    "MediaKind",
    "attached_body",
    "image_body",
    "video_body",
    "wait_until_final",
]

FINAL = frozenset({"ready", "failed", "expired", "deleted"})
# 403 codes that mean "who you are", not "what you asked": the token, not the request, is at fault.
AUTH_CODES = frozenset({"InvalidToken", "Forbidden"})
RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_DELAYS = (0.5, 1.0)
MAX_RETRY_AFTER = 5.0


@dataclass(frozen=True)
class MediaKind:
    """What is uploaded: the API's route for it, the name of its id, whether it can be refreshed."""

    name: str
    id_field: str
    route: str
    refreshable: bool


VIDEO = MediaKind("video", "VideoId", "/uploads", refreshable=True)
# VOD has no RefreshUploadImage / RefreshUploadAttachedMedia: an expired credential means a new id.
IMAGE = MediaKind("image", "ImageId", "/images", refreshable=False)
ATTACHED = MediaKind("attached media", "MediaId", "/attached-media", refreshable=False)


def _ext(path: Path) -> str | None:
    return path.suffix[1:].lower() or None


def video_body(title: str, path: Path) -> dict[str, Any]:
    """``POST /uploads``."""
    return {"Title": title, "FileName": path.name, "FileSize": path.stat().st_size}


def image_body(title: str, path: Path, image_type: str) -> dict[str, Any]:
    """``POST /images`` (VOD's CreateUploadImage; without an extension VOD assumes png)."""
    body = {"Title": title, "ImageType": image_type, "ImageExt": _ext(path), "OriginalFileName": path.name}
    return {k: v for k, v in body.items() if v is not None}


def attached_body(business_type: str, title: str, path: Path) -> dict[str, Any]:
    """``POST /attached-media`` (VOD's CreateUploadAttachedMedia)."""
    body = {
        "BusinessType": business_type,
        "MediaExt": _ext(path),
        "Title": title,
        "FileName": path.name,
        "FileSize": path.stat().st_size,
    }
    return {k: v for k, v in body.items() if v is not None}


class ApiError(UploadError):
    """An error answer of the vodfc API, in its own words; the subclass decides the exit code."""

    what = "the API answered an error"

    def __init__(self, status: int, body: dict[str, Any], *, hint: str | None = None) -> None:
        self.status = status
        self.code = str(body.get("Code", "Error"))
        self.api_message = str(body.get("Message", ""))
        super().__init__(f"{self.what}: {status} {self.code}: {self.api_message}", hint=hint)


class ApiRefusal(ApiError, PolicyError):
    what = "the API refused the request"


class ApiAuthError(ApiError, AuthError):
    what = "the API refused the token"

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status, body, hint="check --token (or $VODFC_TOKEN)")


class ApiUnavailable(ApiError, NetworkError):
    what = "the API is unavailable"


def _error_class(status: int, code: str) -> type[ApiError]:
    if status == 401 or (status == 403 and code in AUTH_CODES):
        return ApiAuthError
    if status >= 500:
        return ApiUnavailable
    return ApiRefusal


def _in_progress(response: httpx.Response) -> bool:
    """A 409 ``IdempotencyKeyInUse``: the first request with this key is still being served (a
    retry after a lost connection came too early); asking again shortly gets its answer."""
    if response.status_code != 409:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("Code") == "IdempotencyKeyInUse"


def _retry_after(response: httpx.Response, default: float) -> float:
    try:
        return min(float(response.headers.get("Retry-After", default)), MAX_RETRY_AFTER)
    except ValueError:
        return default


class Client:
    """The vodfc API. ``transport`` and ``sleep`` are for tests."""

    def __init__(
        self,
        api: str,
        token: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = api.rstrip("/")
        if not self.api.startswith(("http://", "https://")):
            raise UsageError(f"--api must be an http:// or https:// URL, not {api!r}")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = timeout
        self.sleep = sleep
        self.http = httpx.Client(
            base_url=self.api,
            headers={"User-Agent": "vodfc-upload", **headers},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        return f"{self.api}{path}"

    def _call(
        self,
        method: str,
        path: str,
        *,
        retry: Literal["any", "connect"] = "any",
        **kw: Any,
    ) -> dict[str, Any]:
        """One API call; transient failures retried (only unsent requests when ``retry="connect"``)."""
        delays = iter(RETRY_DELAYS)
        while True:
            try:
                response = self.http.request(method, path, **kw)
            except httpx.TransportError as exc:
                unsent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                delay = next(delays, None) if unsent or retry == "any" else None
                if delay is None:
                    raise self._transport_error(path, exc) from exc
            else:
                retryable = retry == "any" and (
                    response.status_code in RETRY_STATUSES or _in_progress(response)
                )
                delay = next(delays, None) if retryable else None
                if delay is None:
                    return self._answer(method, path, response)
                delay = _retry_after(response, delay)
            self.sleep(delay)

    def _transport_error(self, path: str, exc: httpx.TransportError) -> NetworkError:
        url = self.url(path)
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return NetworkError(f"cannot reach the API at {url}: {_reason(exc)}")
        if isinstance(exc, httpx.TimeoutException):
            return NetworkError(f"the API at {url} did not answer within {self.timeout:g} s")
        return NetworkError(f"lost the connection to the API at {url}: {_reason(exc)}")

    def _answer(self, method: str, path: str, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise NetworkError(
                f"{method} {self.url(path)} answered HTTP {response.status_code} without a JSON body: "
                "is --api the address of a vodfc API?"
            )
        if response.status_code != 200:
            raise _error_class(response.status_code, str(body.get("Code", "")))(response.status_code, body)
        return body

    def create_media(self, kind: MediaKind, body: dict[str, Any]) -> dict[str, Any]:
        """Ask for an upload credential; the answer holds ``kind.id_field``."""
        # A retry with the same key gets the same media, never a second one (POST /uploads honours
        # it; for the others only requests that never left are retried).
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        retry: Literal["any", "connect"] = "any" if kind is VIDEO else "connect"
        answer = self._call("POST", kind.route, json=body, headers=headers, retry=retry)
        for field in (kind.id_field, "UploadAddress", "UploadAuth"):
            if not answer.get(field):
                raise NetworkError(f"POST {self.url(kind.route)} answered without {field}: is --api right?")
        return answer

    def create(self, title: str, path: Path) -> dict[str, Any]:
        """``POST /uploads`` for ``path``."""
        return self.create_media(VIDEO, video_body(title, path))

    def refresh(self, video_id: str) -> dict[str, Any]:
        """A fresh credential for the same upload address (videos only)."""
        return self._call("POST", f"{VIDEO.route}/{video_id}/refresh")

    def status(self, media_id: str, kind: MediaKind = VIDEO) -> dict[str, Any]:
        """The media's record (``Status`` among others)."""
        return self._call("GET", f"{kind.route}/{media_id}")


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    # httpx repeats the OS error as "[Errno 111] Connection refused": keep the readable part.
    return text.split("] ", 1)[-1].strip().lower() if text.startswith("[Errno") else text


def wait_until_final(
    client: Client,
    media_id: str,
    timeout: float,
    *,
    kind: MediaKind = VIDEO,
    quiet: bool = False,
    poll: float = 0.5,
) -> dict[str, Any]:
    """Poll the record until it is ready, failed, expired or deleted; status changes on stderr."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        record = client.status(media_id, kind)
        status = record.get("Status")
        if status != last and not quiet:
            print(f"  status: {status}", file=sys.stderr, flush=True)
            last = status
        if status in FINAL:
            return record
        if time.monotonic() > deadline:
            raise ProcessingError(
                f"{kind.id_field} {media_id} is still {status} after {timeout:g} s",
                hint=f"check it later: curl {client.url(f'{kind.route}/{media_id}')}",
            )
        time.sleep(min(poll, max(deadline - time.monotonic(), 0.05)))
