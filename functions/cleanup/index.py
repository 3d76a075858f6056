"""FC handler: scheduled cleanup of abandoned uploads (timer trigger)."""

from __future__ import annotations

import json
from typing import Any

from shared.settings import get_settings

FUNCTION = "cleanup"


def handler(event: bytes | str | dict[str, Any] | None, context: Any) -> str:
    """FC timer entry point; the event is ``{"triggerTime", "triggerName", "payload"}`` as bytes."""
    from shared.services.cleanup import run_cleanup
    from shared.services.deps import get_deps

    settings = get_settings()
    overrides = _payload(event)
    deps = get_deps(context)
    if "dryRun" in overrides and isinstance(overrides["dryRun"], bool):
        deps.settings = settings.model_copy(update={"cleanup_dry_run": overrides["dryRun"]})
    try:
        summary = run_cleanup(deps)
    finally:
        deps.settings = settings
    return json.dumps(summary.to_dict(), separators=(",", ":"))


def _payload(event: bytes | str | dict[str, Any] | None) -> dict[str, Any]:
    """The timer's ``payload`` (a string that may hold JSON); anything unusable means no overrides."""
    try:
        data = json.loads(event) if isinstance(event, (bytes, str)) else (event or {})
        payload = data.get("payload") if isinstance(data, dict) else None
        parsed = json.loads(payload) if isinstance(payload, str) and payload.strip() else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
