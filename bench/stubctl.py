"""Start, query and stop the HTTPS VOD stub (:mod:`bench.stub`) from the orchestrating process."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.tls import TlsFiles

__all__ = ["Stub"]


class Stub:
    """The stub in its own process, so it never competes for the measured process's GIL."""

    def __init__(self, tls: TlsFiles, *, host: str = "127.0.0.1") -> None:
        self.tls = tls
        self.host = host
        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.stub",
                "--cert",
                str(tls.server_cert),
                "--key",
                str(tls.server_key),
                "--host",
                host,
            ],
            cwd=root,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"stub did not start: {line!r}")
        self.port = int(line.split()[1])
        self._ctx = ssl.create_default_context(cafile=str(tls.ca_cert))

    @property
    def endpoint(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    def _call(self, method: str, path: str, query: dict[str, str] | None = None) -> dict[str, Any]:
        conn = http.client.HTTPSConnection(self.host, self.port, context=self._ctx, timeout=30)
        try:
            conn.request(method, path + ("?" + urlencode(query) if query else ""))
            return json.loads(conn.getresponse().read())  # type: ignore[no-any-return]
        finally:
            conn.close()

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/__stats")

    def reset(self) -> None:
        self._call("POST", "/__reset")

    def videos(self) -> dict[str, dict[str, str]]:
        return self._call("GET", "/__videos")["videos"]  # type: ignore[no-any-return]

    def configure(self, **query: str) -> None:
        self._call("POST", "/__config", query)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Stub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
