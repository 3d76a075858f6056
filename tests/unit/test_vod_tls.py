"""The VOD client's TLS trust: what the runtime trusts, a hashed directory read lazily, full verification."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from shared import vod


def _paths(
    monkeypatch: pytest.MonkeyPatch, *, cafile: Path | None, capath: Path | None, default_cafile: Path
) -> None:
    found = ssl.DefaultVerifyPaths(
        str(cafile) if cafile else None,  # type: ignore[arg-type]  # None when absent, as ssl gives it
        str(capath) if capath else None,  # type: ignore[arg-type]
        "SSL_CERT_FILE",
        str(default_cafile),
        "SSL_CERT_DIR",
        str(capath or "/nonexistent"),
    )
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: found)


@pytest.fixture
def hashed(tmp_path: Path) -> Path:
    directory = tmp_path / "certs"
    directory.mkdir()
    (directory / "README").write_text("not a certificate")
    (directory / "5ad8a5d6.0").write_text("")  # the name is what counts
    return directory


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "ca-certificates.crt"
    path.write_text("")
    return path


def test_a_hashed_directory_is_preferred_to_the_default_bundle(
    monkeypatch: pytest.MonkeyPatch, hashed: Path, bundle: Path
) -> None:
    _paths(monkeypatch, cafile=bundle, capath=hashed, default_cafile=bundle)
    assert vod._trust_store() == (None, str(hashed))


def test_a_bundle_named_by_ssl_cert_file_is_kept_beside_the_directory(
    monkeypatch: pytest.MonkeyPatch, hashed: Path, bundle: Path, tmp_path: Path
) -> None:
    named = tmp_path / "corporate.pem"
    named.write_text("")
    _paths(monkeypatch, cafile=named, capath=hashed, default_cafile=bundle)
    assert vod._trust_store() == (str(named), str(hashed))


def test_without_a_hashed_directory_the_runtime_bundle_is_used(
    monkeypatch: pytest.MonkeyPatch, bundle: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "ca.pem").write_text("")
    _paths(monkeypatch, cafile=bundle, capath=plain, default_cafile=bundle)
    assert vod._trust_store() == (str(bundle), None)


def test_hashed_names_only(tmp_path: Path) -> None:
    assert not vod._hashed(str(tmp_path / "missing"))
    for name in ("5ad8a5d6", "5ad8a5d6.pem", "5AD8A5D6.0", "5ad8a5d.0", "ca.0"):
        (tmp_path / name).write_text("")
    assert not vod._hashed(str(tmp_path))
    (tmp_path / "5ad8a5d6.12").write_text("")
    assert vod._hashed(str(tmp_path))


def test_with_no_store_at_all_certifi_is_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    import certifi

    loaded: list[tuple[str | None, str | None]] = []

    def create(*, cafile: str | None = None, capath: str | None = None) -> ssl.SSLContext:
        loaded.append((cafile, capath))
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)

    monkeypatch.setattr(ssl, "create_default_context", create)
    vod._trusting((None, None))
    assert loaded == [(certifi.where(), None)]


def test_the_context_verifies_certificates_and_host_names() -> None:
    context = vod._trusting(vod._trust_store())
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
