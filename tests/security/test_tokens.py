"""Bearer tokens: every way to get one wrong is a 401 ``InvalidToken`` (never a 5xx, never a VOD
call, never the token echoed), and a server with an unusable key configuration says so (503)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.functional.conftest import JWT_SECRET, Stack, reset_instance_state

ROUTES = [
    ("POST", "/uploads"),
    ("GET", "/uploads"),
    ("GET", "/uploads/0123456789abcdef0123456789abcdef"),
    ("DELETE", "/uploads/0123456789abcdef0123456789abcdef"),
    ("POST", "/uploads/0123456789abcdef0123456789abcdef/refresh"),
]


def now() -> int:
    """Read when a token is made (collection may be long before the test runs)."""
    return int(time.time())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A JWS built by hand (for what PyJWT refuses to make: alg none, a PEM used as HMAC key)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if key is None:
        return signing_input + "."
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "mallory", "exp": now() + 600, **extra}


def hs(payload: dict[str, Any], key: str = JWT_SECRET, alg: str = "HS256", **headers: Any) -> str:
    return jwt.encode(payload, key, algorithm=alg, headers=headers or None)


def call(
    stack: Stack, authorization: str | None, method: str = "POST", path: str = "/uploads"
) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {} if authorization is None else {"Authorization": authorization}
    body = {"Title": "t", "FileName": "t.mp4"} if method == "POST" and path == "/uploads" else None
    return stack.http("upload_credentials", method, path, body=body, owner=None, headers=headers)


def assert_refused(stack: Stack, authorization: str | None, message: str | None = None) -> None:
    for method, path in ROUTES:
        status, body, headers = call(stack, authorization, method, path)
        assert status == 401, (method, path, body)
        assert body["Code"] == "InvalidToken" and body["RequestId"] == headers["X-Request-Id"]
        assert headers["WWW-Authenticate"].startswith("Bearer")
        if message is not None:
            assert body["Message"] == message
        if authorization:
            token = authorization.partition(" ")[2]
            # (short tokens such as "abc" could occur in the random RequestId by chance)
            assert len(token) < 12 or token not in json.dumps(body)
    assert stack.vod.calls == []


HS256 = {"alg": "HS256", "typ": "JWT"}
SECRET = JWT_SECRET.encode()
ATTACKER_KEY = "attacker-key-attacker-key-attacker-key"
FAKE_PEM = (
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----"
)
SIGNED_WRONG: list[tuple[str, Callable[[], str], str | None]] = [
    ("alg-none", lambda: hand_made({"alg": "none", "typ": "JWT"}, claims(), None), None),
    ("alg-None", lambda: hand_made({"alg": "None"}, claims(), None), None),
    ("alg-none-with-sig", lambda: hand_made({"alg": "none"}, claims(), b"x") , None),
    ("wrong-key", lambda: hs(claims(), key=ATTACKER_KEY), "The bearer token is invalid."),
    ("hs512-not-allowed", lambda: hs(claims(), key=JWT_SECRET * 2, alg="HS512"), None),
    ("expired", lambda: hs(claims(exp=now() - 3600)), "The bearer token has expired."),
    ("expired-past-leeway", lambda: hs(claims(exp=now() - 31)), "The bearer token has expired."),
    ("not-yet-valid", lambda: hs(claims(nbf=now() + 3600)), None),
    ("issued-in-the-future", lambda: hs(claims(iat=now() + 3600)), None),
    ("no-exp", lambda: hs({"sub": "mallory"}), None),
    ("exp-as-string", lambda: hand_made(HS256, {"sub": "m", "exp": "never"}, SECRET), None),
    ("no-sub", lambda: hs({"exp": now() + 600}), None),
    ("sub-number", lambda: hs(claims(sub=42)), None),
    ("sub-empty", lambda: hs(claims(sub="")), None),
    ("sub-list", lambda: hs(claims(sub=["a", "b"])), None),
    ("sub-too-long", lambda: hs(claims(sub="m" * 129)), None),
    ("sub-control", lambda: hs(claims(sub="alice\nadmin")), None),
    ("crit-unknown", lambda: hs(claims(), crit=["x-vodfc"], **{"x-vodfc": 1}), None),  # type: ignore[arg-type]
    ("jku-ignored", lambda: hs(claims(), key=ATTACKER_KEY, jku="https://evil.example/jwks"), None),
    ("tampered-payload", lambda: _tamper(hs(claims(sub="bob"))), None),
    ("signature-stripped", lambda: hs(claims()).rsplit(".", 1)[0] + ".", None),
    ("claims-not-object", lambda: hand_made(HS256, ["sub"], SECRET), None),  # type: ignore[arg-type]
]  # fmt: skip


def _tamper(token: str) -> str:
    head, payload, sig = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=="))
    data["sub"] = "alice"
    return f"{head}.{b64(json.dumps(data).encode())}.{sig}"


@pytest.mark.parametrize(("name", "make", "message"), SIGNED_WRONG, ids=[c[0] for c in SIGNED_WRONG])
def test_a_wrongly_signed_or_shaped_token_is_401(
    stack: Stack, name: str, make: Callable[[], str], message: str | None
) -> None:
    assert_refused(stack, f"Bearer {make()}", message)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic bWFsbG9yeTpwdw==",
        "Token abc",
        "Bearer abc",
        "Bearer a.b.c",
        "Bearer ....",
        "Bearer eyJ.eyJ.",
        "Bearer " + "a" * 9000,
        "Bearer tok en",
        "Bearer tök",
        "Bearer <script>",
        "Bearer a.b.c, Bearer d.e.f",
        "Bearer " + b64(b"\xff\xfe") + "." + b64(b"{}") + ".",
    ],
    ids=lambda v: repr(v)[:24],
)
def test_garbage_authorization_is_401(stack: Stack, authorization: str | None) -> None:
    assert_refused(stack, authorization)


def test_leeway_is_honoured_but_no_further(stack: Stack) -> None:
    status, _, _ = call(stack, f"Bearer {hs(claims(exp=now() - 5))}", "GET", "/uploads")
    assert status == 200
    status, _, _ = call(stack, f"Bearer {hs(claims(exp=now() - 120))}", "GET", "/uploads")
    assert status == 401


def test_the_scheme_is_case_insensitive_and_a_good_token_passes(stack: Stack) -> None:
    assert call(stack, f"bearer {hs(claims())}", "GET", "/uploads")[0] == 200
    assert call(stack, f"BEARER {hs(claims())}", "GET", "/uploads")[0] == 200


def test_audience_and_issuer_are_checked_when_configured(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWT_AUDIENCE", "vodfc")
    monkeypatch.setenv("JWT_ISSUER", "https://login.example.com")
    reset_instance_state()
    good = claims(aud="vodfc", iss="https://login.example.com")
    assert call(stack, f"Bearer {hs(good)}", "GET", "/uploads")[0] == 200
    for wrong in (
        claims(aud="other", iss="https://login.example.com"),
        claims(aud=["other", "more"], iss="https://login.example.com"),
        claims(iss="https://login.example.com"),  # no aud
        claims(aud="vodfc", iss="https://evil.example"),
        claims(aud="vodfc"),  # no iss
    ):
        assert_refused(stack, f"Bearer {hs(wrong)}")


# --- public keys ---------------------------------------------------------------------------------
@pytest.fixture
def rsa_key(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> rsa.RSAPrivateKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    monkeypatch.delenv("JWT_SECRET")
    monkeypatch.setenv("JWT_PUBLIC_KEY", pem.replace("\n", "\\n"))
    reset_instance_state()
    return key


def test_hs_rs_confusion_is_refused(stack: Stack, rsa_key: rsa.RSAPrivateKey) -> None:
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # the attacker knows the public key and signs HS256 with it as the HMAC secret
    for variant in (pem, pem.strip(), pem.replace(b"\n", b"\r\n")):
        assert_refused(stack, f"Bearer {hand_made({'alg': 'HS256', 'typ': 'JWT'}, claims(), variant)}")
    # the genuine RS256 token passes; one from another RSA key or an EC key does not
    assert (
        call(stack, f"Bearer {jwt.encode(claims(), rsa_key, algorithm='RS256')}", "GET", "/uploads")[0] == 200
    )
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert_refused(stack, f"Bearer {jwt.encode(claims(), other, algorithm='RS256')}")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    assert_refused(stack, f"Bearer {jwt.encode(claims(), ec_key, algorithm='ES256')}")
    assert_refused(stack, f"Bearer {jwt.encode(claims(), rsa_key, algorithm='PS256')}")


@pytest.mark.parametrize(
    "env",
    [
        {"JWT_SECRET": "too-short"},
        {"JWT_SECRET": FAKE_PEM},
        {"JWT_SECRET": JWT_SECRET, "JWT_ALGORITHMS": "HS256,RS256"},
        {"JWT_SECRET": JWT_SECRET, "JWT_ALGORITHMS": "none"},
        {"JWT_SECRET": ""},
    ],
    ids=["short-secret", "pem-as-secret", "mixed-families", "alg-none", "no-secret"],
)
def test_an_unusable_key_configuration_is_503_not_an_open_door(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_instance_state()
    from shared.auth import _public_key

    _public_key.cache_clear()
    for token in (hs(claims()), hand_made({"alg": "none"}, claims(), None)):
        status, body, _ = call(stack, f"Bearer {token}", "GET", "/uploads")
        assert status == 503 and body["Code"] == "AuthNotConfigured", body
        assert "too-short" not in json.dumps(body) and JWT_SECRET not in json.dumps(body)
