"""Server-side verification of what clients sign: VOD OpenAPI (V3, RPC V1) and OSS (V1, V4).

The VOD side recomputes signatures with :mod:`shared.signing` (the same code our client signs
with; the e2e tests sign with the official SDKs to keep this honest). The OSS side follows the
algorithms of the ``oss2`` SDK (``oss2.auth.ProviderAuth`` / ``ProviderAuthV4``), which are also
what ``ali-oss`` sends (V1 header auth; browsers use ``x-oss-date`` instead of ``Date``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, quote

from shared.signing import (
    EMPTY_SHA256,
    V3_ALGORITHM,
    percent_encode,
    rpc_v1_signature,
    rpc_v1_string_to_sign,
    v3_canonical_request,
)

from .state import ApiCredential, EmulatorState, UploadCredential
from .wsgi import Request

__all__ = [
    "OssAuthError",
    "VodAuthError",
    "VodCall",
    "authenticate_oss",
    "authenticate_vod",
    "oss_v1_string_to_sign",
]

VOD_VERSION = "2017-03-21"

# RPC common parameters: never business parameters of an action.
_V1_COMMON = frozenset(
    {
        "Action",
        "Version",
        "Format",
        "AccessKeyId",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "SignatureType",
        "Timestamp",
        "SecurityToken",
        "Signature",
        "RegionId",
    }
)


class VodAuthError(Exception):
    """A gateway-level refusal, rendered as VOD's JSON error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class VodCall:
    """An authenticated OpenAPI call."""

    action: str
    params: dict[str, str]  # business parameters (query + form body), common ones removed
    credential: ApiCredential
    signature_version: str  # "v3" | "v1"
    response_format: str  # "JSON" | "XML"


def _missing(name: str) -> VodAuthError:
    return VodAuthError(
        400,
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request is not supplied.',
    )


def _parse_acs_time(value: str) -> float:
    try:
        parsed = datetime.strptime(value.strip(), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise VodAuthError(
            400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."
        ) from None
    return parsed.timestamp()


def _lookup_api_credential(
    state: EmulatorState, access_key_id: str, token: str | None, now: float
) -> ApiCredential:
    with state.lock:
        cred = state.api_credentials.get(access_key_id)
    if cred is None:
        raise VodAuthError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    if cred.security_token is not None:
        if not token:
            raise VodAuthError(400, "InvalidSecurityToken.Malformed", "Specified SecurityToken is malformed.")
        if not hmac.compare_digest(cred.security_token.encode(), token.encode()):
            raise VodAuthError(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "Specified SecurityToken mismatch with the AccessKey.",
            )
        if cred.expires_at is not None and cred.expires_at <= now:
            raise VodAuthError(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")
    return cred


def _check_time_and_nonce(
    state: EmulatorState, timestamp: float, nonce: str | None, now: float, tolerance: int
) -> None:
    if abs(now - timestamp) > tolerance:
        raise VodAuthError(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
    if nonce and not state.use_nonce(nonce, now=now, keep_seconds=2 * tolerance):
        raise VodAuthError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")


def _body_params(req: Request, body: bytes) -> dict[str, str]:
    ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and ctype == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    return {}


def authenticate_vod(
    req: Request, body: bytes, *, state: EmulatorState, now: float, tolerance: int
) -> VodCall:
    """Verify a V3 (``Authorization: ACS3-HMAC-SHA256 …``) or V1 (``Signature=``) call."""
    query = req.query()
    form = _body_params(req, body)
    authorization = req.headers.get("authorization", "")
    if authorization.startswith(V3_ALGORITHM):
        return _authenticate_v3(req, body, query, form, authorization, state, now, tolerance)
    if "Signature" in query or "Signature" in form:
        return _authenticate_v1(req, query, form, state, now, tolerance)
    if authorization:
        raise VodAuthError(
            400, "IncompleteSignature", "The request signature does not conform to Aliyun standards."
        )
    raise _missing("Signature")


def _parse_v3_authorization(value: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in value[len(V3_ALGORITHM) :].split(","):
        name, sep, val = part.strip().partition("=")
        if sep:
            fields[name.strip()] = val.strip()
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        raise VodAuthError(
            400, "IncompleteSignature", "The request signature does not conform to Aliyun standards."
        )
    return fields


def _authenticate_v3(
    req: Request,
    body: bytes,
    query: dict[str, str],
    form: dict[str, str],
    authorization: str,
    state: EmulatorState,
    now: float,
    tolerance: int,
) -> VodCall:
    fields = _parse_v3_authorization(authorization)
    action = req.headers.get("x-acs-action")
    if not action:
        raise _missing("x-acs-action")
    version = req.headers.get("x-acs-version")
    if not version:
        raise _missing("x-acs-version")
    date = req.headers.get("x-acs-date")
    if not date:
        raise _missing("x-acs-date")
    timestamp = _parse_acs_time(date)
    cred = _lookup_api_credential(state, fields["Credential"], req.headers.get("x-acs-security-token"), now)

    signed_names = [n for n in fields["SignedHeaders"].lower().split(";") if n]
    sent_acs = {n for n in req.headers if n.startswith("x-acs-")}
    required = {"host"} | sent_acs | ({"content-type"} if "content-type" in req.headers else set())
    if not required <= set(signed_names) or "authorization" in signed_names:
        raise VodAuthError(
            400,
            "IncompleteSignature",
            "The request signature does not conform to Aliyun standards: SignedHeaders must list host, "
            "content-type (when sent) and every x-acs-* header.",
        )
    signed: dict[str, str] = {}
    for name in signed_names:
        if name not in req.headers:
            raise VodAuthError(
                400,
                "SignatureDoesNotMatch",
                f"Specified signature is not matched: signed header {name} is absent.",
            )
        signed[name] = req.headers[name]
    actual_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    hashed_payload = req.headers.get("x-acs-content-sha256", actual_hash)
    if not hmac.compare_digest(hashed_payload.lower(), actual_hash):
        raise VodAuthError(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched: x-acs-content-sha256 is not the body's hash.",
        )
    canonical, _ = v3_canonical_request(req.method, "/", query, signed, hashed_payload)
    string_to_sign = f"{V3_ALGORITHM}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"
    expected = hmac.new(
        cred.access_key_secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, fields["Signature"].lower()):
        raise VodAuthError(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation. server string to sign is:"
            f"{string_to_sign}"
            f"\ncanonical request is:\n{canonical}",
        )
    _check_time_and_nonce(state, timestamp, req.headers.get("x-acs-signature-nonce"), now, tolerance)
    if version != VOD_VERSION:
        raise VodAuthError(400, "InvalidVersion", "Specified parameter Version is not valid.")
    accept = req.headers.get("accept", "")
    fmt = "XML" if "xml" in accept.lower() and "json" not in accept.lower() else "JSON"
    return VodCall(action, {**query, **form}, cred, "v3", fmt)


def _authenticate_v1(
    req: Request,
    query: dict[str, str],
    form: dict[str, str],
    state: EmulatorState,
    now: float,
    tolerance: int,
) -> VodCall:
    params = {**query, **form}
    for name in ("AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp"):
        if not params.get(name):
            raise _missing(name)
    if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
        raise VodAuthError(
            400, "IncompleteSignature", "The request signature does not conform to Aliyun standards."
        )
    timestamp = _parse_acs_time(params["Timestamp"])
    cred = _lookup_api_credential(state, params["AccessKeyId"], params.get("SecurityToken"), now)
    given = params.pop("Signature")
    expected = rpc_v1_signature(req.method, params, cred.access_key_secret)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise VodAuthError(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation. server string to sign is:"
            + rpc_v1_string_to_sign(req.method, params),
        )
    _check_time_and_nonce(state, timestamp, params["SignatureNonce"], now, tolerance)
    if not params.get("Action"):
        raise _missing("Action")
    if params.get("Version") != VOD_VERSION:
        raise VodAuthError(400, "InvalidVersion", "Specified parameter Version is not valid.")
    fmt = "JSON" if params.get("Format", "XML").upper() == "JSON" else "XML"
    business = {k: v for k, v in params.items() if k not in _V1_COMMON}
    return VodCall(params["Action"], business, cred, "v1", fmt)


# --- OSS ------------------------------------------------------------------------------------------


class OssAuthError(Exception):
    """An OSS refusal, rendered as OSS's XML ``<Error>``."""

    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


# Query parameters that OSS V1 signs as sub-resources (oss2.auth.ProviderAuth._subresource_key_set,
# trimmed to what can reach an object request here).
_OSS_SUBRESOURCES = frozenset(
    {
        "acl",
        "uploads",
        "uploadId",
        "partNumber",
        "security-token",
        "response-content-type",
        "response-content-language",
        "response-cache-control",
        "response-content-encoding",
        "response-expires",
        "response-content-disposition",
        "append",
        "position",
        "objectMeta",
        "symlink",
        "tagging",
        "versionId",
        "x-oss-process",
        "x-oss-traffic-limit",
        "callback",
        "callback-var",
        "sequential",
    }
)
_V4_DEFAULT_SIGNED = frozenset({"content-type", "content-md5"})


def _oss_resource(bucket: str, key: str, query: list[tuple[str, str]]) -> str:
    subs = sorted((k, v) for k, v in query if k in _OSS_SUBRESOURCES)
    resource = f"/{bucket}/{key}"
    if subs:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in subs)
    return resource


def oss_v1_string_to_sign(req: Request, bucket: str, key: str, date: str) -> str:
    """OSS V1: ``METHOD\\nContent-MD5\\nContent-Type\\nDate\\n<x-oss-* headers><resource>``."""
    oss_headers = sorted((k, v) for k, v in req.headers.items() if k.startswith("x-oss-"))
    canon = "".join(f"{k}:{v}\n" for k, v in oss_headers)
    return "\n".join(
        [
            req.method,
            req.headers.get("content-md5", ""),
            req.headers.get("content-type", ""),
            date,
            canon + _oss_resource(bucket, key, req.query_items()),
        ]
    )


def _v1_sign(secret: str, string_to_sign: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _v4_uri_encode(value: str, *, keep_slash: bool) -> str:
    return quote(value, safe="/" if keep_slash else "", encoding="utf-8")


def _v4_signature(
    req: Request,
    bucket: str,
    key: str,
    *,
    secret: str,
    date_time: str,
    scope: str,
    additional: list[str],
    query: list[tuple[str, str]],
) -> tuple[str, str]:
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in query)
    canonical_query = "&".join(f"{k}={v}" if v else k for k, v in encoded)
    canon_headers = sorted(
        (k, v)
        for k, v in req.headers.items()
        if k.startswith("x-oss-") or k in _V4_DEFAULT_SIGNED or k in additional
    )
    canonical_request = "\n".join(
        [
            req.method,
            _v4_uri_encode(f"/{bucket}/{key}", keep_slash=True),
            canonical_query,
            "".join(f"{k}:{v}\n" for k, v in canon_headers),
            ";".join(sorted(additional)),
            req.headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD"),
        ]
    )
    string_to_sign = "\n".join(
        ["OSS4-HMAC-SHA256", date_time, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    date, region, product, _ = scope.split("/")
    signing_key = hmac.new(
        ("aliyun_v4" + secret).encode("utf-8"), date.encode("utf-8"), hashlib.sha256
    ).digest()
    for part in (region, product, "aliyun_v4_request"):
        signing_key = hmac.new(signing_key, part.encode("utf-8"), hashlib.sha256).digest()
    signature = hmac.new(signing_key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return signature, string_to_sign


def _lookup_upload_credential(
    state: EmulatorState, access_key_id: str, token: str | None, now: float
) -> UploadCredential:
    with state.lock:
        cred = state.upload_credentials.get(access_key_id)
    if cred is None:
        raise OssAuthError(
            403,
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
            OSSAccessKeyId=access_key_id,
        )
    if not token or not hmac.compare_digest(cred.security_token.encode(), token.encode()):
        raise OssAuthError(403, "InvalidSecurityToken", "The security token you provided is invalid.")
    if cred.expires_at <= now:
        raise OssAuthError(403, "SecurityTokenExpired", "The security token you provided has expired.")
    return cred


def _check_skew(when: float, now: float, tolerance: int) -> None:
    if abs(now - when) > tolerance:
        raise OssAuthError(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        )


def _parse_http_date(value: str) -> float:
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        raise OssAuthError(403, "AccessDenied", "Invalid date string.") from None


def _parse_v4_date(value: str) -> float:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise OssAuthError(403, "AccessDenied", "Invalid x-oss-date.") from None


def _split_v4_fields(value: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in value.split(","):
        name, sep, val = part.strip().partition("=")
        if sep:
            fields[name.strip()] = val.strip()
    return fields


def authenticate_oss(
    req: Request,
    bucket: str,
    key: str,
    *,
    state: EmulatorState,
    now: float,
    tolerance: int,
    region: str,
) -> UploadCredential | None:
    """The credential that signed this request, or None for an anonymous one.

    Scope (bucket/key) is the caller's business; this checks identity, token, expiry, signature
    and clock skew, in the order OSS reports them.
    """
    authorization = req.headers.get("authorization", "")
    query_items = req.query_items()
    query = dict(query_items)
    if authorization.startswith("OSS4-HMAC-SHA256 "):
        return _oss_v4_header(req, bucket, key, authorization, query_items, state, now, tolerance, region)
    if authorization.startswith("OSS "):
        access_key_id, sep, given = authorization[4:].strip().rpartition(":")
        if not sep:
            raise OssAuthError(400, "InvalidArgument", "Authorization header is invalid.")
        token = req.headers.get("x-oss-security-token") or query.get("security-token")
        cred = _lookup_upload_credential(state, access_key_id, token, now)
        date = req.headers.get("x-oss-date") or req.headers.get("date")
        if not date:
            raise OssAuthError(403, "AccessDenied", "Date header not found.")
        string_to_sign = oss_v1_string_to_sign(req, bucket, key, date)
        if not hmac.compare_digest(_v1_sign(cred.access_key_secret, string_to_sign).encode(), given.encode()):
            raise OssAuthError(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
                StringToSign=string_to_sign,
                SignatureProvided=given,
                OSSAccessKeyId=access_key_id,
            )
        _check_skew(_parse_http_date(date), now, tolerance)
        return cred
    if "OSSAccessKeyId" in query and "Signature" in query:
        cred = _lookup_upload_credential(state, query["OSSAccessKeyId"], query.get("security-token"), now)
        expires = query.get("Expires", "")
        if not expires.isdigit():
            raise OssAuthError(403, "AccessDenied", "Expires is not a number.")
        string_to_sign = oss_v1_string_to_sign(req, bucket, key, expires)
        if not hmac.compare_digest(
            _v1_sign(cred.access_key_secret, string_to_sign).encode(), query["Signature"].encode()
        ):
            raise OssAuthError(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
                StringToSign=string_to_sign,
                SignatureProvided=query["Signature"],
            )
        if int(expires) < now:
            raise OssAuthError(403, "AccessDenied", "Request has expired.")
        return cred
    if query.get("x-oss-signature-version") == "OSS4-HMAC-SHA256":
        return _oss_v4_query(req, bucket, key, query_items, state, now, region)
    return None


def _check_scope(scope: str, date_time: str, region: str) -> None:
    parts = scope.split("/")
    if len(parts) != 4 or parts[2] != "oss" or parts[3] != "aliyun_v4_request":
        raise OssAuthError(400, "InvalidArgument", "Invalid credential scope in Authorization.")
    if parts[0] != date_time[:8]:
        raise OssAuthError(400, "InvalidArgument", "Invalid signing date in Authorization header.")
    if parts[1] != region:
        raise OssAuthError(400, "InvalidArgument", "Invalid signing region in Authorization header.")


def _oss_v4_header(
    req: Request,
    bucket: str,
    key: str,
    authorization: str,
    query_items: list[tuple[str, str]],
    state: EmulatorState,
    now: float,
    tolerance: int,
    region: str,
) -> UploadCredential:
    fields = _split_v4_fields(authorization[len("OSS4-HMAC-SHA256 ") :])
    credential = fields.get("Credential", "")
    access_key_id, _, scope = credential.partition("/")
    if not access_key_id or not scope or "Signature" not in fields:
        raise OssAuthError(400, "InvalidArgument", "Authorization header is invalid.")
    cred = _lookup_upload_credential(state, access_key_id, req.headers.get("x-oss-security-token"), now)
    date_time = req.headers.get("x-oss-date", "")
    if not date_time:
        raise OssAuthError(403, "AccessDenied", "x-oss-date header not found.")
    _check_scope(scope, date_time, region)
    additional = [h.strip().lower() for h in fields.get("AdditionalHeaders", "").split(";") if h.strip()]
    expected, string_to_sign = _v4_signature(
        req,
        bucket,
        key,
        secret=cred.access_key_secret,
        date_time=date_time,
        scope=scope,
        additional=additional,
        query=query_items,
    )
    if not hmac.compare_digest(expected, fields["Signature"].lower()):
        raise OssAuthError(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
            StringToSign=string_to_sign,
            SignatureProvided=fields["Signature"],
        )
    _check_skew(_parse_v4_date(date_time), now, tolerance)
    return cred


def _oss_v4_query(
    req: Request,
    bucket: str,
    key: str,
    query_items: list[tuple[str, str]],
    state: EmulatorState,
    now: float,
    region: str,
) -> UploadCredential:
    query: Mapping[str, str] = dict(query_items)
    access_key_id, _, scope = query.get("x-oss-credential", "").partition("/")
    cred = _lookup_upload_credential(state, access_key_id, query.get("x-oss-security-token"), now)
    date_time = query.get("x-oss-date", "")
    _check_scope(scope, date_time, region)
    additional = [
        h.strip().lower() for h in query.get("x-oss-additional-headers", "").split(";") if h.strip()
    ]
    expected, string_to_sign = _v4_signature(
        req,
        bucket,
        key,
        secret=cred.access_key_secret,
        date_time=date_time,
        scope=scope,
        additional=additional,
        query=[(k, v) for k, v in query_items if k != "x-oss-signature"],
    )
    if not hmac.compare_digest(expected, query.get("x-oss-signature", "").lower()):
        raise OssAuthError(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
            StringToSign=string_to_sign,
        )
    expires = query.get("x-oss-expires", "0")
    if not expires.isdigit() or _parse_v4_date(date_time) + int(expires) < now:
        raise OssAuthError(403, "AccessDenied", "Request has expired.")
    return cred
