"""The local stack's settings, in the one place ``vodfc serve`` and ``vodfc invoke`` take them from.

README.md ("Local defaults") documents them. Offline: SQLite in the data directory,
``AUTH_MODE=none``, the emulated VOD and OSS with the emulator's development AccessKey, VOD
callbacks signed with its development callback key, CORS for every loopback name of the API's
port, and the app's notifications sent to the stack's own sink, signed with a development
secret. A variable set in the environment wins over its local default; a command-line flag
(``--database-url``, ``--vod-endpoint``, ``--against``) wins over both, and so does the emulator's
AccessKey while the emulator is the VOD endpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devkit.emulator import Emulator
    from shared.settings import Settings

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_HOST",
    "DEFAULT_MAX_STORAGE_MB",
    "DEFAULT_PORT",
    "DEV_WEBHOOK_SECRET",
    "STACK_PATH",
    "LocalStack",
    "api_url",
    "configured_vod_endpoint",
    "emulator_ports",
    "loopback_origins",
    "reset_instance_state",
    "temporary_environment",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_DATA_DIR = ".vodfc"
# MiB of uploaded objects the emulated OSS keeps before pruning the oldest (a few dozen clips).
DEFAULT_MAX_STORAGE_MB = 256
# Where ``vodfc serve`` describes its stack (``vodfc invoke --against`` reads it).
STACK_PATH = "/_vodfc/stack"
# What signs the notifications of a local stack, and what its sink verifies them with
# ("whsec_" + Base64 of 32 bytes; public: local runs only).
DEV_WEBHOOK_SECRET = "whsec_dm9kZmMtbG9jYWwtZGV2LXdlYmhvb2stc2VjcmV0ISE="
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def emulator_ports(port: int) -> tuple[int, int]:
    """The emulated VOD's and OSS's ports for an API on ``port``: the next two."""
    return port + 1, port + 2


def api_url(host: str, port: int) -> str:
    """The address clients use for a server bound to ``host`` (a wildcard is reached on loopback)."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host.strip("[]")
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"


def loopback_origins(url: str) -> tuple[str, ...]:
    """The browser origins of ``url``: itself and, on a loopback host, every loopback name of its port."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if parts.hostname not in _LOOPBACK_HOSTS:
        return (origin,)
    port = f":{parts.port}" if parts.port else ""
    names = ("127.0.0.1", "localhost", "[::1]")
    return tuple(dict.fromkeys((origin, *(f"{parts.scheme}://{name}{port}" for name in names))))


def configured_vod_endpoint(flag: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """``--vod-endpoint``, else ``VOD_ENDPOINT`` from the environment; None: use the emulator."""
    from shared.settings import Settings

    return flag or Settings.from_env(os.environ if environ is None else environ).vod_endpoint


@dataclass(frozen=True)
class LocalStack:
    """What a local stack is made of; :meth:`environment` turns it into settings."""

    api_url: str
    data_dir: Path
    vod_endpoint: str | None = None  # the emulator's, or a real/external VOD
    emulated: bool = True  # the endpoint is the emulator: its development AccessKey
    database_url: str | None = None  # None: SQLite in data_dir
    events: str | None = None  # VOD_EVENT_DELIVERY imposed by --events (None: the environment's)
    sink: bool = True  # the API serves the notification sink (vodfc serve, not an in-process invoke)

    def defaults(self) -> dict[str, str]:
        """The local defaults for this stack (README.md, "Local defaults"); the environment wins."""
        from urllib.parse import urlsplit

        from devkit.emulator.config import DEV_CALLBACK_KEY
        from devkit.webhook_sink import SINK_PATH

        defaults = {
            "DATABASE_URL": f"sqlite:///{self.data_dir.resolve() / 'vodfc.db'}",
            "AUTH_MODE": "none",
            "CALLBACK_URL": f"{self.api_url}/callbacks/vod",
            "CALLBACK_AUTH_KEY": DEV_CALLBACK_KEY,
            "ALLOWED_ORIGINS": ",".join(loopback_origins(self.api_url)),
        }
        # Plain HTTP is allowed for WEBHOOK_URL on loopback only (a LAN address needs your own).
        if self.sink and urlsplit(self.api_url).hostname in _LOOPBACK_HOSTS:
            defaults["WEBHOOK_URL"] = self.api_url + SINK_PATH
            defaults["WEBHOOK_SECRET"] = DEV_WEBHOOK_SECRET
        return defaults

    def imposed(self) -> dict[str, str]:
        """What wins over the environment: the flags, and the emulator's key (it knows no other)."""
        from devkit.emulator.config import DEV_ACCESS_KEY_ID, DEV_ACCESS_KEY_SECRET

        values = {
            "DATABASE_URL": self.database_url,
            "VOD_ENDPOINT": self.vod_endpoint,
            "VOD_EVENT_DELIVERY": self.events,
        }
        if self.emulated:
            values["ALIBABA_CLOUD_ACCESS_KEY_ID"] = DEV_ACCESS_KEY_ID
            values["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = DEV_ACCESS_KEY_SECRET
        return {name: value for name, value in values.items() if value}

    def environment(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """``environ`` (default ``os.environ``) completed with the local defaults, then imposed upon."""
        env = dict(os.environ if environ is None else environ)
        present = {key.upper() for key, value in env.items() if value != ""}
        for name, value in self.defaults().items():
            if name not in present:
                env[name] = value
        for name, value in self.imposed().items():
            _drop(env, name)
            env[name] = value
        if self.emulated:  # a token belongs to other keys than the emulator's
            _drop(env, "ALIBABA_CLOUD_SECURITY_TOKEN")
        return env

    def start_emulator(self, settings: Settings, **config: Any) -> Emulator:
        """Start the emulated VOD and OSS for this stack (data in ``<data_dir>/oss``) and its callbacks."""
        from devkit.emulator import make_emulator

        base = {
            "data_dir": self.data_dir / "oss",
            "callback_url": settings.callback_url,
            "callback_auth_key": (settings.callback_keys or (None,))[0],
            "cors_allowed_origins": loopback_origins(self.api_url),
        }
        return make_emulator(**{**base, **config}).start()

    def with_emulator(self, emulator: Emulator) -> LocalStack:
        """This stack, its VOD endpoint the started ``emulator``."""
        return dataclasses.replace(self, vod_endpoint=emulator.vod_url, emulated=True)

    def describe(self, settings: Settings) -> dict[str, Any]:
        """What ``GET /_vodfc/stack`` answers: enough for another process to join (no secrets)."""
        from urllib.parse import urlsplit

        dsn = settings.database_url.get_secret_value()
        try:
            has_password = urlsplit(dsn).password is not None
        except ValueError:
            has_password = True
        return {
            "api_url": self.api_url,
            "data_dir": str(self.data_dir.resolve()),
            "vod_endpoint": settings.vod_base_url,
            "emulated": self.emulated,
            "events": settings.vod_event_delivery,
            # A URL holding a password is not handed out: the joining process needs DATABASE_URL.
            "database_url": None if has_password else dsn,
        }

    @classmethod
    def from_description(cls, data: Mapping[str, Any]) -> LocalStack:
        """The stack another process described with :meth:`describe`."""
        return cls(
            api_url=str(data["api_url"]),
            data_dir=Path(str(data["data_dir"])),
            vod_endpoint=str(data["vod_endpoint"]),
            emulated=bool(data["emulated"]),
            database_url=data.get("database_url") or None,
            events=data.get("events") or None,
        )


def _drop(env: dict[str, str], name: str) -> None:
    """Remove ``name`` in every spelling (settings are read case-insensitively)."""
    for key in [k for k in env if k.upper() == name]:
        del env[key]


def reset_instance_state() -> None:
    """Forget the cached settings, dependencies, VOD client and stores (after a change of settings)."""
    from shared.services.deps import reset_deps
    from shared.settings import get_settings
    from shared.store import reset_stores
    from shared.vod import reset_vod_client

    get_settings.cache_clear()
    reset_deps()
    reset_vod_client()
    reset_stores()


@contextlib.contextmanager
def temporary_environment(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` is ``values`` inside the block (fresh instance state), and what it was after."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(values)
    reset_instance_state()
    try:
        yield
    finally:
        reset_instance_state()
        os.environ.clear()
        os.environ.update(saved)
