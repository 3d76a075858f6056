"""One validation layer for what arrives from outside: text, identifiers, URLs, numbers, times, JSON.

Pure functions, no pydantic: the request models (:mod:`shared.api_models`), VOD's answer and event
models (:mod:`shared.vod_models`, :mod:`shared.events`), the HTTP adapter and the store's list
cursor all call these, so one rule is written once and holds on every path. A broken rule raises
:class:`Invalid`, which carries VOD's error ``code`` (``InvalidParameter``, ``IllegalCharacters``,
``LengthExceededMax``) and a message in plain words that never echoes the input.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "HOST_CHARS",
    "ID_CHARS",
    "ID_MAX_CHARS",
    "INT64_MAX",
    "MAX_DEPTH",
    "Invalid",
    "as_text",
    "bad_text",
    "check_id",
    "check_text",
    "check_url",
    "find_emoji",
    "is_bidi_control",
    "loads_json",
    "loose_float",
    "loose_int",
    "loose_time",
    "parse_vod_time",
    "too_deep",
]

INT64_MAX = 2**63 - 1
ID_MAX_CHARS = 64
ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
HOST_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-")
#: No document vodfc accepts needs more than a handful of levels; ``json.loads`` itself stops near
#: the recursion limit, but a document just under it still crashes whatever walks it afterwards.
MAX_DEPTH = 32


class Invalid(ValueError):
    """A value breaks a rule; ``code`` is VOD's error code for it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- characters ---------------------------------------------------------------------------------

# "Emoji" as VOD's IllegalCharacters check sees them. VOD stores these fields in a 3-byte UTF-8
# column, so every character outside the Basic Multilingual Plane (U+10000 and up: nearly all
# emoji, and 4 bytes in UTF-8) is refused. Inside the BMP we also refuse the blocks whose
# characters render as emoji (U+2600-U+27BF misc symbols and dingbats, a few U+23xx and U+2Bxx
# pictographs, U+3030/U+303D), the keycap combiner U+20E3 and the variation selectors
# U+FE0E/U+FE0F that switch text symbols (e.g. (c) U+00A9) to emoji presentation.
_BMP_EMOJI_RANGES: tuple[tuple[int, int], ...] = (
    (0x20E3, 0x20E3),
    (0x231A, 0x231B),
    (0x2328, 0x2328),
    (0x23CF, 0x23CF),
    (0x23E9, 0x23F3),
    (0x23F8, 0x23FA),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25AB),
    (0x25B6, 0x25B6),
    (0x25C0, 0x25C0),
    (0x25FB, 0x25FE),
    (0x2600, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B07),
    (0x2B1B, 0x2B1C),
    (0x2B50, 0x2B50),
    (0x2B55, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0xFE0E, 0xFE0F),
)
# Bidirectional controls make "evil\u202Egpj.mp4" display as "evil4pm.jpg": never useful in a
# title, a file name or a URL, so they count as control characters. Unicode's Bidi_Control
# property (PropList.txt) is UAX #9's explicit directional formatting characters, which their
# bidi class names, plus its three implicit directional marks, whose bidi class is an ordinary
# strong direction (L, R, AL) and which are known by name; Python's unicodedata has no property
# lookup, so it is derived from the two: https://www.unicode.org/reports/tr9/#Directional_Formatting_Characters
_EXPLICIT_BIDI_CLASSES = frozenset({"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"})
_IMPLICIT_BIDI_MARKS = frozenset({"LEFT-TO-RIGHT MARK", "RIGHT-TO-LEFT MARK", "ARABIC LETTER MARK"})


def is_bidi_control(char: str) -> bool:
    """Whether ``char`` has Unicode's Bidi_Control property (U+061C, U+200E, U+200F,
    U+202A-U+202E, U+2066-U+2069)."""
    if char.isascii():
        return False
    import unicodedata  # deferred: a C extension that nothing on an ASCII path needs

    if unicodedata.bidirectional(char) in _EXPLICIT_BIDI_CLASSES:
        return True
    return unicodedata.category(char) == "Cf" and unicodedata.name(char, "") in _IMPLICIT_BIDI_MARKS


def _is_emoji(code: int) -> bool:
    if code > 0xFFFF:
        return True
    if code < 0x20E3:
        return False
    return any(lo <= code <= hi for lo, hi in _BMP_EMOJI_RANGES)


def find_emoji(text: str) -> int | None:
    """Index of the first character VOD would refuse as an emoji, or ``None``."""
    for index, char in enumerate(text):
        if _is_emoji(ord(char)):
            return index
    return None


def _is_control(code: int, *, allow_newlines: bool) -> bool:
    if code < 0x20:
        return not (allow_newlines and code in (0x09, 0x0A, 0x0D))
    if code < 0x7F:
        return False
    return code <= 0x9F or code in (0x2028, 0x2029) or is_bidi_control(chr(code))


def check_text(name: str, value: str, *, max_bytes: int | None, allow_newlines: bool = False) -> None:
    """The rules of VOD's free-text fields (Title, Description, each tag, FileName).

    Valid UTF-8 (no lone surrogate), no control or bidi-control character (newlines and tabs
    where ``allow_newlines``), no emoji, and at most ``max_bytes`` UTF-8 bytes.
    """
    for char in value:
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF:
            raise Invalid("InvalidParameter", f"{name} is not valid UTF-8 text.")
        if _is_control(code, allow_newlines=allow_newlines):
            raise Invalid("IllegalCharacters", f"{name} must not contain control characters.")
        if _is_emoji(code):
            raise Invalid("IllegalCharacters", f"{name} must not contain emoji.")
    if max_bytes is not None:
        size = len(value.encode("utf-8"))
        if size > max_bytes:
            raise Invalid(
                "LengthExceededMax",
                f"{name} is too long: at most {max_bytes} bytes in UTF-8 (got {size}).",
            )


def check_url(name: str, value: str, *, max_bytes: int) -> str:
    """An absolute http(s) URL with a host, no credentials, no whitespace or control characters."""
    if len(value.encode("utf-8", "surrogatepass")) > max_bytes:
        raise Invalid("LengthExceededMax", f"{name} is too long: at most {max_bytes} bytes.")
    if any(ord(c) <= 0x20 or 0x7F <= ord(c) <= 0x9F or c == "\\" or is_bidi_control(c) for c in value):
        raise Invalid(
            "InvalidParameter", f"{name} must not contain spaces, backslashes or control characters."
        )
    try:
        parts = urlsplit(value)
    except ValueError:
        raise Invalid("InvalidParameter", f"{name} is not a valid URL.") from None
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme.lower() not in ("http", "https"):
        raise Invalid("InvalidParameter", f"{name} must be an absolute http or https URL.")
    if "@" in parts.netloc:
        raise Invalid("InvalidParameter", f"{name} must not contain a user name or password.")
    if not parts.hostname:
        raise Invalid("InvalidParameter", f"{name} must name a host.")
    if not port_ok:
        raise Invalid("InvalidParameter", f"{name} has an invalid port.")
    return value


def check_id(
    name: str, value: str, *, chars: frozenset[str] = ID_CHARS, max_chars: int = ID_MAX_CHARS
) -> str:
    """An identifier of 1 to ``max_chars`` characters, all in ``chars``."""
    if not value or len(value) > max_chars or not set(value) <= chars:
        raise Invalid(
            "InvalidParameter",
            f"{name} must be 1 to {max_chars} characters of letters, digits"
            + (", '.' and '-'." if chars is HOST_CHARS else ", '-' and '_'."),
        )
    return value


# --- numbers and times --------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _time_pattern() -> re.Pattern[str]:
    return re.compile(
        r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.:](\d{1,9}))?\s*(Z|[+-]\d{2}:?\d{2})?",
        re.IGNORECASE,
    )


def parse_vod_time(value: str) -> datetime:
    """Parse VOD's UTC times leniently: ``…ssZ``, ``…ss.SSSZ``, ``…ss:SSSZ`` (ImageUploadComplete's
    colon before the milliseconds), offsets, or no zone (read as UTC). Raises ``ValueError``."""
    match = _time_pattern().fullmatch(value.strip())
    if match is None:
        raise ValueError("not a VOD time")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        tz = timezone.utc
        if zone and zone.upper() != "Z":
            digits = zone[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            tz = timezone(-offset if zone[0] == "-" else offset)
        parsed = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz
        )
        # Converting can leave year 1 to 9999 (9999-12-31T23:00-02:00): OverflowError.
        return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise ValueError("not a VOD time") from None


def loose_time(value: Any) -> datetime | None:
    """A time from VOD's answers: aware UTC, or ``None`` for anything unparsable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str) and value.strip():
        try:
            return parse_vod_time(value)
        except ValueError:
            return None
    return None


def loose_int(value: Any) -> int | None:
    """An integer from VOD's answers (numbers may arrive as strings); ``None`` for garbage and for
    anything outside the signed 64-bit range the stores hold."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        number: int | float = value
    else:
        try:
            text = value.strip() if isinstance(value, str) else value
            if isinstance(text, str) and (len(text) > 40 or not text.isascii()):
                return None  # int() would take other scripts' digits, and long strings cost
            number = float(text)
        except (TypeError, ValueError):
            return None
        if number != number or abs(number) == float("inf"):
            return None
    result = int(number)
    return result if -INT64_MAX - 1 <= result <= INT64_MAX else None


def loose_float(value: Any) -> float | None:
    """A float from VOD's answers (numbers may arrive as strings); ``None`` for garbage."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, str) and (len(value) > 40 or not value.isascii()):
            return None
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number == number and abs(number) != float("inf") else None


# --- JSON ---------------------------------------------------------------------------------------


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` (parsed JSON) nests objects/arrays more than ``limit`` levels deep."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def bad_text(value: Any) -> tuple[str, str | None] | None:
    """Why a parsed JSON document cannot be stored or sent on as text, and under which top-level
    key (``None`` for the document itself), or ``None`` when it can.

    Every string (keys too) must be encodable as UTF-8 (no lone surrogate: ``"\ud800"`` is valid
    JSON but not text) and hold no NUL (PostgreSQL's ``text`` and ``jsonb`` refuse it). One
    iterative walk, for whatever arrives from outside, before any other rule looks at it.
    """
    top = value.items() if isinstance(value, dict) else [(None, value)]
    for key, child in top:
        if key is not None:
            problem = _text_problem(key)
            if problem is not None:
                return problem, None
        pending: list[Any] = [child]
        while pending:
            item = pending.pop()
            if isinstance(item, str):
                strings: Any = (item,)
            elif isinstance(item, dict):
                strings = item.keys()
                pending.extend(item.values())
            elif isinstance(item, list):
                pending.extend(item)
                continue
            else:
                continue
            for text in strings:
                problem = _text_problem(text) if isinstance(text, str) else None
                if problem is not None:
                    return problem, key
    return None


def as_text(value: str) -> str:
    """``value`` with each lone surrogate replaced by U+FFFD, as a decoder replaces bytes that are
    not UTF-8: for what is kept only to be shown or logged (a request's path and method)."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in value)
    return value


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "text that is not valid Unicode"
    return None


def loads_json(text: str | bytes, *, what: str) -> Any:
    """Parse JSON that arrived inside a string field (``UserData``, ``Extend``, a cursor, a queue
    message) with the rules of a whole body: no ``NaN``, bounded nesting, storable text.

    Raises :class:`Invalid` (``InvalidParameter``) naming ``what``; never ``RecursionError``.
    """
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise Invalid("InvalidParameter", f"{what} is not valid JSON.") from None
    if too_deep(value):
        raise Invalid("InvalidParameter", f"{what} is nested too deeply.")
    found = bad_text(value)
    if found is not None:
        raise Invalid("InvalidParameter", f"{what} holds {found[0]}.")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
