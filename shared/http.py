"""The HTTP adapter: one entry for FC 2.0 (WSGI) and FC 3.0 (HTTP event), errors rendered here.

:func:`serve` tells the two programming models apart by their arguments, builds a
:class:`Request`, applies the body limit and CORS, calls the route, and turns the
:class:`Response` (or any error) back into what that model expects::

    def handler(*args):
        settings, invalid = configured()  # invalid settings: every request answers a 500
        route = router if invalid is None else refusing(invalid)
        return serve(args, route, settings=settings, function_name="upload_credentials")

Every :class:`~shared.errors.VodfcError` is rendered by :func:`shared.errors.render`; anything else
becomes a fixed 500 body, with the traceback logged and never sent. Every response carries
``X-Request-Id``; every invocation writes exactly one JSON log line (:func:`shared.invocation.invocation`).

CORS: exact origins from ``ALLOWED_ORIGINS`` only. No ``Access-Control-Allow-Credentials``: the
browser sends the bearer token itself in ``Authorization`` (allowed by the preflight), and
credentials mode is only for ambient credentials (cookies, HTTP auth, client certificates), which
vodfc never uses, so leaving it off means no cookie can ever ride along a cross-origin request.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from shared import errors
from shared.invocation import clean_request_id, context_request_id, invocation
from shared.log import get_logger
from shared.validation import as_text, bad_text, too_deep

if TYPE_CHECKING:
    from shared.settings import Settings

__all__ = [
    "CORS_ALLOW_HEADERS",
    "CORS_ALLOW_METHODS",
    "CORS_EXPOSE_HEADERS",
    "CORS_MAX_AGE",
    "JSON_CONTENT_TYPE",
    "Handler",
    "Headers",
    "Request",
    "Response",
    "Route",
    "Router",
    "json_response",
    "refusing",
    "serve",
]

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
CORS_ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
CORS_ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key"
CORS_EXPOSE_HEADERS = "X-Request-Id, Retry-After"
CORS_MAX_AGE = "600"

_FC_PROXY_PREFIX = "/2016-08-15/proxy/"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# FC refuses responses carrying these (502 BadResponse), or they are hop-by-hop.
_FORBIDDEN_RESPONSE_HEADERS = frozenset(
    {"connection", "keep-alive", "content-length", "date", "server", "transfer-encoding", "upgrade",
     "trailer", "te", "proxy-connection"}
)  # fmt: skip
_MAX_QUERY_FIELDS = 100
_log = get_logger("http")


# --- request and response ----------------------------------------------------------------------
class Headers(Mapping[str, str]):
    """Case-insensitive, read-only headers; repeated names are joined with ``", "``."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        store: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            store[key] = f"{store[key]}, {value}" if key in store else value
        self._items = store

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        shown = {k: ("***" if k in {"authorization", "cookie"} else v) for k, v in self._items.items()}
        return f"Headers({shown!r})"


@dataclass(eq=False)
class Request:
    """One HTTP request, the same for FC 2.0 and FC 3.0.

    ``path`` is the route path: FC's ``/2016-08-15/proxy/...`` prefix stripped, percent-decoded.
    ``query`` joins repeated keys with ``","`` (as FC 3.0 does). :class:`Router` fills ``route``
    and ``path_params`` (and ``video_id`` when the pattern has one); :func:`shared.auth.authenticate`
    fills ``owner``. ``route``, ``owner`` and ``video_id`` go into the invocation log line, with any
    extra fields added by :meth:`annotate`.
    """

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=Headers, repr=False)
    body: bytes = field(default=b"", repr=False)
    request_id: str = ""
    context: Any = field(default=None, repr=False)
    source_ip: str | None = None
    route: str | None = None
    path_params: dict[str, str] = field(default_factory=dict)
    owner: str | None = None
    video_id: str | None = None
    log_fields: dict[str, Any] = field(default_factory=dict, repr=False)
    _json: dict[str, Any] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.headers, Headers):
            self.headers = Headers(self.headers)
        # An FC 3.0 event is JSON, so its path and method may hold lone surrogates (``\ud800``):
        # not text, and they go into the log line, which must always be writable.
        self.method = as_text(self.method).upper()
        self.path = as_text(self.path)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The header's value (case-insensitive name), or ``default``."""
        return self.headers.get(name, default)

    def annotate(self, **fields: Any) -> None:
        """Add extra fields to this invocation's log line."""
        self.log_fields.update(fields)

    def json(self, *, require_content_type: bool = True) -> dict[str, Any]:
        """The body as a JSON object; ``{}`` for non-POST/PUT/PATCH requests or an empty body.

        Raises ``UnsupportedMediaType`` unless ``Content-Type`` is ``application/json`` (charset,
        if given, UTF-8) and ``MalformedBody`` for invalid UTF-8, invalid JSON (also ``NaN``,
        duplicate keys, excessive nesting) or a non-object. The result is parsed once and cached.
        """
        if self._json is not None:
            return self._json
        if self.method not in _BODY_METHODS or not self.body:
            return {}
        if require_content_type and not _is_json_content_type(self.header("content-type")):
            raise errors.UnsupportedMediaType()
        try:
            text = self.body.decode("utf-8")
            data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        except UnicodeDecodeError as exc:
            raise errors.MalformedBody("The request body is not valid UTF-8.") from exc
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            raise errors.MalformedBody() from exc
        if not isinstance(data, dict):
            raise errors.MalformedBody("The request body must be a JSON object.")
        if too_deep(data):  # what walks it later (validation, re-serialising) recurses
            raise errors.MalformedBody("The request body is nested too deeply.")
        found = bad_text(data)
        if found is not None:
            problem, key = found
            field = _shorten_key(key) if key is not None else None
            raise errors.InvalidParameter(f"{field or 'The request body'} holds {problem}.", field=field)
        self._json = data
        return data


def _shorten_key(key: str) -> str:
    """A client's key as it may appear in a message: printable ASCII, at most 64 characters."""
    shown = "".join(c if c.isascii() and c.isprintable() else "?" for c in key[:64])
    return shown + ("..." if len(key) > 64 else "")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _is_json_content_type(value: str | None) -> bool:
    if not value:
        return False
    mime, *params = value.split(";")
    if mime.strip().lower() != "application/json":
        return False
    for param in params:
        name, _, val = param.partition("=")
        if name.strip().lower() == "charset" and val.strip().strip('"').lower() not in {"utf-8", "utf8"}:
            return False
    return True


@dataclass
class Response:
    """What a route returns; :func:`serve` adds the common headers and converts it for FC."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def json_response(status: int, obj: Any, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response (compact UTF-8, ``Cache-Control: no-store`` since bodies carry credentials)."""
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    merged = {"Content-Type": JSON_CONTENT_TYPE, "Cache-Control": "no-store"}
    for name, value in (headers or {}).items():
        _set_header(merged, name, value)
    return Response(status, merged, body)


def _set_header(headers: dict[str, str], name: str, value: str) -> None:
    for existing in [k for k in headers if k.lower() == name.lower()]:
        del headers[existing]
    headers[name] = value


# --- router ------------------------------------------------------------------------------------
Route = Callable[[Request], Response]
Handler = Callable[..., Response]  # fn(request, **path_params)


class _MethodNotAllowed(errors.MethodNotAllowed):
    def __init__(self, allow: Sequence[str]) -> None:
        super().__init__()
        self.allow = ", ".join(allow)

    def headers(self) -> dict[str, str]:
        return {"Allow": self.allow}


def _segments(path: str) -> tuple[str, ...]:
    stripped = path.strip("/")
    return tuple(stripped.split("/")) if stripped else ()


class Router:
    """Method + path-pattern routing (``/uploads/{video_id}/refresh``); 404 / 405 with ``Allow``.

    The handler is called as ``fn(request, **path_params)``; the parameters also land in
    ``request.path_params``, and ``request.route`` is ``"<METHOD> <pattern>"``.
    """

    def __init__(self) -> None:
        self._routes: list[tuple[str, str, tuple[str, ...], Handler]] = []

    def add(self, method: str, pattern: str, fn: Handler) -> None:
        """Register ``fn`` for ``method`` on ``pattern`` (``{name}`` matches one non-empty segment)."""
        if not pattern.startswith("/"):
            raise ValueError(f"route pattern must start with '/': {pattern!r}")
        self._routes.append((method.upper(), pattern, _segments(pattern), fn))

    def __call__(self, request: Request) -> Response:
        parts = _segments(request.path)
        allowed: set[str] = set()
        for method, pattern, segments, fn in self._routes:
            params = _match(segments, parts)
            if params is None:
                continue
            if method == request.method:
                request.route = f"{method} {pattern}"
                request.path_params = params
                request.video_id = params.get("video_id", request.video_id)
                return fn(request, **params)
            allowed.add(method)
        if allowed:
            raise _MethodNotAllowed(sorted(allowed | {"OPTIONS"}))
        raise errors.NotFound("The specified API does not exist.", code="InvalidApi.NotFound")


def _match(segments: tuple[str, ...], parts: tuple[str, ...]) -> dict[str, str] | None:
    if len(segments) != len(parts):
        return None
    params: dict[str, str] = {}
    for segment, part in zip(segments, parts, strict=True):
        if segment.startswith("{") and segment.endswith("}"):
            if not part:
                return None
            params[segment[1:-1]] = part
        elif segment != part:
            return None
    return params


# --- parsing the two trigger shapes ------------------------------------------------------------
_BodyLoader = Callable[[int], bytes]


def _is_wsgi(args: Sequence[Any]) -> bool:
    return (
        len(args) == 2
        and isinstance(args[0], dict)
        and callable(args[1])
        and ("REQUEST_METHOD" in args[0] or "wsgi.input" in args[0])
    )


def _invalid_event(message: str = "The HTTP trigger event is malformed.") -> errors.VodfcError:
    return errors.MalformedBody(message, code="InvalidEvent")


def _strip_proxy_prefix(path: str) -> str:
    """``/2016-08-15/proxy/<service>[.<qualifier>]/<function>/rest`` → ``/rest``."""
    if not path.startswith(_FC_PROXY_PREFIX):
        return path
    parts = path.split("/", 5)  # '', '2016-08-15', 'proxy', service, function, rest
    if len(parts) < 5 or not parts[3] or not parts[4]:
        return path
    return "/" + (parts[5] if len(parts) > 5 else "")


def _decode_path(raw: str) -> str:
    path = unquote(_strip_proxy_prefix(raw), encoding="utf-8", errors="replace")
    return path if path.startswith("/") else "/" + path


def _wsgi_str(value: str) -> str:
    """PEP 3333 strings are bytes decoded as latin-1; re-decode them as the UTF-8 they usually are."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _parse_query(query_string: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, max_num_fields=_MAX_QUERY_FIELDS)
    except ValueError as exc:
        raise errors.InvalidParameter("The query string has too many parameters.") from exc
    query: dict[str, str] = {}
    for key, value in pairs:
        query[key] = f"{query[key]},{value}" if key in query else value
    return query


def _content_length(headers: Headers, limit: int) -> int | None:
    value = headers.get("content-length")
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise errors.MalformedBody("The Content-Length header is invalid.")
    length = int(value)
    if length > limit:
        raise errors.PayloadTooLarge()
    return length


def _from_wsgi(environ: dict[str, Any], request_id: str) -> tuple[Request, _BodyLoader]:
    method = environ.get("REQUEST_METHOD")
    if not isinstance(method, str) or not method:
        raise _invalid_event("The HTTP request has no method.")
    raw_uri = environ.get("fc.request_uri")
    raw_query = ""
    if isinstance(raw_uri, str) and raw_uri:
        raw_path, _, raw_query = raw_uri.partition("?")
        path = _decode_path(raw_path)
    else:
        path_info = environ.get("PATH_INFO")
        path = _strip_proxy_prefix(_wsgi_str(path_info) if isinstance(path_info, str) else "") or "/"
        path = path if path.startswith("/") else "/" + path
    query_string = environ.get("QUERY_STRING")
    query = _parse_query(_wsgi_str(query_string) if isinstance(query_string, str) else raw_query)
    pairs: list[tuple[str, str]] = []
    for key, value in environ.items():
        if not isinstance(value, str):
            continue
        if key.startswith("HTTP_"):
            pairs.append((key[5:].replace("_", "-"), _wsgi_str(value)))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            pairs.append((key.replace("_", "-"), value))
    headers = Headers(pairs)
    remote = environ.get("REMOTE_ADDR")
    request = Request(
        method=method,
        path=path,
        query=query,
        headers=headers,
        request_id=request_id,
        context=environ.get("fc.context"),
        source_ip=remote if isinstance(remote, str) and remote else None,
    )

    def load(limit: int) -> bytes:
        length = _content_length(headers, limit)
        if length is None:
            # Absent Content-Length: FC always sends one with a body; a server that de-chunks
            # (waitress) says so with wsgi.input_terminated, and then reading to EOF is safe.
            if not environ.get("wsgi.input_terminated"):
                return b""
            length = limit + 1
        data = _read_at_most(environ.get("wsgi.input"), length)
        if len(data) > limit:
            raise errors.PayloadTooLarge()
        if headers.get("content-length") and len(data) < length:
            raise errors.MalformedBody("The request body is shorter than its Content-Length.")
        return data

    return request, load


def _read_at_most(stream: Any, size: int) -> bytes:
    if stream is None or size <= 0:
        return b""
    chunks: list[bytes] = []
    remaining = size
    try:
        while remaining > 0:
            chunk = stream.read(min(remaining, 65536))
            if not chunk:
                break
            chunks.append(bytes(chunk))
            remaining -= len(chunk)
    except OSError as exc:
        raise errors.MalformedBody("The request body could not be read.") from exc
    return b"".join(chunks)


def _from_event(event: Any, context: Any, fallback_id: str) -> tuple[Request, _BodyLoader]:
    """The request of an FC 3.0 HTTP event; its id: the context's, else the event's, else ``fallback_id``."""
    if isinstance(event, (bytes, bytearray, memoryview, str)):
        try:
            event = json.loads(bytes(event) if not isinstance(event, str) else event)
        except (ValueError, RecursionError) as exc:
            raise _invalid_event() from exc
    if not isinstance(event, dict):
        raise _invalid_event()
    request_context = event.get("requestContext")
    if not isinstance(request_context, dict):
        raise _invalid_event()
    http = request_context.get("http")
    method = http.get("method") if isinstance(http, dict) else None
    if not isinstance(http, dict) or not isinstance(method, str) or not method:
        raise _invalid_event()
    raw_path = event.get("rawPath")
    if isinstance(raw_path, str) and raw_path:
        path = _decode_path(raw_path)
    else:
        decoded = http.get("path")
        path = _strip_proxy_prefix(decoded) if isinstance(decoded, str) and decoded else "/"
        path = path if path.startswith("/") else "/" + path
    headers = Headers(_string_pairs(event.get("headers"), ", "))
    query = dict(_string_pairs(event.get("queryParameters"), ","))
    body = event.get("body")
    if body is not None and not isinstance(body, str):
        raise _invalid_event("The HTTP trigger event body is not a string.")
    is_base64 = event.get("isBase64Encoded") in (True, "true")
    source_ip = http.get("sourceIp")
    request = Request(
        method=method,
        path=path,
        query=query,
        headers=headers,
        request_id=clean_request_id(context_request_id(context))
        or clean_request_id(request_context.get("requestId"))
        or fallback_id,
        context=context,
        source_ip=source_ip if isinstance(source_ip, str) and source_ip else None,
    )

    def load(limit: int) -> bytes:
        _content_length(headers, limit)
        if not body:
            return b""
        # Cheap bound before decoding: Base64 inflates by 4/3, UTF-8 never shrinks below len(str).
        if (len(body) // 4 * 3 - 2 if is_base64 else len(body)) > limit:
            raise errors.PayloadTooLarge()
        if is_base64:
            try:
                data = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise errors.MalformedBody("The request body is not valid Base64.") from exc
        else:
            data = body.encode("utf-8", errors="surrogatepass")  # lone surrogates → MalformedBody later
        if len(data) > limit:
            raise errors.PayloadTooLarge()
        return data

    return request, load


def _string_pairs(value: Any, joiner: str) -> list[tuple[str, str]]:
    if not isinstance(value, dict):
        return []
    pairs: list[tuple[str, str]] = []
    for key, item in value.items():
        if item is None:
            continue
        if isinstance(item, (list, tuple)):
            item = joiner.join(str(v) for v in item)
        pairs.append((str(key), item if isinstance(item, str) else str(item)))
    return pairs


# --- serving -----------------------------------------------------------------------------------
def serve(
    args: Sequence[Any],
    route: Route,
    *,
    settings: Settings,
    function_name: str,
    clock: Callable[[], float] = time.perf_counter,
) -> Any:
    """Answer one FC HTTP invocation: ``(environ, start_response)`` or ``(event, context)``.

    WSGI: calls ``start_response`` and returns ``[body]``. FC 3.0: returns
    ``{"statusCode", "headers", "isBase64Encoded", "body"}``. Never raises.
    """
    wsgi = _is_wsgi(args)
    context = args[0].get("fc.context") if wsgi else (args[1] if len(args) > 1 else None)
    with invocation(function_name, context, settings, clock=clock) as inv:
        request: Request | None = None
        origin: str | None = None
        try:
            if wsgi:
                request, load = _from_wsgi(args[0], inv.request_id)
            else:
                request, load = _from_event(args[0] if args else None, context, inv.request_id)
            inv.bind(request.request_id)
            origin = _allowed_origin(request, settings)
            request.body = load(settings.max_body_bytes)
            response = _dispatch(request, route, origin)
        except Exception as exc:
            error = inv.fail(exc)
            response = json_response(error.status, errors.render(error, inv.request_id), error.headers())
        response = _finish(response, inv.request_id, origin, settings)
        inv.status = response.status
        if request is not None:
            inv.route, inv.owner, inv.video_id = request.route, request.owner, request.video_id
            inv.annotate(**request.log_fields)
            inv.fields.setdefault("method", request.method)
            inv.fields.setdefault("path", request.path[:256])
        return _to_wsgi(response, args[1]) if wsgi else _to_event_result(response)


def refusing(error: errors.VodfcError) -> Route:
    """A route that answers every request with ``error`` (a function whose settings are invalid)."""

    def route(request: Request) -> Response:
        raise error

    return route


def _allowed_origin(request: Request, settings: Settings) -> str | None:
    origin = request.header("origin")
    return origin if origin is not None and origin in settings.allowed_origins else None


def _dispatch(request: Request, route: Route, origin: str | None) -> Response:
    if request.method == "OPTIONS":
        if request.header("origin") is None:
            return Response(204, {"Allow": CORS_ALLOW_METHODS})
        if origin is None:
            raise errors.Forbidden("The origin is not allowed.", code="Forbidden.Origin")
        return Response(
            204,
            {
                "Access-Control-Allow-Methods": CORS_ALLOW_METHODS,
                "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
                "Access-Control-Max-Age": CORS_MAX_AGE,
            },
        )
    response = route(request)
    if (
        not isinstance(response, Response)
        or not isinstance(response.body, bytes)
        or not isinstance(response.status, int)
        or not 100 <= response.status <= 599
    ):
        raise TypeError(f"route returned an invalid response: {type(response).__name__}")
    return response


def _finish(response: Response, request_id: str, origin: str | None, settings: Settings) -> Response:
    headers: dict[str, str] = {}
    names: dict[str, str] = {}  # lower-case name -> the spelling kept in ``headers``
    for name, value in response.headers.items():
        if _header_ok(name, value):
            _put_header(headers, names, name, value)
        else:
            _log.warning("dropped response header %r (not allowed by FC or not encodable)", name)
    _put_header(headers, names, "X-Request-Id", request_id)
    if "cache-control" not in names:
        _put_header(headers, names, "Cache-Control", "no-store")
    _put_header(headers, names, "X-Content-Type-Options", "nosniff")
    if settings.allowed_origins:
        vary_name = names.get("vary")
        vary = headers[vary_name] if vary_name is not None else ""
        if "origin" not in vary.lower():
            _put_header(headers, names, "Vary", f"{vary}, Origin" if vary else "Origin")
    if origin is not None:
        _put_header(headers, names, "Access-Control-Allow-Origin", origin)
        _put_header(headers, names, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS)
    return Response(response.status, headers, response.body)


def _put_header(headers: dict[str, str], names: dict[str, str], name: str, value: str) -> None:
    """:func:`_set_header` with an index of lower-case names (no scan of every header per call)."""
    lower = name.lower()
    previous = names.get(lower)
    if previous is not None:
        del headers[previous]
    headers[name] = value
    names[lower] = name


# Header names already checked by _header_ok (a handful: routes set the same few every time).
_NAME_OK: dict[str, bool] = {}


def _header_ok(name: object, value: object) -> bool:
    if not isinstance(name, str) or not isinstance(value, str):
        return False
    ok = _NAME_OK.get(name)
    if ok is None:
        ok = _header_name_ok(name)
        if len(_NAME_OK) < 256:
            _NAME_OK[name] = ok
    if not ok or "\r" in value or "\n" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _header_name_ok(name: str) -> bool:
    if not name:
        return False
    lower = name.lower()
    if lower in _FORBIDDEN_RESPONSE_HEADERS or lower.startswith("x-fc-") or not name.isascii():
        return False
    return not ("\r" in name or "\n" in name or ":" in name)


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _to_wsgi(response: Response, start_response: Callable[..., Any]) -> list[bytes]:
    start_response(_status_line(response.status), list(response.headers.items()))
    return [response.body]


def _to_event_result(response: Response) -> dict[str, Any]:
    try:
        body, is_base64 = response.body.decode("utf-8"), False
    except UnicodeDecodeError:
        body, is_base64 = base64.b64encode(response.body).decode("ascii"), True
    return {
        "statusCode": response.status,
        "headers": dict(response.headers),
        "isBase64Encoded": is_base64,
        "body": body,
    }
