"""The emulated bucket's CORS rule: which browser origins may upload, and the headers they get.

Like a bucket CORS rule with ``AllowedHeader *`` and the methods ali-oss uses
(https://www.alibabacloud.com/help/en/object-storage-service/latest/putbucketcors): a preflight
from an allowed origin is answered 200 with the requested headers echoed; a request that matches
no rule gets no CORS headers, and such a preflight 403 ``AccessForbidden``
(https://www.alibabacloud.com/help/doc-detail/122573.htm), so the browser reports a CORS failure.

Allowed origins: every loopback origin (``http(s)://localhost``, ``127.0.0.0/8``, ``[::1]``, any
port) when ``allow_loopback`` is on, plus the exact origins configured (``*`` allows all).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["ALLOWED_METHODS", "EXPOSED_HEADERS", "CorsPolicy", "is_loopback_origin"]

ALLOWED_METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")
# ali-oss reads ETag to complete a multipart upload (https://github.com/ali-sdk/ali-oss/issues/202)
# and x-oss-request-id in its errors.
EXPOSED_HEADERS = ("ETag", "x-oss-request-id", "x-oss-hash-crc64ecma", "x-oss-version-id")
_MAX_AGE = "600"


def is_loopback_origin(origin: str) -> bool:
    """True for ``http(s)://localhost``, ``127.x.y.z`` or ``[::1]``, with or without a port."""
    try:
        parts = urlsplit(origin)
        _ = parts.port  # ValueError for a non-numeric or out-of-range port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.path or parts.query or parts.fragment:
        return False
    if parts.username is not None or parts.password is not None:
        return False
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class CorsPolicy:
    """Decides on an ``Origin`` and produces the ``Access-Control-*`` headers."""

    def __init__(self, allowed_origins: tuple[str, ...], *, allow_loopback: bool) -> None:
        self.allowed_origins = frozenset(o.rstrip("/") for o in allowed_origins)
        self.allow_loopback = allow_loopback

    def allows(self, origin: str | None) -> bool:
        """Whether a browser page served from ``origin`` may call the bucket."""
        if not origin:
            return False
        if "*" in self.allowed_origins or origin in self.allowed_origins:
            return True
        return self.allow_loopback and is_loopback_origin(origin)

    def preflight_allows(self, origin: str | None, method: str) -> bool:
        """An ``OPTIONS`` preflight: origin allowed and the requested method one of ours."""
        return self.allows(origin) and method.upper() in ALLOWED_METHODS

    @staticmethod
    def preflight_headers(requested_headers: str | None) -> list[tuple[str, str]]:
        """Extra headers of an accepted preflight (``AllowedHeader *``: echo what was asked)."""
        if not requested_headers:
            return []
        return [("Access-Control-Allow-Headers", requested_headers)]

    def response_headers(self, origin: str | None) -> list[tuple[str, str]]:
        """Headers for any answer to ``origin`` (none when the origin is not allowed)."""
        if origin is None or not self.allows(origin):
            return []
        return [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Methods", ", ".join(ALLOWED_METHODS)),
            ("Access-Control-Expose-Headers", ", ".join(EXPOSED_HEADERS)),
            ("Access-Control-Max-Age", _MAX_AGE),
            ("Vary", "Origin"),
        ]
