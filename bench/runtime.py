"""Where and how the measured child processes run: interpreter, flags, code directories, environment.

Two runtimes:

- ``package`` (default when a CPython 3.10 is found): FC's ``python3.10`` on the unzipped
  deployment packages, exactly what FC loads (``index.py`` and its dependencies at the top of the
  code directory), with ``-I`` so nothing from the bench environment leaks in. The SDKs run the
  same way from their unzipped dependency closures.
- ``venv``: the project's virtualenv (``functions/<name>`` on ``sys.path``, ``shared`` from the
  editable install, SDKs from site-packages). Its numbers include the dev-only packages installed
  there (e.g. PyJWT picks up ``cryptography`` when it is importable).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench import events
from bench.tls import TlsFiles

__all__ = ["CHILDREN", "Runtime", "base_env", "sdk_env", "vodfc_env"]

ROOT = Path(__file__).resolve().parent.parent
CHILDREN = Path(__file__).resolve().parent / "children"


@dataclass
class Runtime:
    kind: str  # "package" | "venv"
    python: str
    flags: tuple[str, ...] = ()
    code: dict[str, Path] = field(default_factory=dict)  # variant -> code directory ("" = none)
    nopyc: dict[str, Path] = field(default_factory=dict)  # copies without .pyc (package runtime)

    def argv(self, script: str, *args: str, no_pyc: bool = False) -> list[str]:
        flags = (*self.flags, "-B") if no_pyc else self.flags
        return [self.python, *flags, str(CHILDREN / script), *args]

    def floor_argv(self) -> list[str]:
        return [self.python, *self.flags, "-c", "pass"]

    def code_dir(self, name: str, *, no_pyc: bool = False) -> str:
        path = (self.nopyc if no_pyc else self.code).get(name)
        return str(path) if path else ""

    @staticmethod
    def venv() -> Runtime:
        code = {f: ROOT / "functions" / f for f in ("upload_credentials", "vod_callback", "cleanup")}
        return Runtime("venv", sys.executable, (), code)


def base_env() -> dict[str, str]:
    """A small, FC-like environment: nothing from the developer's shell leaks into the children."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
    }
    return env


def vodfc_env(
    *,
    stub_endpoint: str,
    tls: TlsFiles,
    database_url: str,
    code_dir: str,
    function: str,
    layer_dir: str = "",
    **extra: str,
) -> dict[str, str]:
    env = base_env()
    env.update(
        {
            "BENCH_CODE_DIR": code_dir,
            "BENCH_LAYER_DIR": layer_dir,
            "BENCH_FUNCTION": function,
            # vodfc trusts what OpenSSL finds (shared/vod.py): the system's hashed directory
            # plus the test CA (SSL_CERT_DIR), read lazily; without one, the full bundle.
            **({"SSL_CERT_DIR": str(tls.store)} if tls.store else {"SSL_CERT_FILE": str(tls.bundle)}),
            "VOD_ENDPOINT": stub_endpoint,
            "VOD_REGION": "cn-shanghai",
            "VOD_SIGNATURE_VERSION": "v3",
            "VOD_DEADLINE_SECONDS": "10",
            "DATABASE_URL": database_url,
            "AUTH_MODE": "jwt",
            "JWT_SECRET": events.JWT_SECRET,
            "CALLBACK_URL": events.CALLBACK_URL,
            "CALLBACK_AUTH_KEY": events.CALLBACK_KEY,
            # generous: events are signed when they are generated, before a run of several minutes
            "CALLBACK_MAX_SKEW_SECONDS": "3600",
            "CALLBACK_CONFIRM_WITH_VOD": "true",
            "ALLOWED_ORIGINS": "https://app.example.com",
            "ALLOWED_EXTENSIONS": "mp4,mov,webm,mkv,avi,flv,m4v,mp3,m4a,wav",
            "MAX_FILE_SIZE": "10737418240",
            "MAX_PENDING_UPLOADS_PER_OWNER": "10",
            "STALE_UPLOAD_SECONDS": "6600",
            "CLEANUP_TIME_BUDGET_SECONDS": "240",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update(extra)
    return env


def sdk_env(*, stub_hostport: str, tls: TlsFiles, code_dir: str) -> dict[str, str]:
    env = base_env()
    env.update(
        {
            "BENCH_CODE_DIR": code_dir,
            "BENCH_STUB": stub_hostport,
            "BENCH_CA_BUNDLE": str(tls.bundle),
        }
    )
    return env
