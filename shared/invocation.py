"""One invocation's lifecycle, the same for every trigger: set-up, outcome, and the one log line.

Every handler (HTTP through :mod:`shared.http`, the timer, the MNS queue trigger) runs its work
inside :func:`invocation`::

    with invocation("cleanup", context, settings, route="timer") as inv:
        try:
            summary = run_cleanup(deps)
        except Exception as exc:
            inv.fail(exc)          # maps the error to a status and code, logs what must be logged
        inv.annotate(**summary)

On entry: logging configured from the settings, the FC context's STS secrets registered for
redaction, the request id bound into every log line. On exit: the one JSON line that summarises
the invocation (``shared.log.log_invocation``), then the request id unbound, even if the body
raised. Errors are mapped in :meth:`Invocation.fail` and nowhere else: a :class:`VodfcError`
keeps its status and code (a 5xx is logged as a warning), anything else is logged with its
traceback through the redacting logger and becomes a fixed ``InternalError`` (500) whose message
never carries the exception's text.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared import errors
from shared.log import (
    bind_request_id,
    configure_logging,
    get_logger,
    log_invocation,
    register_secrets,
    reset_request_id,
)

if TYPE_CHECKING:
    from shared.settings import Settings

__all__ = [
    "INTERNAL_ERROR_MESSAGE",
    "Invocation",
    "clean_request_id",
    "context_request_id",
    "context_secrets",
    "invocation",
]

INTERNAL_ERROR_MESSAGE = "The request processing has failed due to some unknown error."
_REQUEST_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")
# Keys of the log line that only the lifecycle itself writes.
_RESERVED = frozenset({"function", "route", "status", "latency_ms", "owner", "video_id", "request_id"})

_log = get_logger("invocation.errors")


def clean_request_id(value: object) -> str | None:
    """``value`` if it is usable as a request id (1-128 safe characters), else ``None``."""
    if isinstance(value, str) and 0 < len(value) <= 128 and set(value) <= _REQUEST_ID_CHARS:
        return value
    return None


@dataclass
class Invocation:
    """What one invocation reports: set by the handler, written once when it ends."""

    function: str
    request_id: str
    route: str | None = None
    status: int = 200
    code: str | None = None
    owner: str | None = None
    video_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    def bind(self, request_id: str) -> None:
        """Use ``request_id`` (found in the trigger's event) from now on, in every log line."""
        self.request_id = request_id
        bind_request_id(request_id)

    def annotate(self, **fields: Any) -> None:
        """Add fields to the invocation's log line (the lifecycle's own keys are kept)."""
        for key, value in fields.items():
            if key not in _RESERVED:
                self.fields[key] = value

    def fail(self, exc: BaseException) -> errors.VodfcError:
        """Record ``exc`` as the outcome and return the error to answer with."""
        if isinstance(exc, errors.VodfcError):
            error = exc
            if isinstance(error, errors.Misconfigured):
                _log.error("%s %s: %s", type(error).__name__, error.code, error.detail)
            elif error.status >= 500:
                _log.warning(
                    "%s %s: %s",
                    type(error).__name__,
                    error.code,
                    error.message,
                    exc_info=error.__cause__ is not None,
                )
        else:
            _log.error("unhandled error in %s", self.function, exc_info=exc)
            error = errors.VodfcError(INTERNAL_ERROR_MESSAGE)
        self.status, self.code = error.status, error.code
        return error


def context_request_id(context: Any) -> str | None:
    """``context.request_id`` when it is a usable string, else ``None``."""
    value = getattr(context, "request_id", None) if context is not None else None
    return value if isinstance(value, str) and value else None


def context_secrets(context: Any) -> tuple[str, ...]:
    """The context's secret credential values (for log redaction); empty when there are none."""
    credentials = getattr(context, "credentials", None) if context is not None else None
    values = (
        getattr(credentials, "access_key_secret", None),
        getattr(credentials, "security_token", None),
    )
    return tuple(v for v in values if isinstance(v, str) and v)


@contextmanager
def invocation(
    function: str,
    context: Any,
    settings: Settings,
    *,
    route: str | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Iterator[Invocation]:
    """Run one invocation of ``function`` (see the module docstring)."""
    started = clock()
    configure_logging(settings)
    register_secrets(*context_secrets(context))
    request_id = clean_request_id(context_request_id(context))
    token = bind_request_id(request_id)
    inv = Invocation(function=function, request_id=request_id or str(uuid.uuid4()), route=route)
    if request_id is None:
        bind_request_id(inv.request_id)
    try:
        yield inv
    finally:
        try:
            log_invocation(
                function,
                inv.route,
                inv.status,
                (clock() - started) * 1000,
                inv.owner,
                inv.video_id,
                inv.request_id,
                **({"code": inv.code} if inv.code is not None else {}),
                **inv.fields,
            )
        finally:
            reset_request_id(token)
