"""Authentication of web clients: ``Authorization: Bearer <JWT>``, verified with PyJWT.

HMAC (``JWT_SECRET``) and public-key (``JWT_PUBLIC_KEY``) algorithms are never accepted together:
the key decides the algorithm family, so a token signed with HS256 using the public key as the
HMAC secret (HS/RS confusion) cannot verify. PyJWT is imported on first use; ``cryptography`` only
when a public key is configured (importing PyJWT also imports cryptography when it is installed,
so HS256 deployments should leave it out of the code package).

Every failure is :class:`~shared.errors.Unauthorized` with a short generic message that names the
class of failure (missing / malformed / expired / invalid) and never echoes the token. A JWT
deployment without a usable key answers 503 ``AuthNotConfigured`` and logs why.
"""

from __future__ import annotations

import contextlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NoReturn

from shared import errors
from shared.log import get_logger

if TYPE_CHECKING:
    from shared.http import Request
    from shared.settings import Settings

__all__ = [
    "EXPIRED",
    "INVALID",
    "LOCAL_OWNER",
    "MALFORMED",
    "MAX_OWNER_LENGTH",
    "MISSING",
    "authenticate",
    "warn_if_insecure",
]

LOCAL_OWNER = "local"
MAX_OWNER_LENGTH = 128
_MAX_TOKEN_LENGTH = 8192
# Minimum HMAC key length = the hash size (RFC 7518 §3.2); PyJWT only warns, we refuse.
_HMAC_MIN_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
_RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
_OKP = frozenset({"EdDSA"})
_PUBLIC_KEY_ALGORITHMS = _RSA | frozenset(_EC_CURVES) | _OKP
_MIN_RSA_BITS = 2048
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")

MISSING = "A bearer token is required."
MALFORMED = "The bearer token is malformed."
EXPIRED = "The bearer token has expired."
INVALID = "The bearer token is invalid."

_log = get_logger("auth")


def authenticate(request: Request, settings: Settings) -> str:
    """The caller's owner id (the token's ``sub``), or ``"local"`` when ``AUTH_MODE=none``.

    Raises ``Unauthorized`` for a missing/malformed/expired/invalid token and
    ``ServiceUnavailable(code="AuthNotConfigured")`` when JWT mode has no usable key.
    The owner is also set on ``request.owner`` (it goes into the invocation log line).
    """
    if settings.auth_mode == "none":
        request.owner = LOCAL_OWNER
        return LOCAL_OWNER
    key, algorithms = _verifier(settings)
    token = _bearer_token(request.header("authorization"))
    claims = _decode(token, key, algorithms, settings)
    owner = claims.get("sub")
    if not isinstance(owner, str) or not owner or len(owner) > MAX_OWNER_LENGTH or not owner.isprintable():
        _reject(INVALID, "unusable sub claim")
    request.owner = owner
    return owner


def warn_if_insecure(settings: Settings) -> None:
    """Log a warning for insecure settings (``AUTH_MODE=none``) and an error for unusable JWT ones.

    Handlers call it once per instance (cold start); it never raises.
    """
    if settings.auth_mode == "none":
        _log.warning(
            "AUTH_MODE=none: authentication is disabled and every caller acts as owner %r; "
            "never use this outside local development",
            LOCAL_OWNER,
        )
        return
    with contextlib.suppress(errors.VodfcError):  # already logged by _not_configured
        _verifier(settings)


# --- token parsing and verification ------------------------------------------------------------
def _reject(message: str, reason: str) -> NoReturn:
    _log.info("bearer token rejected: %s", reason)
    raise errors.Unauthorized(message)


def _bearer_token(header: str | None) -> str:
    if header is None or not header.strip():
        _reject(MISSING, "no Authorization header")
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer":  # auth schemes are case-insensitive (RFC 9110 §11.1)
        _reject(MALFORMED, "not the Bearer scheme")
    token = rest.lstrip(" ")  # "Bearer" 1*SP b64token (RFC 6750 §2.1)
    if not token or len(token) > _MAX_TOKEN_LENGTH or not set(token) <= _TOKEN_CHARS:
        _reject(MALFORMED, "not a b64token")
    return token


def _decode(token: str, key: Any, algorithms: tuple[str, ...], settings: Settings) -> dict[str, Any]:
    import jwt

    try:
        return jwt.decode(
            token,
            key,
            algorithms=list(algorithms),
            options={"require": ["exp", "sub"], "verify_aud": settings.jwt_audience is not None},
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds,
        )
    except jwt.ExpiredSignatureError:
        _reject(EXPIRED, "expired")
    except jwt.InvalidSignatureError:  # a DecodeError subclass: check it first
        _reject(INVALID, "signature mismatch")
    except jwt.DecodeError as exc:
        _reject(MALFORMED, f"{type(exc).__name__}: {exc}")
    except jwt.InvalidTokenError as exc:
        _reject(INVALID, f"{type(exc).__name__}: {exc}")
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:
        # Attacker-shaped input must not become a 500, whatever PyJWT translates itself: nesting
        # past json's recursion guard (RecursionError, translated only since PyJWT 2.15), numbers
        # past any range in exp/nbf/iat (OverflowError), non-ASCII where bytes are expected.
        _reject(MALFORMED, type(exc).__name__)


# --- keys --------------------------------------------------------------------------------------
def _not_configured(reason: str) -> NoReturn:
    _log.error("AUTH_MODE=jwt but authentication is not configured: %s", reason)
    raise errors.ServiceUnavailable(
        "Authentication is not configured on the server.", code="AuthNotConfigured", retry_after=None
    )


def _verifier(settings: Settings) -> tuple[Any, tuple[str, ...]]:
    """The verification key and the algorithms it may verify; refuses mixed or unusable config."""
    algorithms = settings.effective_jwt_algorithms
    unknown = [a for a in algorithms if a not in _HMAC_MIN_KEY_BYTES and a not in _PUBLIC_KEY_ALGORITHMS]
    if unknown or not algorithms:
        _not_configured(f"unsupported JWT_ALGORITHMS {unknown or list(algorithms)}")
    hmac_algorithms = tuple(a for a in algorithms if a in _HMAC_MIN_KEY_BYTES)
    if hmac_algorithms and len(hmac_algorithms) != len(algorithms):
        _not_configured("JWT_ALGORITHMS mixes HMAC and public-key algorithms")
    if hmac_algorithms:
        secret = settings.jwt_secret.get_secret_value().encode() if settings.jwt_secret else b""
        if not secret:
            _not_configured(f"{'/'.join(hmac_algorithms)} needs JWT_SECRET")
        if secret.lstrip().startswith(b"-----BEGIN") or secret.startswith(b"ssh-"):
            _not_configured("JWT_SECRET looks like a public key; use JWT_PUBLIC_KEY with RS256/ES256")
        need = max(_HMAC_MIN_KEY_BYTES[a] for a in hmac_algorithms)
        if len(secret) < need:
            _not_configured(f"JWT_SECRET is shorter than {need} bytes (RFC 7518 section 3.2)")
        return secret, hmac_algorithms
    if not settings.jwt_public_key:
        _not_configured(f"{'/'.join(algorithms)} needs JWT_PUBLIC_KEY")
    return _public_key(settings.jwt_public_key, algorithms)


@lru_cache(maxsize=8)
def _public_key(pem: str, algorithms: tuple[str, ...]) -> tuple[Any, tuple[str, ...]]:
    """Load a PEM public key (or certificate) once; keep only the algorithms that fit the key."""
    try:
        from cryptography import x509
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
    except ImportError:
        _not_configured("JWT_PUBLIC_KEY needs the 'cryptography' package (extra 'jwt-asymmetric')")
    data = pem.strip().encode()
    key: Any
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        _not_configured("JWT_PUBLIC_KEY is not a PEM public key")
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            _not_configured(f"JWT_PUBLIC_KEY is a {key.key_size}-bit RSA key (< {_MIN_RSA_BITS})")
        usable = tuple(a for a in algorithms if a in _RSA)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        usable = tuple(a for a in algorithms if _EC_CURVES.get(a) == key.curve.name)
    elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        usable = tuple(a for a in algorithms if a in _OKP)
    else:
        usable = ()
    if not usable:
        _not_configured(
            f"JWT_PUBLIC_KEY ({type(key).__name__}) fits none of JWT_ALGORITHMS {list(algorithms)}"
        )
    return key, usable
