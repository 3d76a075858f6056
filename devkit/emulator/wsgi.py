"""Small WSGI helpers shared by the two apps (no framework: the emulator must see raw requests)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import IO, Any
from urllib.parse import parse_qsl

__all__ = ["Request", "Response", "StartResponse", "WsgiApp", "read_limited"]

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_CHUNK = 64 * 1024


@dataclass
class Request:
    """The parts of a WSGI environ the emulator needs (headers lower-cased)."""

    environ: dict[str, Any]
    method: str
    path: str  # percent-decoded, UTF-8
    query_string: str
    headers: dict[str, str]

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> Request:
        """Parse method, path, query and headers."""
        raw_path = environ.get("PATH_INFO", "") or "/"
        try:
            # PEP 3333: PATH_INFO is the decoded path as latin-1; the bytes are UTF-8.
            path = raw_path.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            path = raw_path
        headers: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers[key[5:].replace("_", "-").lower()] = str(value)
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        if environ.get("CONTENT_LENGTH"):
            headers["content-length"] = str(environ["CONTENT_LENGTH"])
        return cls(
            environ=environ,
            method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
            path=path,
            query_string=str(environ.get("QUERY_STRING", "")),
            headers=headers,
        )

    def query_items(self) -> list[tuple[str, str]]:
        """Query parameters in order, blank values kept, form-decoded (``+`` is a space)."""
        return parse_qsl(self.query_string, keep_blank_values=True)

    def query(self) -> dict[str, str]:
        """Query parameters as a dict (the last of duplicates wins)."""
        return dict(self.query_items())

    @property
    def content_length(self) -> int | None:
        """The declared body length, if any."""
        raw = self.headers.get("content-length")
        if raw is None or not raw.strip().isdigit():
            return None
        return int(raw)

    @property
    def body_stream(self) -> IO[bytes]:
        """``wsgi.input``."""
        stream: IO[bytes] = self.environ["wsgi.input"]
        return stream

    def iter_body(self) -> Iterator[bytes]:
        """The body in chunks, without holding it all in memory."""
        remaining = self.content_length
        if remaining is None and not self.environ.get("wsgi.input_terminated"):
            # PEP 3333: without CONTENT_LENGTH (and no terminated input), there is no body.
            remaining = 0
        stream = self.body_stream
        while remaining is None or remaining > 0:
            size = _CHUNK if remaining is None else min(_CHUNK, remaining)
            chunk = stream.read(size)
            if not chunk:
                break
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk

    def read_body(self, limit: int) -> bytes | None:
        """The whole body, or None if it is longer than ``limit``."""
        return read_limited(self.iter_body(), limit)


def read_limited(chunks: Iterable[bytes], limit: int) -> bytes | None:
    """Join chunks, or None as soon as they exceed ``limit`` bytes."""
    out = bytearray()
    for chunk in chunks:
        out += chunk
        if len(out) > limit:
            return None
    return bytes(out)


@dataclass
class Response:
    """A status, headers and a body (bytes, or an iterable for streaming)."""

    status: int
    body: bytes | Iterable[bytes] = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, data: Any, headers: list[tuple[str, str]] | None = None) -> Response:
        """Compact JSON, like VOD sends."""
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return cls(status, body, [("Content-Type", "application/json;charset=utf-8"), *(headers or [])])

    def header(self, name: str) -> str | None:
        """The first header with this name (case-insensitive)."""
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)

    def set_header(self, name: str, value: str) -> None:
        """Replace (or add) a header."""
        lname = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lname]
        self.headers.append((name, value))

    def finish(self, start_response: StartResponse) -> Iterable[bytes]:
        """Call ``start_response`` and return the body iterable."""
        try:
            reason = HTTPStatus(self.status).phrase
        except ValueError:
            reason = "Unknown"
        headers = list(self.headers)
        if isinstance(self.body, bytes):
            if self.header("Content-Length") is None:
                headers.append(("Content-Length", str(len(self.body))))
            start_response(f"{self.status} {reason}", headers)
            return [self.body]
        start_response(f"{self.status} {reason}", headers)
        return self.body
