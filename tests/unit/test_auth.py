"""shared/auth.py: bearer JWTs (HS256 / RS256 / ES256), every rejection class, key configuration."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from shared import auth, errors
from shared.http import Request
from shared.settings import Settings

SECRET = "test-hs256-secret-0123456789abcdef-0123456789"  # >= 32 bytes (RFC 7518 §3.2)
OTHER_SECRET = "another-hs256-secret-0123456789abcdef-012345"
# Claims are relative to now with margins of minutes against a 30 s leeway: no timing sensitivity.
HOUR = 3600


def pem(public_key: Any) -> str:
    data: bytes = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data.decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {"sub": "user-1", "iat": now, "exp": now + HOUR}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def hs_token(secret: str = SECRET, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), secret, algorithm="HS256")


def request_with(authorization: str | None) -> Request:
    headers = {} if authorization is None else {"Authorization": authorization}
    return Request("POST", "/uploads", headers=headers)


def hs_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"auth_mode": "jwt", "jwt_secret": SECRET}
    values.update(overrides)
    return Settings(**values)


def rejected(request: Request, settings: Settings) -> errors.Unauthorized:
    with pytest.raises(errors.Unauthorized) as info:
        auth.authenticate(request, settings)
    assert info.value.status == 401
    assert info.value.code == "InvalidToken"
    return info.value


def not_configured(settings: Settings) -> errors.VodfcError:
    with pytest.raises(errors.ServiceUnavailable) as info:
        auth.authenticate(request_with(f"Bearer {hs_token()}"), settings)
    assert info.value.code == "AuthNotConfigured"
    assert info.value.status == 503
    return info.value


# --- happy paths -------------------------------------------------------------------------------
def test_hs256_happy_path() -> None:
    request = request_with(f"Bearer {hs_token()}")
    assert auth.authenticate(request, hs_settings()) == "user-1"
    assert request.owner == "user-1"


def test_rs256_happy_path(rsa_key: rsa.RSAPrivateKey) -> None:
    token = jwt.encode(claims(sub="rsa-user"), rsa_key, algorithm="RS256")
    settings = Settings(auth_mode="jwt", jwt_public_key=pem(rsa_key.public_key()))
    assert auth.authenticate(request_with(f"Bearer {token}"), settings) == "rsa-user"


def test_es256_happy_path(ec_key: ec.EllipticCurvePrivateKey) -> None:
    token = jwt.encode(claims(sub="ec-user"), ec_key, algorithm="ES256")
    settings = Settings(auth_mode="jwt", jwt_public_key=pem(ec_key.public_key()))
    assert auth.authenticate(request_with(f"Bearer {token}"), settings) == "ec-user"


def test_public_key_from_env_with_literal_newlines(ec_key: ec.EllipticCurvePrivateKey) -> None:
    token = jwt.encode(claims(), ec_key, algorithm="ES256")
    settings = Settings(auth_mode="jwt", jwt_public_key=pem(ec_key.public_key()).replace("\n", "\\n"))
    assert auth.authenticate(request_with(f"Bearer {token}"), settings) == "user-1"


def test_certificate_pem_is_accepted(rsa_key: rsa.RSAPrivateKey) -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer.example")])
    start = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(rsa_key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .sign(rsa_key, hashes.SHA256())
    )
    settings = Settings(
        auth_mode="jwt", jwt_public_key=cert.public_bytes(serialization.Encoding.PEM).decode()
    )
    token = jwt.encode(claims(), rsa_key, algorithm="RS256")
    assert auth.authenticate(request_with(f"Bearer {token}"), settings) == "user-1"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_scheme_is_case_insensitive(scheme: str) -> None:
    assert auth.authenticate(request_with(f"{scheme} {hs_token()}"), hs_settings()) == "user-1"


def test_multiple_spaces_and_surrounding_whitespace_are_tolerated() -> None:
    assert auth.authenticate(request_with(f"  Bearer   {hs_token()}  "), hs_settings()) == "user-1"


def test_leeway_accepts_recently_expired() -> None:
    token = hs_token(exp=int(time.time()) - 5)  # within the 30 s leeway
    assert auth.authenticate(request_with(f"Bearer {token}"), hs_settings()) == "user-1"


def test_issuer_and_audience_when_configured() -> None:
    settings = hs_settings(jwt_issuer="https://id.example", jwt_audience="vodfc")
    token = hs_token(iss="https://id.example", aud=["other", "vodfc"])
    assert auth.authenticate(request_with(f"Bearer {token}"), settings) == "user-1"


def test_audience_ignored_when_not_configured() -> None:
    assert auth.authenticate(request_with(f"Bearer {hs_token(aud='anything')}"), hs_settings()) == "user-1"


def test_owner_of_128_printable_chars_is_accepted() -> None:
    owner = "u" * 127 + "é"
    assert auth.authenticate(request_with(f"Bearer {hs_token(sub=owner)}"), hs_settings()) == owner


def test_auth_mode_none_is_local(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(auth_mode="none")
    request = request_with(None)
    assert auth.authenticate(request, settings) == "local"
    assert request.owner == "local"
    auth.warn_if_insecure(settings)
    out = capsys.readouterr().out
    assert "AUTH_MODE=none" in out and '"level":"WARNING"' in out


def test_warn_if_insecure_is_quiet_for_good_config(capsys: pytest.CaptureFixture[str]) -> None:
    auth.warn_if_insecure(hs_settings())
    assert capsys.readouterr().out == ""


def test_warn_if_insecure_reports_unusable_config_without_raising(capsys: pytest.CaptureFixture[str]) -> None:
    auth.warn_if_insecure(Settings(auth_mode="jwt"))
    assert "needs JWT_SECRET" in capsys.readouterr().out


# --- rejections --------------------------------------------------------------------------------
@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_token(header: str | None) -> None:
    assert rejected(request_with(header), hs_settings()).message == auth.MISSING


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Bearer eyJhbGciOiJIUzI1NiJ9.@@@.sig",
        "Bearer\ttoken.x.y",
        "Bearer a.b.c, Bearer d.e.f",
        "Bearer " + "a" * 9000,
    ],
)
def test_malformed_token(header: str) -> None:
    assert rejected(request_with(header), hs_settings()).message == auth.MALFORMED


def test_expired() -> None:
    token = hs_token(iat=int(time.time()) - 2 * HOUR, exp=int(time.time()) - 10 * 60)
    assert rejected(request_with(f"Bearer {token}"), hs_settings()).message == auth.EXPIRED


def test_alg_none_is_rejected() -> None:
    token = jwt.encode(claims(), "", algorithm="none")
    assert rejected(request_with(f"Bearer {token}"), hs_settings()).message == auth.INVALID


def test_wrong_hmac_key() -> None:
    token = hs_token(secret=OTHER_SECRET)
    assert rejected(request_with(f"Bearer {token}"), hs_settings()).message == auth.INVALID


def test_wrong_rsa_key(rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey) -> None:
    token = jwt.encode(claims(), other_rsa_key, algorithm="RS256")
    settings = Settings(auth_mode="jwt", jwt_public_key=pem(rsa_key.public_key()))
    assert rejected(request_with(f"Bearer {token}"), settings).message == auth.INVALID


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_hs_rs_confusion_is_impossible(rsa_key: rsa.RSAPrivateKey) -> None:
    """A token HMAC-signed with the (public) RSA key as secret must not verify."""
    public_pem = pem(rsa_key.public_key())
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims(sub="attacker")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = _b64url(hmac.new(public_pem.encode(), signing_input, hashlib.sha256).digest())
    token = f"{header}.{payload}.{signature}"
    # default algorithms for a public key: RS256/ES256 only
    settings = Settings(auth_mode="jwt", jwt_public_key=public_pem)
    assert rejected(request_with(f"Bearer {token}"), settings).message == auth.INVALID
    # even with a secret also configured, the public key decides the family
    both = Settings(auth_mode="jwt", jwt_public_key=public_pem, jwt_secret=SECRET)
    assert rejected(request_with(f"Bearer {token}"), both).message == auth.INVALID


def test_token_for_another_algorithm_family_is_rejected(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    token = jwt.encode(claims(), rsa_key, algorithm="RS256")
    settings = Settings(auth_mode="jwt", jwt_public_key=pem(ec_key.public_key()))
    assert rejected(request_with(f"Bearer {token}"), settings).message == auth.INVALID


def test_nbf_in_the_future() -> None:
    token = hs_token(nbf=int(time.time()) + 10 * 60)
    assert rejected(request_with(f"Bearer {token}"), hs_settings()).message == auth.INVALID


def test_iat_in_the_future() -> None:
    token = hs_token(iat=int(time.time()) + 10 * 60)
    assert rejected(request_with(f"Bearer {token}"), hs_settings()).message == auth.INVALID


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "someone-else"},
        {"aud": None},
        {"iss": "https://evil.example"},
        {"iss": None},
    ],
)
def test_wrong_or_missing_audience_and_issuer(overrides: dict[str, Any]) -> None:
    settings = hs_settings(jwt_issuer="https://id.example", jwt_audience="vodfc")
    values = {"iss": "https://id.example", "aud": "vodfc", **overrides}
    token = hs_token(**values)
    assert rejected(request_with(f"Bearer {token}"), settings).message == auth.INVALID


@pytest.mark.parametrize("sub", [None, "", 42, "x" * 129, "user\n1", "user\x00", "\u200buser"])
def test_missing_or_unusable_sub(sub: Any) -> None:
    token = hs_token(sub=sub) if sub is not None else jwt.encode({"exp": int(time.time()) + HOUR}, SECRET)
    assert rejected(request_with(f"Bearer {token}"), hs_settings()).message == auth.INVALID


def test_missing_exp() -> None:
    token = jwt.encode({"sub": "user-1"}, SECRET, algorithm="HS256")
    assert rejected(request_with(f"Bearer {token}"), hs_settings()).message == auth.INVALID


def test_rejection_never_leaks_the_token(capsys: pytest.CaptureFixture[str]) -> None:
    token = hs_token(secret=OTHER_SECRET)
    error = rejected(request_with(f"Bearer {token}"), hs_settings())
    assert token not in error.message
    assert error.headers() == {"WWW-Authenticate": 'Bearer realm="vodfc"'}
    out = capsys.readouterr().out
    assert token not in out and token.split(".")[2] not in out


# --- configuration -----------------------------------------------------------------------------
def test_jwt_mode_without_key_is_503(capsys: pytest.CaptureFixture[str]) -> None:
    not_configured(Settings(auth_mode="jwt"))
    assert "needs JWT_SECRET" in capsys.readouterr().out


def test_mixed_algorithms_are_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    settings = Settings(
        auth_mode="jwt",
        jwt_secret=SECRET,
        jwt_public_key=pem(rsa_key.public_key()),
        jwt_algorithms="HS256,RS256",
    )
    not_configured(settings)


def test_hmac_algorithms_with_only_a_public_key_are_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    not_configured(
        Settings(auth_mode="jwt", jwt_public_key=pem(rsa_key.public_key()), jwt_algorithms="HS256")
    )


def test_public_key_pasted_as_secret_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    not_configured(Settings(auth_mode="jwt", jwt_secret=pem(rsa_key.public_key())))


@pytest.mark.parametrize("algorithms", ["none", "HS1", "RS256,foo"])
def test_unknown_algorithms_are_refused(algorithms: str) -> None:
    not_configured(hs_settings(jwt_algorithms=algorithms))


def test_short_secret_is_refused() -> None:
    not_configured(hs_settings(jwt_secret="short-secret"))
    not_configured(hs_settings(jwt_algorithms="HS512"))  # 45 bytes < 64


def test_small_rsa_key_is_refused() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point of the test
    not_configured(Settings(auth_mode="jwt", jwt_public_key=pem(weak.public_key())))


def test_key_that_fits_no_algorithm_is_refused(ec_key: ec.EllipticCurvePrivateKey) -> None:
    not_configured(Settings(auth_mode="jwt", jwt_public_key=pem(ec_key.public_key()), jwt_algorithms="RS256"))
    p384 = ec.generate_private_key(ec.SECP384R1())
    not_configured(Settings(auth_mode="jwt", jwt_public_key=pem(p384.public_key())))  # ES384 not allowed


def test_eddsa_key_with_eddsa_algorithm() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    settings = Settings(auth_mode="jwt", jwt_public_key=pem(key.public_key()), jwt_algorithms="EdDSA")
    token = jwt.encode(claims(), key, algorithm="EdDSA")
    assert auth.authenticate(request_with(f"Bearer {token}"), settings) == "user-1"


def test_garbage_public_key_is_refused() -> None:
    not_configured(
        Settings(auth_mode="jwt", jwt_public_key="-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----")
    )


def test_configuration_is_checked_before_the_token() -> None:
    with pytest.raises(errors.ServiceUnavailable):
        auth.authenticate(request_with(None), Settings(auth_mode="jwt"))


def test_decoded_public_key_is_cached(ec_key: ec.EllipticCurvePrivateKey) -> None:
    settings = Settings(auth_mode="jwt", jwt_public_key=pem(ec_key.public_key()))
    token = jwt.encode(claims(), ec_key, algorithm="ES256")
    auth.authenticate(request_with(f"Bearer {token}"), settings)
    before = auth._public_key.cache_info().hits
    auth.authenticate(request_with(f"Bearer {token}"), settings)
    assert auth._public_key.cache_info().hits == before + 1
