"""``vodfc serve``: the deployed FC 2.0 WSGI handlers behind waitress, at template.yml's routes.

Offline by default, on the local defaults of :mod:`devkit.local`: SQLite and the emulated VOD and
OSS (devkit.emulator, on the two ports after the API's, its records and objects kept in the data
directory) unless a VOD endpoint is set. Cleanup runs on the template's cron (or
``--cleanup-every``). ``GET /_vodfc/stack`` describes the stack for ``vodfc invoke --against``.
The app's notifications go to the stack's own sink (``devkit.webhook_sink``) unless
``WEBHOOK_URL`` is set.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from devkit.handlers import load_handler_module
from devkit.local import STACK_PATH, LocalStack, api_url, configured_vod_endpoint, emulator_ports
from devkit.template import ROOT, Template, Timer, load_template, next_fire
from devkit.webhook_sink import SINK_PATH, WebhookSink

if TYPE_CHECKING:
    from devkit.emulator import Emulator
    from devkit.emulator.mns import MnsTrigger
    from shared.settings import Settings

log = logging.getLogger("vodfc.serve")

DEMO_DIR = ROOT / "examples" / "web"

StartResponse = Callable[..., Any]


class Gateway:
    """The custom domain: routes a request to the function template.yml names, FC 2.0 style."""

    def __init__(
        self,
        template: Template,
        modules: dict[str, ModuleType],
        *,
        stack: dict[str, Any] | None = None,
        demo_dir: Path = DEMO_DIR,
    ) -> None:
        self.template = template
        self.modules = modules
        self.stack = json.dumps(stack or {}).encode()
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
        if path == STACK_PATH:
            start_response("200 OK", [("Content-Type", "application/json")])
            return [self.stack]
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
    """Fires the cleanup handler on each of the template's timer triggers (one run at a time), or
    with an empty payload every ``every`` seconds; ``every=0`` disables it."""

    def __init__(self, module: ModuleType, timers: Sequence[Timer], every: float | None) -> None:
        super().__init__(name="vodfc-cleanup", daemon=True)
        self.module, self.every = module, every
        self.timers = tuple(timers) or (Timer("every-15-minutes", "@every 15m", "{}"),)
        self.stopped = threading.Event()

    @property
    def enabled(self) -> bool:
        return self.every != 0

    def next_timer(self, now: datetime) -> tuple[float, Timer]:
        """Seconds until the next run, and the timer that fires then."""
        if self.every:
            return self.every, Timer("local-every", f"@every {self.every}s", "{}")
        when, timer = min(((next_fire(t.cron, now), t) for t in self.timers), key=lambda pair: pair[0])
        return max((when - now).total_seconds(), 0.5), timer

    def fire(self, timer: Timer) -> str:
        from shared.context import FakeContext, FunctionMeta

        event = {
            "triggerTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "triggerName": timer.name,
            "payload": timer.payload or "",
        }
        context = FakeContext(request_id=str(uuid.uuid4()), function=FunctionMeta(name="cleanup"))
        result: str = self.module.handler(json.dumps(event).encode(), context)
        return result

    def run(self) -> None:
        while True:
            delay, timer = self.next_timer(datetime.now(timezone.utc))
            if self.stopped.wait(delay):
                return
            try:
                self.fire(timer)
            except Exception:  # the timer must survive a failed run, like FC's
                log.exception("cleanup run failed")


class StackError(Exception):
    """The stack cannot be built as asked; the message says why and what to do."""


class PortInUse(StackError):
    """A port the stack needs is taken; the message says which and how to choose another."""


def check_ports(host: str, ports: dict[str, int], *, api_port: int) -> None:
    """Raise :class:`PortInUse` naming the first of ``ports`` (what -> port; 0 = any) that is taken."""
    for what, port in ports.items():
        if port and not _port_free(host, port):
            other = _free_port_trio(host, api_port)
            raise PortInUse(
                f"vodfc serve: port {port} ({what}) on {host} is already in use (another vodfc serve?). "
                f"Choose another port: make serve PORT={other}, or vodfc serve --port {other} "
                "(the emulated VOD and OSS take the next two ports; --vod-port/--oss-port pin them)."
            )


def _port_free(host: str, port: int) -> bool:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As waitress binds: a port a stopped server left in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError:
            return False
    return True


def _free_port_trio(host: str, port: int) -> int:
    """The first port above ``port``, in steps of 10, free together with its two emulator ports."""
    for candidate in range(port + 10, min(port + 1000, 65533), 10):
        if all(_port_free(host, p) for p in (candidate, *emulator_ports(candidate))):
            return candidate
    return port + 10


def _ports(args: argparse.Namespace) -> tuple[int, int]:
    vod, oss = emulator_ports(args.port)
    return (vod if args.vod_port is None else args.vod_port, oss if args.oss_port is None else args.oss_port)


@dataclass
class Stack:
    """A built local stack, ready to serve."""

    gateway: Gateway
    timer: CleanupTimer
    emulator: Emulator | None
    local: LocalStack
    settings: Settings


def build_stack(args: argparse.Namespace) -> Stack:
    """Start the emulator (unless a VOD endpoint is set), apply the local defaults, load the handlers.

    Raises :class:`PortInUse` before starting anything when a port it needs is taken.
    """
    from shared.settings import Settings, get_settings
    from shared.store import get_store

    endpoint = configured_vod_endpoint(args.vod_endpoint)
    vod_port, oss_port = _ports(args)
    wanted = {"the API": args.port}
    if endpoint is None:
        wanted |= {"the emulated VOD": vod_port, "the emulated OSS": oss_port}
    check_ports(args.host, wanted, api_port=args.port)

    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    local = LocalStack(
        api_url=api_url(args.host, args.port),
        data_dir=data_dir,
        vod_endpoint=endpoint,
        emulated=endpoint is None,
        database_url=args.database_url,
        events=args.events,
    )
    delivery = Settings.from_env(local.environment()).vod_event_delivery
    if delivery == "mns" and endpoint is not None:
        raise StackError(
            "vodfc serve: --events mns needs the emulated VOD (its in-process queue); a real VOD's "
            "queue is consumed by FC's queue trigger, see docs/DEPLOY.md."
        )
    emulator = None
    if endpoint is None:
        # Extra EmulatorConfig fields as a JSON object (tests), e.g. '{"transcode_delay_seconds": 0.3}'.
        overrides = json.loads(os.environ.get("VODFC_EMULATOR_SETTINGS") or "{}")
        emulator = local.start_emulator(
            Settings.from_env(local.environment()),
            **{
                "host": args.host,
                "vod_port": vod_port,
                "oss_port": oss_port,
                "transcode_delay_seconds": args.transcode_delay,
                "upload_credential_ttl_seconds": args.credential_ttl,
                "max_storage_bytes": args.max_storage_mb * 1024 * 1024 or None,
                "callback_type": delivery,
                **overrides,
            },
        )
        local = local.with_emulator(emulator)
    try:
        env = local.environment()
        for name in set(os.environ) - set(env):
            del os.environ[name]
        os.environ.update(env)
        get_settings.cache_clear()
        settings = get_settings()
        get_store(settings).migrate()
        template = load_template()
        modules = {name: load_handler_module(name) for name in template.functions}
        if emulator is not None and delivery == "mns":
            queue_trigger(emulator, modules["vod_callback"].handler)
    except BaseException:
        if emulator is not None:
            emulator.stop()
        raise
    cleanup = template.functions["cleanup"]
    timer = CleanupTimer(modules["cleanup"], cleanup.timers, args.cleanup_every)
    gateway = Gateway(template, modules, stack=local.describe(settings))
    return Stack(gateway, timer, emulator, local, settings)


def queue_trigger(emulator: Emulator, handler: Callable[[bytes, Any], Any]) -> MnsTrigger:
    """The queue trigger s.yaml deploys, on the emulator's queue: event-streaming batches of up to
    10 messages or 2 s, CloudEvents, exponential-decay retries, then the dead-letter list."""
    from devkit.emulator.mns import exponential_decay_retry_delays

    return emulator.mns_trigger(
        handler,
        shape="fc3-batch",
        batch_size=10,
        batch_window_seconds=2.0,
        retry_delays=exponential_decay_retry_delays(),
        errors_tolerance="ALL",
        dead_letter=[],
    )


def banner(stack: Stack) -> str:
    """What ``vodfc serve`` prints once it listens: the addresses, the data, and one "ready" line."""
    url, emulator = stack.local.api_url, stack.emulator
    lines = [
        f"  API            {url}/uploads",
        f"  callbacks      {url}/callbacks/vod"
        if stack.settings.vod_event_delivery == "http"
        else "  events         the emulated SMQ queue -> FC's queue trigger -> vod_callback",
        f"  demo page      {url}/demo",
        f"  notifications  {_notified(stack.settings)}",
    ]
    if emulator is not None:
        lines += [f"  emulated VOD   {emulator.vod_url}", f"  emulated OSS   {emulator.oss_url}"]
        cap = emulator.config.max_storage_bytes
        kept = f"OSS keeps {cap // 1024**2} MiB, then prunes the oldest" if cap else "OSS never pruned"
        lines.append(
            f"  data           {stack.local.data_dir.resolve()} ({kept}; stop, then rm -rf it to wipe)"
        )
    else:
        lines.append(f"  VOD            {stack.settings.vod_base_url}")
    auth = "AUTH_MODE=none: every caller is 'local'" if stack.settings.auth_mode == "none" else "JWT auth"
    lines += [
        f"  settings       local defaults ({auth}); see README.md, Local defaults",
        "",
        "Try:",
        f"  curl -s -X POST {url}/uploads -H 'Content-Type: application/json' \\",
        '       -d \'{"Title": "My first upload", "FileName": "clip.mp4"}\'',
        f"  .venv/bin/vodfc upload path/to/clip.mp4 --api {url}",
        f"  .venv/bin/vodfc invoke upload_credentials --event events/http/create_upload.json --against {url}",
        "",
        f"vodfc ready: {url} (demo {url}/demo); Ctrl-C stops",
    ]
    return "\n".join(lines)


def _notified(settings: Settings) -> str:
    url = settings.webhook_url or ""
    if url.endswith(SINK_PATH):
        return f"{url} (the local sink; GET it to see them)"
    from urllib.parse import urlsplit

    return f"your WEBHOOK_URL at {urlsplit(url).hostname}" if url else "off (set WEBHOOK_URL)"


def serve(args: argparse.Namespace) -> int:
    """Run until interrupted."""
    from waitress import create_server

    try:
        stack = build_stack(args)
    except StackError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        server = create_server(stack.gateway, host=args.host, port=args.port, threads=8, ident="vodfc")
    except OSError as exc:  # taken since check_ports looked
        if stack.emulator is not None:
            stack.emulator.stop()
        print(f"vodfc serve: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    if stack.timer.enabled:
        stack.timer.start()
    print(banner(stack), flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        stack.timer.stopped.set()
        server.close()
        if stack.emulator is not None:
            stack.emulator.stop()
    return 0
