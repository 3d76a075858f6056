"""``vodfc serve`` as a process, for the tests that run the whole local stack.

``Serve`` runs ``vodfc serve`` with an explicit environment (PATH, HOME and what a test adds:
nothing of the developer's shell), its data in a given directory, on three consecutive free ports
(the API's and, by default, the emulator's two after it), and waits for its "vodfc ready" line. It
can be stopped and started again on the same ports and data (a restart).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["ROOT", "VENV", "Serve", "bare_env", "free_port_trio", "port_is_free"]

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parents[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_trio() -> int:
    """A port whose next two ports are free too (``vodfc serve``'s default emulator ports)."""
    for _ in range(200):
        port = random.randrange(20_000, 30_000)
        if all(port_is_free(p) for p in (port, port + 1, port + 2)):
            return port
    raise AssertionError("no three consecutive free ports")


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    """A fresh shell's environment: PATH and HOME, and nothing of vodfc's."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "PYTHONUNBUFFERED": "1", **extra}


@dataclass
class Serve:
    """``vodfc serve --port P --data-dir D [args]``, as a process."""

    port: int
    data_dir: Path
    home: Path
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None
    output: str = ""

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        base = [sys.executable, "-m", "devkit.cli", "serve", "--port", str(self.port)]
        return [*base, "--data-dir", str(self.data_dir), *self.args]

    def start(self, timeout: float = 60) -> Serve:
        log = self.data_dir.parent / f"serve-{self.port}.log"
        with log.open("w") as out:
            self.process = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=bare_env(self.home, **self.env),
                cwd=ROOT,
                text=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.output = log.read_text()
            if "vodfc ready" in self.output:
                return self
            if self.process.poll() is not None:
                raise AssertionError(f"vodfc serve exited with {self.process.returncode}:\n{self.output}")
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"vodfc serve printed no 'ready' line within {timeout} s:\n{self.output}")

    def stop(self) -> None:
        """Ctrl-C, as a user stops it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def line(self, label: str) -> str:
        """The address printed after ``label`` (e.g. "emulated OSS")."""
        for line in self.output.splitlines():
            if line.strip().startswith(label):
                return line.split()[-1]
        raise AssertionError(f"no {label!r} line in:\n{self.output}")

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.api + path, timeout=10, trust_env=False)

    def post(self, path: str, body: object | None = None) -> httpx.Response:
        return httpx.post(self.api + path, json=body, timeout=10, trust_env=False)
