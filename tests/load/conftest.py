"""Load tests: ``vodfc serve`` on a private PostgreSQL database, loopback only, bounded in count
and time. They run only when selected with ``-m load`` (``make test-load``); a plain ``pytest``
over ``tests/`` collects and skips them.

Figures (requests, errors, p50/p99 latency) are printed in the terminal summary and written to
``test-artifacts/load.json``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import pg
from tests.served import bare_env

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "test-artifacts" / "load.json"
JWT_SECRET = "load-test-jwt-secret-0123456789-abcdef"
CALLBACK_KEY = "LoadTestCallbackKey1"
MAX_PENDING = 10

FIGURES: dict[str, dict[str, Any]] = {}


def _selected(config: pytest.Config) -> bool:
    expression = str(config.getoption("markexpr") or "")
    return "load" in expression and "not load" not in expression


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _selected(config):
        return
    skip = pytest.mark.skip(reason="load test: run with `make test-load` (pytest -m load tests/load)")
    here = Path(__file__).parent
    for item in items:
        if "load" in item.keywords and here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("load figures")
    for name, figures in FIGURES.items():
        terminalreporter.write_line(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    terminalreporter.write_line(f"(also in {ARTIFACT.relative_to(ROOT)})")


def record(name: str, figures: dict[str, Any]) -> None:
    """Keep one scenario's figures for the summary and the artifact."""
    FIGURES[name] = figures
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    existing: dict[str, Any] = {}
    if ARTIFACT.exists():
        try:
            existing = json.loads(ARTIFACT.read_text())
        except ValueError:
            existing = {}
    existing[name] = {**figures, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    ARTIFACT.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[index], 1)


@dataclass
class Served:
    api: str
    database_url: str
    process: subprocess.Popen[str]
    log: Path

    @property
    def callback_url(self) -> str:
        return f"{self.api}/callbacks/vod"

    def emulator_url(self) -> str:
        for line in self.log.read_text().splitlines():
            if "emulated VOD" in line:
                return line.split()[-1]
        raise AssertionError("emulator URL not printed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def load_database(postgres_url: str) -> Iterator[str]:
    """A database of its own on the test server, dropped afterwards."""
    database = pg.create_test_database(postgres_url)
    try:
        yield database.url
    finally:
        database.drop()


@pytest.fixture(scope="module")
def served(load_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``vodfc serve`` on loopback, JWT auth, PostgreSQL, the emulator holding transcoding back."""
    data = tmp_path_factory.mktemp("load")
    port = _free_port()
    log = data / "serve.log"
    env = {
        **bare_env(data),  # nothing of the shell's settings leaks in
        "AUTH_MODE": "jwt",
        "JWT_SECRET": JWT_SECRET,
        "CALLBACK_AUTH_KEY": CALLBACK_KEY,
        "MAX_PENDING_UPLOADS_PER_OWNER": str(MAX_PENDING),
        "LOG_LEVEL": "WARNING",
        "VODFC_EMULATOR_SETTINGS": json.dumps({"auto_transcode": False}),
    }
    cmd = [sys.executable, "-m", "devkit.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--vod-port", "0", "--oss-port", "0",
           "--data-dir", str(data), "--database-url", load_database]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, text=True, cwd=ROOT)
    api = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(f"{api}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("vodfc serve did not start:\n" + log.read_text())
            time.sleep(0.2)
        yield Served(api=api, database_url=load_database, process=process, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
