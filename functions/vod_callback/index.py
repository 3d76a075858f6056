"""FC handler: VOD event notifications, as HTTP callbacks (``POST /callbacks/vod``) or as MNS queue
messages (the queue trigger); the event's shape tells which."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from shared.http import Router, json_response, refusing, serve
from shared.settings import configured

if TYPE_CHECKING:
    from shared.http import Request, Response

FUNCTION = "vod_callback"
_router: Router | None = None


def _callback(request: Request) -> Response:
    from shared.services.callbacks import handle_callback
    from shared.services.deps import get_deps

    result = handle_callback(get_deps(request.context), request.headers, request.body)
    request.video_id = result.get("VideoId")
    request.annotate(event_type=result.get("EventType"), result=result.get("Result"))
    return json_response(200, {"RequestId": request.request_id, **result})


def _routes() -> Router:
    global _router
    if _router is None:
        router = Router()
        router.add("POST", "/callbacks/vod", _callback)
        _router = router
    return _router


class DeliverAgain(Exception):
    """Raised to fail a queue-trigger invocation, so that the trigger delivers its batch again."""


def _queue(event: Any, context: Any) -> str:
    from shared.invocation import invocation
    from shared.services.callbacks import Budget, handle_queue
    from shared.services.deps import get_deps
    from shared.triggers import parse_queue_event

    settings, invalid = configured()
    retry: str | None = None
    with invocation(FUNCTION, context, settings, route="mns") as inv:
        try:
            if invalid is not None:
                raise invalid  # a 500: the batch comes back once the settings are fixed
            messages = parse_queue_event(event)
            inv.annotate(messages=len(messages))
            counts = handle_queue(get_deps(context), messages, budget=Budget(settings.queue_budget_seconds))
            inv.annotate(**counts)
        except Exception as exc:
            error = inv.fail(exc)
            counts = {}
            if error.status >= 500:
                retry = error.message
    if retry is not None:
        # Not chained: the trigger's log shows this message and our frames only.
        raise DeliverAgain(retry) from None
    return json.dumps(counts, separators=(",", ":"))


def handler(*args: Any) -> Any:
    """FC entry point: ``handler(environ, start_response)`` (FC 2.0 HTTP) or ``handler(event, context)``
    (FC 3.0 HTTP, or the MNS queue trigger)."""
    if len(args) == 2 and isinstance(args[0], (bytes, bytearray, str)):
        from shared.triggers import is_queue_event

        try:
            event = json.loads(args[0])
        except (ValueError, RecursionError):
            event = None
        if is_queue_event(event):
            return _queue(event, args[1])
        if event is not None:
            args = (event, args[1])
    settings, invalid = configured()
    route = _routes() if invalid is None else refusing(invalid)
    return serve(args, route, settings=settings, function_name=FUNCTION)
