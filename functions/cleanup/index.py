"""FC handler: scheduled cleanup of abandoned uploads (timer trigger)."""

from __future__ import annotations

import json
import time
from typing import Any

from shared.settings import get_settings

FUNCTION = "cleanup"


def handler(event: bytes | str | dict[str, Any] | None, context: Any) -> str:
    """FC timer entry point; the event is ``{"triggerTime", "triggerName", "payload"}`` as bytes.

    Logs one JSON line per run (the summary) and returns the summary as JSON.
    """
    from shared import errors
    from shared.context import context_request_id, context_secrets
    from shared.log import (
        bind_request_id,
        configure_logging,
        get_logger,
        log_invocation,
        register_secrets,
        reset_request_id,
    )
    from shared.services.cleanup import CleanupSummary, run_cleanup
    from shared.services.deps import get_deps

    started = time.perf_counter()
    settings = get_settings()
    configure_logging(settings)
    register_secrets(*context_secrets(context))  # the role's STS credentials, as the HTTP functions do
    request_id = context_request_id(context)
    token = bind_request_id(request_id)
    try:  # the request id is unbound even when the run dies (a warm instance logs on)
        status, code = 200, None
        try:
            dry_run = _payload(event).get("dryRun")  # the timer's payload may ask for a dry run
            summary = run_cleanup(get_deps(context), dry_run=dry_run if isinstance(dry_run, bool) else None)
        except errors.VodfcError as exc:
            # A timer has no caller to answer: log the failure; the next run picks up the rest.
            status, code = exc.status, exc.code
            summary = CleanupSummary(dry_run=settings.cleanup_dry_run, errors=1)
        except Exception:
            # Issue #6: anything else used to escape to FC's runtime, which prints the traceback
            # (and any secret in it) unredacted, and the run's summary line was never written.
            get_logger("cleanup").exception("cleanup run failed")
            status, code = 500, "InternalError"
            summary = CleanupSummary(dry_run=settings.cleanup_dry_run, errors=1)
        latency = (time.perf_counter() - started) * 1000
        log_invocation(
            FUNCTION, "timer", status, latency, None, None, request_id, code=code, **summary.to_dict()
        )
        return json.dumps(summary.to_dict(), separators=(",", ":"))
    finally:
        reset_request_id(token)


def _payload(event: bytes | str | dict[str, Any] | None) -> dict[str, Any]:
    """The timer's ``payload`` (a string that may hold JSON); anything unusable means no overrides."""
    try:
        data = json.loads(event) if isinstance(event, (bytes, str)) else (event or {})
        payload = data.get("payload") if isinstance(data, dict) else None
        parsed = json.loads(payload) if isinstance(payload, str) and payload.strip() else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
