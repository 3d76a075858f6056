"""FC handler: upload credentials for web clients (HTTP trigger, FC 2.0 WSGI or FC 3.0 event).

Routes (custom domain ``/uploads``): ``POST /uploads``, ``GET /uploads``,
``GET|DELETE /uploads/{VideoId}``, ``POST /uploads/{VideoId}/refresh``. Every route
authenticates the caller, calls one service function and renders its answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.http import Router, json_response, serve
from shared.settings import get_settings

if TYPE_CHECKING:
    from shared.http import Request, Response

FUNCTION = "upload_credentials"
_router: Router | None = None


def _authenticated(fn: Callable[..., dict[str, Any]]) -> Callable[..., Response]:
    def route(request: Request, **params: str) -> Response:
        from shared.auth import authenticate
        from shared.services.deps import get_deps

        deps = get_deps(request.context)
        owner = authenticate(request, deps.settings)  # also the request's owner, for the log line
        result = fn(deps, owner, request, **params)
        if "VideoId" in result:
            request.video_id = result["VideoId"]
        return json_response(200, {"RequestId": request.request_id, **result})

    return route


@_authenticated
def _create(deps: Any, owner: str, request: Request) -> dict[str, Any]:
    from shared.services.uploads import create_upload

    return create_upload(deps, owner, request.json(), request.header("Idempotency-Key"))


@_authenticated
def _list(deps: Any, owner: str, request: Request) -> dict[str, Any]:
    from shared.services.uploads import list_uploads

    q = request.query
    return list_uploads(deps, owner, status=q.get("Status"), cursor=q.get("Cursor"), limit=q.get("Limit"))


@_authenticated
def _get(deps: Any, owner: str, request: Request, video_id: str) -> dict[str, Any]:
    from shared.services.uploads import get_upload

    return get_upload(deps, owner, video_id)


@_authenticated
def _delete(deps: Any, owner: str, request: Request, video_id: str) -> dict[str, Any]:
    from shared.services.uploads import delete_upload

    return delete_upload(deps, owner, video_id)


@_authenticated
def _refresh(deps: Any, owner: str, request: Request, video_id: str) -> dict[str, Any]:
    from shared.services.uploads import refresh_upload

    return refresh_upload(deps, owner, video_id)


def _routes() -> Router:
    global _router
    if _router is None:
        from shared.auth import warn_if_insecure

        warn_if_insecure(get_settings())  # once per cold start
        router = Router()
        router.add("POST", "/uploads", _create)
        router.add("GET", "/uploads", _list)
        router.add("GET", "/uploads/{video_id}", _get)
        router.add("DELETE", "/uploads/{video_id}", _delete)
        router.add("POST", "/uploads/{video_id}/refresh", _refresh)
        _router = router
    return _router


def handler(*args: Any) -> Any:
    """FC entry point: ``handler(environ, start_response)`` or ``handler(event, context)``."""
    return serve(args, _routes(), settings=get_settings(), function_name=FUNCTION)
