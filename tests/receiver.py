"""A real webhook receiver on the loopback interface, for the tests of the sending side.

The deliverer speaks HTTP over ``http.client`` (shared/webhooks.py), so its requests are caught
on a real socket rather than by respx. Each request is handed to the test as an
``httpx.Request`` and answered from an ``httpx.Response`` (the models respx uses), so a test reads
as before: ``receiver.answer(httpx.Response(503))``, ``receiver.calls[-1].request.headers``.

An answer is an ``httpx.Response``, a callable taking the ``httpx.Request`` and returning one (it
may raise or sleep: a slow receiver), :data:`DROP` (the connection is closed with no answer) or a
:class:`Stall` (no answer for that long, then the connection is closed). Answers given together
are used in turn, the last one for every later request. HTTP/1.1 with keep-alive, so connection
reuse is observable (:attr:`Receiver.connections`); ``idle_timeout`` closes idle connections;
``tls`` serves HTTPS instead.
"""

from __future__ import annotations

import http.server
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx

__all__ = ["DROP", "Call", "Receiver", "Stall"]

DROP: Final = "drop"


@dataclass(frozen=True)
class Stall:
    """No answer for ``seconds``; then the connection is closed."""

    seconds: float


@dataclass(frozen=True)
class Call:
    request: httpx.Request
    response: httpx.Response | None  # None: no answer was given (DROP, Stall, a raising callable)


Answer = httpx.Response | Callable[[httpx.Request], httpx.Response] | str | Stall


class Receiver:
    """A threaded HTTP(S) server on 127.0.0.1; :attr:`url` is its endpoint (``path`` on it)."""

    def __init__(
        self,
        path: str = "/vodfc?token=receiver-path-token",
        *,
        tls: ssl.SSLContext | None = None,
        idle_timeout: float | None = None,
    ) -> None:
        self.calls: list[Call] = []
        self.connections = 0
        self._answers: list[Answer] = [httpx.Response(200)]
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, idle_timeout))
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]  # a refused TLS handshake
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}{path}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def answer(self, *answers: Answer) -> Receiver:
        """Answer the next requests with ``answers`` in turn (the last one from then on)."""
        if not answers:
            raise ValueError("at least one answer")
        with self._lock:
            self._answers = list(answers)
        return self

    @property
    def requests(self) -> list[httpx.Request]:
        return [c.request for c in self.calls]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self) -> Answer:
        with self._lock:
            return self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler(receiver: Receiver, idle_timeout: float | None) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = idle_timeout  # a connection idle this long is closed by the receiver

        def setup(self) -> None:
            super().setup()
            with receiver._lock:
                receiver.connections += 1

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            host = self.headers.get("Host", "127.0.0.1")
            scheme = receiver.url.split(":", 1)[0]
            request = httpx.Request(
                "POST", f"{scheme}://{host}{self.path}", headers=list(self.headers.items()), content=body
            )
            answer = receiver._next()
            response: httpx.Response | None = None
            try:
                if answer == DROP:
                    return
                if isinstance(answer, Stall):
                    time.sleep(answer.seconds)
                    return
                response = answer if isinstance(answer, httpx.Response) else answer(request)  # type: ignore[operator]
            except Exception:  # a callable that raises: no answer, like DROP
                return
            finally:
                with receiver._lock:
                    receiver.calls.append(Call(request, response))
                if response is None:
                    self.close_connection = True
            self._send(response)

        def _send(self, response: httpx.Response) -> None:
            content = response.content
            self.send_response(response.status_code)
            for name, value in response.headers.multi_items():
                if name.lower() not in ("content-length", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            try:
                self.wfile.write(content)
            except (BrokenPipeError, ConnectionResetError):  # the sender stopped reading: allowed
                self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
