"""FC handler: scheduled cleanup of abandoned uploads (timer trigger)."""

from __future__ import annotations

import json
from typing import Any

from shared.settings import configured

FUNCTION = "cleanup"


def handler(event: bytes | str | dict[str, Any] | None, context: Any) -> str:
    """FC timer entry point; the event is ``{"triggerTime", "triggerName", "payload"}`` as bytes.

    Logs one JSON line per run (the summary) and returns the summary as JSON.
    """
    from shared.invocation import invocation
    from shared.services.cleanup import CleanupSummary, run_cleanup
    from shared.services.deps import get_deps

    settings, invalid = configured()
    options = _payload(event)
    with invocation(FUNCTION, context, settings, route="timer") as inv:
        try:
            if invalid is not None:
                raise invalid
            summary = run_cleanup(
                get_deps(context),
                dry_run=_flag(options, "dryRun"),
                budget_seconds=_seconds(options, "budgetSeconds"),
                prune=_flag(options, "prune") is not False,
            )
        except Exception as exc:
            # A timer has no caller to answer: the failure is logged, the next run does the rest.
            inv.fail(exc)
            summary = CleanupSummary(dry_run=settings.cleanup_dry_run, errors=1)
        inv.annotate(**summary.to_dict())
    return json.dumps(summary.to_dict(), separators=(",", ":"))


def _payload(event: bytes | str | dict[str, Any] | None) -> dict[str, Any]:
    """The timer's ``payload`` (a string that may hold JSON): ``dryRun``, ``budgetSeconds``,
    ``prune``; anything unusable means no overrides."""
    try:
        data = json.loads(event) if isinstance(event, (bytes, str)) else (event or {})
        payload = data.get("payload") if isinstance(data, dict) else None
        parsed = json.loads(payload) if isinstance(payload, str) and payload.strip() else {}
    except (ValueError, RecursionError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _flag(options: dict[str, Any], name: str) -> bool | None:
    value = options.get(name)
    return value if isinstance(value, bool) else None


def _seconds(options: dict[str, Any], name: str) -> float | None:
    value = options.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 600:
        return float(value)
    return None
