"""shared/http.py: both FC trigger shapes, body limits, CORS, error rendering, routing."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest

from shared import errors
from shared.context import FakeContext
from shared.http import (
    CORS_ALLOW_HEADERS,
    CORS_ALLOW_METHODS,
    CORS_EXPOSE_HEADERS,
    JSON_CONTENT_TYPE,
    Headers,
    Request,
    Response,
    Router,
    json_response,
    serve,
)
from shared.invocation import INTERNAL_ERROR_MESSAGE
from shared.settings import Settings

ORIGIN = "https://app.example.com"
RID = "1-6745a1b2-0a1b2c3d4e5f60718293a4b5"
LIMIT = 1024


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "allowed_origins": f"{ORIGIN},https://admin.example.com",
        "max_body_bytes": LIMIT,
        "auth_mode": "none",
        "log_level": "INFO",
    }
    values.update(overrides)
    return Settings(**values)


SETTINGS = make_settings()


# --- the app under test ------------------------------------------------------------------------
def _echo(request: Request, **params: str) -> Response:
    return json_response(
        200,
        {
            "method": request.method,
            "path": request.path,
            "params": request.path_params,
            "query": request.query,
            "json": request.json(),
            "xff": request.header("X-Forwarded-For"),
            "rid": request.request_id,
        },
    )


def _boom(request: Request, **params: str) -> Response:
    raise RuntimeError("database password=hunter2-very-secret exploded")


def _throttle(request: Request, **params: str) -> Response:
    raise errors.Throttled()


def _binary(request: Request, **params: str) -> Response:
    return Response(200, {"Content-Type": "application/octet-stream"}, b"\xff\x00\xfe")


def _bad_headers(request: Request, **params: str) -> Response:
    return Response(
        200,
        {
            "Content-Length": "5",
            "X-Fc-Trace": "1",
            "Date": "today",
            "Server": "me",
            "X-Injected": "a\r\nSet-Cookie: x=1",
            "X-Ok": "yes",
        },
        b"hello",
    )


def _not_a_response(request: Request, **params: str) -> Response:
    return {"oops": True}  # type: ignore[return-value]


ROUTER = Router()
ROUTER.add("POST", "/uploads", _echo)
ROUTER.add("GET", "/uploads", _echo)
ROUTER.add("GET", "/uploads/{video_id}", _echo)
ROUTER.add("DELETE", "/uploads/{video_id}", _echo)
ROUTER.add("POST", "/uploads/{video_id}/refresh", _echo)
ROUTER.add("GET", "/boom", _boom)
ROUTER.add("GET", "/throttle", _throttle)
ROUTER.add("GET", "/binary", _binary)
ROUTER.add("GET", "/bad-headers", _bad_headers)
ROUTER.add("GET", "/not-a-response", _not_a_response)


# --- drivers: the same logical request through either trigger shape ----------------------------
@dataclass
class Result:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


def call_wsgi(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    context: Any = None,
    settings: Settings = SETTINGS,
    route: Any = ROUTER,
    prefix: str = "",
    environ_extra: dict[str, Any] | None = None,
) -> Result:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "47.100.12.34",
        "wsgi.input": io.BytesIO(body),
        "fc.context": context if context is not None else FakeContext(request_id=RID),
        "fc.request_uri": prefix + quote(path) + (f"?{query}" if query else ""),
    }
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    environ.update(environ_extra or {})
    return run_wsgi(environ, settings=settings, route=route)


def run_wsgi(environ: dict[str, Any], *, settings: Settings = SETTINGS, route: Any = ROUTER) -> Result:
    seen: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        assert isinstance(status, str) and all(isinstance(v, str) for _, v in headers)
        seen.append((status, headers))

    chunks = serve((environ, start_response), route, settings=settings, function_name="test_fn")
    assert isinstance(chunks, list) and all(isinstance(c, bytes) for c in chunks)
    assert len(seen) == 1
    status, header_list = seen[0]
    return Result(int(status.split()[0]), dict(header_list), b"".join(chunks))


def fc3_event(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    base64_body: bool = False,
    request_id: str = RID,
) -> dict[str, Any]:
    query_parameters: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        query_parameters[key] = f"{query_parameters[key]},{value}" if key in query_parameters else value
    hdrs = dict(headers or {})
    if body:
        hdrs.setdefault("Content-Length", str(len(body)))
    return {
        "version": "v1",
        "rawPath": quote(path),
        "body": base64.b64encode(body).decode() if base64_body else body.decode("utf-8"),
        "isBase64Encoded": base64_body,
        "headers": hdrs,
        "queryParameters": query_parameters,
        "requestContext": {
            "accountId": "1234567890123456",
            "domainName": "vodfc-abcdefghij.cn-shanghai.fcapp.run",
            "domainPrefix": "vodfc-abcdefghij",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "47.100.12.34",
                "userAgent": "pytest",
            },
            "requestId": request_id,
            "time": "2025-11-20T03:12:45Z",
            "timeEpoch": "1763608365123",
        },
    }


def run_event(
    event: Any, context: Any = None, *, settings: Settings = SETTINGS, route: Any = ROUTER
) -> Result:
    result = serve((event, context), route, settings=settings, function_name="test_fn")
    assert set(result) == {"statusCode", "headers", "isBase64Encoded", "body"}
    assert isinstance(result["body"], str) and isinstance(result["headers"], dict)
    body = base64.b64decode(result["body"]) if result["isBase64Encoded"] else result["body"].encode()
    return Result(result["statusCode"], result["headers"], body)


def call_fc3(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    context: Any = None,
    settings: Settings = SETTINGS,
    route: Any = ROUTER,
    base64_body: bool = False,
    as_bytes: bool = True,
) -> Result:
    event = fc3_event(method, path, query=query, headers=headers, body=body, base64_body=base64_body)
    payload = json.dumps(event).encode() if as_bytes else event
    ctx = context if context is not None else FakeContext(request_id=RID)
    return run_event(payload, ctx, settings=settings, route=route)


@pytest.fixture(params=["wsgi", "fc3"])
def call(request: pytest.FixtureRequest) -> Any:
    return call_wsgi if request.param == "wsgi" else call_fc3


JSON = {"Content-Type": "application/json"}


# --- both shapes answer the same ---------------------------------------------------------------
PARITY_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/uploads", {"query": "status=created&limit=10"}),
    ("GET", "/uploads", {"query": "tag=a&tag=b&empty="}),
    ("GET", "/uploads/vid%2F1 x", {}),
    ("GET", "/uploads/3f2a0c1e9b7d", {"headers": {"X-Forwarded-For": "1.1.1.1, 2.2.2.2"}}),
    (
        "POST",
        "/uploads",
        {"headers": JSON, "body": b'{"Title":"\xe4\xbd\xa0\xe5\xa5\xbd","FileName":"a.mp4"}'},
    ),
    ("POST", "/uploads", {"headers": {"Content-Type": "text/plain"}, "body": b"{}"}),
    ("POST", "/uploads", {"headers": JSON, "body": b"[1,2]"}),
    ("POST", "/uploads", {"headers": JSON, "body": b"{bad"}),
    ("POST", "/uploads", {"headers": JSON, "body": b"x" * (LIMIT + 1)}),
    ("POST", "/uploads/abc/refresh", {"headers": {**JSON, "Origin": ORIGIN}, "body": b"{}"}),
    ("DELETE", "/uploads/abc", {"headers": {"Origin": "https://evil.example"}}),
    ("OPTIONS", "/uploads", {"headers": {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}}),
    ("OPTIONS", "/uploads", {"headers": {"Origin": "https://evil.example"}}),
    ("PUT", "/uploads", {}),
    ("GET", "/nowhere", {}),
    ("GET", "/boom", {}),
    ("GET", "/throttle", {"headers": {"Origin": ORIGIN}}),
    ("GET", "/binary", {}),
]


@pytest.mark.parametrize(("method", "path", "kw"), PARITY_CASES)
def test_wsgi_and_fc3_give_identical_answers(method: str, path: str, kw: dict[str, Any]) -> None:
    wsgi = call_wsgi(method, path, **kw)
    fc3 = call_fc3(method, path, **kw)
    assert (wsgi.status, wsgi.headers, wsgi.body) == (fc3.status, fc3.headers, fc3.body)


def test_fc3_event_may_arrive_as_bytes_str_or_dict() -> None:
    event = fc3_event("GET", "/uploads/abc")
    answers = [
        run_event(e, FakeContext(request_id=RID))
        for e in (json.dumps(event).encode(), json.dumps(event), event)
    ]
    assert answers[0] == answers[1] == answers[2]
    assert answers[0].status == 200


def test_json_success_shape(call: Any) -> None:
    result = call("POST", "/uploads", query="a=1", headers=JSON, body=b'{"Title": "t"}')
    assert result.status == 200
    assert result.header("Content-Type") == JSON_CONTENT_TYPE
    assert result.header("Cache-Control") == "no-store"
    assert result.header("X-Request-Id") == RID
    assert result.json()["json"] == {"Title": "t"}
    assert result.json()["query"] == {"a": "1"}


# --- paths ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "prefix",
    ["/2016-08-15/proxy/vodfc/upload_credentials", "/2016-08-15/proxy/vodfc.prod/upload_credentials"],
)
def test_fc2_proxy_prefix_is_stripped(prefix: str) -> None:
    result = call_wsgi("GET", "/uploads/abc", prefix=prefix)
    assert result.status == 200
    assert result.json()["path"] == "/uploads/abc"
    assert result.json()["params"] == {"video_id": "abc"}


def test_fc2_prefix_stripped_from_path_info_when_no_request_uri() -> None:
    environ_extra = {"fc.request_uri": None, "PATH_INFO": "/2016-08-15/proxy/svc.LATEST/fn/uploads/abc"}
    result = call_wsgi("GET", "/ignored", environ_extra=environ_extra)
    assert result.json()["path"] == "/uploads/abc"


def test_fc2_prefix_alone_is_the_root() -> None:
    result = call_wsgi("GET", "/", prefix="/2016-08-15/proxy/svc/fn")
    assert result.status == 404
    assert result.json()["Code"] == "InvalidApi.NotFound"


def test_fc3_prefixed_raw_path_is_stripped_too() -> None:
    event = fc3_event("GET", "/uploads/abc")
    event["rawPath"] = "/2016-08-15/proxy/svc/fn/uploads/abc"
    assert run_event(event).json()["path"] == "/uploads/abc"


def test_fc3_falls_back_to_decoded_http_path() -> None:
    event = fc3_event("GET", "/uploads/a b")
    del event["rawPath"]
    assert run_event(event).json()["params"] == {"video_id": "a b"}


def test_path_is_percent_decoded_once(call: Any) -> None:
    result = call("GET", "/uploads/%41")  # sent as %2541, decoded exactly once
    assert result.json()["params"] == {"video_id": "%41"}


def test_wsgi_query_string_wins_over_request_uri() -> None:
    result = call_wsgi("GET", "/uploads", environ_extra={"fc.request_uri": "/uploads?status=ready"})
    assert result.json()["query"] == {}  # QUERY_STRING="" is present, so it is the query


def test_wsgi_query_falls_back_to_request_uri_when_query_string_absent() -> None:
    env = {
        "REQUEST_METHOD": "GET",
        "fc.request_uri": "/uploads?status=ready&x=%20y",
        "fc.context": FakeContext(request_id=RID),
        "wsgi.input": io.BytesIO(b""),
    }
    assert run_wsgi(env).json()["query"] == {"status": "ready", "x": " y"}


def test_too_many_query_parameters_is_400() -> None:
    query = "&".join(f"k{i}=v" for i in range(150))
    result = call_wsgi("GET", "/uploads", query=query)
    assert result.status == 400
    assert result.json()["Code"] == "InvalidParameter"


# --- bodies ------------------------------------------------------------------------------------
class CountingStream:
    def __init__(self, data: bytes) -> None:
        self._io = io.BytesIO(data)
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._io.read(size)
        self.bytes_read += len(chunk)
        return chunk


def test_missing_content_length_means_no_body() -> None:
    stream = CountingStream(b'{"a": 1}')
    env = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/uploads",
        "CONTENT_TYPE": "application/json",
        "wsgi.input": stream,
        "fc.context": FakeContext(request_id=RID),
    }
    result = run_wsgi(env)
    assert result.status == 200
    assert result.json()["json"] == {}
    assert stream.bytes_read == 0


def test_empty_content_length_is_tolerated() -> None:
    result = call_wsgi("GET", "/uploads", environ_extra={"CONTENT_LENGTH": ""})
    assert result.status == 200


def test_terminated_input_without_content_length_is_read_to_eof() -> None:
    env = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/uploads",
        "CONTENT_TYPE": "application/json",
        "wsgi.input": io.BytesIO(b'{"a": 1}'),
        "wsgi.input_terminated": True,
        "fc.context": FakeContext(request_id=RID),
    }
    assert run_wsgi(env).json()["json"] == {"a": 1}


def test_declared_content_length_over_limit_is_413_without_reading() -> None:
    stream = CountingStream(b"x" * 10)
    result = call_wsgi(
        "POST",
        "/uploads",
        headers=JSON,
        environ_extra={"wsgi.input": stream, "CONTENT_LENGTH": str(LIMIT + 1)},
    )
    assert result.status == 413
    assert result.json()["Code"] == "PayloadTooLarge"
    assert stream.bytes_read == 0


def test_unbounded_body_is_read_at_most_limit_plus_one() -> None:
    stream = CountingStream(b"x" * (LIMIT * 10))
    env = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/uploads",
        "wsgi.input": stream,
        "wsgi.input_terminated": True,
        "fc.context": FakeContext(request_id=RID),
    }
    assert run_wsgi(env).status == 413
    assert stream.bytes_read == LIMIT + 1


def test_body_shorter_than_content_length_is_400() -> None:
    result = call_wsgi("POST", "/uploads", headers=JSON, body=b"{}", environ_extra={"CONTENT_LENGTH": "10"})
    assert result.status == 400
    assert result.json()["Code"] == "MalformedBody"


@pytest.mark.parametrize("value", ["abc", "-1", "10, 10", "1e3", "１０"])
def test_invalid_content_length_is_400(call: Any, value: str) -> None:
    result = call("POST", "/uploads", headers={**JSON, "Content-Length": value}, body=b"{}")
    assert result.status == 400


def test_body_at_limit_is_accepted(call: Any) -> None:
    body = b'{"k":"' + b"x" * (LIMIT - 8) + b'"}'
    assert len(body) == LIMIT
    assert call("POST", "/uploads", headers=JSON, body=body).status == 200


def test_fc3_body_over_limit_without_content_length_is_413() -> None:
    event = fc3_event("POST", "/uploads", headers=JSON, body=b"{}")
    event["body"] = '{"k":"' + "x" * LIMIT + '"}'
    del event["headers"]["Content-Length"]
    assert run_event(event).status == 413


def test_fc3_multibyte_body_over_limit_is_413() -> None:
    event = fc3_event("POST", "/uploads", headers=JSON, body=b"{}")
    event["body"] = '{"k":"' + "\u4f60" * (LIMIT // 3) + '"}'  # fewer chars than LIMIT, more bytes
    del event["headers"]["Content-Length"]
    assert run_event(event).status == 413


def test_fc3_base64_body_is_decoded() -> None:
    result = call_fc3("POST", "/uploads", headers=JSON, body=b'{"Title": "b64"}', base64_body=True)
    assert result.status == 200
    assert result.json()["json"] == {"Title": "b64"}


def test_fc3_base64_body_over_limit_is_413() -> None:
    assert (
        call_fc3(
            "POST",
            "/uploads",
            headers={"Content-Type": "application/json"},
            body=b"x" * (LIMIT + 1),
            base64_body=True,
        ).status
        == 413
    )


def test_fc3_invalid_base64_is_400() -> None:
    event = fc3_event("POST", "/uploads", headers=JSON, body=b"{}")
    event["isBase64Encoded"] = True
    event["body"] = "not base64!!"
    result = run_event(event)
    assert result.status == 400
    assert result.json()["Code"] == "MalformedBody"


def test_fc3_lone_surrogate_body_is_400() -> None:
    event = fc3_event("POST", "/uploads", headers=JSON, body=b"{}")
    event["body"] = '{"a": "\ud800"}'
    assert run_event(event).status == 400


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "application/jsonx",
    ],
)
def test_non_json_content_type_is_415(call: Any, content_type: str) -> None:
    result = call("POST", "/uploads", headers={"Content-Type": content_type}, body=b"{}")
    assert result.status == 415
    assert result.json()["Code"] == "UnsupportedMediaType"


def test_missing_content_type_with_body_is_415(call: Any) -> None:
    assert call("POST", "/uploads", body=b"{}").status == 415


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=UTF-8", 'Application/JSON;charset="utf-8"']
)
def test_json_content_type_variants_accepted(call: Any, content_type: str) -> None:
    assert call("POST", "/uploads", headers={"Content-Type": content_type}, body=b"{}").status == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe{}", "The request body is not valid UTF-8."),
        (b"{bad json", "The request body is not valid JSON."),
        (b'["list"]', "The request body must be a JSON object."),
        (b'"string"', "The request body must be a JSON object."),
        (b'{"a": NaN}', "The request body is not valid JSON."),
        (b'{"a": 1, "a": 2}', "The request body is not valid JSON."),
        (b"[" * 100_000 + b"]" * 100_000, "The request body is not valid JSON."),
        (b"\xef\xbb\xbf{}", "The request body is not valid JSON."),
    ],
)
def test_malformed_json_bodies_are_400(body: bytes, message: str) -> None:
    request = Request("POST", "/uploads", headers={"Content-Type": "application/json"}, body=body)
    with pytest.raises(errors.MalformedBody) as info:
        request.json()
    assert info.value.message == message


def test_json_ignores_bodies_of_get_and_empty_posts() -> None:
    assert Request("GET", "/x", body=b"garbage").json() == {}
    assert Request("POST", "/x", headers={"Content-Type": "text/plain"}).json() == {}


def test_json_is_parsed_once() -> None:
    request = Request("patch", "/x", headers={"content-type": "application/json"}, body=b'{"a": [1]}')
    assert request.method == "PATCH"
    assert request.json() is request.json()


def test_json_content_type_check_can_be_skipped() -> None:
    request = Request("POST", "/x", headers={"Content-Type": "text/plain"}, body=b'{"a": 1}')
    assert request.json(require_content_type=False) == {"a": 1}


# --- garbage in: 400, never 500 ----------------------------------------------------------------
@pytest.mark.parametrize(
    "event",
    [
        b"not json",
        b"\xff\xfe",
        "",
        b"[]",
        b"null",
        {},
        None,
        {"requestContext": {}},
        {"requestContext": {"http": {"method": ""}}},
        {"requestContext": "x", "rawPath": "/uploads"},
        {"triggerTime": "2023-12-26T07:49:00Z", "triggerName": "timer", "payload": "x"},
        {"requestContext": {"http": {"method": "POST"}}, "body": {"not": "a string"}},
    ],
)
def test_garbage_event_is_400(event: Any) -> None:
    result = run_event(event, FakeContext(request_id=RID))
    assert result.status == 400
    assert result.json() == {
        "RequestId": RID,
        "Code": "InvalidEvent",
        "Message": result.json()["Message"],
    }


def test_no_arguments_at_all_is_400_with_generated_request_id() -> None:
    result = serve((), ROUTER, settings=SETTINGS, function_name="t")
    assert result["statusCode"] == 400
    assert len(json.loads(result["body"])["RequestId"]) == 36


def test_wsgi_without_method_is_400() -> None:
    env = {"PATH_INFO": "/uploads", "wsgi.input": io.BytesIO(b""), "REQUEST_METHOD": ""}
    assert run_wsgi(env).status == 400


# --- CORS --------------------------------------------------------------------------------------
def test_allowed_origin_is_echoed_without_credentials(call: Any) -> None:
    result = call("GET", "/uploads", headers={"Origin": ORIGIN})
    assert result.header("Access-Control-Allow-Origin") == ORIGIN
    assert result.header("Vary") == "Origin"
    assert result.header("Access-Control-Expose-Headers") == CORS_EXPOSE_HEADERS
    assert result.header("Access-Control-Allow-Credentials") is None


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "https://app.example.com.evil", "null", "*", ORIGIN + "/"]
)
def test_disallowed_origin_gets_no_cors_headers(call: Any, origin: str) -> None:
    result = call("GET", "/uploads", headers={"Origin": origin})
    assert result.status == 200
    assert not [k for k in result.headers if k.lower().startswith("access-control-")]


def test_comma_joined_origins_never_match() -> None:
    event = fc3_event("GET", "/uploads", headers={"Origin": ORIGIN, "origin": "https://admin.example.com"})
    result = run_event(event)
    assert result.header("Access-Control-Allow-Origin") is None


def test_errors_carry_cors_headers_for_allowed_origin(call: Any) -> None:
    result = call("GET", "/nowhere", headers={"Origin": ORIGIN})
    assert result.status == 404
    assert result.header("Access-Control-Allow-Origin") == ORIGIN
    too_big = call("POST", "/uploads", headers={**JSON, "Origin": ORIGIN}, body=b"x" * (LIMIT + 1))
    assert too_big.status == 413
    assert too_big.header("Access-Control-Allow-Origin") == ORIGIN


def test_preflight_allowed(call: Any) -> None:
    result = call(
        "OPTIONS",
        "/uploads/abc/refresh",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert result.status == 204
    assert result.body == b""
    assert result.header("Access-Control-Allow-Origin") == ORIGIN
    assert result.header("Access-Control-Allow-Methods") == CORS_ALLOW_METHODS == "GET, POST, DELETE, OPTIONS"
    assert result.header("Access-Control-Allow-Headers") == CORS_ALLOW_HEADERS
    assert result.header("Access-Control-Max-Age") == "600"
    assert result.header("Access-Control-Allow-Credentials") is None
    assert result.header("X-Request-Id") == RID


def test_preflight_disallowed_is_403_vod_shaped(call: Any) -> None:
    result = call(
        "OPTIONS",
        "/uploads",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert result.status == 403
    assert result.json() == {
        "RequestId": RID,
        "Code": "Forbidden.Origin",
        "Message": "The origin is not allowed.",
    }
    assert not [k for k in result.headers if k.lower().startswith("access-control-")]


def test_options_without_origin_lists_methods(call: Any) -> None:
    result = call("OPTIONS", "/uploads")
    assert result.status == 204
    assert result.header("Allow") == CORS_ALLOW_METHODS


def test_no_vary_when_cors_is_not_configured(call: Any) -> None:
    result = call("GET", "/uploads", headers={"Origin": ORIGIN}, settings=make_settings(allowed_origins=""))
    assert result.header("Vary") is None
    assert result.header("Access-Control-Allow-Origin") is None


# --- errors ------------------------------------------------------------------------------------
def test_unknown_exception_is_fixed_500_without_leak(call: Any, capsys: pytest.CaptureFixture[str]) -> None:
    result = call("GET", "/boom")
    assert result.status == 500
    assert result.json() == {"RequestId": RID, "Code": "InternalError", "Message": INTERNAL_ERROR_MESSAGE}
    for leak in (b"hunter2", b"Traceback", b"RuntimeError", b"exploded"):
        assert leak not in result.body
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    error_line = next(line for line in lines if line["level"] == "ERROR" and "exc" in line)
    assert "RuntimeError" in error_line["exc"] and "Traceback" in error_line["exc"]
    assert "hunter2-very-secret" not in error_line["exc"]
    assert error_line["request_id"] == RID


def test_route_returning_non_response_is_500(call: Any) -> None:
    assert call("GET", "/not-a-response").status == 500


def test_vodfc_error_status_and_headers(call: Any) -> None:
    result = call("GET", "/throttle")
    assert result.status == 503
    assert result.header("Retry-After") == "1"
    assert result.json() == {
        "RequestId": RID,
        "Code": "Throttling",
        "Message": "Request was denied due to flow control; retry later.",
    }


def test_404_and_405(call: Any) -> None:
    missing = call("GET", "/uploads/abc/nope")
    assert missing.status == 404
    assert missing.json()["Code"] == "InvalidApi.NotFound"
    wrong = call("PUT", "/uploads/abc")
    assert wrong.status == 405
    assert wrong.header("Allow") == "DELETE, GET, OPTIONS"
    assert wrong.json()["Code"] == "MethodNotAllowed"


def test_trailing_slash_matches(call: Any) -> None:
    assert call("GET", "/uploads/abc/").json()["params"] == {"video_id": "abc"}


def test_empty_segment_does_not_match_a_parameter(call: Any) -> None:
    assert call("POST", "/uploads//refresh", headers=JSON, body=b"{}").status == 404


def test_router_rejects_relative_patterns() -> None:
    with pytest.raises(ValueError, match="must start with"):
        Router().add("GET", "uploads", _echo)


# --- request id ----------------------------------------------------------------------------------
def test_request_id_from_fc_context(call: Any) -> None:
    result = call("GET", "/nowhere", context=FakeContext(request_id="ctx-req-1"))
    assert result.header("X-Request-Id") == "ctx-req-1"
    assert result.json()["RequestId"] == "ctx-req-1"


def test_fc3_request_id_from_event_when_context_has_none() -> None:
    event = fc3_event("GET", "/uploads", request_id="1-abc-def")
    result = run_event(event, None)
    assert result.header("X-Request-Id") == "1-abc-def"
    assert result.json()["rid"] == "1-abc-def"


def test_request_id_generated_when_absent() -> None:
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/uploads", "wsgi.input": io.BytesIO(b"")}
    result = run_wsgi(env)
    rid = result.header("X-Request-Id")
    assert rid is not None and len(rid) == 36
    assert result.json()["rid"] == rid


def test_unsafe_request_id_is_replaced() -> None:
    event = fc3_event("GET", "/uploads", request_id="evil\r\nSet-Cookie: x=1")
    result = run_event(event, None)
    rid = result.header("X-Request-Id")
    assert rid is not None and "\n" not in rid and len(rid) == 36


def test_request_id_is_bound_into_log_lines(call: Any, capsys: pytest.CaptureFixture[str]) -> None:
    call("GET", "/uploads/abc")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines and all(line["request_id"] == RID for line in lines)


# --- headers -----------------------------------------------------------------------------------
def test_comma_joined_headers_pass_through(call: Any) -> None:
    result = call("GET", "/uploads", headers={"X-Forwarded-For": "1.1.1.1,2.2.2.2"})
    assert result.json()["xff"] == "1.1.1.1,2.2.2.2"


def test_fc3_list_valued_headers_and_query_are_joined() -> None:
    event = fc3_event("GET", "/uploads")
    event["headers"]["X-Forwarded-For"] = ["1.1.1.1", "2.2.2.2"]
    event["queryParameters"] = {"tag": ["a", "b"], "n": 5}
    body = run_event(event).json()
    assert body["xff"] == "1.1.1.1, 2.2.2.2"
    assert body["query"] == {"tag": "a,b", "n": "5"}


def test_forbidden_response_headers_are_dropped(call: Any) -> None:
    result = call("GET", "/bad-headers")
    names = {k.lower() for k in result.headers}
    assert not names & {"content-length", "x-fc-trace", "date", "server", "x-injected"}
    assert result.header("X-Ok") == "yes"
    assert result.header("X-Content-Type-Options") == "nosniff"
    assert result.body == b"hello"


def test_binary_response_is_base64_for_fc3() -> None:
    event = fc3_event("GET", "/binary")
    raw = serve((json.dumps(event).encode(), FakeContext()), ROUTER, settings=SETTINGS, function_name="t")
    assert raw["isBase64Encoded"] is True
    assert base64.b64decode(raw["body"]) == b"\xff\x00\xfe"
    assert call_wsgi("GET", "/binary").body == b"\xff\x00\xfe"


def test_headers_mapping_is_case_insensitive() -> None:
    headers = Headers([("Content-Type", "a"), ("X-A", "1"), ("x-a", "2")])
    assert headers["content-type"] == headers["CONTENT-TYPE"] == "a"
    assert headers["X-a"] == "1, 2"
    assert "X-A" in headers and 3 not in headers  # type: ignore[comparison-overlap]
    assert len(headers) == 2 and set(headers) == {"content-type", "x-a"}
    assert "secret" not in repr(Headers({"Authorization": "Bearer secret"}))


def test_request_repr_hides_body_and_headers() -> None:
    request = Request("POST", "/x", headers={"Authorization": "Bearer tok"}, body=b"password")
    assert "tok" not in repr(request) and "password" not in repr(request)


def test_json_response_merges_headers_case_insensitively() -> None:
    response = json_response(201, {"a": "é"}, {"content-type": "application/problem+json", "X-A": "1"})
    assert response.headers == {
        "Cache-Control": "no-store",
        "content-type": "application/problem+json",
        "X-A": "1",
    }
    assert response.body == '{"a":"é"}'.encode()


def test_response_headers_are_merged_case_insensitively(call: Any) -> None:
    def custom(request: Request, **params: str) -> Response:
        headers = {"cache-control": "max-age=5", "VARY": "Accept", "x-request-id": "spoofed", "X-A": "1"}
        return Response(200, headers, b"{}")

    router = Router()
    router.add("GET", "/custom", custom)
    result = call("GET", "/custom", route=router, headers={"Origin": ORIGIN})
    lowered = [k.lower() for k in result.headers]
    assert len(lowered) == len(set(lowered))
    assert result.headers["cache-control"] == "max-age=5"  # the route's spelling and value kept
    assert result.headers["Vary"] == "Accept, Origin" and "VARY" not in result.headers
    assert result.headers["X-Request-Id"] == RID and "x-request-id" not in result.headers
    assert result.headers["X-A"] == "1"
    assert result.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_non_latin1_header_value_is_dropped(call: Any) -> None:
    def custom(request: Request, **params: str) -> Response:
        return Response(200, {"X-Name": "caf\u00e9", "X-Emoji": "\u2603", "X-Ok": "yes"}, b"{}")

    router = Router()
    router.add("GET", "/custom", custom)
    result = call("GET", "/custom", route=router)
    assert result.header("X-Name") == "caf\u00e9"  # latin-1 is allowed
    assert result.header("X-Emoji") is None and result.header("X-Ok") == "yes"


# --- the invocation log line -------------------------------------------------------------------
def test_exactly_one_invocation_line(call: Any, capsys: pytest.CaptureFixture[str]) -> None:
    def owned(request: Request, video_id: str) -> Response:
        assert video_id == request.path_params["video_id"] == request.video_id
        request.owner = "user-1"
        request.annotate(extra_field="x", status="not-overridden")
        return _echo(request, video_id=video_id)

    router = Router()
    router.add("GET", "/uploads/{video_id}", owned)
    call("GET", "/uploads/v-123", route=router)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    invocations = [line for line in lines if line["message"] == "invocation"]
    assert len(invocations) == 1
    line = invocations[0]
    assert line["function"] == "test_fn"
    assert line["route"] == "GET /uploads/{video_id}"
    assert line["status"] == 200
    assert line["owner"] == "user-1"
    assert line["video_id"] == "v-123"
    assert line["request_id"] == RID
    assert line["extra_field"] == "x"
    assert isinstance(line["latency_ms"], (int, float))


def test_latency_uses_the_injected_clock(capsys: pytest.CaptureFixture[str]) -> None:
    ticks = iter([10.0, 10.25])
    event = fc3_event("GET", "/nowhere")
    serve((event, None), ROUTER, settings=SETTINGS, function_name="t", clock=lambda: next(ticks))
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line["latency_ms"] == 250.0
    assert line["code"] == "InvalidApi.NotFound"
    assert line["status"] == 404


def test_context_credentials_are_redacted_from_logs(capsys: pytest.CaptureFixture[str]) -> None:
    from shared.context import ContextCredentials

    secret = "ctx-secret-value-123456"

    def leaky(request: Request) -> Response:
        from shared.log import get_logger

        get_logger("leaky").info("oops %s", secret)
        return Response(204)

    router = Router()
    router.add("GET", "/x", leaky)
    context = FakeContext(request_id=RID, credentials=ContextCredentials("id", secret, "tok-abcdefgh"))
    run_event(fc3_event("GET", "/x"), context, route=router)
    out = capsys.readouterr().out
    assert secret not in out and "[REDACTED]" in out


def test_make_context_for_local_invocation() -> None:
    from shared.context import ContextCredentials, make_context
    from shared.invocation import context_secrets

    ctx = make_context(
        function_name="cleanup", credentials=ContextCredentials("id", "sec-123456", "tok-123456")
    )
    assert ctx.function.name == "cleanup" and len(ctx.request_id) == 36
    assert context_secrets(ctx) == ("sec-123456", "tok-123456")
    assert "sec-123456" not in repr(ctx) and "tok-123456" not in repr(ctx)
    assert make_context("r-1").request_id == "r-1"
    assert context_secrets(None) == () and context_secrets(object()) == ()


@pytest.mark.parametrize(
    "response",
    [
        Response(200, {}, "text, not bytes"),  # type: ignore[arg-type]
        Response(42, {}, b""),
        Response(200, {"X-Number": 5}, b"ok"),  # type: ignore[dict-item]
    ],
)
def test_bad_responses_never_escape(call: Any, response: Response) -> None:
    router = Router()
    router.add("GET", "/x", lambda request: response)
    result = call("GET", "/x", route=router)
    assert result.status in (200, 500)
    if result.status == 200:
        assert result.header("X-Number") is None and result.body == b"ok"


def test_5xx_vodfc_error_logs_its_cause(call: Any, capsys: pytest.CaptureFixture[str]) -> None:
    def failing(request: Request) -> Response:
        try:
            raise ConnectionError("db at postgresql://u:pw-secret-1@db down")
        except ConnectionError as exc:
            raise errors.StoreUnavailable() from exc

    router = Router()
    router.add("GET", "/x", failing)
    result = call("GET", "/x", route=router)
    assert result.status == 503 and result.json()["Code"] == "ServiceUnavailable.Store"
    assert result.header("Retry-After") == "2"
    out = capsys.readouterr().out
    assert "ConnectionError" in out and "pw-secret-1" not in out
