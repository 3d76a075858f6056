"""Typed errors, each carrying its HTTP status and a VOD-style ``Code``.

Tree (status in brackets)::

    VodfcError [500 InternalError]
    ├── ClientError
    │   ├── InvalidParameter [400]        (field-level validation; ``field`` names the parameter)
    │   │   ├── MissingParameter [400]
    │   │   └── UnstorableValue [400]     (the database cannot hold a value: never worth a retry)
    │   ├── MalformedBody [400]
    │   ├── Unauthorized [401 InvalidToken]
    │   ├── InvalidSignature [401]        (VOD callback signature or timestamp)
    │   ├── Forbidden [403]               (operator policy refuses a value)
    │   ├── QuotaExceeded [403]
    │   ├── NotFound [404 InvalidVideo.NotFound]
    │   ├── MethodNotAllowed [405]
    │   ├── Conflict [409]                (idempotency key reused with another body, wrong state)
    │   ├── PayloadTooLarge [413]
    │   └── UnsupportedMediaType [415]
    ├── Misconfigured [500 ServerMisconfigured] (a value the operator configured is refused)
    ├── ServiceUnavailable [503]          (ours: a missing configuration, credentials)
    │   └── StoreUnavailable [503]        (the database is down or timed out)
    └── VodError [502]                    (a call to VOD failed; ``may_have_acted`` says whether
        │                                  VOD may still have carried it out)
        ├── UpstreamError [502 BadGateway] (VOD answered garbage or refused our own credentials)
        │   └── VodApiError [status chosen from VOD's Code]
        ├── Throttled [503 Throttling]     (``retry_after`` seconds)
        ├── VodUnavailable [503]           (VOD answered 5xx or could not be reached)
        └── GatewayTimeout [504]           (VOD did not answer within the deadline)

Everything is rendered by :func:`render` and nowhere else. Statuses are never chosen by
matching message text; the class (or, for VOD's own errors, VOD's ``Code``) decides. Callers
catch classes, never compare codes.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, ClassVar

__all__ = [
    "ClientError",
    "Conflict",
    "Forbidden",
    "GatewayTimeout",
    "InvalidParameter",
    "InvalidSignature",
    "MalformedBody",
    "MethodNotAllowed",
    "Misconfigured",
    "MissingParameter",
    "NotFound",
    "PayloadTooLarge",
    "QuotaExceeded",
    "ServiceUnavailable",
    "StoreUnavailable",
    "Throttled",
    "Unauthorized",
    "UnstorableValue",
    "UnsupportedMediaType",
    "UpstreamError",
    "VodApiError",
    "VodError",
    "VodUnavailable",
    "VodfcError",
    "blame",
    "render",
]


class VodfcError(Exception):
    """Base of every error vodfc answers with; ``status`` and ``code`` decide the HTTP answer."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "InternalError"
    default_message: ClassVar[str] = "The request processing has failed due to some unknown error."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        field: str | None = None,
        retry_after: int | None = None,
        vod_request_id: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)
        if code is not None:
            self.code = code  # type: ignore[misc]  # per-instance override of the class default
        if status is not None:
            self.status = status  # type: ignore[misc]
        self.field = field
        self.retry_after = retry_after
        self.vod_request_id = vod_request_id

    def headers(self) -> dict[str, str]:
        """Extra response headers (``Retry-After`` for throttling and unavailability)."""
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class ClientError(VodfcError):
    status = 400
    code = "InvalidParameter"
    default_message = "The request is invalid."


class InvalidParameter(ClientError):
    status = 400
    code = "InvalidParameter"
    default_message = "The specified parameter is invalid."


class MissingParameter(InvalidParameter):
    code = "MissingParameter"
    default_message = "A required parameter is missing."


class UnstorableValue(InvalidParameter):
    code = "InvalidParameter.Value"
    default_message = "A value in the request is out of range or cannot be stored."


class MalformedBody(ClientError):
    status = 400
    code = "MalformedBody"
    default_message = "The request body is not valid JSON."


class Unauthorized(ClientError):
    status = 401
    code = "InvalidToken"
    default_message = "A valid bearer token is required."

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="vodfc"'}


class InvalidSignature(ClientError):
    status = 401
    code = "InvalidSignature"
    default_message = "The callback signature or timestamp is invalid."


class Forbidden(ClientError):
    status = 403
    code = "Forbidden"
    default_message = "The operation is not allowed."


class QuotaExceeded(ClientError):
    status = 403
    code = "QuotaExceeded.PendingUploads"
    default_message = (
        "Too many uploads of this user are pending (created, nothing stored yet). Finish one, or "
        "cancel one you will not finish with DELETE /uploads/{VideoId} (GET /uploads?Status=created "
        "lists them); abandoned ones expire after STALE_UPLOAD_SECONDS. The operator sets the limit "
        "with MAX_PENDING_UPLOADS_PER_OWNER."
    )


class NotFound(ClientError):
    status = 404
    code = "InvalidVideo.NotFound"
    default_message = "The video does not exist."


class MethodNotAllowed(ClientError):
    status = 405
    code = "MethodNotAllowed"
    default_message = "The method is not allowed for this resource."


class Conflict(ClientError):
    status = 409
    code = "Conflict"
    default_message = "The request conflicts with the current state."


class PayloadTooLarge(ClientError):
    status = 413
    code = "PayloadTooLarge"
    default_message = "The request body is too large."


class UnsupportedMediaType(ClientError):
    status = 415
    code = "UnsupportedMediaType"
    default_message = "The request body must be application/json."


class Misconfigured(VodfcError):
    """A value the operator configured is refused: by VOD (a parameter the server itself
    supplies: a callback URL VOD cannot reach, a template group that does not exist), or by the
    settings' own validation (an invalid environment variable). The operator's fault, never the
    caller's: the caller gets a generic 500; ``detail`` (what was refused, and why) goes to the
    log only."""

    status = 500
    code = "ServerMisconfigured"
    default_message = "The service is not configured correctly; the operator must fix it."

    def __init__(self, detail: str, **kw: Any) -> None:
        super().__init__(None, **kw)
        self.detail = detail


class ServiceUnavailable(VodfcError):
    status = 503
    code = "ServiceUnavailable"
    default_message = "The service is temporarily unavailable; retry later."

    def __init__(self, message: str | None = None, **kw: Any) -> None:
        kw.setdefault("retry_after", 2)
        super().__init__(message, **kw)


class StoreUnavailable(ServiceUnavailable):
    """The store could not carry out an operation. ``may_have_committed`` is set by the store when
    a write may have committed all the same (its ``COMMIT``'s answer, or an autocommit
    statement's, was lost with the connection): callers then treat the write as possibly done."""

    code = "ServiceUnavailable.Store"
    default_message = "The upload store is temporarily unavailable; retry later."
    may_have_committed: bool = False


class VodError(VodfcError):
    """A call to VOD failed. ``may_have_acted`` is set by the VOD client when VOD may still have
    carried the call out (a 5xx, a timeout after sending, a garbled 200, in any attempt): callers
    then keep what they reserved for cleanup, and release it otherwise."""

    status = 502
    code = "BadGateway"
    default_message = "ApsaraVideo VOD could not carry out the request."
    may_have_acted: bool = False


class UpstreamError(VodError):
    status = 502
    code = "BadGateway"
    default_message = "ApsaraVideo VOD returned an invalid answer."


class VodApiError(UpstreamError):
    """An error body from VOD (``Code``, ``Message``, ``RequestId``), status chosen from the code."""

    # VOD codes that describe the client's own input: passed through as 4xx with VOD's code.
    CLIENT_CODES: ClassVar[dict[str, int]] = {
        "InvalidParameter": 400,
        "MissingParameter": 400,
        "InvalidFileName.Extension": 400,
        "IllegalCharacters": 400,
        "LengthExceededMax": 400,
        "TagsExceededMax": 400,
        "VideoIdsExceededMax": 400,
        "InvalidVideo.NotFound": 404,
        "InvalidVideo.Damaged": 400,
        "InvalidFile.NotFound": 404,
        "Forbidden.IllegalStatus": 403,
    }

    @classmethod
    def from_vod(cls, code: str, message: str, http_status: int, vod_request_id: str | None) -> VodError:
        """Translate one VOD error body into the error vodfc answers with."""
        if code.startswith("Throttling") or http_status == 429:
            return Throttled(message, code=code, retry_after=1, vod_request_id=vod_request_id)
        if code in cls.CLIENT_CODES:
            return cls(message, code=code, status=cls.CLIENT_CODES[code], vod_request_id=vod_request_id)
        if http_status >= 500 or code in {"InternalError", "ServiceUnAvailable", "DeleteVideoFailed"}:
            return VodUnavailable(message, code=code, retry_after=2, vod_request_id=vod_request_id)
        # Signature, key, RAM or configuration problems are ours, not the caller's: 502.
        return cls(message, code=code, status=502, vod_request_id=vod_request_id)


class Throttled(VodError):
    status = 503
    code = "Throttling"
    default_message = "Request was denied due to flow control; retry later."

    def __init__(self, message: str | None = None, **kw: Any) -> None:
        kw.setdefault("retry_after", 1)
        super().__init__(message, **kw)


class VodUnavailable(VodError):
    status = 503
    code = "ServiceUnavailable"
    default_message = "ApsaraVideo VOD is temporarily unavailable; retry later."

    def __init__(self, message: str | None = None, **kw: Any) -> None:
        kw.setdefault("retry_after", 2)
        super().__init__(message, **kw)


class GatewayTimeout(VodError):
    status = 504
    code = "GatewayTimeout"
    default_message = "ApsaraVideo VOD did not answer in time."


# VOD error codes that always concern a value from the operator's configuration: the template
# groups, workflows and storage locations a client may pick are the operator's allowed lists.
_CONFIGURATION_CODES = frozenset(
    {"InvalidTemplateGroupId.NotFound", "InvalidStorage.NotFound", "InvalidWorkflowId.NotFound"}
)
_PARAMETER_CODES = ("InvalidParameter", "MissingParameter")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def blame(error: VodError, known: Collection[str], client: Collection[str]) -> VodfcError:
    """``error`` as the caller should see it, given the action's parameter names (``known``,
    nested names such as ``CallbackURL`` included) and those the ``client`` chose.

    VOD names the offending parameter in its message (e.g. ``The specified parameter
    "TemplateGroupId" is not valid.``). A parameter-code error naming only parameters the server
    chose, or a code that always concerns the operator's configuration, becomes
    :class:`Misconfigured`; everything else, including an error that names no parameter, stays
    as VOD answered it."""
    if not isinstance(error, VodApiError):
        return error
    detail = f"VOD {error.code}: {error.message}"
    if error.code in _CONFIGURATION_CODES:
        return Misconfigured(detail, vod_request_id=error.vod_request_id)
    if not error.code.startswith(_PARAMETER_CODES):
        return error
    named = set(_WORD.findall(error.message)) & set(known)
    if named and not named & set(client):
        return Misconfigured(detail, vod_request_id=error.vod_request_id)
    return error


def render(error: VodfcError, request_id: str) -> dict[str, Any]:
    """The one error body: VOD's ``{"RequestId", "Code", "Message"}`` plus ``Field`` when known."""
    body: dict[str, Any] = {"RequestId": request_id, "Code": error.code, "Message": error.message}
    if error.field:
        body["Field"] = error.field
    if error.vod_request_id:
        body["VodRequestId"] = error.vod_request_id
    return body
