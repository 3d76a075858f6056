"""SearchMedia's ``Match`` language (the subset VOD documents for videos).

Grammar (keywords case-insensitive)::

    expr      := term ("or" term)*
    term      := factor ("and" factor)*
    factor    := "(" expr ")" | condition
    condition := FIELD "=" (value | range) | FIELD "in" "(" value ("," value)* ")"
    range     := ("(" | "[") [value] "," [value] (")" | "]")     # () open, [] closed
    value     := 'single-quoted string' | number

``Title = 'x'`` is a fuzzy (case-insensitive substring) match; ranges work on CreationTime,
ModificationTime, Size and Duration. Anything else raises :class:`MatchError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from .state import Video

__all__ = ["MatchError", "compile_match"]

Predicate = Callable[[Video], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<punct>[()\[\],=]))"
)

_EXACT_FIELDS: dict[str, Callable[[Video], str | None]] = {
    "VideoId": lambda m: m.video_id,
    "MediaId": lambda m: m.video_id,
    "Status": lambda m: m.status,
    "AppId": lambda m: m.app_id,
    "StorageLocation": lambda m: m.storage_location,
    "CateId": lambda m: None if m.cate_id is None else str(m.cate_id),
    "TemplateGroupId": lambda m: m.template_group_id,
    "ReferenceId": lambda m: m.reference_id,
    "MediaSource": lambda m: "general",
    "PreprocessStatus": lambda m: "UnPreprocess",
}
_FUZZY_FIELDS: dict[str, Callable[[Video], str | None]] = {
    "Title": lambda m: m.title,
    "Description": lambda m: m.description,
    "Tags": lambda m: m.tags,
}
_RANGE_FIELDS: dict[str, Callable[[Video], float | None]] = {
    # Whole seconds, as CreationTime is shown.
    "CreationTime": lambda m: float(int(m.created)),
    "ModificationTime": lambda m: float(int(m.modified)),
    "Size": lambda m: None if m.size is None else float(m.size),
    "Duration": lambda m: m.duration,
}


class MatchError(ValueError):
    """The expression is not valid; the message says where."""


@dataclass
class _Tok:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise MatchError(f"unexpected character at position {pos}")
        kind = m.lastgroup or ""
        raw = m.group(kind)
        if kind == "str":
            raw = raw[1:-1].replace("\\'", "'")
        elif kind == "word" and raw.lower() in ("and", "or", "in"):
            kind, raw = "kw", raw.lower()
        tokens.append(_Tok(kind, raw))
        pos = m.end()
    return tokens


def _range_value(name: str, raw: str) -> float:
    if name in ("CreationTime", "ModificationTime"):
        try:
            return datetime.strptime(raw, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            raise MatchError(f"{name} bound {raw!r} is not yyyy-MM-ddTHH:mm:ssZ") from None
    try:
        return float(raw)
    except ValueError:
        raise MatchError(f"{name} bound {raw!r} is not a number") from None


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str | None = None, text: str | None = None) -> _Tok:
        tok = self.peek()
        if tok is None or (kind and tok.kind != kind) or (text and tok.text != text):
            want = text or kind or "a token"
            got = "end of expression" if tok is None else repr(tok.text)
            raise MatchError(f"expected {want}, got {got}")
        self.i += 1
        return tok

    def expr(self) -> Predicate:
        parts = [self.term()]
        while (tok := self.peek()) is not None and tok.kind == "kw" and tok.text == "or":
            self.i += 1
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else (lambda m: any(p(m) for p in parts))

    def term(self) -> Predicate:
        parts = [self.factor()]
        while (tok := self.peek()) is not None and tok.kind == "kw" and tok.text == "and":
            self.i += 1
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else (lambda m: all(p(m) for p in parts))

    def factor(self) -> Predicate:
        tok = self.peek()
        if tok is not None and tok.kind == "punct" and tok.text == "(":
            self.i += 1
            inner = self.expr()
            self.take("punct", ")")
            return inner
        return self.condition()

    def value(self) -> str:
        tok = self.peek()
        if tok is None or tok.kind not in ("str", "num"):
            raise MatchError("expected a quoted value")
        self.i += 1
        return tok.text

    def condition(self) -> Predicate:
        name = self.take("word").text
        op = self.peek()
        if op is not None and op.kind == "kw" and op.text == "in":
            self.i += 1
            self.take("punct", "(")
            values = [self.value()]
            while (tok := self.peek()) is not None and tok.text == ",":
                self.i += 1
                values.append(self.value())
            self.take("punct", ")")
            return self._membership(name, values)
        self.take("punct", "=")
        tok = self.peek()
        if tok is not None and tok.kind == "punct" and tok.text in ("(", "["):
            return self._range(name)
        return self._membership(name, [self.value()])

    def _membership(self, name: str, values: list[str]) -> Predicate:
        if name in _EXACT_FIELDS:
            get = _EXACT_FIELDS[name]
            wanted = set(values)
            return lambda m: get(m) in wanted
        if name in _FUZZY_FIELDS:
            fget = _FUZZY_FIELDS[name]
            needles = [v.lower() for v in values]
            return lambda m: any(n in (fget(m) or "").lower() for n in needles)
        if name in _RANGE_FIELDS:
            rget = _RANGE_FIELDS[name]
            points = {_range_value(name, v) for v in values}
            return lambda m: rget(m) in points
        raise MatchError(f"field {name} cannot be searched")

    def _range(self, name: str) -> Predicate:
        if name not in _RANGE_FIELDS:
            raise MatchError(f"field {name} does not take a range")
        get = _RANGE_FIELDS[name]
        low_closed = self.take("punct").text == "["
        low = None if (t := self.peek()) is not None and t.text == "," else _range_value(name, self.value())
        self.take("punct", ",")
        tok = self.peek()
        high = None if tok is not None and tok.text in (")", "]") else _range_value(name, self.value())
        high_closed = self.take("punct").text == "]"
        if low is None and high is None:
            raise MatchError(f"{name} range needs at least one bound")

        def pred(m: Video) -> bool:
            v = get(m)
            if v is None:
                return False
            if low is not None and (v < low or (v == low and not low_closed)):
                return False
            return not (high is not None and (v > high or (v == high and not high_closed)))

        return pred


def compile_match(text: str | None) -> Predicate:
    """A predicate over :class:`Video` for a ``Match`` expression (empty: everything)."""
    if text is None or not text.strip():
        return lambda m: True
    parser = _Parser(_tokenize(text))
    pred = parser.expr()
    if parser.peek() is not None:
        raise MatchError(f"unexpected {parser.peek().text!r}")  # type: ignore[union-attr]
    return pred
