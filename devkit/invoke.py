"""``vodfc invoke``: one deployed handler, in-process, with an event, on the local defaults.

Like ``sam local invoke``: the function's log lines go to stderr and its answer alone to stdout.
Without ``--against`` the settings are :mod:`devkit.local`'s defaults over a temporary directory
(a fresh SQLite database and, unless a VOD endpoint is set, an emulated VOD and OSS on free
ports), all discarded afterwards. With ``--against URL`` they are those of the ``vodfc serve`` at
URL (its emulator, its database), read from its ``GET /_vodfc/stack``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devkit.handlers import load_handler_module, resign_callback_event, wrap_vod_event
from devkit.local import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    STACK_PATH,
    LocalStack,
    api_url,
    configured_vod_endpoint,
    temporary_environment,
)

__all__ = ["InvokeError", "invoke", "local_settings"]


class InvokeError(Exception):
    """The invocation could not be set up (the message says why)."""


def invoke(args: argparse.Namespace) -> int:
    """Run ``args.function`` with the event in ``args.event``; 1 if it answered 5xx, else 0."""
    from shared.context import make_context

    try:
        raw = Path(args.event).read_bytes()
        with local_settings(args.against):
            event = _ready_event(args.function, raw, resign=not args.no_resign)
            module = load_handler_module(args.function)
            with contextlib.redirect_stdout(sys.stderr):
                try:
                    result = module.handler(event, make_context(function_name=args.function))
                except Exception as exc:  # FC marks the invocation failed (a trigger retries it)
                    print(f"vodfc invoke: {args.function} failed: {exc}", file=sys.stderr)
                    return 1
    except (OSError, InvokeError) as exc:  # no such event file, no such server, ...
        print(f"vodfc invoke: {exc}", file=sys.stderr)
        return 2
    if isinstance(result, (bytes, bytearray)):
        result = result.decode()
    print(result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, indent=2))
    return 1 if _failed(result) else 0


@contextlib.contextmanager
def local_settings(against: str | None) -> Iterator[None]:
    """The process's settings for one invocation, restored afterwards."""
    if against:
        stack = _described_stack(against)
        if stack.database_url is None and not _configured("DATABASE_URL"):
            raise InvokeError(
                f"the server at {against} uses a database whose URL holds a password; set DATABASE_URL"
            )
        with temporary_environment(stack.environment()):
            yield
        return
    with tempfile.TemporaryDirectory(prefix="vodfc-invoke-") as tmp:
        endpoint = configured_vod_endpoint(None)
        stack = LocalStack(
            api_url(DEFAULT_HOST, DEFAULT_PORT),
            Path(tmp),
            vod_endpoint=endpoint,
            emulated=endpoint is None,
            sink=False,  # no server here to receive notifications
        )
        if endpoint is not None:
            with temporary_environment(stack.environment()):
                yield
            return
        from shared.settings import Settings

        # A throwaway emulator: free ports, nothing kept, no events sent anywhere.
        emulator = stack.start_emulator(
            Settings.from_env(stack.environment()),
            vod_port=0,
            oss_port=0,
            persist=False,
            callback_url=None,
            event_types=(),
            server_threads=2,
        )
        try:
            with temporary_environment(stack.with_emulator(emulator).environment()):
                yield
        finally:
            emulator.stop()


def _configured(name: str) -> bool:
    """Whether the environment sets ``name`` (in any case, not empty), as settings read it."""
    return any(key.upper() == name and value for key, value in os.environ.items())


def _described_stack(url: str) -> LocalStack:
    import httpx

    address = url.rstrip("/") + STACK_PATH
    try:
        answer = httpx.get(address, timeout=5, trust_env=False)
        answer.raise_for_status()
        return LocalStack.from_description(answer.json())
    except httpx.HTTPError as exc:
        raise InvokeError(f"no vodfc serve answers at {url} ({address}: {exc})") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise InvokeError(f"{address} is not a vodfc serve's description of its stack") from exc


def _ready_event(function: str, raw: bytes, *, resign: bool) -> bytes:
    """A callback sample made ready: a bare VOD body wrapped in its HTTP event, signed afresh."""
    if function != "vod_callback":
        return raw
    try:
        event = json.loads(raw)
    except ValueError as exc:
        raise InvokeError(f"the event is not JSON: {exc}") from exc
    if not isinstance(event, dict):  # an MNS batch or another trigger's event: as it is
        return raw
    if "EventType" in event and "requestContext" not in event:
        event = wrap_vod_event(event)
    if resign and "requestContext" in event:
        event = resign_callback_event(event)
    return json.dumps(event, ensure_ascii=False).encode()


def _failed(result: Any) -> bool:
    """A 5xx answer, or a cleanup run that counted errors."""
    if isinstance(result, dict):
        return int(result.get("statusCode") or 0) >= 500
    try:
        summary = json.loads(result)
    except (TypeError, ValueError):
        return False
    return isinstance(summary, dict) and bool(summary.get("errors"))
