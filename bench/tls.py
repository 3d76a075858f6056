"""A throw-away test CA and a server certificate for the loopback HTTPS stub.

Made fresh at every run into a temporary directory (never committed). Two ways to trust it, each
as large as production's: ``bundle``, certifi's bundle *plus* the test CA (a client loading it
parses every certificate, as it would certifi's against the real VOD endpoint), and ``store``, the
system's hashed certificate directory plus the test CA under its subject hash (what vodfc trusts
on a runtime with such a directory, ``SSL_CERT_DIR``; OpenSSL reads only the issuer it needs).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = ["TlsFiles", "make_tls"]


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path  # the test CA alone
    server_cert: Path  # leaf + CA chain
    server_key: Path
    bundle: Path  # certifi's roots + the test CA: what the SDKs trust
    store: Path | None  # the system's hashed directory + the test CA (None: no openssl CLI)


def make_tls(directory: Path, *, host: str = "127.0.0.1") -> TlsFiles:
    """Generate a CA (RSA 2048) and a server certificate for ``host`` (IP SAN + localhost)."""
    import certifi
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vodfc bench test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sans: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        sans.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    ca_pem = ca_cert.public_bytes(pem)
    files = TlsFiles(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        bundle=directory / "bundle.pem",
        store=None,
    )
    files.ca_cert.write_bytes(ca_pem)
    files.server_cert.write_bytes(cert.public_bytes(pem) + ca_pem)
    files.server_key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    files.server_key.chmod(0o600)
    files.bundle.write_bytes(Path(certifi.where()).read_bytes().rstrip(b"\n") + b"\n" + ca_pem)
    return replace(files, store=_hashed_store(directory / "store", files.ca_cert))


def _hashed_store(store: Path, ca_cert: Path) -> Path | None:
    """The system's certificate directory (links to its hashed entries) plus ``ca_cert`` named by
    its subject hash (``openssl x509 -subject_hash``), as ``openssl rehash`` would lay it out."""
    import os
    import shutil
    import ssl
    import subprocess

    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    out = subprocess.run(
        [openssl, "x509", "-subject_hash", "-noout", "-in", str(ca_cert)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    digest = out.stdout.strip()
    if out.returncode != 0 or len(digest) != 8:
        return None
    store.mkdir(parents=True, exist_ok=True)
    system = ssl.get_default_verify_paths().capath
    if system and os.path.isdir(system):
        for entry in os.scandir(system):
            stem, dot, suffix = entry.name.partition(".")
            if dot and suffix.isdigit() and len(stem) == 8:
                (store / entry.name).symlink_to(os.path.realpath(entry.path))
    n = 0
    while (store / f"{digest}.{n}").exists():
        n += 1
    shutil.copyfile(ca_cert, store / f"{digest}.{n}")
    return store
