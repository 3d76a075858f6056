"""devkit/local.py: the local defaults, and what wins over them."""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit.emulator import DEV_ACCESS_KEY_ID, DEV_ACCESS_KEY_SECRET, DEV_CALLBACK_KEY
from devkit.local import LocalStack, api_url, configured_vod_endpoint, loopback_origins
from shared.settings import Settings

STACK = LocalStack(
    api_url="http://127.0.0.1:8000", data_dir=Path("/data"), vod_endpoint="http://127.0.0.1:8001"
)


def test_an_empty_environment_gets_every_local_default() -> None:
    settings = Settings.from_env(STACK.environment({}))
    assert settings.auth_mode == "none"
    assert settings.database_url.get_secret_value() == "sqlite:////data/vodfc.db"
    assert settings.vod_base_url == "http://127.0.0.1:8001"
    assert settings.callback_url == "http://127.0.0.1:8000/callbacks/vod"
    assert settings.callback_keys == (DEV_CALLBACK_KEY,)
    assert settings.alibaba_cloud_access_key_id == DEV_ACCESS_KEY_ID
    assert settings.alibaba_cloud_access_key_secret is not None
    assert settings.alibaba_cloud_access_key_secret.get_secret_value() == DEV_ACCESS_KEY_SECRET
    assert settings.allowed_origins == ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000")


def test_the_environment_wins_in_any_spelling_but_empty_is_unset() -> None:
    env = STACK.environment({"auth_mode": "jwt", "CALLBACK_AUTH_KEY": "", "PATH": "/bin"})
    settings = Settings.from_env(env)
    assert settings.auth_mode == "jwt" and settings.callback_keys == (DEV_CALLBACK_KEY,)
    assert env["PATH"] == "/bin"


def test_flags_and_the_emulators_key_win_over_the_environment() -> None:
    stack = LocalStack(
        api_url="http://127.0.0.1:8000",
        data_dir=Path("/data"),
        vod_endpoint="http://127.0.0.1:8001",
        database_url="postgresql://db/vodfc",
    )
    shell = {
        "database_url": "sqlite:///elsewhere.db",
        "VOD_ENDPOINT": "https://vod.cn-shanghai.aliyuncs.com",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIreal",
        "ALIBABA_CLOUD_SECURITY_TOKEN": "CAIS-real",
    }
    settings = Settings.from_env(stack.environment(shell))
    assert settings.database_url.get_secret_value() == "postgresql://db/vodfc"
    assert settings.vod_base_url == "http://127.0.0.1:8001"
    assert settings.alibaba_cloud_access_key_id == DEV_ACCESS_KEY_ID
    assert settings.alibaba_cloud_security_token is None


def test_another_vod_keeps_the_shells_keys() -> None:
    stack = LocalStack(
        api_url="http://127.0.0.1:8000", data_dir=Path("/d"), vod_endpoint="https://v", emulated=False
    )
    env = stack.environment({"ALIBABA_CLOUD_ACCESS_KEY_ID": "mine", "ALIBABA_CLOUD_SECURITY_TOKEN": "t"})
    assert env["ALIBABA_CLOUD_ACCESS_KEY_ID"] == "mine" and env["ALIBABA_CLOUD_SECURITY_TOKEN"] == "t"


@pytest.mark.parametrize(
    ("url", "origins"),
    [
        ("http://localhost:8010", ("http://localhost:8010", "http://127.0.0.1:8010", "http://[::1]:8010")),
        ("http://[::1]:8000", ("http://[::1]:8000", "http://127.0.0.1:8000", "http://localhost:8000")),
        ("http://192.168.1.5:8000", ("http://192.168.1.5:8000",)),
    ],
)
def test_loopback_origins(url: str, origins: tuple[str, ...]) -> None:
    assert loopback_origins(url) == origins


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("::1", "http://[::1]:8000"),
    ],
)
def test_api_url_is_what_a_client_can_reach(host: str, url: str) -> None:
    assert api_url(host, 8000) == url


def test_a_vod_endpoint_in_the_environment_means_no_emulator() -> None:
    assert configured_vod_endpoint(None, {}) is None
    assert configured_vod_endpoint(None, {"vod_endpoint": "https://v"}) == "https://v"
    assert configured_vod_endpoint("https://flag", {"VOD_ENDPOINT": "https://v"}) == "https://flag"


@pytest.mark.parametrize(
    ("host", "public_host", "expected"),
    [
        ("::1", None, "http://[::1]:9001"),
        ("0.0.0.0", None, "http://127.0.0.1:9001"),
        ("::", None, "http://127.0.0.1:9001"),
        ("127.0.0.1", "10.0.0.5", "http://10.0.0.5:9001"),
    ],
)
def test_the_emulators_urls_are_ones_a_client_can_connect_to(
    tmp_path: Path, host: str, public_host: str | None, expected: str
) -> None:
    from devkit.emulator import Emulator, EmulatorConfig

    config = EmulatorConfig(
        host=host, public_host=public_host, vod_port=9001, oss_port=9002, data_dir=tmp_path
    )
    emulator = Emulator(config)
    assert emulator.vod_url == expected
    assert emulator.oss_url == expected[:-1] + "2"
