"""Alibaba Cloud OpenAPI request signing (V3 and RPC V1), VOD callback verification, owner binding.

Pure functions: time and nonces are arguments, nothing here reads a clock or the network.
:func:`sign_request` is the one entry the VOD client uses: it returns the wire query and the
headers of a signed call. Sources:

- V3 (ACS3-HMAC-SHA256): https://www.alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature
- RPC V1 (HMAC-SHA1, ``SignatureVersion=1.0``): https://www.alibabacloud.com/help/en/vod/developer-reference/signature-method
- VOD HTTP callback authentication: https://www.alibabacloud.com/help/en/vod/user-guide/http-callbacks
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

from shared import errors

if TYPE_CHECKING:
    from shared.settings import Settings

__all__ = [
    "CALLBACK_SIGNATURE_HEADER",
    "CALLBACK_TIMESTAMP_HEADER",
    "EMPTY_SHA256",
    "EXTEND_SIG_KEY",
    "EXTEND_UPLOAD_KEY",
    "V3_ALGORITHM",
    "Credentials",
    "binding_keys",
    "binding_signature",
    "callback_signature",
    "canonical_query_string",
    "format_timestamp",
    "new_nonce",
    "percent_encode",
    "rpc_v1_common_params",
    "rpc_v1_signature",
    "rpc_v1_string_to_sign",
    "sign_request",
    "v3_authorization",
    "v3_canonical_request",
    "v3_sign_headers",
    "verify_binding",
    "verify_callback",
]

V3_ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

CALLBACK_TIMESTAMP_HEADER = "x-vod-timestamp"
CALLBACK_SIGNATURE_HEADER = "x-vod-signature"


@dataclass(frozen=True)
class Credentials:
    """An AccessKey pair, with the STS token when the key is temporary; ``repr`` hides secrets."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


def new_nonce() -> str:
    """A fresh signature nonce (32 hex characters, like the SDKs send)."""
    return os.urandom(16).hex()


def format_timestamp(timestamp: datetime) -> str:
    """``yyyy-MM-ddTHH:mm:ssZ`` in UTC; a naive datetime is taken to be UTC already."""
    if timestamp.tzinfo is not None:
        timestamp = timestamp.astimezone(timezone.utc)
    return timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")


_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"


def _timestamp_text(timestamp: datetime | str) -> str:
    # A ``str`` is taken to be formatted already (callers with a cheaper wall clock pass one).
    return timestamp if isinstance(timestamp, str) else format_timestamp(timestamp)


def percent_encode(value: str) -> str:
    """RFC 3986 encoding of the UTF-8 bytes: only ``A-Za-z0-9-_.~`` stay literal."""
    if not value.strip(_UNRESERVED):
        return value  # nothing to encode (the common case for names and ids)
    # quote() keeps "~" and "_.-" always; safe="" makes "/" encoded too. Upper-case hex, " " -> %20.
    return quote(value, safe="", encoding="utf-8", errors="strict")


def canonical_query_string(params: Mapping[str, str]) -> str:
    """Parameters sorted by name, each ``percent_encode(k)=percent_encode(v)``, joined by ``&``."""
    # Sort the raw names, as both SDKs do: str order is code-point order, which is UTF-8 byte order.
    return "&".join(f"{percent_encode(k)}={percent_encode(params[k])}" for k in sorted(params))


# --- RPC "V1" (HMAC-SHA1, SignatureVersion=1.0) -------------------------------------------------


def rpc_v1_common_params(
    *,
    action: str,
    version: str,
    access_key_id: str,
    timestamp: datetime | str,
    nonce: str,
    security_token: str | None,
) -> dict[str, str]:
    """The RPC common parameters (without ``Signature``); ``Format=JSON`` because VOD defaults to XML.

    ``timestamp`` may be given already formatted (``yyyy-MM-ddTHH:mm:ssZ``).
    """
    params = {
        "Action": action,
        "Version": version,
        "Format": "JSON",
        "AccessKeyId": access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce,
        "Timestamp": _timestamp_text(timestamp),
    }
    if security_token:
        params["SecurityToken"] = security_token
    return params


def rpc_v1_string_to_sign(method: str, params: Mapping[str, str] | str) -> str:
    """``METHOD&%2F&percent_encode(canonical query)``; a ``Signature`` entry is never signed.

    ``params`` may be the canonical query string itself (which must then leave ``Signature`` out).
    """
    if isinstance(params, str):
        query = params
    else:
        query = canonical_query_string({k: v for k, v in params.items() if k != "Signature"})
    return f"{method.upper()}&%2F&{percent_encode(query)}"


def rpc_v1_signature(method: str, params: Mapping[str, str] | str, access_key_secret: str) -> str:
    """Base64 HMAC-SHA1 of the string-to-sign, keyed with ``secret + "&"`` (the published vectors need it)."""
    key = (access_key_secret + "&").encode("utf-8")
    digest = hmac.new(key, rpc_v1_string_to_sign(method, params).encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


# --- V3 (ACS3-HMAC-SHA256) ----------------------------------------------------------------------


def v3_canonical_request(
    method: str,
    canonical_uri: str,
    query: Mapping[str, str] | str,
    headers: Mapping[str, str],
    hashed_payload: str,
) -> tuple[str, str]:
    """The canonical request and the ``SignedHeaders`` list; every header passed in is signed.

    ``query`` may be the canonical query string itself (see :func:`canonical_query_string`).
    """
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key == "authorization":
            raise ValueError("the Authorization header is never signed")
        if key in lowered:
            raise ValueError(f"header {key!r} given twice")
        lowered[key] = value.strip()
    names = sorted(lowered)
    canonical_headers = "".join(f"{name}:{lowered[name]}\n" for name in names)
    signed_headers = ";".join(names)
    canonical = "\n".join(
        (
            method.upper(),
            canonical_uri or "/",
            query if isinstance(query, str) else canonical_query_string(query),
            canonical_headers,
            signed_headers,
            hashed_payload,
        )
    )
    return canonical, signed_headers


def v3_authorization(
    *,
    method: str,
    canonical_uri: str,
    query: Mapping[str, str] | str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
) -> str:
    """The ``Authorization`` header value over exactly ``headers`` (which must not include it)."""
    canonical, signed_headers = v3_canonical_request(
        method, canonical_uri, query, headers, hashlib.sha256(body).hexdigest()
    )
    string_to_sign = f"{V3_ALGORITHM}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"
    # Unlike V1, the V3 key is the bare secret (no "&").
    signature = hmac.new(
        credentials.access_key_secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    return (
        f"{V3_ALGORITHM} Credential={credentials.access_key_id},"
        f"SignedHeaders={signed_headers},Signature={signature}"
    )


def v3_sign_headers(
    *,
    method: str,
    host: str,
    action: str,
    version: str,
    query: Mapping[str, str] | str,
    body: bytes,
    credentials: Credentials,
    timestamp: datetime | str,
    nonce: str,
    content_type: str | None = None,
    canonical_uri: str = "/",
) -> dict[str, str]:
    """Every header to send for a V3 call (``host``, ``x-acs-*``, ``content-type``, ``Authorization``).

    ``canonical_uri`` is the request's encoded path: ``/`` for VOD (an RPC-style API). ``query``
    may be the canonical query string and ``timestamp`` the formatted ``x-acs-date``.
    """
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": _timestamp_text(timestamp),
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    if credentials.security_token:
        headers["x-acs-security-token"] = credentials.security_token
    if content_type is not None:
        headers["content-type"] = content_type
    headers["Authorization"] = v3_authorization(
        method=method,
        canonical_uri=canonical_uri,
        query=query,
        headers=headers,
        body=body,
        credentials=credentials,
    )
    return headers


# --- one signed call --------------------------------------------------------------------------


def sign_request(
    *,
    signature_version: Literal["v3", "v1"],
    host: str,
    action: str,
    version: str,
    params: Mapping[str, str],
    credentials: Credentials,
    timestamp: datetime | str,
    nonce: str,
    canonical_uri: str = "/",
) -> tuple[str, dict[str, str]]:
    """The wire query and the signing headers of one RPC call: ``POST <path>?<query>``, empty body.

    Every business parameter travels in the query, which is exactly the canonical query string
    that was signed (nothing between us and VOD can re-encode it). V3 returns the ``host``,
    ``x-acs-*`` and ``Authorization`` headers; V1 puts the RPC common parameters and
    ``Signature`` into the query and needs no signing header. ``timestamp`` may be given
    formatted (``yyyy-MM-ddTHH:mm:ssZ``). Raises ``ValueError`` for a business parameter that
    V1 reserves for signing.
    """
    if signature_version == "v3":
        query = canonical_query_string(params)
        headers = v3_sign_headers(
            method="POST",
            host=host,
            action=action,
            version=version,
            query=query,
            body=b"",
            credentials=credentials,
            timestamp=timestamp,
            nonce=nonce,
            canonical_uri=canonical_uri,
        )
        return query, headers
    if signature_version != "v1":
        raise ValueError(f"unknown signature version {signature_version!r}")
    common = rpc_v1_common_params(
        action=action,
        version=version,
        access_key_id=credentials.access_key_id,
        timestamp=timestamp,
        nonce=nonce,
        security_token=credentials.security_token,
    )
    clash = sorted((set(common) | {"Signature"}) & set(params))
    if clash:
        raise ValueError(f"parameters reserved for signing: {', '.join(clash)}")
    merged = {**params, **common}
    names = sorted(merged)
    pairs = [f"{percent_encode(k)}={percent_encode(merged[k])}" for k in names]
    signature = rpc_v1_signature("POST", "&".join(pairs), credentials.access_key_secret)
    # "Signature" takes its sorted place: the wire query stays the canonical query string.
    pairs.insert(bisect.bisect(names, "Signature"), f"Signature={percent_encode(signature)}")
    return "&".join(pairs), {}


# --- VOD HTTP callbacks -------------------------------------------------------------------------


def callback_signature(url: str, timestamp: str, key: str) -> str:
    """VOD's callback signature: lower-case hex MD5 of ``url|timestamp|key`` (the body is not covered)."""
    # MD5 is VOD's choice, not ours; it authenticates, it is not used for security-sensitive hashing.
    return hashlib.md5(f"{url}|{timestamp}|{key}".encode(), usedforsecurity=False).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def verify_callback(
    headers: Mapping[str, str],
    *,
    url: str,
    keys: Sequence[str],
    now: float,
    max_skew_seconds: int = 300,
) -> int:
    """Check ``X-VOD-TIMESTAMP`` / ``X-VOD-SIGNATURE`` against each key in turn; return the timestamp.

    ``url`` is the callback URL exactly as configured in VOD (scheme, host, path, query, trailing
    slash all matter). Raises :class:`errors.InvalidSignature`; messages never carry the expected
    signature or a key.
    """
    if not keys:
        raise errors.VodfcError("No callback authentication key is configured.")
    raw_ts = _header(headers, CALLBACK_TIMESTAMP_HEADER)
    raw_sig = _header(headers, CALLBACK_SIGNATURE_HEADER)
    if raw_ts is None or not raw_ts.strip():
        raise errors.InvalidSignature("The X-VOD-TIMESTAMP header is missing.", field="X-VOD-TIMESTAMP")
    if raw_sig is None or not raw_sig.strip():
        raise errors.InvalidSignature("The X-VOD-SIGNATURE header is missing.", field="X-VOD-SIGNATURE")
    ts_text = raw_ts.strip()
    # ASCII digits only: no sign, no fraction, no exponent, no Unicode digits; 1-12 digits covers
    # any plausible Unix time in seconds (VOD sends 10), while milliseconds (13) are refused.
    if not (ts_text.isascii() and ts_text.isdigit() and len(ts_text) <= 12):
        raise errors.InvalidSignature(
            "The X-VOD-TIMESTAMP header must be a Unix time in whole seconds.", field="X-VOD-TIMESTAMP"
        )
    timestamp = int(ts_text)
    if abs(now - timestamp) > max_skew_seconds:
        raise errors.InvalidSignature(
            f"The X-VOD-TIMESTAMP header is more than {max_skew_seconds} seconds away from the server time.",
            field="X-VOD-TIMESTAMP",
        )
    given = raw_sig.strip().lower().encode("ascii", errors="replace")
    matched = False
    for key in keys:
        # Every key is compared (no early exit), each in constant time.
        expected = callback_signature(url, ts_text, key).encode("ascii")
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise errors.InvalidSignature("The X-VOD-SIGNATURE header does not match.", field="X-VOD-SIGNATURE")
    return timestamp


# --- owner binding ------------------------------------------------------------------------------

#: Our keys inside VOD's ``UserData.Extend``, which VOD echoes in its callbacks.
EXTEND_UPLOAD_KEY = "vodfc_uid"
EXTEND_SIG_KEY = "vodfc_sig"


def binding_keys(settings: Settings) -> tuple[bytes, ...]:
    """Keys of the HMAC that binds an upload to its owner inside ``Extend``; the first signs.

    With ``UPLOAD_BINDING_KEY`` that key alone; otherwise keys derived from the callback keys (the
    credentials and the callback function both know them, so a deployment needs no extra secret),
    the previous one included, so that rotating the callback key orphans no upload in flight.
    """
    key = settings.upload_binding_key
    sources = (
        (key,)
        if key is not None and key.get_secret_value()
        else (
            settings.callback_auth_key,
            settings.callback_auth_key_previous,
        )
    )
    keys = tuple(
        hmac.new(s.get_secret_value().encode(), b"vodfc-binding", hashlib.sha256).digest()
        for s in sources
        if s is not None and s.get_secret_value()
    )
    return keys or (b"vodfc-local-binding-key",)


def binding_signature(key: bytes, upload_id: str, owner: str) -> str:
    """The HMAC that binds ``upload_id`` to ``owner`` (URL-safe Base64 of 18 bytes)."""
    mac = hmac.new(key, f"{upload_id}\n{owner}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def verify_binding(keys: Sequence[bytes], upload_id: str, owner: str, given: object) -> bool:
    """Whether ``given`` (from an unsigned event body: any JSON value) is the binding under a key."""
    if not isinstance(given, str) or not given.isascii():
        return False  # compare_digest refuses non-ASCII str; no such value is ever ours
    wanted = given.encode("ascii")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(binding_signature(key, upload_id, owner).encode("ascii"), wanted)
    return matched
