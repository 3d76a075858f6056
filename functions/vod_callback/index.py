"""FC handler: VOD event notifications (HTTP trigger, ``POST /callbacks/vod``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.http import Router, json_response, serve
from shared.settings import get_settings

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


def handler(*args: Any) -> Any:
    """FC entry point: ``handler(environ, start_response)`` or ``handler(event, context)``."""
    return serve(args, _routes(), settings=get_settings(), function_name=FUNCTION)
