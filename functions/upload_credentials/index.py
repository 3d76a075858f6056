"""FC handler: upload credentials for web clients (HTTP trigger, FC 2.0 WSGI or FC 3.0 event).

Routes (custom domain ``/uploads``, ``/images``, ``/attached-media``): ``POST /uploads``,
``GET /uploads``, ``GET|DELETE /uploads/{VideoId}``, ``POST /uploads/{VideoId}/refresh``; ``POST
/images``, ``GET /images``, ``GET|DELETE /images/{ImageId}``; the same for ``/attached-media``
(``{MediaId}``). Every route authenticates the caller, calls one service function and renders its
answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.http import Router, json_response, refusing, serve
from shared.settings import configured, get_settings

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
        if params:  # the one path parameter is a media id: the log line's
            request.video_id = next(iter(params.values()))
        result = fn(deps, owner, request, **params)
        for id_field in ("VideoId", "ImageId", "MediaId"):
            if id_field in result:
                request.video_id = result[id_field]
        return json_response(200, {"RequestId": request.request_id, **result})

    return route


@_authenticated
def _create(deps: Any, owner: str, request: Request) -> dict[str, Any]:
    from shared.services.uploads import create_upload

    return create_upload(deps, owner, request.json(), request.header("Idempotency-Key"))


@_authenticated
def _refresh(deps: Any, owner: str, request: Request, video_id: str) -> dict[str, Any]:
    from shared.services.uploads import refresh_upload

    return refresh_upload(deps, owner, video_id)


@_authenticated
def _create_image(deps: Any, owner: str, request: Request) -> dict[str, Any]:
    from shared.services.media import create_image

    return create_image(deps, owner, request.json(), request.header("Idempotency-Key"))


@_authenticated
def _create_attached_media(deps: Any, owner: str, request: Request) -> dict[str, Any]:
    from shared.services.media import create_attached_media

    return create_attached_media(deps, owner, request.json(), request.header("Idempotency-Key"))


def _kind_routes(kind: str) -> tuple[Callable[..., Response], ...]:
    """GET (list), GET (one) and DELETE for the media of ``kind``; the one path parameter (named
    ``video_id``, ``image_id`` or ``media_id``) is the media id."""

    @_authenticated
    def list_media(deps: Any, owner: str, request: Request) -> dict[str, Any]:
        from shared.services.uploads import list_uploads

        q = request.query
        return list_uploads(
            deps, owner, kind=kind, status=q.get("Status"), cursor=q.get("Cursor"), limit=q.get("Limit")
        )

    @_authenticated
    def get_media(deps: Any, owner: str, request: Request, **path: str) -> dict[str, Any]:
        from shared.services.uploads import get_upload

        return get_upload(deps, owner, *path.values(), kind=kind)

    @_authenticated
    def delete_media(deps: Any, owner: str, request: Request, **path: str) -> dict[str, Any]:
        from shared.services.uploads import delete_upload

        return delete_upload(deps, owner, *path.values(), kind=kind)

    return list_media, get_media, delete_media


def _routes() -> Router:
    global _router
    if _router is None:
        from shared.auth import warn_if_insecure

        warn_if_insecure(get_settings())  # once per cold start
        router = Router()
        router.add("POST", "/uploads", _create)
        router.add("POST", "/uploads/{video_id}/refresh", _refresh)
        # VOD cannot refresh an image's or attached media's credential: no refresh route for them.
        router.add("POST", "/images", _create_image)
        router.add("POST", "/attached-media", _create_attached_media)
        for prefix, kind, param in (
            ("/uploads", "video", "video_id"),
            ("/images", "image", "image_id"),
            ("/attached-media", "attached", "media_id"),
        ):
            list_media, get_media, delete_media = _kind_routes(kind)
            router.add("GET", prefix, list_media)
            router.add("GET", f"{prefix}/{{{param}}}", get_media)
            router.add("DELETE", f"{prefix}/{{{param}}}", delete_media)
        _router = router
    return _router


def handler(*args: Any) -> Any:
    """FC entry point: ``handler(environ, start_response)`` or ``handler(event, context)``."""
    settings, invalid = configured()
    route = _routes() if invalid is None else refusing(invalid)
    return serve(args, route, settings=settings, function_name=FUNCTION)
