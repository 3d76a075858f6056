"""The ApsaraVideo VOD client: signed OpenAPI calls over httpx, bounded retries, typed errors.

Wire convention (the official SDKs' RPC style): ``POST <endpoint>/`` with every business parameter
in the query and an empty body, signed by :func:`shared.signing.sign_request` (V3 by default, or
RPC V1); the wire query is exactly the canonical query string that was signed.

Retries (throttling, 5xx, network errors) use exponential backoff with full jitter and all fit in
``settings.vod_deadline_seconds``, which also caps every attempt's timeouts. httpx and pydantic
errors never leave this module: they become :mod:`shared.errors` types (``raise ... from``), every
VOD failure a :class:`shared.errors.VodError` that says whether VOD may have acted.
"""

from __future__ import annotations

import http.cookiejar
import json
import logging
import math
import os
import random as _random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from shared import errors, vod_models
from shared.clock import utcnow
from shared.signing import Credentials, format_timestamp, new_nonce, percent_encode, sign_request

if TYPE_CHECKING:
    import ssl
    from datetime import datetime

    from shared import vod_media_models
    from shared.settings import Settings

__all__ = [
    "MAX_IDS",
    "MAX_PAGE_SIZE",
    "VOD_VERSION",
    "CredentialChain",
    "CredentialsProvider",
    "VodClient",
    "credentials_from",
    "get_vod_client",
    "reset_vod_client",
]

log = logging.getLogger("vodfc.vod")

VOD_VERSION = "2017-03-21"
# GetVideoInfos and DeleteVideo take at most 20 ids, and so do GetImageInfos, DeleteImage,
# GetAttachedMediaInfo and DeleteAttachedMedia:
# https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-getvideoinfos
MAX_IDS = 20
# https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-searchmedia
MAX_PAGE_SIZE = 100
_BASE_DELAY = 0.2  # seconds; attempt n waits uniform(0, min(_MAX_DELAY, _BASE_DELAY * 2**(n-1)))
_MAX_DELAY = 2.0
_MIN_ATTEMPT_SECONDS = 0.05  # an attempt with less time than this left is not worth starting
_MAX_MESSAGE_CHARS = 500

# Gateway codes whose messages echo the server's string-to-sign (AccessKeyId, SecurityToken):
# their text is replaced by our own.
_SIGNING_CODES = (
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidAccessKeyId",
    "InvalidSecurityToken",
    "SignatureNonceUsed",
    "InvalidTimeStamp",
    "MissingSecurityToken",
)

M = TypeVar("M", bound=BaseModel)
CredentialsProvider = Callable[[], Credentials]

_default_utcnow = utcnow


def _wall_timestamp() -> str:
    """``format_timestamp(utcnow())`` without building a datetime (both truncate to the second)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- credentials --------------------------------------------------------------------------------


class CredentialChain:
    """Credentials from, in order: explicit settings, the FC ``context``, ``ALIBABA_CLOUD_*`` env vars.

    Called on every request, so a rotated STS credential is picked up. ``context`` may be replaced
    by each invocation (:func:`get_vod_client` does), because FC hands the newest STS credentials
    to each invocation's context.
    """

    def __init__(self, settings: Settings, context: Any = None, *, environ: Mapping[str, str] | None = None):
        self._settings = settings
        self.context = context
        self._environ = environ

    def __call__(self) -> Credentials:
        s = self._settings
        secret = (
            s.alibaba_cloud_access_key_secret.get_secret_value() if s.alibaba_cloud_access_key_secret else ""
        )
        token = s.alibaba_cloud_security_token.get_secret_value() if s.alibaba_cloud_security_token else ""
        found = _complete("settings", s.alibaba_cloud_access_key_id or "", secret, token)
        if found is not None:
            return found
        context_creds = getattr(self.context, "credentials", None) if self.context is not None else None
        if context_creds is not None:
            found = _complete(
                "the FC context",
                _text(getattr(context_creds, "access_key_id", None)),
                _text(getattr(context_creds, "access_key_secret", None)),
                _text(getattr(context_creds, "security_token", None)),
            )
            if found is not None:
                return found
        # Read at call time, not import time: FC 3.0 runtimes refresh these variables.
        env = self._environ if self._environ is not None else os.environ
        found = _complete(
            "the environment",
            env.get("ALIBABA_CLOUD_ACCESS_KEY_ID", ""),
            env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ""),
            env.get("ALIBABA_CLOUD_SECURITY_TOKEN", ""),
        )
        if found is not None:
            return found
        raise _missing_credentials(
            "No Alibaba Cloud credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and "
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET, or give the function a service role."
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _complete(source: str, key_id: str, secret: str, token: str) -> Credentials | None:
    if key_id and secret:
        return Credentials(key_id, secret, token or None)
    if key_id or secret:
        # Half a key pair is a configuration mistake; falling through would hide it.
        missing = "AccessKeySecret" if key_id else "AccessKeyId"
        raise _missing_credentials(f"The Alibaba Cloud credentials from {source} lack the {missing}.")
    return None


def _missing_credentials(message: str) -> errors.ServiceUnavailable:
    return errors.ServiceUnavailable(message, code="MissingCredentials", retry_after=None)


def credentials_from(settings: Settings, context: Any = None) -> CredentialChain:
    """The credentials provider: settings > FC ``context.credentials`` > ``ALIBABA_CLOUD_*`` env vars."""
    return CredentialChain(settings, context)


# --- the client ---------------------------------------------------------------------------------


class _Failure(NamedTuple):
    """A failed attempt: the error to raise, its foreign cause, and how to treat it."""

    error: errors.VodError | errors.NotFound
    cause: BaseException | None
    sent: bool  # VOD may have received (and acted on) the request
    retryable: bool = True
    retry_after: float | None = None


@dataclass
class _CallState:
    """What the attempts of one logical call learnt; ``ambiguous`` = VOD may have acted on one."""

    deadline: float
    ambiguous: bool = False


class VodClient:
    """One VOD endpoint, with a lazily built ``httpx.Client`` reused across warm invocations.

    ``clock`` is monotonic seconds (deadlines), ``utcnow`` the wall clock for signatures;
    ``sleep``, ``random`` and ``nonce`` are injectable so tests run instantly and deterministically.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        credentials: CredentialsProvider | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        nonce: Callable[[], str] = new_nonce,
        utcnow: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self._credentials: CredentialsProvider = credentials or credentials_from(settings)
        self._transport = transport
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._nonce = nonce
        self._utcnow = utcnow
        # The signature's timestamp, formatted: the default wall clock skips datetime entirely.
        self._timestamp: Callable[[], str] = (
            _wall_timestamp if utcnow is _default_utcnow else lambda: format_timestamp(utcnow())
        )
        self._http: httpx.Client | None = None
        self._target: _Target | None = None
        self._lock = threading.Lock()

    # --- operations -----------------------------------------------------------------------------

    def create_upload_video(
        self, params: Mapping[str, str], *, resume: bool = False
    ) -> vod_models.UploadCredentials:
        """CreateUploadVideo: creates the media record and returns its upload address and credential.

        Retrying is safe only because ``params`` carry our ``ReferenceId``, which VOD keeps unique
        per user: if an attempt's answer is lost (timeout, 5xx, dropped connection), the media may
        exist, and a second create with the same ReferenceId cannot make another one. VOD then
        refuses the retry (no documented error code), so after an ambiguous attempt any refusal
        or final failure is resolved by looking the media up with GetVideoInfos(ReferenceIds) and,
        if found, issuing a fresh credential with RefreshUploadVideo (same VideoId and address).
        If that cannot settle it, the error is raised and the caller's reservation (which holds
        the ReferenceId) must be left for cleanup, which deletes by ReferenceId. Without a
        ReferenceId only attempts VOD certainly never processed are retried (connection refused,
        throttled): a blind second create could leave an untracked, billable media.

        ``resume``: an earlier call with this ReferenceId may have made the media, so this call
        starts as ambiguous as one whose answer was lost.
        """
        reference_id = params.get("ReferenceId") or None
        state = _CallState(deadline=self._clock() + self.settings.vod_deadline_seconds)
        state.ambiguous = resume and reference_id is not None
        try:
            return self._create(
                "CreateUploadVideo",
                params,
                vod_models.UploadCredentials,
                state=state,
                retry_ambiguous=reference_id is not None,
            )
        except errors.VodfcError as exc:
            if reference_id is None or not state.ambiguous:
                raise
            resolved = self._resolve_created(reference_id, state)
            if resolved is None:
                raise
            log.warning(
                "CreateUploadVideo answer was lost; resolved by ReferenceId",
                extra={"video_id": resolved.VideoId, "vod_code": exc.code},
            )
            return resolved

    def create_upload_image(self, params: Mapping[str, str]) -> vod_media_models.ImageUploadCredentials:
        """CreateUploadImage: a new image (status ``Uploading``) with its upload address and credential.

        CreateUploadImage takes no ReferenceId, so nothing makes a second create harmless: only
        attempts VOD certainly never processed are retried (connection refused, throttled). After
        any other failure ``may_have_acted`` says whether an image may exist (the caller keeps its
        reservation then), https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-createuploadimage
        """
        from shared import vod_media_models  # the images' and attached media's answers

        return self._create(
            "CreateUploadImage", params, vod_media_models.ImageUploadCredentials, state=self._state(None)
        )

    def create_upload_attached_media(
        self, params: Mapping[str, str]
    ) -> vod_media_models.AttachedMediaUploadCredentials:
        """CreateUploadAttachedMedia: a new watermark, subtitle or material file with its upload
        address and credential; retried as :meth:`create_upload_image` (no ReferenceId either),
        https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-createuploadattachedmedia
        """
        from shared import vod_media_models  # the images' and attached media's answers

        return self._create(
            "CreateUploadAttachedMedia",
            params,
            vod_media_models.AttachedMediaUploadCredentials,
            state=self._state(None),
        )

    def _create(
        self,
        action: str,
        params: Mapping[str, str],
        model: type[M],
        *,
        state: _CallState,
        retry_ambiguous: bool = False,
    ) -> M:
        """One create call; a failure says in ``may_have_acted`` whether a media may exist."""
        try:
            return self._call(action, params, model, state=state, retry_ambiguous=retry_ambiguous)
        except errors.VodError as exc:
            exc.may_have_acted = state.ambiguous
            raise

    def refresh_upload_video(self, video_id: str) -> vod_models.UploadCredentials:
        """RefreshUploadVideo: a new credential for the same VideoId and upload address."""
        _check_ids("VideoId", [video_id], limit=1)
        return self._call("RefreshUploadVideo", {"VideoId": video_id}, vod_models.UploadCredentials)

    def get_video_info(self, video_id: str, *, deadline_seconds: float | None = None) -> vod_models.Video:
        """GetVideoInfo; raises :class:`errors.NotFound` when VOD has no such video.

        ``deadline_seconds`` (default ``VOD_DEADLINE_SECONDS``) bounds the call, retries included.
        """
        _check_ids("VideoId", [video_id], limit=1)
        params = {"VideoId": video_id}
        state = self._state(deadline_seconds)
        return self._call("GetVideoInfo", params, vod_models.GetVideoInfoResponse, state=state).Video

    def get_video_infos(self, video_ids: Sequence[str]) -> vod_models.GetVideoInfosResponse:
        """GetVideoInfos for at most 20 ids; missing ids are listed in ``NonExistVideoIds``."""
        if not video_ids:
            return vod_models.GetVideoInfosResponse()
        _check_ids("VideoIds", video_ids)
        return self._call(
            "GetVideoInfos", {"VideoIds": ",".join(video_ids)}, vod_models.GetVideoInfosResponse
        )

    def get_mezzanine_info(
        self, video_id: str, *, deadline_seconds: float | None = None
    ) -> vod_models.Mezzanine:
        """GetMezzanineInfo (the source file); ``Status`` ``Normal`` means the upload finished."""
        _check_ids("VideoId", [video_id], limit=1)
        params = {"VideoId": video_id, "OutputType": "oss"}
        state = self._state(deadline_seconds)
        return self._call(
            "GetMezzanineInfo", params, vod_models.GetMezzanineInfoResponse, state=state
        ).Mezzanine

    def delete_videos(
        self,
        video_ids: Sequence[str] = (),
        reference_ids: Sequence[str] = (),
        *,
        deadline_seconds: float | None = None,
    ) -> str:
        """DeleteVideo by at most 20 VideoIds or 20 ReferenceIds; returns VOD's RequestId.

        ``deadline_seconds`` (default ``VOD_DEADLINE_SECONDS``) bounds this call, retries included.
        """
        if bool(video_ids) == bool(reference_ids):
            raise errors.InvalidParameter(
                "DeleteVideo takes VideoIds or ReferenceIds (one of them, not both).", field="VideoIds"
            )
        if video_ids:
            _check_ids("VideoIds", video_ids)
            params = {"VideoIds": ",".join(video_ids)}
        else:
            _check_ids("ReferenceIds", reference_ids)
            params = {"ReferenceIds": ",".join(reference_ids)}
        answer = self._call(
            "DeleteVideo", params, vod_models.DeleteVideoResponse, state=self._state(deadline_seconds)
        )
        if not answer.RequestId:
            raise errors.UpstreamError("VOD answered DeleteVideo without a RequestId.")
        return answer.RequestId

    def get_image_info(
        self, image_id: str, *, deadline_seconds: float | None = None
    ) -> vod_media_models.Image:
        """GetImageInfo; raises :class:`errors.NotFound` (VOD's ``NoSuchResource``) for a missing image,
        https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-getimageinfo
        """
        from shared import vod_media_models  # the images' and attached media's answers

        _check_ids("ImageId", [image_id], limit=1)
        state = self._state(deadline_seconds)
        return self._call(
            "GetImageInfo", {"ImageId": image_id}, vod_media_models.GetImageInfoResponse, state=state
        ).ImageInfo

    def get_image_infos(self, image_ids: Sequence[str]) -> vod_media_models.GetImageInfosResponse:
        """GetImageInfos for at most 20 ids; missing ids are listed in ``NonExistImageIds``,
        https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-getimageinfos
        """
        from shared import vod_media_models  # the images' and attached media's answers

        if not image_ids:
            return vod_media_models.GetImageInfosResponse()
        _check_ids("ImageIds", image_ids, code="ExceededMax")
        return self._call(
            "GetImageInfos", {"ImageIds": ",".join(image_ids)}, vod_media_models.GetImageInfosResponse
        )

    def get_attached_media_info(
        self, media_ids: Sequence[str], *, deadline_seconds: float | None = None
    ) -> vod_media_models.GetAttachedMediaInfoResponse:
        """GetAttachedMediaInfo for at most 20 ids; missing ids are listed in ``NonExistMediaIds``,
        https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-getattachedmediainfo
        """
        from shared import vod_media_models  # the images' and attached media's answers

        if not media_ids:
            return vod_media_models.GetAttachedMediaInfoResponse()
        _check_ids("MediaIds", media_ids, code="ExceededMax")
        return self._call(
            "GetAttachedMediaInfo",
            {"MediaIds": ",".join(media_ids)},
            vod_media_models.GetAttachedMediaInfoResponse,
            state=self._state(deadline_seconds),
        )

    def delete_images(self, image_ids: Sequence[str], *, deadline_seconds: float | None = None) -> str:
        """DeleteImage by at most 20 ImageIds; returns VOD's RequestId. Raises :class:`errors.NotFound`
        when VOD has none of them (``NoSuchResource``),
        https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-deleteimage
        """
        from shared import vod_media_models  # the images' and attached media's answers

        _check_ids("ImageIds", image_ids, code="ExceededMax")
        if not image_ids:
            raise errors.InvalidParameter("DeleteImage takes at least one ImageId.", field="ImageIds")
        params = {"DeleteImageType": "ImageId", "ImageIds": ",".join(image_ids)}
        answer = self._call(
            "DeleteImage", params, vod_media_models.DeleteImageResponse, state=self._state(deadline_seconds)
        )
        if not answer.RequestId:
            raise errors.UpstreamError("VOD answered DeleteImage without a RequestId.")
        return answer.RequestId

    def delete_attached_media(
        self, media_ids: Sequence[str], *, deadline_seconds: float | None = None
    ) -> vod_media_models.DeleteAttachedMediaResponse:
        """DeleteAttachedMedia by at most 20 MediaIds; ``NonExistMediaIds`` names those VOD did not have,
        https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-deleteattachedmedia
        """
        from shared import vod_media_models  # the images' and attached media's answers

        _check_ids("MediaIds", media_ids, code="ExceededMax")
        if not media_ids:
            raise errors.InvalidParameter("DeleteAttachedMedia takes at least one MediaId.", field="MediaIds")
        return self._call(
            "DeleteAttachedMedia",
            {"MediaIds": ",".join(media_ids)},
            vod_media_models.DeleteAttachedMediaResponse,
            state=self._state(deadline_seconds),
        )

    def search_media(
        self, match: str, *, page_no: int = 1, page_size: int = 100, scroll_token: str | None = None
    ) -> vod_models.SearchMediaResponse:
        """SearchMedia over videos with a ``Match`` expression (at most 5,000 hits without ScrollToken)."""
        if page_no < 1:
            raise errors.InvalidParameter("PageNo must be at least 1.", field="PageNo")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise errors.InvalidParameter(f"PageSize must be 1 to {MAX_PAGE_SIZE}.", field="PageSize")
        params = {"SearchType": "video", "Match": match, "PageNo": str(page_no), "PageSize": str(page_size)}
        if scroll_token:
            params["ScrollToken"] = scroll_token
        return self._call("SearchMedia", params, vod_models.SearchMediaResponse)

    def _state(self, deadline_seconds: float | None) -> _CallState:
        """A call's state with its deadline: ``deadline_seconds``, at most ``VOD_DEADLINE_SECONDS``."""
        budget = self.settings.vod_deadline_seconds
        if deadline_seconds is not None:
            budget = min(budget, deadline_seconds)
        return _CallState(deadline=self._clock() + budget)

    def monotonic(self) -> float:
        """The client's monotonic clock, on which its deadlines are measured (injectable)."""
        return self._clock()

    def use_context(self, context: Any) -> None:
        """Read credentials from this invocation's FC context from now on (if the chain uses one)."""
        if isinstance(self._credentials, CredentialChain):
            self._credentials.context = context

    def close(self) -> None:
        """Close the connection pool; the next call dials again."""
        with self._lock:
            http, self._http = self._http, None
        if http is not None:
            http.close()

    # --- machinery ------------------------------------------------------------------------------

    def _client(self) -> tuple[httpx.Client, _Target]:
        with self._lock:
            if self._http is None or self._target is None:
                s = self.settings
                # httpx logs each request line (the full URL) at INFO, and FC's runtime
                # prints INFO records of every logger; with RPC V1 signing that URL carries the
                # SecurityToken. Our own log lines say what was called; httpx may only warn.
                quiet = logging.getLogger("httpx")
                quiet.setLevel(max(quiet.level, logging.WARNING))
                # No httpx auth: _signed_request signs each request as it is built (no second pass
                # over the URL). No cookies either: VOD sets none, and
                # httpx would parse every response's URL again to look for them.
                http = httpx.Client(
                    base_url=s.vod_base_url,
                    transport=self._transport,
                    verify=_ssl_context() if self._transport is None else True,
                    cookies=_NoCookies(),
                    timeout=httpx.Timeout(s.vod_read_timeout, connect=s.vod_connect_timeout),
                    headers={"user-agent": "vodfc"},
                    follow_redirects=False,
                )
                # Cookies.extract_cookies would still rebuild a urllib request (parsing the URL
                # again) for every response before the jar ignores it: skip it outright.
                http.cookies.extract_cookies = _ignore_cookies  # type: ignore[method-assign]
                self._target = _Target.of(http)
                self._http = http
            return self._http, self._target

    def _timeout(self, remaining: float) -> dict[str, float]:
        """``httpx.Timeout(read, connect=connect, pool=connect).as_dict()``, capped by ``remaining``."""
        s = self.settings
        connect = min(s.vod_connect_timeout, remaining)
        read = min(s.vod_read_timeout, remaining)
        return {"connect": connect, "read": read, "write": read, "pool": connect}

    def _signed_request(
        self, target: _Target, action: str, params: Mapping[str, str], remaining: float
    ) -> httpx.Request:
        """The final request: signed once, built (and its URL parsed) once."""
        query, signing_headers = sign_request(
            signature_version=self.settings.vod_signature_version,
            host=target.host,
            action=action,
            version=VOD_VERSION,
            params={k: v if type(v) is str else _primitive_text(v) for k, v in params.items()},
            credentials=self._credentials(),
            timestamp=self._timestamp(),
            nonce=self._nonce(),
            canonical_uri=target.canonical_uri,
        )
        headers = [*target.headers, *signing_headers.items()]
        # httpx keeps an already-encoded query verbatim (only A-Za-z0-9-_.~%=& appear in it).
        return httpx.Request(
            "POST",
            f"{target.url}?{query}" if query else target.url,
            headers=headers,
            extensions={"timeout": self._timeout(remaining)},
        )

    def _call(
        self,
        action: str,
        params: Mapping[str, str],
        model: type[M],
        *,
        state: _CallState | None = None,
        retry_ambiguous: bool = True,
    ) -> M:
        """One logical call: attempts until success, a final error, the attempt cap or the deadline.

        ``retry_ambiguous=False`` retries only failures VOD certainly did not act on (no connection,
        a 4xx verdict such as throttling); timeouts, broken connections and 5xx are then final.
        """
        if state is None:
            state = _CallState(deadline=self._clock() + self.settings.vod_deadline_seconds)
        attempt = 0
        while True:
            attempt += 1
            remaining = state.deadline - self._clock()
            if remaining < _MIN_ATTEMPT_SECONDS:
                raise errors.GatewayTimeout(
                    f"VOD did not answer {action} within {self.settings.vod_deadline_seconds:g} seconds."
                )
            outcome = self._attempt(action, params, remaining)
            if isinstance(outcome, httpx.Response):
                try:
                    return _parse(action, outcome, model)
                except errors.VodfcError:
                    state.ambiguous = True  # something answered 200: VOD may well have acted
                    raise
            if outcome.sent:
                state.ambiguous = True
            error = outcome.error
            if not outcome.retryable or (outcome.sent and not retry_ambiguous):
                raise error from outcome.cause
            if attempt >= self.settings.vod_max_attempts:
                raise error from outcome.cause
            delay = self._backoff(attempt, outcome.retry_after)
            if self._clock() + delay + _MIN_ATTEMPT_SECONDS > state.deadline:
                raise error from outcome.cause
            log.warning(
                "VOD call failed; retrying",
                extra={
                    "action": action,
                    "attempt": attempt,
                    "delay": round(delay, 3),
                    "vod_code": error.code,
                    "vod_request_id": error.vod_request_id,
                },
            )
            self._sleep(delay)

    def _attempt(self, action: str, params: Mapping[str, str], remaining: float) -> httpx.Response | _Failure:
        """One HTTP exchange: VOD's 200 answer, or what went wrong (foreign errors translated)."""
        try:
            client, target = self._client()
            response = client.send(self._signed_request(target, action, params, remaining))
        except httpx.TimeoutException as exc:
            # Before the connection exists nothing reached VOD; afterwards VOD may have acted.
            sent = not isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
            return _Failure(errors.GatewayTimeout(f"VOD did not answer {action} in time."), exc, sent=sent)
        except (httpx.ConnectError, httpx.ProxyError) as exc:
            return _Failure(errors.VodUnavailable(f"Could not connect to VOD for {action}."), exc, sent=False)
        except (
            httpx.UnsupportedProtocol,
            httpx.LocalProtocolError,
            httpx.DecodingError,
            httpx.InvalidURL,
        ) as exc:
            # Our configuration or request is at fault; retrying cannot help.
            raise errors.VodfcError(f"Could not call VOD for {action} ({type(exc).__name__}).") from exc
        except httpx.HTTPError as exc:
            # ReadError, WriteError, RemoteProtocolError, CloseError: the request may have arrived.
            broken = errors.VodUnavailable(f"The connection to VOD broke during {action}.")
            return _Failure(broken, exc, sent=True)
        if response.status_code == 200:
            return response
        error, retryable, retry_after = self._error_from(action, response)
        # A 4xx is VOD's verdict that it did nothing (throttling included); a 5xx is not.
        return _Failure(
            error, None, sent=response.status_code >= 500, retryable=retryable, retry_after=retry_after
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return self._random() * min(_MAX_DELAY, _BASE_DELAY * 2.0 ** (attempt - 1))

    def _error_from(
        self, action: str, response: httpx.Response
    ) -> tuple[errors.VodError | errors.NotFound, bool, float | None]:
        """The error for a non-200 answer, whether it is worth retrying, and VOD's retry hint."""
        status = response.status_code
        retry_after = _retry_after(response.headers)
        body = _json_object(response)
        parsed: vod_models.VodErrorBody | None = None
        if body is not None:
            try:
                parsed = vod_models.VodErrorBody.model_validate(body)
            except ValidationError:
                parsed = None
        if parsed is None or not parsed.Code:
            request_id = parsed.RequestId if parsed is not None else None
            if status == 429:
                error: errors.VodError | errors.NotFound = errors.Throttled(
                    f"VOD throttled {action}.", vod_request_id=request_id
                )
            elif status >= 500:
                error = errors.VodUnavailable(
                    f"VOD answered {action} with HTTP {status}.", vod_request_id=request_id
                )
            else:
                error = errors.UpstreamError(
                    f"VOD answered {action} with HTTP {status} and no error code.", vod_request_id=request_id
                )
        else:
            code = parsed.Code
            message = self._safe_message(code, parsed.Message)
            error = errors.VodApiError.from_vod(code, message, status, parsed.RequestId)
            if code in ("InvalidVideo.NotFound", "NoSuchResource"):
                # NoSuchResource: GetImageInfo's and DeleteImage's answer for a missing image.
                error = errors.NotFound(message, code=code, vod_request_id=parsed.RequestId)
        retryable = isinstance(error, (errors.Throttled, errors.VodUnavailable))
        if isinstance(error, errors.Throttled) and retry_after is not None:
            error.retry_after = max(1, math.ceil(retry_after))
        return error, retryable, retry_after if retryable else None

    def _safe_message(self, code: str, message: str | None) -> str:
        if code.startswith(_SIGNING_CODES):
            return f"VOD refused our request signature or credentials ({code})."
        text = (message or code)[:_MAX_MESSAGE_CHARS]
        try:
            creds = self._credentials()
        except errors.VodfcError:
            return text
        for secret in (creds.access_key_secret, creds.security_token):
            if secret:
                for form in {secret, percent_encode(secret), percent_encode(percent_encode(secret))}:
                    text = text.replace(form, "[REDACTED]")
        return text

    def _resolve_created(self, reference_id: str, state: _CallState) -> vod_models.UploadCredentials | None:
        """The media a lost CreateUploadVideo answer made, with a fresh credential; ``None`` if unknown."""
        try:
            found = self._call(
                "GetVideoInfos", {"ReferenceIds": reference_id}, vod_models.GetVideoInfosResponse, state=state
            )
            matches = [v for v in found.VideoList if v.ReferenceId == reference_id]
            if len(matches) != 1:
                return None
            return self._call(
                "RefreshUploadVideo",
                {"VideoId": matches[0].VideoId},
                vod_models.UploadCredentials,
                state=state,
            )
        except errors.VodfcError as exc:
            log.warning("could not resolve a lost CreateUploadVideo answer", extra={"vod_code": exc.code})
            return None


# --- helpers ------------------------------------------------------------------------------------


class _Target(NamedTuple):
    """What every request of one ``httpx.Client`` shares: URL (no query), headers, signed host/path."""

    url: str
    host: str
    canonical_uri: str
    headers: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, http: httpx.Client) -> _Target:
        base = http.base_url  # httpx gives it a trailing "/": requests go to "<base>/"
        # The client's default headers (user-agent, accept-encoding, connection) as build_request
        # would merge them; VOD answers XML unless asked otherwise (V1 sends Format=JSON as well).
        headers = {k: v for k, v in http.headers.items() if k != "accept"}
        headers["accept"] = "application/json"
        path = base.raw_path.split(b"?", 1)[0]  # b"/" even when the base URL's path is empty
        return cls(
            url=str(base.copy_with(raw_path=path, fragment=None)),
            host=base.netloc.decode("ascii"),
            canonical_uri=path.decode("ascii"),
            headers=tuple(headers.items()),
        )


class _NoCookies(http.cookiejar.CookieJar):
    """A cookie jar that keeps nothing (VOD's API sets no cookies; we send none)."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None


def _ignore_cookies(response: httpx.Response) -> None:
    return None


_ssl: ssl.SSLContext | None = None
_ssl_lock = threading.Lock()


def _ssl_context() -> ssl.SSLContext:
    """The TLS context of every client, built once per instance: full verification (certificate
    chain and host name, ``ssl.create_default_context``) against what the runtime trusts.

    The trust store is OpenSSL's own, as ``ssl.get_default_verify_paths()`` finds it (it honours
    ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``). A certificate directory in OpenSSL's hashed layout
    (Debian's ``/etc/ssl/certs``) is handed over as is: OpenSSL then reads only the issuer a
    handshake needs, where a bundle file is parsed whole, 140-odd certificates, on every cold
    start (bench section "tls": about 2 ms to build against 30 to 60 ms on the dev box). A bundle
    file named by ``SSL_CERT_FILE`` is loaded as well; with no directory, the runtime's bundle
    file is; with neither, certifi's (httpx depends on it).
    """
    global _ssl
    with _ssl_lock:
        if _ssl is None:
            _ssl = _trusting(_trust_store())
        return _ssl


def _trust_store() -> tuple[str | None, str | None]:
    """(bundle file, hashed directory) of what this runtime trusts; either may be ``None``."""
    import os
    import ssl

    paths = ssl.get_default_verify_paths()
    directory = paths.capath if paths.capath and _hashed(paths.capath) else None
    # cafile is OpenSSL's default bundle (resolved) unless SSL_CERT_FILE names another one.
    default = os.path.realpath(paths.openssl_cafile) if paths.openssl_cafile else None
    named = paths.cafile if paths.cafile and os.path.realpath(paths.cafile) != default else None
    if named is not None or directory is not None:
        return named, directory
    return paths.cafile, None


def _trusting(store: tuple[str | None, str | None]) -> ssl.SSLContext:
    import ssl

    cafile, capath = store
    if cafile is None and capath is None:
        import certifi

        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile, capath=capath)


def _hashed(directory: str) -> bool:
    """Whether ``directory`` holds certificates named by subject hash (``5ad8a5d6.0``), the layout
    OpenSSL looks issuers up in (https://docs.openssl.org/3.0/man1/openssl-rehash/)."""
    import os

    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                stem, dot, suffix = entry.name.partition(".")
                if dot and suffix.isdigit() and len(stem) == 8 and all(c in "0123456789abcdef" for c in stem):
                    return True
    except OSError:
        return False
    return False


def _primitive_text(value: object) -> str:
    # As httpx's query parameters render a non-str value: JSON-style booleans, None as "".
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def _check_ids(
    name: str, ids: Sequence[str], *, limit: int = MAX_IDS, code: str = "VideoIdsExceededMax"
) -> None:
    if isinstance(ids, str):
        raise TypeError(f"{name} must be a sequence of ids, not one string")
    if len(ids) > limit:
        raise errors.InvalidParameter(
            f"{name} takes at most {limit} ids (got {len(ids)}).", code=code, field=name
        )
    for value in ids:
        # Ids are joined with commas on the wire, so a comma would smuggle in another id.
        if not value or "," in value or not value.isprintable() or len(value) > 128:
            raise errors.InvalidParameter(f"{name} has an invalid id.", field=name)


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _parse(action: str, response: httpx.Response, model: type[M]) -> M:
    body = _json_object(response)
    if body is None:
        raise errors.UpstreamError(f"VOD answered {action} with something other than a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors(include_input=False)[0]["loc"]) or "the answer"
        # Not chained: the pydantic error carries the input, which may hold UploadAuth (a secret).
        raise errors.UpstreamError(f"VOD's {action} answer is malformed at {where}.") from None


def _retry_after(headers: httpx.Headers) -> float | None:
    for name in ("x-acs-retry-after", "retry-after"):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            continue
        if math.isfinite(value) and value >= 0:
            return value
    return None


# --- the instance's client ----------------------------------------------------------------------

_instance: VodClient | None = None
_instance_lock = threading.Lock()


def get_vod_client(settings: Settings, context: Any = None) -> VodClient:
    """The instance's client, built once per ``settings`` and reused while warm.

    Each invocation's ``context`` (when given) becomes the credential source's context, so the
    STS credentials FC hands to the newest invocation are the ones used.
    """
    global _instance
    with _instance_lock:
        client = _instance
        if client is None or client.settings is not settings:
            if client is not None:
                client.close()
            client = _instance = VodClient(settings, credentials=credentials_from(settings, context))
        elif context is not None:
            client.use_context(context)
        return client


def reset_vod_client() -> None:
    """Close and forget the instance's client (tests; after settings change)."""
    global _instance
    with _instance_lock:
        client, _instance = _instance, None
    if client is not None:
        client.close()
