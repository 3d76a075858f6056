"""A bound on JSON nesting, for documents parsed from requests (client bodies, VOD callbacks).

``json.loads`` itself stops near the interpreter's recursion limit (about 1,000 levels), but a
document just under it still crashes whatever walks it recursively afterwards (validation,
re-serialisation) with ``RecursionError``: a 500 for the client's bad input (issue #6). No
document vodfc accepts needs more than a handful of levels, so anything deeper than
:data:`MAX_DEPTH` is refused right after parsing, with an iterative walk.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_DEPTH", "too_deep"]

MAX_DEPTH = 32


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
