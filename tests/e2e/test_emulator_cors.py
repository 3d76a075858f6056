"""The emulated bucket's CORS rule: any loopback origin plus configured ones; others get no ACAO.

Given the emulator's OSS endpoint, when a browser-like client sends a preflight (``OPTIONS`` with
``Origin`` and ``Access-Control-Request-*``), then allowed origins get the headers ali-oss needs and
any other origin gets an answer without ``Access-Control-Allow-Origin``.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from devkit.emulator import Emulator, make_emulator
from devkit.emulator.cors import CorsPolicy, is_loopback_origin

pytestmark = pytest.mark.e2e

ALI_OSS_HEADERS = "authorization,content-type,x-oss-date,x-oss-security-token,x-oss-user-agent"


def preflight(emu: Emulator, origin: str, method: str = "PUT") -> httpx.Response:
    return httpx.options(
        f"{emu.oss_url}/{emu.config.bucket}/sv/x/y.mp4",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": ALI_OSS_HEADERS,
        },
        trust_env=False,
    )


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:5173",
        "http://localhost:9000",
        "http://localhost",
        "http://127.0.0.1:3000",
        "http://127.0.0.1:65535",
        "http://127.3.2.1:8080",
        "http://[::1]:8080",
        "https://localhost:8443",
        "http://LOCALHOST:5173",
    ],
)
def test_loopback_origins_are_recognised(origin: str) -> None:
    assert is_loopback_origin(origin)


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost.evil.test",
        "http://127.0.0.1.evil.test:80",
        "http://evil.test",
        "http://[::2]:8080",
        "http://10.0.0.1:5173",
        "ftp://localhost:21",
        "http://localhost:5173/page",
        "http://user@localhost:5173",
        "http://localhost:notaport",
        "http://localhost:70000",
        "null",
        "",
    ],
)
def test_other_origins_are_not_loopback(origin: str) -> None:
    assert not is_loopback_origin(origin)


def test_policy_exact_origins_wildcard_and_loopback_switch() -> None:
    exact = CorsPolicy(("https://app.example.com",), allow_loopback=False)
    assert exact.allows("https://app.example.com")
    assert not exact.allows("https://app.example.com.evil.test")
    assert not exact.allows("http://localhost:5173")
    assert CorsPolicy(("*",), allow_loopback=False).allows("https://anything.example")
    assert not CorsPolicy((), allow_loopback=True).allows(None)
    assert not CorsPolicy((), allow_loopback=True).preflight_allows("http://localhost:1", "PATCH")


@pytest.mark.parametrize("origin", ["http://localhost:5173", "http://127.0.0.1:40123", "http://[::1]:9000"])
def test_preflight_from_any_loopback_origin_by_default(emulator: Emulator, origin: str) -> None:
    for method in ("PUT", "POST", "GET", "DELETE", "HEAD"):
        response = preflight(emulator, origin, method)
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == origin
        assert response.headers["access-control-allow-headers"] == ALI_OSS_HEADERS
        allowed = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
        assert {"GET", "PUT", "POST", "DELETE", "HEAD"} <= allowed
        exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
        assert {"ETag", "x-oss-request-id"} <= exposed
        assert response.headers["vary"] == "Origin"


def test_preflight_from_a_foreign_origin_has_no_allow_origin(emulator: Emulator) -> None:
    for origin in ("https://evil.example", "http://localhost.evil.test:5173"):
        response = preflight(emulator, origin)
        assert response.status_code == 403
        assert "access-control-allow-origin" not in response.headers
        assert "<Code>AccessForbidden</Code>" in response.text
    # An allowed origin asking for a method OSS does not allow is refused the same way.
    refused = preflight(emulator, "http://localhost:5173", "PATCH")
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers


def test_non_preflight_answers_carry_cors_headers_only_for_allowed_origins(emulator: Emulator) -> None:
    url = f"{emulator.oss_url}/{emulator.config.bucket}/sv/missing/object.mp4"
    allowed = httpx.get(url, headers={"Origin": "http://127.0.0.1:5173"}, trust_env=False)
    assert allowed.status_code == 404  # errors too: the browser must be able to read them
    assert allowed.headers["access-control-allow-origin"] == "http://127.0.0.1:5173"
    assert "x-oss-request-id" in allowed.headers["access-control-expose-headers"]
    foreign = httpx.get(url, headers={"Origin": "https://evil.example"}, trust_env=False)
    assert "access-control-allow-origin" not in foreign.headers


def test_configured_exact_origin_and_loopback_turned_off(tmp_path: Path) -> None:
    with make_emulator(
        data_dir=tmp_path / "oss",
        cors_allowed_origins=["https://app.example.com"],
        cors_allow_loopback=False,
    ) as emu:
        ok = preflight(emu, "https://app.example.com")
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://app.example.com"
        loopback = preflight(emu, "http://localhost:5173")
        assert loopback.status_code == 403 and "access-control-allow-origin" not in loopback.headers
