"""Hostile input into every field of every route, of the list cursor and of every event type, on
SQLite and on PostgreSQL: never a 5xx, always VOD's error shape, no traceback, nothing written.

The values come from :mod:`tests.security.helpers` (arbitrary JSON, arbitrary Unicode with lone
surrogates, NUL, bidi and zero-width characters, digits of every script, numbers past 64 bits and
past 1e308, times that leave year 1 to 9999 in UTC, JSON nested thousands of levels deep inside
strings, identifiers of thousands of characters); every class the attack run broke is a fixed
``@example``, so it is exercised on every run. :class:`~tests.security.helpers.Hostile` checks each
answer (see its docstring); a test adds only what is particular to its route.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared import errors
from shared.events import StreamInfo, event_model
from shared.services.deps import get_deps, set_deps
from shared.store import new_reservation
from tests.functional.conftest import EVENTS, JWT_SECRET, Stack, load_event
from tests.security.helpers import (
    CLASSES,
    LONG_IDS,
    SPECIAL_STRINGS,
    FlakyStore,
    Hostile,
    Raw,
    any_stack,  # noqa: F401  (fixture)
    callback_headers,
    dumps,
    hostile_scalars,
    hostile_text,
    hostile_values,
    other_digits,
    plain,
    queue_event,
)

HOSTILE = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.large_base_example,
    ],
)
OK_BODY: dict[str, Any] = {"Title": "Clip", "FileName": "clip.mp4"}


def examples(pairs: list[dict[str, Any]]) -> Callable[[Any], Any]:
    """``@example(**pair)`` for each pair: the known classes, exercised on every run."""

    def apply(fn: Any) -> Any:
        for pair in reversed(pairs):
            fn = example(**pair)(fn)
        return fn

    return apply


@pytest.fixture
def hostile(any_stack: Stack, capsys: pytest.CaptureFixture[str]) -> Hostile:  # noqa: F811
    return Hostile(any_stack, capsys)


# --- POST /uploads: every field, nested ones too -------------------------------------------------
FIELDS = (
    "Title", "FileName", "FileSize", "Description", "CoverURL", "CateId", "Tags", "UserData",
    "TemplateGroupId", "WorkflowId", "StorageLocation", "AppId", "ReferenceId", "UserData.Extend",
    "UserData.Extend.k", "UserData.MessageCallback", "UserData.MessageCallback.CallbackURL",
    "UserData.AccelerateConfig.Type", "UserData.AccelerateConfig.Domain",
)  # fmt: skip
KNOWN_CLASSES = (
    ("Title", "surrogate"), ("Description", "nul"), ("CoverURL", "surrogate-in-url"), ("CoverURL", "nul"),
    ("Title", "bidi-mark"), ("FileName", "arabic-letter-mark"), ("UserData", "deep-json-in-string"),
    ("UserData.Extend", "deep-object-in-string"), ("UserData", "deep-json"), ("FileSize", "uint64-overflow"),
    ("CateId", "int64-overflow"), ("FileSize", "int64-underflow"), ("FileSize", "float-overflow"),
    ("UserData.Extend.k", "float-overflow"), ("UserData.Extend.k", "huge-digits"),
    ("UserData.Extend.k", "float-max"), ("Tags", "superscript-digits"), ("CateId", "other-script-digits"),
    ("TemplateGroupId", "long-id"), ("AppId", "very-long-id"), ("Title", "long-digit-string"),
    ("UserData.Extend.k", "surrogate"), ("UserData.Extend", "nul"),
    ("UserData.AccelerateConfig.Domain", "surrogate-in-url"),
)  # fmt: skip


def with_field(path: str, value: Any) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(OK_BODY)
    *parents, last = path.split(".")
    node = body
    for name in parents:
        node = node.setdefault(name, {})
    node[last] = value
    return body


@HOSTILE
@given(field=st.sampled_from(FIELDS), value=hostile_values)
@examples([{"field": f, "value": CLASSES[c]} for f, c in KNOWN_CLASSES])
def test_any_value_in_any_field_of_a_create(hostile: Hostile, field: str, value: Any) -> None:
    owner = f"hostile-{hostile.n}"  # a fresh owner: the quota never interferes
    status, answer = hostile.request(
        value, "POST", "/uploads", raw=dumps(with_field(field, value)), owner=owner
    )
    if status == 200:  # what got through is stored and read back as it was sent
        video_id = answer["VideoId"]
        status, view = hostile.request(None, "GET", f"/uploads/{video_id}", owner=owner)
        assert status == 200 and view["Title"] == with_field(field, plain(value)).get("Title", "Clip")
        status, listed = hostile.request(None, "GET", "/uploads", owner=owner)
        assert status == 200 and [u["VideoId"] for u in listed["Uploads"]] == [video_id]


# --- headers of a create -------------------------------------------------------------------------
HEADER_VALUES = (
    hostile_text
    | other_digits
    | st.sampled_from(LONG_IDS + SPECIAL_STRINGS)
    | hostile_text.map(lambda t: "Bearer " + t)
    | hostile_scalars.map(lambda v: plain(v) if isinstance(plain(v), str) else dumps(v))
)


@HOSTILE
@given(
    name=st.sampled_from(["Idempotency-Key", "Authorization", "Content-Type", "Content-Length", "Origin"]),
    value=HEADER_VALUES,
)
@examples(
    [{"name": n, "value": CLASSES[c]} for n in ("Idempotency-Key", "Authorization")
     for c in ("surrogate", "nul", "bidi-mark", "long-id", "non-ascii-signature", "other-script-digits")],
)  # fmt: skip
def test_any_value_in_the_headers_of_a_create(hostile: Hostile, name: str, value: str) -> None:
    owner = f"hostile-{hostile.n}"
    status, answer = hostile.request(
        value, "POST", "/uploads", body=OK_BODY, headers={name: value}, owner=owner
    )
    if name == "Idempotency-Key" and status == 400:
        assert answer["Field"] == "Idempotency-Key"


def _token(header: str, payload: str, *, secret: str = JWT_SECRET) -> str:
    def b64(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")

    signing_input = f"{b64(header)}.{b64(payload)}"
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


HS256 = '{"alg":"HS256","typ":"JWT"}'
NESTED = "[" * 3000 + "]" * 3000  # a token holds at most 8,192 characters


@pytest.mark.parametrize(
    ("header", "payload", "valid"),
    [
        ('{"alg":"HS256","x":' + NESTED + "}", '{"sub":"a","exp":9999999999}', False),
        ('{"alg":"HS256","x":' + "{" * 2000 + "}" * 2000 + "}", '{"sub":"a","exp":9999999999}', False),
        (HS256, '{"sub":"a","exp":9999999999,"x":' + NESTED + "}", False),
        (HS256, '{"sub":"a","exp":1e999}', False),
        (HS256, '{"sub":"a","exp":-1e999}', False),
        (HS256, '{"sub":"a","exp":' + "9" * 400 + "}", True),  # the key holder's long-lived token
        (HS256, '{"sub":"a","exp":9999999999,"nbf":1e999}', False),
        (HS256, '{"sub":"a","exp":9999999999,"nbf":' + "9" * 400 + "}", False),
        (HS256, '{"sub":"a","exp":9999999999,"iat":1e999}', False),
        (HS256, '{"sub":"a","exp":9999999999,"nbf":-' + "9" * 400 + "}", True),
        (HS256, '{"sub":"a","exp":' + "9" * 5000 + "}", False),
        (HS256, '{"sub":"\\ud800","exp":9999999999}', False),
        (HS256, '{"sub":"a\\u0000b","exp":9999999999}', False),
        (HS256, '{"sub":"a\\u202eb","exp":9999999999}', False),
        (HS256, '{"sub":' + NESTED + ',"exp":9999999999}', False),
        ('{"alg":"HS256","kid":"\\ud800"}', '{"sub":"a","exp":9999999999}', True),
        ('{"alg":"\\ud800"}', '{"sub":"a","exp":9999999999}', False),
        ('{"alg":"HS256","crit":' + NESTED + "}", '{"sub":"a","exp":9999999999}', False),
    ],
    ids=[
        "deep-header", "deep-header-object", "deep-payload", "exp-inf", "exp-minus-inf", "exp-huge-int",
        "nbf-inf", "nbf-huge-int", "iat-inf", "nbf-huge-negative", "exp-5000-digits", "sub-surrogate",
        "sub-nul", "sub-bidi", "sub-deep", "kid-surrogate", "alg-surrogate", "crit-deep",
    ],
)  # fmt: skip
def test_tokens_with_hostile_json(hostile: Hostile, header: str, payload: str, valid: bool) -> None:
    """Correctly signed tokens whose JSON nests deeply or holds numbers past any range: a 401
    whichever PyJWT version decodes them (shared/auth.py catches what PyJWT may let through),
    unless the token is merely long-lived (only the key holder can sign one)."""
    token = _token(header, payload)
    assert len(token) <= 8192
    status, answer = hostile.request(
        token, "POST", "/uploads", body=OK_BODY, headers={"Authorization": f"Bearer {token}"}, owner=None
    )
    if valid:
        assert status == 200, answer
    else:
        assert status == 401 and answer["Code"] == "InvalidToken", answer


@pytest.mark.parametrize("exc", [RecursionError(), OverflowError(), ValueError(), TypeError()])
def test_whatever_pyjwt_lets_through_is_a_401(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    """PyJWT before 2.15 lets RecursionError and OverflowError out of ``jwt.decode``: whatever
    version is installed, shared/auth.py answers 401 for them (this installed PyJWT no longer
    raises them, so they are raised here)."""
    import jwt

    def decode(*args: Any, **kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr(jwt, "decode", decode)
    status, answer = hostile.request(None, "POST", "/uploads", body=OK_BODY, owner="a")
    assert status == 401 and answer["Code"] == "InvalidToken", answer


# --- GET, DELETE /uploads/{id}, POST …/refresh ---------------------------------------------------
PATH_IDS = (
    hostile_text.filter(bool)
    | other_digits
    | st.sampled_from(LONG_IDS + tuple(s for s in SPECIAL_STRINGS if s))
    | hostile_text.filter(bool).map(lambda t: quote(t, safe="", errors="surrogatepass"))
)


@HOSTILE
@given(action=st.sampled_from([("GET", ""), ("DELETE", ""), ("POST", "/refresh")]), video_id=PATH_IDS)
@examples(
    [{"action": a, "video_id": CLASSES[c]} for a in (("GET", ""), ("DELETE", ""), ("POST", "/refresh"))
     for c in ("surrogate", "nul", "bidi-mark", "long-id", "very-long-id", "other-script-digits")],
)  # fmt: skip
def test_any_id_in_the_path(hostile: Hostile, action: tuple[str, str], video_id: str) -> None:
    method, suffix = action
    status, answer = hostile.request(video_id, method, f"/uploads/{video_id}{suffix}")
    assert status in (404, 405), answer


# --- GET /uploads?Status&Limit&Cursor -----------------------------------------------------------
def b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")


CURSOR_TIMES = st.sampled_from(
    ["2026-01-01T00:00:00+00:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00",
     "2026-01-01T00:00:00", "9999-12-31T23:59:59.999999+00:00", "２０２６-01-01T00:00:00+00:00"]
) | hostile_scalars  # fmt: skip
CURSOR_IDS = hostile_scalars | st.sampled_from(["a\x00b", "\ud800", "a" * 65, "a" * 400, "٣"])
CURSORS = (
    st.tuples(CURSOR_TIMES, CURSOR_IDS).map(lambda pair: b64url(dumps(list(pair))))
    | hostile_values.map(lambda v: b64url(dumps(v)))
    | hostile_text
    | st.sampled_from(["", "=", "e30", "W10", "!!!", "a" * 600])
)
LIST_VALUES = hostile_text | other_digits | st.sampled_from(LONG_IDS + SPECIAL_STRINGS) | CURSORS


@HOSTILE
@given(query=st.dictionaries(st.sampled_from(["Status", "Limit", "Cursor"]), LIST_VALUES, min_size=1))
@examples(
    [{"query": q} for q in (
        {"Cursor": b64url(dumps(["9999-12-31T23:59:59-01:00", "x"]))},
        {"Cursor": b64url(dumps(["0001-01-01T00:00:00+01:00", "x"]))},
        {"Cursor": b64url(dumps(["2026-01-01T00:00:00+00:00", "a\x00b"]))},
        {"Cursor": b64url(dumps(["2026-01-01T00:00:00+00:00", "\ud800"]))},
        {"Cursor": b64url(dumps(["2026-01-01T00:00:00+00:00", "a" * 3000]))},
        {"Cursor": b64url("[" * 5000 + "]" * 5000)},
        {"Cursor": b64url(dumps([Raw("1e309"), "x"]))},
        {"Cursor": "\ud800"},
        {"Limit": "\u00b9"}, {"Limit": "١٢"}, {"Limit": "9" * 5000}, {"Limit": "1e309"},
        {"Status": "\ud800"}, {"Status": "ready\x00"}, {"Status": "\u200eready"},
    )],
)  # fmt: skip
def test_any_list_query(hostile: Hostile, query: dict[str, str]) -> None:
    status, answer = hostile.request(query, "GET", "/uploads", query=query)
    assert status in (200, 400), answer
    if status == 200:
        assert answer["Uploads"] == []


# --- every event type, every field, over HTTP and through the queue ------------------------------
EVENT_NAMES = sorted(p.stem for p in (EVENTS / "vod").glob("*.json"))
_NESTED = {"StreamInfos", "SnapshotInfos", "DynamicImageJobInfo", "MediaContent"}


def _paths(name: str) -> list[tuple[str, ...]]:
    sample = load_event(f"vod/{name}.json")
    top = sorted(set(sample) | set(event_model(name).model_fields))
    paths: list[tuple[str, ...]] = [(field,) for field in top]
    if name == "TranscodeComplete":
        paths += [("StreamInfos", "0", field) for field in StreamInfo.model_fields]
    if name == "SnapshotComplete":
        paths += [("SnapshotInfos", "0", field) for field in ("SnapshotCount", "SnapshotRegular", "JobId")]
    if name == "DynamicImageComplete":
        paths += [("DynamicImageJobInfo", field) for field in ("FileSize", "FileURL", "Width")]
    if name == "MediaBaseChangeComplete":
        paths += [("MediaContent", field) for field in ("Title", "CateId")]
    return paths


EVENT_FIELDS = st.sampled_from(EVENT_NAMES).flatmap(
    lambda name: st.tuples(st.just(name), st.sampled_from(_paths(name)))
)
EVENT_CLASSES = (
    ("FileUploadComplete", ("Size",), "uint64-overflow"),
    ("FileUploadComplete", ("Size",), "float-overflow"),
    ("FileUploadComplete", ("FileUrl",), "surrogate"),
    ("FileUploadComplete", ("FileUrl",), "nul"),
    ("FileUploadComplete", ("EventTime",), "time-past-9999"),
    ("FileUploadComplete", ("EventTime",), "time-before-1"),
    ("FileUploadComplete", ("VideoId",), "long-id"),
    ("FileUploadComplete", ("VideoId",), "very-long-id"),
    ("FileUploadComplete", ("Extend",), "deep-object-in-string"),
    ("FileUploadComplete", ("Extend",), "surrogate"),
    ("FileUploadComplete", ("Size",), "superscript-digits"),
    ("FileUploadComplete", ("Size",), "long-digit-string"),
    ("TranscodeComplete", ("StreamInfos",), "deep-json-in-string"),
    ("TranscodeComplete", ("ErrorMessage",), "nul"),
    ("TranscodeComplete", ("StreamInfos", "0", "Duration"), "float-overflow"),
    ("TranscodeComplete", ("StreamInfos", "0", "Size"), "int64-overflow"),
    ("VideoAnalysisComplete", ("Duration",), "float-max"),
    ("VideoAnalysisComplete", ("Size",), "uint64-overflow"),
    ("VideoAnalysisComplete", ("Duration",), "huge-digits"),
    ("VideoAnalysisComplete", ("Width",), "other-script-digits"),
    ("SnapshotComplete", ("SnapshotInfos", "0", "SnapshotCount"), "int64-overflow"),
    ("DynamicImageComplete", ("DynamicImageJobInfo",), "deep-json-in-string"),
    ("MediaBaseChangeComplete", ("MediaContent",), "deep-object-in-string"),
    ("AIMediaAuditComplete", ("Data",), "deep-json-in-string"),
    ("AIMediaAuditComplete", ("MediaId",), "long-id"),
    ("UploadByURLComplete", ("JobId",), "very-long-id"),
    ("UploadByURLComplete", ("SourceURL",), "surrogate-in-url"),
    ("DeleteMediaComplete", ("JobIds",), "deep-json-in-string"),
    ("CreateAuditComplete", ("CreationTime",), "time-past-9999"),
    ("ImageUploadComplete", ("EventTime",), "time-before-1"),
    ("StreamTranscodeComplete", ("Fps",), "float-overflow"),
    ("AddLiveRecordVideoComplete", ("RecordStartTime",), "time-before-1"),
    ("ProduceMediaComplete", ("EventType",), "nul"),
)  # fmt: skip


class Events:
    """A real upload to aim events at (one per test unless :meth:`aim` makes another) and event
    bodies for it.

    VOD keeps the upload's media ``Uploading`` unless ``vod_status`` says otherwise (``None``: VOD
    no longer has it), so a final event waits for VOD's confirmation (``pending``).
    """

    def __init__(self, hostile: Hostile) -> None:
        self.hostile = hostile
        self.owner = "alice"
        self._video_id: str | None = None

    def aim(self, vod_status: str | None = "Uploading") -> str:
        """A new upload (of a new owner: no quota), its media at VOD in ``vod_status``."""
        self.owner = f"events-{self.hostile.n}"
        self._video_id = video_id = self.hostile.stack.create(owner=self.owner)["VideoId"]
        if vod_status is None:
            del self.hostile.stack.vod.videos[video_id]
        else:
            self.hostile.stack.vod.videos[video_id].update(Status=vod_status, Size="1024")
        return video_id

    @property
    def video_id(self) -> str:
        return self._video_id or self.aim()

    def body(self, name: str, path: tuple[str, ...], value: Any) -> dict[str, Any]:
        body = self.hostile.stack.vod_event(name, self.video_id, genuine=False)
        id_field = event_model(name).MEDIA_ID_FIELD or "VideoId"
        body[id_field] = self.video_id
        body["EventTime"] = f"2026-11-25T10:{self.hostile.n % 60:02d}:00Z"  # distinct events
        node: Any = body
        for part in path[:-1]:
            if isinstance(node, list):
                node = node[int(part)]
            else:
                if not isinstance(node.get(part), (dict, list)):  # e.g. JSON inside a string
                    node[part] = {}
                node = node[part]
        if isinstance(node, list):
            node[int(path[-1])] = value
        else:
            node[path[-1]] = value
        return body

    def still_readable(self) -> None:
        """Whatever the event wrote, the owner can still read the upload (every value renders)."""
        status, view = self.hostile.request(None, "GET", f"/uploads/{self.video_id}", owner=self.owner)
        assert status == 200, view


@pytest.fixture
def events(hostile: Hostile) -> Events:
    return Events(hostile)


@HOSTILE
@given(target=EVENT_FIELDS, value=hostile_values)
@examples([{"target": (n, p), "value": CLASSES[c]} for n, p, c in EVENT_CLASSES])
def test_any_value_in_any_field_of_any_signed_event(
    hostile: Hostile, events: Events, target: tuple[str, tuple[str, ...]], value: Any
) -> None:
    name, path = target
    hostile.callback(value, dumps(events.body(name, path, value)))
    events.still_readable()


@HOSTILE
@given(target=EVENT_FIELDS, value=hostile_values)
@examples([{"target": (n, p), "value": CLASSES[c]} for n, p, c in EVENT_CLASSES])
def test_any_value_in_any_field_of_any_queued_event(
    hostile: Hostile, events: Events, target: tuple[str, tuple[str, ...]], value: Any
) -> None:
    """The same events as MNS queue messages, each beside a good one that must not be blocked.
    VOD agrees with every claim (the media is ``Normal``, or gone for a deletion): no event waits
    for VOD's confirmation, so no batch is delivered again."""
    name, path = target
    events.aim(None if name == "DeleteMediaComplete" else "Normal")
    good = dumps({"EventType": "FileUploadComplete", "VideoId": f"{hostile.n:032x}",
                  "EventTime": "2026-11-25T10:00:00Z", "Size": 1})  # fmt: skip
    counts = hostile.queue(value, queue_event(dumps(events.body(name, path, value)), good))
    assert sum(counts.values()) == 2 and counts.get("orphan", 0) >= 1, counts
    events.still_readable()


@HOSTILE
@given(body=hostile_values)
@example(body=Raw("[" * 5000 + "]" * 5000))
@example(body={"EventType": "FileUploadComplete", "VideoId": "v" * 20_000})
@example(body={"EventType": "\ud800", "VideoId": "v"})
@example(body={"EventType": "FileUploadComplete\x00", "VideoId": "v"})
def test_any_signed_body(hostile: Hostile, body: Any) -> None:
    hostile.callback(body, dumps(body))


@HOSTILE
@given(
    header=st.sampled_from(["X-VOD-TIMESTAMP", "X-VOD-SIGNATURE"]),
    value=hostile_text | other_digits | st.sampled_from(LONG_IDS + SPECIAL_STRINGS),
)
@examples(
    [{"header": h, "value": CLASSES[c]} for h in ("X-VOD-TIMESTAMP", "X-VOD-SIGNATURE")
     for c in ("non-ascii-signature", "surrogate", "nul", "other-script-digits", "superscript-digits",
               "long-digit-string")],
)  # fmt: skip
def test_any_value_in_the_signature_headers(
    hostile: Hostile, events: Events, header: str, value: str
) -> None:
    genuine = callback_headers()
    if value.strip() == genuine[header]:
        return
    body = dumps(events.body("FileUploadComplete", ("Size",), 1))
    status, answer = hostile.callback(value, body, headers={header: value})
    assert status == 401 and answer["Code"] == "InvalidSignature", answer


@HOSTILE
@given(
    where=st.sampled_from(["event", "item", "data", "messageBody", "messageId", "requestId"]),
    value=hostile_values,
)
@example(where="messageBody", value=CLASSES["deep-json-in-string"])
@example(where="messageBody", value=base64.b64encode(b"[" * 5000 + b"]" * 5000).decode())
@example(where="messageBody", value=base64.b64encode(b'{"EventType":"\xed\xa0\x80"}').decode())
@example(where="messageBody", value='{"EventType":"FileUploadComplete","VideoId":"' + "v" * 20_000 + '"}')
@example(where="messageId", value=CLASSES["very-long-id"])
@example(where="event", value=CLASSES["deep-json"])
def test_any_queue_trigger_envelope(hostile: Hostile, where: str, value: Any) -> None:
    sample = json.loads(queue_event('{"EventType":"FileUploadComplete","VideoId":"v","Size":1}'))
    if where == "event":
        text = dumps(value)
    elif where == "item":
        text = dumps([value])
    elif where == "data":
        sample[0]["data"] = value
        text = dumps(sample)
    else:
        sample[0]["data"][where] = value
        text = dumps(sample)
    hostile.queue(value, text)


# --- what the store cannot hold: the value's fault, never "retry later" --------------------------
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
UNCOMPRESSIBLE = secrets.token_urlsafe(15_000)  # past PostgreSQL's btree row limit even compressed
# (field, value, the dialects that refuse it); what a dialect holds it stores (SQLite keeps NUL).
UNSTORABLE = [
    ("title", "a\x00b", {"postgresql"}),
    ("title", "\ud800", {"sqlite", "postgresql"}),
    ("file_size", 2**63, {"sqlite", "postgresql"}),
    ("file_size", -(2**63) - 1, {"sqlite", "postgresql"}),
    ("owner", UNCOMPRESSIBLE, {"postgresql"}),
    ("idempotency_key", UNCOMPRESSIBLE, {"postgresql"}),
    ("extend", "\x00", {"postgresql"}),
]


@pytest.mark.parametrize(
    ("field", "value", "refused_by"), UNSTORABLE, ids=[u[0] + str(i) for i, u in enumerate(UNSTORABLE)]
)
def test_the_store_refuses_what_it_cannot_hold_as_the_values_fault(
    store: Any, field: str, value: Any, refused_by: set[str]
) -> None:
    """Below the validation layer (which never lets these through): a driver's data error is
    ``UnstorableValue`` (400), never ``StoreUnavailable`` (503, retry later), and the store, its
    connection included, goes on working."""
    reservation = {"upload_id": uuid.uuid4().hex, "owner": "o", "reference_id": uuid.uuid4().hex,
                   "title": "t", "file_name": "f.mp4", "file_size": 1, "now": NOW, field: value}  # fmt: skip
    if store.dialect in refused_by:
        with pytest.raises(errors.UnstorableValue):
            store.reserve_upload(new_reservation(**reservation), max_pending=100)
    else:
        store.reserve_upload(new_reservation(**reservation), max_pending=100)
    fine = {**reservation, field: new_reservation(**{**reservation, field: None})._asdict().get(field) or "x"}
    fine.update(upload_id=uuid.uuid4().hex, reference_id=uuid.uuid4().hex, file_size=1)
    assert store.reserve_upload(new_reservation(**fine), max_pending=100).status == "creating"


@pytest.mark.parametrize("field", ["media_id", "dedupe_key", "body"])
def test_the_inbox_refuses_what_it_cannot_hold_as_the_events_fault(store: Any, field: str) -> None:
    event = {"dedupe_key": uuid.uuid4().hex, "media_id": "m", "event_type": "FileUploadComplete",
             "event_time": NOW, "source": "http", "message_id": None, "body": "{}", "now": NOW,
             "lease_seconds": 60.0}  # fmt: skip
    event[field] = "\x00" if field == "body" else UNCOMPRESSIBLE
    if store.dialect == "postgresql":
        with pytest.raises(errors.UnstorableValue):
            store.record_event(**event)
    else:
        store.record_event(**event)
    assert store.record_event(**{**event, field: "fine", "dedupe_key": uuid.uuid4().hex})[1] is True


def refusing_store(**methods: set[int]) -> FlakyStore:
    """The stack's store, raising ``UnstorableValue`` on the chosen calls of the chosen methods."""
    deps = get_deps()
    store = FlakyStore(deps.store)
    store.refuse.update(methods)
    set_deps(replace(deps, store=store))
    return store


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("record_event", "FileUploadComplete"),
        ("apply_event", "FileUploadComplete"),
        ("transition", "TranscodeComplete"),  # VOD is behind: the upload moves as far as VOD says
    ],
)
def test_an_event_the_store_cannot_hold_is_acknowledged_as_invalid(
    hostile: Hostile, events: Events, method: str, name: str
) -> None:
    """A data error on the event path is the event's: 200 ``invalid`` with a warning, never a 503
    (VOD would retry it for nothing) nor a 400; a recorded event is finished, not left pending."""
    events.aim("UploadSucc")
    store = refusing_store(**{method: {1}})
    body = dumps(events.body(name, ("Size",), 1))
    status, answer = hostile.callback(None, body, recorded=method != "record_event")
    assert status == 200 and answer["Result"] == "invalid", answer
    assert store.inner.claim_events(limit=10, lease_seconds=60.0, now=NOW + timedelta(days=1)) == []
    status, answer = hostile.callback(None, body)  # VOD's retry of the same body is settled normally
    assert status == 200 and answer["Result"] in ("applied", "duplicate", "pending"), answer


@pytest.mark.parametrize("method", ["record_event", "apply_event"])
def test_a_queued_event_the_store_cannot_hold_never_blocks_the_others(
    hostile: Hostile, events: Events, method: str
) -> None:
    events.aim("UploadSucc")
    refusing_store(**{method: {1}})
    first = dumps(events.body("FileUploadComplete", ("Size",), 1))
    orphan = dumps(
        {"EventType": "FileUploadComplete", "VideoId": "0" * 32, "EventTime": "2026-11-25T10:00:00Z"}
    )
    counts = hostile.queue(None, queue_event(first, orphan))
    assert counts == {"invalid": 1, "orphan": 1}, counts
