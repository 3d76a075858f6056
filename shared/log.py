"""JSON logging to stdout (FC ships stdout to SLS), one line per invocation, secrets redacted.

Every record of the ``vodfc`` logger tree becomes one JSON object on one line, carrying the
request id bound with :func:`bind_request_id`. Redaction is defence in depth: code must not log
secrets in the first place, but if a token, UploadAuth blob, STS token or DSN password slips into a
message, an ``extra`` field or a traceback, :class:`RedactingFilter` scrubs it before it is written.

Our logger does not propagate to the root logger: FC's runtime installs its own root handler, and
propagating would print every line twice (once as JSON, once in FC's text format). Tests read the
lines with ``capsys`` (the handler resolves ``sys.stdout`` at write time) or ``caplog`` (pytest
attaches its handler to non-propagating loggers too).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import re

    from shared.settings import Settings

__all__ = [
    "REDACTED",
    "ROOT",
    "JsonFormatter",
    "RedactingFilter",
    "bind_request_id",
    "bound_request_id",
    "configure_logging",
    "current_request_id",
    "get_logger",
    "log_invocation",
    "redact",
    "redact_text",
    "register_secrets",
    "reset_request_id",
]

ROOT = "vodfc"
REDACTED = "[REDACTED]"
_MIN_SECRET_LENGTH = 6  # shorter "secrets" would scrub ordinary words
_MAX_SECRETS = 64  # STS tokens rotate; keep the newest ones only
_MAX_DEPTH = 6
# Names whose values are secrets (``AUTH_MODE`` is the one "auth" name that is not).
_SENSITIVE_NAMES = r"secret|token|passw|pwd|auth(?![_-]?mode)|signature|cookie|private_?key|api_?key"

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("vodfc_request_id", default=None)
# Known secret values, oldest first. Replaced whole (never mutated) so that readers on other
# threads (devkit's waitress) never see it change mid-iteration.
_secrets: tuple[str, ...] = ()
_by_length: tuple[str, ...] = ()  # the same, longest first (a secret containing another goes whole)
_secrets_lock = threading.Lock()
# Memo of redact_text for short strings (the same route, method, owner and messages repeat on
# every request). Replaced whole, together with the secrets, so an entry computed against an
# older secrets tuple can never be read once a new secret is registered.
_memo: dict[str, str] = {}
_MEMO_MAX_ENTRIES = 2048
_MEMO_MAX_LENGTH = 256
_name_is_secret: dict[str, bool] = {}  # extra-field / mapping key -> names a secret?
_configured_from: Settings | None = None  # the Settings last applied

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(
    {
        "args", "asctime", "created", "exc_info", "exc_text", "filename", "funcName", "levelname",
        "levelno", "lineno", "message", "module", "msecs", "msg", "name", "pathname", "process",
        "processName", "relativeCreated", "stack_info", "taskName", "thread", "threadName",
        "request_id", "_vodfc_redacted",
    }
)  # fmt: skip


# --- redaction ---------------------------------------------------------------------------------
def _group1_redacted(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED


def _group1_redacted_at(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED + "@"


def _redacted(match: re.Match[str]) -> str:
    return REDACTED


def _bearer_redacted(match: re.Match[str]) -> str:
    return match.group(1) + " " + REDACTED


@lru_cache(maxsize=1)
def _patterns() -> tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...]:
    """Compiled on first use, not at import (cold start).

    Replacements are functions, not ``\1`` templates: ``re`` re-parses a template on every
    ``sub`` call, which was most of the cost of redaction.
    """
    import re

    key = r"[\w.-]*(?:" + _SENSITIVE_NAMES + r")[\w.-]*"
    return (
        # Authorization: <anything> (header dumps, curl lines, repr of header dicts)
        (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\"'\r\n,;}]+"), _group1_redacted),
        (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*"), _bearer_redacted),
        # JWTs and Base64 JSON blobs (UploadAuth / UploadAddress start with '{"' = "eyJ")
        (re.compile(r"\beyJ[A-Za-z0-9+/_-]{8,}=*(?:\.[A-Za-z0-9+/_=-]*){0,2}"), _redacted),
        # Alibaba Cloud STS security tokens
        (re.compile(r"\bCAIS[A-Za-z0-9+/=]{16,}"), _redacted),
        # URLs with a password: postgresql://user:pass@host
        (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/?#@\s]*:)[^@/?#\s]+@"), _group1_redacted_at),
        # key=value, key:value, "key": "value", Key: value where the key names a secret; but not
        # "Key: Some words", an error code before its message ("AuthNotConfigured: Authentication
        # is not configured"): a word of letters followed by another word is prose, not a secret.
        (
            re.compile(
                r"(?i)(\b" + key + r"[\"']?\s*(?:=\s*[\"']?|:\s*[\"']|:(?![\s\"'])|:\s+(?![a-z]+\s+[a-z])))"
                r"(?!\[REDACTED\])[^\s\"',;&}\]]+"
            ),
            _group1_redacted,
        ),
    )


# Every pattern above needs one of these substrings to match (a superset: "auth" covers
# "authorization" and "auth" not followed by "mode"; the case-insensitive "eyj"/"cais" cover the
# case-sensitive "eyJ"/"CAIS"). Text containing none of them, and no registered secret, is left
# as it is after a single scan instead of six substitutions.
_TRIGGERS = r"(?i:auth|bearer|basic|eyj|cais|://|" + _SENSITIVE_NAMES + r")"


@lru_cache(maxsize=4)
def _prefilter(secrets: tuple[str, ...]) -> re.Pattern[str]:
    """One regex that finds anything :func:`redact_text` could change, for this set of secrets."""
    import re

    return re.compile("|".join([_TRIGGERS, *(re.escape(s) for s in secrets)]))


@lru_cache(maxsize=1)
def _secret_key_pattern() -> re.Pattern[str]:
    import re

    return re.compile("(?i)" + _SENSITIVE_NAMES)


def _is_secret_name(name: str) -> bool:
    known = _name_is_secret.get(name)
    if known is None:
        known = _secret_key_pattern().search(name) is not None
        if len(_name_is_secret) < _MEMO_MAX_ENTRIES:
            _name_is_secret[name] = known
    return known


def register_secrets(*values: object) -> None:
    """Remember secret values (str or ``SecretStr``) so they are scrubbed wherever they appear."""
    global _secrets, _by_length, _memo
    new: list[str] = []
    for value in values:
        getter = getattr(value, "get_secret_value", None)
        text = getter() if callable(getter) else value
        if isinstance(text, str) and len(text) >= _MIN_SECRET_LENGTH and text not in _secrets:
            new.append(text)
    if not new:
        return
    with _secrets_lock:
        merged = tuple(dict.fromkeys((*_secrets, *new)))[-_MAX_SECRETS:]
        # Order matters: a reader takes _memo first, then _by_length (see redact_text).
        _secrets, _by_length = merged, tuple(sorted(merged, key=len, reverse=True))
        _memo = {}


def redact_text(text: str) -> str:
    """``text`` with known secret values and secret-looking patterns replaced by ``[REDACTED]``."""
    memo = _memo  # before _by_length: a memo taken here never outlives the secrets read below
    secrets = _by_length
    short = len(text) <= _MEMO_MAX_LENGTH
    if short:
        cached = memo.get(text)
        if cached is not None:
            return cached
    if _prefilter(secrets).search(text) is None:
        result = text
    else:
        result = text
        for secret in secrets:
            if secret in result:
                result = result.replace(secret, REDACTED)
        for pattern, replacement in _patterns():
            result = pattern.sub(replacement, result)
    if short:
        if len(memo) >= _MEMO_MAX_ENTRIES:
            memo.clear()
        memo[text] = result
    return result


def redact(value: Any, *, _depth: int = 0) -> Any:
    """A copy of ``value`` (JSON-like data) with secret-named keys and secret-looking text scrubbed."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if _depth >= _MAX_DEPTH:
        return REDACTED if isinstance(value, (Mapping, list, tuple, set)) else value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            name = str(k)
            if v is not None and not isinstance(v, bool) and _is_secret_name(name):
                out[name] = REDACTED
            else:
                out[name] = redact(v, _depth=_depth + 1)
        return out
    if isinstance(value, (list, tuple, set)):
        return [redact(v, _depth=_depth + 1) for v in value]
    return redact_text(str(value))


class RedactingFilter(logging.Filter):
    """Scrubs the message, ``extra`` fields and traceback of each record, in place, once."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_vodfc_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None  # exc_text (redacted below) replaces it
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        attrs = record.__dict__
        for name in [k for k in attrs if k not in _RECORD_ATTRS]:
            value = attrs[name]
            if value is None or isinstance(value, bool):
                continue  # nothing to scrub (and a secret-named flag stays readable)
            if _is_secret_name(name):
                attrs[name] = REDACTED
            elif not isinstance(value, (int, float)):
                attrs[name] = redact(value)
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get()
        record._vodfc_redacted = True
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or _request_id.get(),
        }
        for name, value in record.__dict__.items():
            if name not in _RECORD_ATTRS and name not in entry:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return _encoder().encode(entry)


@lru_cache(maxsize=1)
def _encoder() -> json.JSONEncoder:
    """What ``json.dumps(..., ensure_ascii=False, default=str, separators=(",", ":"))`` builds per call."""
    return json.JSONEncoder(ensure_ascii=False, default=str, separators=(",", ":"))


_last_second: tuple[int, str] = (-1, "")


def _iso_utc(created: float) -> str:
    global _last_second
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    cached_second, prefix = _last_second  # one tuple: never a torn read across threads
    if cached_second != seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _last_second = (seconds, prefix)
    return f"{prefix}.{millis:03d}Z"


class _StdoutHandler(logging.Handler):
    """Writes to whatever ``sys.stdout`` is at emit time (pytest's capsys swaps it per test)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = sys.stdout
            stream.write(line + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


# --- configuration -----------------------------------------------------------------------------
_handler: _StdoutHandler | None = None  # the one installed by _root (cheap re-check per call)


def _root() -> logging.Logger:
    global _handler
    logger = logging.getLogger(ROOT)
    if _handler is not None and _handler in logger.handlers:
        return logger
    existing = [h for h in logger.handlers if isinstance(h, _StdoutHandler)]
    if existing:
        _handler = existing[0]
    else:
        handler = _StdoutHandler()
        handler.addFilter(RedactingFilter())
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        _handler = handler
        logger.propagate = False
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    return logger


def get_logger(name: str) -> logging.Logger:
    """A logger under ``vodfc`` (``get_logger(__name__)``); installs the JSON handler once."""
    _root()
    if name == ROOT or name.startswith(ROOT + "."):
        return logging.getLogger(name)
    return logging.getLogger(f"{ROOT}.{name}")


def configure_logging(settings: Settings | None = None, *, level: str | None = None) -> None:
    """Idempotent: set the level (``LOG_LEVEL``) and register the settings' secrets for redaction.

    Cheap enough for every invocation; the work is done once per settings object.
    """
    global _configured_from
    logger = _root()
    if level is None and settings is not None:
        level = settings.log_level
    if level:
        resolved = logging.getLevelName(level.strip().upper())
        resolved = resolved if isinstance(resolved, int) else logging.INFO
        if logger.level != resolved:  # setLevel clears every logger's level cache (and locks)
            logger.setLevel(resolved)
    if settings is not None and settings is not _configured_from:
        _configured_from = settings
        register_secrets(*_settings_secrets(settings))


def _settings_secrets(settings: Settings) -> Iterable[object]:
    yield settings.alibaba_cloud_access_key_secret
    yield settings.alibaba_cloud_security_token
    yield settings.jwt_secret
    yield settings.callback_auth_key
    yield settings.callback_auth_key_previous
    yield settings.upload_binding_key
    for key in (settings.webhook_secret, settings.webhook_secret_previous):
        if key is not None:
            yield key
            yield key.get_secret_value().removeprefix("whsec_")  # the Base64 part alone
    dsn = settings.database_url.get_secret_value()
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(dsn).password
    except ValueError:
        password = None
    if password:
        yield password
        yield unquote(password)


# --- request id --------------------------------------------------------------------------------
def bind_request_id(request_id: str | None) -> contextvars.Token[str | None]:
    """Bind the request id into every log line of this context; returns a token for reset."""
    return _request_id.set(request_id)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    """Undo :func:`bind_request_id`."""
    _request_id.reset(token)


def current_request_id() -> str | None:
    """The request id bound in this context, if any."""
    return _request_id.get()


@contextlib.contextmanager
def bound_request_id(request_id: str | None) -> Iterator[None]:
    """``with bound_request_id(rid): ...`` — binds for the duration of the block."""
    token = bind_request_id(request_id)
    try:
        yield
    finally:
        reset_request_id(token)


# --- the invocation line -----------------------------------------------------------------------
def log_invocation(
    function: str,
    route: str | None,
    status: int,
    latency_ms: float,
    owner: str | None,
    video_id: str | None,
    request_id: str | None,
    **extra: Any,
) -> None:
    """Emit the one JSON line that summarises an invocation (ERROR level for 5xx, else INFO)."""
    fields: dict[str, Any] = {
        "function": function,
        "route": route,
        "status": status,
        "latency_ms": round(latency_ms, 1),
        "owner": owner,
        "video_id": video_id,
        "request_id": request_id,
    }
    for key, value in extra.items():
        fields.setdefault(key, value)
    level = logging.ERROR if status >= 500 else logging.INFO
    logger = _invocation_logger()
    if not logger.isEnabledFor(level):
        return
    # Logger.log would walk the stack for the caller's file and line (findCaller), which this
    # line never shows; build the record directly and hand it to the handlers.
    record = logger.makeRecord(
        logger.name, level, __file__, 0, "invocation", (), None, "log_invocation", fields
    )
    logger.handle(record)


def _invocation_logger() -> logging.Logger:
    global _invocation
    if _invocation is None:
        _invocation = get_logger("invocation")
    return _invocation


_invocation: logging.Logger | None = None
