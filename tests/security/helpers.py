"""Helpers of the security and fault suite: a fake clock for the VOD client, scripted VOD faults in
front of :class:`tests.functional.conftest.FakeVod`, and a store that fails on demand.

Everything here drives the *real* handlers (``Stack``); only VOD's wire (respx) and the store object
inside :class:`shared.services.deps.Deps` are replaced.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl

import httpx

from shared import errors
from shared.services.deps import Deps, get_deps, set_deps
from shared.vod import VodClient
from tests.functional.conftest import FakeVod, Stack

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
    deps = replace(deps, vod=VodClient(deps.settings, clock=clock.monotonic, sleep=clock.sleep))
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
    ``fail`` raises :class:`Crash`. ``calls`` counts every call by method name.
    """

    ALWAYS: frozenset[int] = frozenset({-1})

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fail: dict[str, Iterable[int]] = {}
        self.crash: dict[str, Iterable[int]] = {}
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
