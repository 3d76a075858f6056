"""Bad input over the HTTP API and the callback endpoint: never a 5xx, never a call to VOD for a
request that is invalid.

Properties (hypothesis, modest example counts) drive the real handlers through FC 3.0 events.
Every VOD call lands in ``FakeVod.calls`` (the only route respx knows; anything else would be a
500), so "no new entry in ``calls``" proves that VOD was never asked.
"""

from __future__ import annotations

import base64
import json
import time
import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.settings import DEFAULT_EXTENSIONS
from shared.validation import is_bidi_control
from tests.functional.conftest import CALLBACK_KEY, CALLBACK_URL, Stack, load_event, token
from tests.security.helpers import BIDI_CONTROLS

FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
BIDI = set(BIDI_CONTROLS)
OK_BODY: dict[str, Any] = {"Title": "Clip", "FileName": "clip.mp4"}
FIELDS = (
    "Title", "FileName", "FileSize", "Description", "CoverURL", "CateId", "Tags", "UserData",
    "TemplateGroupId", "WorkflowId", "StorageLocation", "AppId", "ReferenceId",
)  # fmt: skip

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


# --- helpers -------------------------------------------------------------------------------------
class Probe:
    """Sends one request and checks the invariants every answer must keep."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.n = 0

    def send(
        self,
        body: Any = None,
        *,
        raw: str | None = None,
        method: str = "POST",
        path: str = "/uploads",
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        owner: str | None = None,
        event: dict[str, Any] | None = None,
        function: str = "upload_credentials",
    ) -> tuple[int, dict[str, Any]]:
        self.n += 1
        before = len(self.stack.vod.calls)
        if event is not None:
            status, answer, hdrs = self.stack.invoke(function, event)
        else:
            status, answer, hdrs = self.stack.http(
                function,
                method,
                path,
                body=body,
                raw_body=raw,
                headers=headers,
                query=query,
                owner=owner or f"fuzz-{self.n}",  # a fresh owner: the quota never interferes
            )
        assert status < 500, (status, answer)
        assert status == 204 or answer.get("RequestId") == hdrs.get("X-Request-Id"), answer
        if status not in (200, 204):
            assert len(self.stack.vod.calls) == before, ("VOD was called for a refused request", answer)
            assert answer["Code"] and answer["Message"], answer
        return status, answer

    def refused(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        status, answer = self.send(*args, **kwargs)
        assert 400 <= status < 500, answer
        return answer


@pytest.fixture
def probe(stack: Stack) -> Probe:
    return Probe(stack)


def signed_event(body: str | bytes, *, base64_body: bool = False, **headers: str) -> dict[str, Any]:
    event = load_event("http/vod_callback.json")
    ts = str(int(time.time()))
    import hashlib

    sig = hashlib.md5(f"{CALLBACK_URL}|{ts}|{CALLBACK_KEY}".encode()).hexdigest()
    event["headers"] = {
        "Content-Type": "application/json",
        "X-VOD-TIMESTAMP": ts,
        "X-VOD-SIGNATURE": sig,
        **headers,
    }
    if base64_body:
        raw = body if isinstance(body, bytes) else body.encode()
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    else:
        event["body"] = body
    return event


# --- properties over POST /uploads ---------------------------------------------------------------
@FAST
@given(body=json_values)
def test_any_json_body_is_never_a_5xx(probe: Probe, body: Any) -> None:
    probe.send(raw=json.dumps(body))


@FAST
@given(body=st.dictionaries(st.sampled_from(FIELDS), json_values, min_size=1, max_size=6))
def test_known_fields_with_any_values_are_never_a_5xx(probe: Probe, body: dict[str, Any]) -> None:
    status, _ = probe.send(body)
    if status == 200:  # whatever got through is within VOD's rules
        sent = probe.stack.vod.calls[-1][1]
        assert len(sent["Title"].encode()) <= 128 and "/" not in sent["FileName"]


@FAST
@given(field=st.sampled_from(FIELDS), value=json_values)
def test_one_wrong_field_on_a_valid_body(probe: Probe, field: str, value: Any) -> None:
    probe.send({**OK_BODY, field: value})


@FAST
@given(
    name=st.text(min_size=0, max_size=300)
    | st.builds(
        lambda a, b, ext: f"{a}{b}.{ext}",
        st.sampled_from(
            ["", "../", "../../etc/", "/abs/", "C:\\Users\\bob\\", "a/./b/", "%2e%2e/", "\\\\srv\\s\\"]
        ),
        st.text(max_size=40),
        st.sampled_from([*DEFAULT_EXTENSIONS[:5], "exe", "MP4", "mp4 ", "mp4\x00", "php"]),
    )
)
def test_path_tricks_in_file_name_never_reach_vod(probe: Probe, name: str) -> None:
    status, _ = probe.send({"Title": "t", "FileName": name})
    if status == 200:
        sent = probe.stack.vod.calls[-1][1]["FileName"]
        assert "/" not in sent and "\\" not in sent and "\x00" not in sent
        # no control, line-separator or bidi-override characters (display spoofing), <= 255 bytes
        assert not any(unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs") or c in BIDI for c in sent)
        assert 0 < len(sent.encode()) <= 255
        assert sent.rpartition(".")[2].lower() in DEFAULT_EXTENSIONS


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd.mp4", "..\\..\\win.ini.mp4", "/var/www/clip.mp4", "C:\\Users\\bob\\Videos\\clip.mp4"],
)
def test_a_path_is_reduced_to_its_basename(probe: Probe, name: str) -> None:
    status, _ = probe.send({"Title": "t", "FileName": name})
    assert status == 200
    sent = probe.stack.vod.calls[-1][1]["FileName"]
    assert sent in {"passwd.mp4", "win.ini.mp4", "clip.mp4"}


@pytest.mark.parametrize(
    "name",
    [
        "clip\x00.mp4",
        "clip.mp4\x00.exe",
        ".mp4",
        "../.mp4",
        "clip",
        "clip.",
        "clip.exe",
        "a" * 252 + ".mp4",  # 256 bytes
        "d/" * 520 + "c.mp4",  # a path over 1,024 bytes
        "evil\u202egpj.mp4",
        "clip\r\n.mp4",
        "\ud800.mp4",
    ],
)
def test_bad_file_names_are_400(probe: Probe, name: str) -> None:
    answer = probe.refused({"Title": "t", "FileName": name})
    assert answer["Field"] == "FileName"


@FAST
@given(
    url=st.sampled_from(
        [
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "file:///etc/passwd",
            "ftp://example.com/c.jpg",
            "//evil.example/c.jpg",
            "http:///c.jpg",
            "http://user:pw@example.com/c.jpg",
            "http://example.com\\@evil.example/c.jpg",
            "http://[::1",
            "http://exa mple.com/c.jpg",
            "http://example.com:99999/c.jpg",
            "http://example.com:0/c.jpg",
            "https://example.com/\x00.jpg",
            "https://example.com/\u0085",
            "gopher://127.0.0.1:6379/_INFO",
            "https://" + "a" * 1100 + ".com/",
            "",
        ]
    )
    | st.text(max_size=60)
)
def test_url_tricks_in_cover_url_never_reach_vod(probe: Probe, url: str) -> None:
    status, _ = probe.send({**OK_BODY, "CoverURL": url})
    if status == 200 and url:
        sent = probe.stack.vod.calls[-1][1]["CoverURL"]
        assert sent.lower().startswith(("http://", "https://")) and "@" not in sent.split("/")[2]


# --- bidi controls: Unicode's property, not a hand-made range ------------------------------------
def test_bidi_controls_are_exactly_unicodes_bidi_control_property() -> None:
    """Over the whole code space, the predicate holds for the 12 Bidi_Control characters of
    PropList.txt (copied here, an independent vector) and for nothing else."""
    found = [code for code in range(0x110000) if is_bidi_control(chr(code))]
    assert [f"U+{code:04X}" for code in found] == [f"U+{ord(c):04X}" for c in BIDI_CONTROLS]


@pytest.mark.parametrize("char", BIDI_CONTROLS, ids=[f"U+{ord(c):04X}" for c in BIDI_CONTROLS])
def test_every_bidi_control_is_refused_in_every_text_field(probe: Probe, char: str) -> None:
    for field, value in [
        ("Title", f"a{char}b"),
        ("Description", f"a{char}b"),
        ("Tags", f"a{char}b"),
        ("FileName", f"evil{char}gpj.mp4"),
        ("CoverURL", f"https://e.com/{char}c.jpg"),
        ("UserData", {"MessageCallback": {"CallbackURL": f"https://e.com/{char}"}}),
        ("UserData", {"AccelerateConfig": {"Type": "oss", "Domain": f"https://e{char}.com"}}),
    ]:
        answer = probe.refused({**OK_BODY, field: value})
        assert answer["Field"] == field, answer
        assert answer["Code"] in ("IllegalCharacters", "InvalidParameter"), answer


# --- every seed limit, at the limit and one past it --------------------------------------------
LIMITS = [
    # (field, value at the limit, value one past it)
    ("Title", "a" * 128, "a" * 129),
    ("Title", "é" * 64, "é" * 64 + "a"),  # bytes, not characters
    ("Title", "中" * 42 + "ab", "中" * 43),
    ("Description", "d" * 1024, "d" * 1025),
    ("Tags", ",".join(f"t{i}" for i in range(16)), ",".join(f"t{i}" for i in range(17))),
    ("Tags", "t" * 32, "t" * 33),
    ("Tags", ["x"] * 16, ["x"] * 17),
    ("FileName", "a" * 251 + ".mp4", "a" * 252 + ".mp4"),
    ("FileName", "d/" * 508 + "c.mp4", "d/" * 510 + "c.mp4"),  # the path before the basename
    ("CoverURL", "https://e.com/" + "c" * 1010, "https://e.com/" + "c" * 1011),
    ("FileSize", 10 * 1024**3, 10 * 1024**3 + 1),  # MAX_FILE_SIZE
    ("FileSize", 0, -1),
    ("UserData", {"Extend": {"k": "v" * 248}}, {"Extend": {"k": "v" * 249}}),  # CLIENT_EXTEND_MAX_BYTES 256
]


@pytest.mark.parametrize(
    ("field", "ok", "too_far"), LIMITS, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(LIMITS)]
)
def test_every_limit_holds_exactly(probe: Probe, field: str, ok: Any, too_far: Any) -> None:
    status, answer = probe.send({**OK_BODY, field: ok})
    assert status == 200, answer
    answer = probe.refused({**OK_BODY, field: too_far})
    assert answer["Field"].split(".")[0] == field


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("CateId", 0),
        ("CateId", -1),
        ("CateId", 2**63),
        ("FileSize", 2**63),
        ("FileSize", 1.5),
        ("FileSize", "1024"),
        ("FileSize", True),
        ("Title", 5),
        ("Title", ["a"]),
        ("Title", ""),
        ("Title", "   "),
        ("Title", None),
        ("Title", "bad\x07bell"),
        ("Title", "emoji \U0001f600"),
        ("Tags", "a,,b"),
        ("Tags", [1, 2]),
        ("Tags", {"a": 1}),
        ("UserData", "not json"),
        ("UserData", []),
        ("UserData", {"MessageCallback": {"CallbackURL": "https://evil.example/cb"}}),
        ("UserData", {"Extend": {"vodfc_uid": "x"}}),
        ("UserData", {"Extend": {"VODFC_sig": "x"}}),
        ("UserData", {"Unknown": 1}),
        ("ReferenceId", "abcdefgh"),
        ("TemplateGroupId", "../x"),
        ("TemplateGroupId", "a" * 65),
        ("StorageLocation", "a" * 129),
        ("AppId", "app 1"),
        ("Extra", "x"),
    ],
)
def test_wrong_values_and_types_are_refused_without_calling_vod(probe: Probe, field: str, value: Any) -> None:
    probe.refused({**OK_BODY, field: value})


def test_the_pending_quota_refuses_without_calling_vod(probe: Probe) -> None:
    """``MAX_PENDING_UPLOADS_PER_OWNER`` is 3 in the stack: the fourth pending upload is refused."""
    for _ in range(3):
        assert probe.send(OK_BODY, owner="hoarder")[0] == 200
    assert probe.refused(OK_BODY, owner="hoarder")["Code"] == "QuotaExceeded.PendingUploads"
    assert probe.send(OK_BODY, owner="someone-else")[0] == 200


def test_operator_policy_refuses_without_calling_vod(probe: Probe) -> None:
    for field, value in [("TemplateGroupId", "tg1"), ("WorkflowId", "wf1"), ("StorageLocation", "x.oss"),
                         ("AppId", "app-2"), ("CateId", 7)]:  # fmt: skip
        answer = probe.refused({**OK_BODY, field: value})
        assert answer["Code"] == f"Forbidden.{field}"


# --- POST /images and POST /attached-media -------------------------------------------------------
IMAGE_BODY: dict[str, Any] = {"ImageType": "cover"}
ATTACHED_BODY: dict[str, Any] = {"BusinessType": "subtitle", "MediaExt": "vtt"}
MEDIA_FIELDS = {
    "/images": (
        IMAGE_BODY,
        ("ImageType", "ImageExt", "Title", "OriginalFileName", "Description", "CateId", "Tags", "UserData",
         "StorageLocation", "AppId"),
    ),
    "/attached-media": (
        ATTACHED_BODY,
        ("BusinessType", "MediaExt", "Title", "FileName", "FileSize", "Description", "CateIds", "Tags",
         "UserData", "StorageLocation", "AppId"),
    ),
}  # fmt: skip


@FAST
@given(
    route=st.sampled_from(list(MEDIA_FIELDS)),
    data=st.data(),
)
def test_media_bodies_with_any_values_are_never_a_5xx(probe: Probe, route: str, data: st.DataObject) -> None:
    ok, fields = MEDIA_FIELDS[route]
    extra = data.draw(st.dictionaries(st.sampled_from(fields), json_values, min_size=1, max_size=4))
    status, _ = probe.send({**ok, **extra}, path=route)
    if status == 200:  # whatever got through is within VOD's rules
        sent = probe.stack.vod.calls[-1][1]
        assert len(sent.get("Title", "").encode()) <= 128 and "/" not in sent.get("FileName", "")


@FAST
@given(route=st.sampled_from(list(MEDIA_FIELDS)), body=json_values)
def test_any_json_body_on_the_media_routes_is_never_a_5xx(probe: Probe, route: str, body: Any) -> None:
    probe.send(raw=json.dumps(body), path=route)


# (route, field, value at the limit, value one past it); the body is the route's minimal valid one.
MEDIA_LIMITS = [
    ("/images", "ImageType", "default", "thumbnail"),
    ("/images", "ImageType", "cover", ""),
    ("/images", "ImageExt", "gif", "webp"),
    ("/images", "ImageExt", "JPEG", "heic"),
    ("/images", "OriginalFileName", "a" * 251 + ".png", "a" * 252 + ".png"),
    ("/images", "OriginalFileName", "poster.png", "poster"),
    ("/images", "OriginalFileName", "../../x.png", "x\u202egnp.png"),
    ("/images", "CateId", None, 2**63),  # any other id is the policy's (below)
    ("/images", "Title", "a" * 128, "a" * 129),
    ("/images", "Title", "中" * 42 + "ab", "中" * 43),
    ("/images", "Title", "ok", "emoji \U0001f600"),
    ("/images", "Description", "d" * 1024, "d" * 1025),
    ("/images", "Tags", ",".join(f"t{i}" for i in range(16)), ",".join(f"t{i}" for i in range(17))),
    ("/images", "Tags", "t" * 32, "t" * 33),
    ("/images", "UserData", {"Extend": {"k": "v" * 248}}, {"Extend": {"k": "v" * 249}}),
    ("/images", "UserData", {"Extend": {"app": "x"}}, {"Extend": {"vodfc_uid": "x"}}),
    ("/images", "StorageLocation", None, "a" * 129),
    ("/images", "AppId", None, "app 1"),
    ("/attached-media", "BusinessType", "subtitle", "subtitles"),
    ("/attached-media", "MediaExt", "srt", "png"),
    ("/attached-media", "MediaExt", "TTML", "txt"),
    ("/attached-media", "FileName", "a" * 255, "a" * 256),
    ("/attached-media", "FileSize", 0, -1),
    ("/attached-media", "FileSize", 1024**3, 1024**3 + 1),  # MAX_ATTACHED_MEDIA_SIZE
    ("/attached-media", "FileSize", 1, "1"),
    ("/attached-media", "CateIds", None, "1,2,3,4,5,6"),
    ("/attached-media", "CateIds", None, "0"),
    ("/attached-media", "Title", "a" * 128, "a" * 129),
    ("/attached-media", "Description", "d" * 1024, "d" * 1025),
    ("/attached-media", "Tags", ["x"] * 16, ["x"] * 17),
    ("/attached-media", "UserData", {"Extend": {"k": "v" * 248}}, {"Extend": {"k": "v" * 249}}),
    ("/attached-media", "UserData", None, {"MessageCallback": {"CallbackURL": "https://evil.example/cb"}}),
]


@pytest.mark.parametrize(
    ("route", "field", "ok", "too_far"),
    MEDIA_LIMITS,
    ids=[f"{r.strip('/')}-{f}-{i}" for i, (r, f, _, _) in enumerate(MEDIA_LIMITS)],
)
def test_every_media_rule_holds_exactly(probe: Probe, route: str, field: str, ok: Any, too_far: Any) -> None:
    base = MEDIA_FIELDS[route][0]
    if ok is not None:
        status, answer = probe.send({**base, field: ok}, path=route)
        assert status == 200, answer
    answer = probe.refused({**base, field: too_far}, path=route)
    assert answer["Field"].split(".")[0] == field


def test_the_media_policy_refuses_without_calling_vod(probe: Probe) -> None:
    for route, field, value in [("/images", "StorageLocation", "x.oss"), ("/images", "AppId", "app-2"),
                                ("/images", "CateId", 7), ("/attached-media", "CateIds", "7"),
                                ("/attached-media", "StorageLocation", "x.oss")]:  # fmt: skip
        body = {**MEDIA_FIELDS[route][0], field: value}
        assert probe.refused(body, path=route)["Code"] == f"Forbidden.{field}"


@pytest.mark.parametrize("route", ["/images", "/attached-media"])
@pytest.mark.parametrize(
    "media_id", ["..", "%00", "a" * 65, "abc%0d%0aX-Injected:1", "1 OR 1=1", "ä" * 4], ids=lambda v: v[:12]
)
def test_path_tricks_in_media_ids_are_404(probe: Probe, route: str, media_id: str) -> None:
    for method in ("GET", "DELETE"):
        status, _ = probe.send(method=method, path=f"{route}/{media_id}")
        assert status == 404


# --- bodies, encodings, content types, headers ---------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        "",
        "null",
        "[]",
        '"Title"',
        "{",
        '{"Title": "a", "Title": "b", "FileName": "c.mp4"}',  # duplicate keys
        '{"Title": NaN, "FileName": "c.mp4"}',
        '{"Title": Infinity, "FileName": "c.mp4"}',
        "\ufeff" + json.dumps(OK_BODY),
        json.dumps(OK_BODY) + " trailing",
        '{"Title": "\\ud800", "FileName": "c.mp4"}',  # a lone surrogate escape
    ],
)
def test_malformed_json_is_400(probe: Probe, raw: str) -> None:
    status, _ = probe.send(raw=raw)
    assert status in (400, 401) or (raw == "" and status == 400)


@pytest.mark.parametrize("depth", [40, 200, 900, 5000])
def test_deeply_nested_bodies_are_400(probe: Probe, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    probe.refused(raw=json.dumps(OK_BODY)[:-1] + f', "UserData": {{"Extend": {{"k": {nested}}}}}}}')
    probe.refused(raw='{"Title": "t", "FileName": "c.mp4", "X": ' + "{" * depth + "}" * depth + "}")


@pytest.mark.parametrize("size", [64 * 1024 + 1, 1024 * 1024, 6 * 1024 * 1024])
def test_huge_bodies_are_413(probe: Probe, size: int) -> None:
    raw = json.dumps({**OK_BODY, "Description": "x" * size})
    assert probe.refused(raw=raw)["Code"] == "PayloadTooLarge"


def test_a_lying_content_length_is_refused(probe: Probe) -> None:
    assert probe.refused(OK_BODY, headers={"Content-Length": "99999999"})["Code"] == "PayloadTooLarge"
    assert probe.refused(OK_BODY, headers={"Content-Length": "-5"})["Code"] == "MalformedBody"


@FAST
@given(raw=st.binary(min_size=1, max_size=200))
def test_invalid_utf8_and_random_bytes_are_400(probe: Probe, raw: bytes) -> None:
    event = load_event("http/create_upload.json")
    event["headers"]["Authorization"] = f"Bearer {token(f'bytes-{probe.n}')}"
    event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    probe.send(event=event)


def test_invalid_utf8_is_malformed_body(probe: Probe) -> None:
    event = load_event("http/create_upload.json")
    event["headers"]["Authorization"] = f"Bearer {token('utf8')}"
    event["body"], event["isBase64Encoded"] = (
        base64.b64encode(b'{"Title": "\xff\xfe", "FileName": "c.mp4"}').decode(),
        True,
    )
    assert probe.refused(event=event)["Code"] == "MalformedBody"
    event["body"] = "not base64 !!!"
    assert probe.refused(event=event)["Code"] == "MalformedBody"


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/jsonp",
        "application/json, text/plain",
        "text/json",
    ],
)
def test_wrong_content_types_are_415(probe: Probe, content_type: str | None) -> None:
    event = load_event("http/create_upload.json")
    event["headers"] = {"Authorization": f"Bearer {token('ct')}"}
    if content_type is not None:
        event["headers"]["Content-Type"] = content_type
    event["body"] = json.dumps(OK_BODY)
    assert probe.refused(event=event)["Code"] == "UnsupportedMediaType"


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer not-a-jwt"},  # a second Authorization, other case
        {"AUTHORIZATION": ["Bearer a", "Bearer b"]},
        {"Content-Type": ["application/json", "text/plain"]},
        {"content-type": "text/plain"},
        {"Idempotency-Key": ["k1", "k2"]},
        {"Idempotency-Key": "k" * 129},
        {"Idempotency-Key": "clé"},
        {"Idempotency-Key": "a\tb"},
        {"Origin": ["https://app.example.com", "https://evil.example"]},
    ],
)
def test_duplicated_and_odd_headers_are_never_a_5xx(probe: Probe, headers: dict[str, Any]) -> None:
    event = load_event("http/create_upload.json")
    event["headers"] = {
        "Authorization": f"Bearer {token('dup')}",
        "Content-Type": "application/json",
        **headers,
    }
    event["body"] = json.dumps(OK_BODY)
    status, answer = probe.send(event=event)
    if "Idempotency-Key" in headers and status != 200:
        assert answer["Field"] == "Idempotency-Key"


@FAST
@given(
    method=st.sampled_from(
        ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "get", "FOO"]
    ),
    path=st.sampled_from(
        ["/uploads", "/uploads/", "//uploads", "/uploads/x/refresh", "/uploads/x/y/z", "/", "/x"]
    )
    | st.text(max_size=40).map(lambda p: "/uploads/" + p),
)
def test_any_method_and_path_is_never_a_5xx(probe: Probe, method: str, path: str) -> None:
    event = load_event("http/get_upload.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["headers"]["Authorization"] = f"Bearer {token('paths')}"
    event["body"] = json.dumps(OK_BODY) if method.upper() == "POST" else ""
    event["headers"]["Content-Type"] = "application/json"
    probe.send(event=event)


@pytest.mark.parametrize(
    "video_id",
    [
        "..",
        "%2e%2e",
        "..%2f..%2fetc",
        "a" * 65,
        "a" * 5000,
        "%00",
        "x%0d%0aSet-Cookie:a=b",
        "中文",
        "' OR 1=1 --",
    ],
)
def test_path_tricks_in_video_id_are_404(probe: Probe, video_id: str) -> None:
    for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/refresh")):
        status, answer = probe.send(method=method, path=f"/uploads/{video_id}{suffix}")
        assert status in (404, 405), answer


@pytest.mark.parametrize(
    "query",
    [
        {"Limit": "0"},
        {"Limit": "101"},
        {"Limit": "-1"},
        {"Limit": "1e2"},
        {"Status": "creating"},
        {"Status": "READY"},
        {"Cursor": "!!!"},
        {"Cursor": "e30"},
        {"Cursor": base64.urlsafe_b64encode(b'["x", 1]').decode()},
    ],
)
def test_bad_list_queries_are_400(probe: Probe, query: dict[str, str]) -> None:
    probe.refused(method="GET", path="/uploads", query=query)


# --- the callback endpoint -----------------------------------------------------------------------
@FAST
@given(body=json_values)
def test_any_signed_json_callback_is_never_a_5xx(probe: Probe, body: Any) -> None:
    status, _ = probe.send(event=signed_event(json.dumps(body)), function="vod_callback")
    assert status in (200, 400)


EVENT_TYPES = ["FileUploadComplete", "TranscodeComplete", "DeleteMediaComplete", "StreamTranscodeComplete",
               "VideoAnalysisComplete", "Nope"]  # fmt: skip
EVENT_FIELDS = ["VideoId", "MediaId", "EventTime", "Status", "Extend", "StreamInfos", "Size", "JobId"]


@FAST
@given(
    body=st.fixed_dictionaries(
        {"EventType": st.sampled_from(EVENT_TYPES)},
        optional=dict.fromkeys(EVENT_FIELDS, json_values | st.text(max_size=30).map(json.dumps)),
    )
)
def test_signed_events_with_wrong_field_types_are_never_a_5xx(probe: Probe, body: dict[str, Any]) -> None:
    probe.send(event=signed_event(json.dumps(body)), function="vod_callback")


@FAST
@given(raw=st.binary(max_size=200))
def test_signed_random_bytes_are_400(probe: Probe, raw: bytes) -> None:
    probe.send(event=signed_event(raw, base64_body=True), function="vod_callback")


@pytest.mark.parametrize("depth", [100, 500, 990, 5000])
def test_a_deeply_nested_signed_callback_is_acknowledged_as_invalid(probe: Probe, depth: int) -> None:
    body = '{"EventType": "FileUploadComplete", "VideoId": "v", "EventTime": "2026-01-01T00:00:00Z", "X": '
    body += "[" * depth + "]" * depth + "}"
    status, answer = probe.send(event=signed_event(body), function="vod_callback")
    # Signed, so VOD's own: it would only send it again. Acknowledged, nothing recorded.
    assert status == 200 and answer["Result"] == "invalid", answer


def test_a_huge_callback_is_413(probe: Probe) -> None:
    body = json.dumps({"EventType": "FileUploadComplete", "VideoId": "v", "Pad": "x" * 70_000})
    status, answer = probe.send(event=signed_event(body), function="vod_callback")
    assert status == 413, answer


@FAST
@given(
    headers=st.dictionaries(
        st.sampled_from(["X-VOD-TIMESTAMP", "X-VOD-SIGNATURE", "x-vod-timestamp", "Content-Type"]),
        st.text(max_size=40) | st.lists(st.text(max_size=20), max_size=3),
        max_size=4,
    ),
    body=json_values,
)
def test_unsigned_or_garbled_signature_headers_are_401(
    probe: Probe, headers: dict[str, Any], body: Any
) -> None:
    event = load_event("http/vod_callback.json")
    event["headers"] = headers
    event["body"] = json.dumps(body)
    status, answer = probe.send(event=event, function="vod_callback")
    assert status in (401, 413), answer
