"""``vodfc serve``: the deployed FC 2.0 WSGI handlers behind waitress, at template.yml's routes.

Offline by default: SQLite under ``.vodfc/``, ``AUTH_MODE=none``, and the emulated VOD and OSS
(devkit.emulator) unless ``--vod-endpoint`` is given. Cleanup runs on the template's cron (or
``--cleanup-every``). The app's notifications go to the stack's own sink (``devkit.webhook_sink``)
unless ``WEBHOOK_URL`` is set.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

from devkit.handlers import load_handler_module
from devkit.template import ROOT, Template, load_template, next_fire
from devkit.webhook_sink import SINK_PATH, WebhookSink

log = logging.getLogger("vodfc.serve")

DEV_CALLBACK_KEY = "VodfcDev2024Key"  # <= 32 chars, upper, lower and digits, like VOD requires
# The local sink's secret (public: local runs only): "whsec_" + Base64 of 32 bytes.
DEV_WEBHOOK_SECRET = "whsec_dm9kZmMtbG9jYWwtZGV2LXdlYmhvb2stc2VjcmV0ISE="
DEMO_DIR = ROOT / "examples" / "web"

StartResponse = Callable[..., Any]


class Gateway:
    """The custom domain: routes a request to the function template.yml names, FC 2.0 style."""

    def __init__(
        self, template: Template, modules: dict[str, ModuleType], *, demo_dir: Path = DEMO_DIR
    ) -> None:
        self.template = template
        self.modules = modules
        self.demo_dir = demo_dir
        self.sink = WebhookSink()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        from shared.context import ContextCredentials, FakeContext, FunctionMeta

        path = environ.get("PATH_INFO") or "/"
        if path in ("/demo", "/demo/") or path.startswith("/demo/"):
            return self._static(path, start_response)
        if path == SINK_PATH:
            return self.sink(environ, start_response)
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"ok":true}']
        name = self.template.route(path)
        if name is None:
            return _error(start_response, "404 Not Found", "InvalidApi.NotFound", f"No route for {path}.")
        function = self.template.functions[name]
        if environ.get("REQUEST_METHOD", "GET") not in function.http_methods:
            return _error(start_response, "405 Method Not Allowed", "MethodNotAllowed", "Method not allowed.")
        context = FakeContext(
            request_id=str(uuid.uuid4()),
            credentials=ContextCredentials(
                access_key_id=os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", ""),
                access_key_secret=os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ""),
                security_token=os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN", ""),
            ),
            function=FunctionMeta(name=name, handler=function.handler),
        )
        query = environ.get("QUERY_STRING")
        # FC hands over the raw (still percent-encoded) URI; PATH_INFO is already decoded.
        raw_path = quote(path.encode("latin-1"), safe="/")
        environ = {
            **environ,
            "fc.context": context,
            "fc.request_uri": raw_path + (f"?{query}" if query else ""),
        }
        result: Iterable[bytes] = self.modules[name].handler(environ, start_response)
        return result

    def _static(self, path: str, start_response: StartResponse) -> Iterable[bytes]:
        rel = path[len("/demo") :].lstrip("/") or "index.html"
        target = (self.demo_dir / rel).resolve()
        if not target.is_file() or self.demo_dir.resolve() not in target.parents:
            return _error(start_response, "404 Not Found", "NotFound", "No such file.")
        types = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"}
        start_response("200 OK", [("Content-Type", types.get(target.suffix, "application/octet-stream"))])
        return [target.read_bytes()]


def _error(start_response: StartResponse, status: str, code: str, message: str) -> list[bytes]:
    body = json.dumps({"RequestId": str(uuid.uuid4()), "Code": code, "Message": message}).encode()
    start_response(status, [("Content-Type", "application/json")])
    return [body]


class CleanupTimer(threading.Thread):
    """Fires the cleanup handler on the template's cron, or every N seconds."""

    def __init__(
        self, module: ModuleType, cron: str | None, every: float | None, payload: str | None
    ) -> None:
        super().__init__(name="vodfc-cleanup", daemon=True)
        self.module, self.cron, self.every, self.payload = module, cron, every, payload
        self.stopped = threading.Event()

    def next_delay(self) -> float:
        if self.every:
            return self.every
        now = datetime.now(timezone.utc)
        return max((next_fire(self.cron or "@every 15m", now) - now).total_seconds(), 0.5)

    def fire(self) -> str:
        from shared.context import FakeContext, FunctionMeta

        event = {
            "triggerTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "triggerName": "local-timer",
            "payload": self.payload or "",
        }
        context = FakeContext(request_id=str(uuid.uuid4()), function=FunctionMeta(name="cleanup"))
        result: str = self.module.handler(json.dumps(event).encode(), context)
        return result

    def run(self) -> None:
        while not self.stopped.wait(self.next_delay()):
            try:
                self.fire()
            except Exception:  # the timer must survive a failed run, like FC's
                log.exception("cleanup run failed")


def configure_environment(args: argparse.Namespace, api_url: str, emulator: Any | None) -> None:
    """Defaults for an offline stack; anything already in the environment wins."""
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    defaults = {
        "DATABASE_URL": args.database_url or f"sqlite:///{data_dir / 'vodfc.db'}",
        "AUTH_MODE": "none",
        "CALLBACK_URL": f"{api_url}/callbacks/vod",
        "CALLBACK_AUTH_KEY": DEV_CALLBACK_KEY,
        "ALLOWED_ORIGINS": api_url,
        # The app's notifications go to the stack's own sink unless WEBHOOK_URL names a receiver.
        "WEBHOOK_URL": api_url.replace("//0.0.0.0:", "//127.0.0.1:") + SINK_PATH,
        "WEBHOOK_SECRET": DEV_WEBHOOK_SECRET,
    }
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    if args.vod_endpoint:
        os.environ["VOD_ENDPOINT"] = args.vod_endpoint
    elif emulator is not None:
        os.environ["VOD_ENDPOINT"] = emulator.vod_url
        os.environ.setdefault("ALIBABA_CLOUD_ACCESS_KEY_ID", emulator.access_key_id)
        os.environ.setdefault("ALIBABA_CLOUD_ACCESS_KEY_SECRET", emulator.access_key_secret)
    for key, value in defaults.items():
        os.environ.setdefault(key, value)


def build_stack(args: argparse.Namespace) -> tuple[Gateway, CleanupTimer, Any | None, str]:
    """Start the emulator (unless a real endpoint is given), set the environment, load handlers."""
    api_url = f"http://{args.host}:{args.port}"
    emulator = None
    if not args.vod_endpoint:
        from devkit.emulator.app import EmulatorConfig, make_emulator

        # Extra EmulatorConfig fields as a JSON object (tests), e.g. '{"transcode_delay_seconds": 0.3}'.
        overrides = json.loads(os.environ.get("VODFC_EMULATOR_SETTINGS") or "{}")
        emulator = make_emulator(
            EmulatorConfig(
                host=args.host,
                data_dir=Path(args.data_dir) / "oss",
                callback_url=os.environ.get("CALLBACK_URL", f"{api_url}/callbacks/vod"),
                callback_auth_key=os.environ.get("CALLBACK_AUTH_KEY", DEV_CALLBACK_KEY),
                transcode_delay_seconds=getattr(args, "transcode_delay", 2.0),
                upload_credential_ttl_seconds=getattr(args, "credential_ttl", 3000),
                cors_allowed_origins=(api_url,),
            ),
            **overrides,
        )
        emulator.start()
    configure_environment(args, api_url, emulator)

    from shared.settings import get_settings
    from shared.store import get_store

    get_store(get_settings()).migrate()
    template = load_template()
    modules = {name: load_handler_module(name) for name in template.functions}
    gateway = Gateway(template, modules)
    cleanup = template.functions["cleanup"]
    timer = CleanupTimer(
        modules["cleanup"], cleanup.cron, getattr(args, "cleanup_every", None), cleanup.timer_payload
    )
    return gateway, timer, emulator, api_url


def banner(api_url: str, emulator: Any | None) -> str:
    lines = [
        "vodfc is running (offline stack)" if emulator else "vodfc is running",
        f"  API            {api_url}/uploads",
        f"  callbacks      {api_url}/callbacks/vod",
        f"  demo page      {api_url}/demo",
        f"  notifications  {_notified()}",
    ]
    if emulator is not None:
        lines += [f"  emulated VOD   {emulator.vod_url}", f"  emulated OSS   {emulator.oss_url}"]
    lines += [
        "",
        "Try:",
        f"  curl -s -X POST {api_url}/uploads -H 'Content-Type: application/json' \\",
        '       -d \'{"Title": "My first upload", "FileName": "clip.mp4"}\'',
        f"  .venv/bin/vodfc upload path/to/clip.mp4 --api {api_url}",
    ]
    return "\n".join(lines)


def _notified() -> str:
    url = os.environ.get("WEBHOOK_URL", "")
    if url.endswith(SINK_PATH):
        return f"{url} (the local sink; GET it to see them)"
    from urllib.parse import urlsplit

    return f"your WEBHOOK_URL at {urlsplit(url).hostname}" if url else "off"


def serve(args: argparse.Namespace) -> int:
    """Run until interrupted."""
    from waitress import create_server

    gateway, timer, emulator, api_url = build_stack(args)
    server = create_server(gateway, host=args.host, port=args.port, threads=8, ident="vodfc")
    timer.start()
    print(banner(api_url, emulator), flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        timer.stopped.set()
        server.close()
        if emulator is not None:
            emulator.stop()
    return 0
