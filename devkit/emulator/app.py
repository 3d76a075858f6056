"""Wiring: :func:`make_emulator` builds an :class:`Emulator` (VOD OpenAPI + OSS + events).

Typical use::

    emu = make_emulator({"callback_url": "http://127.0.0.1:9000/callbacks/vod"}).start()
    print(emu.describe())          # URLs, dev AccessKey, callback key
    ...                            # point VOD_ENDPOINT at emu.vod_url
    emu.drain()                    # wait for pending callbacks / fake transcoding
    emu.stop()

The two WSGI apps (``emu.vod_app``, ``emu.oss_app``) can also be mounted elsewhere; then set
``public_host``/``oss_port`` so the UploadAddress points at wherever the OSS app is served.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Any

from .config import EmulatorConfig
from .events import EventEngine, Scheduler
from .faults import FaultPlan, Faults
from .mns import MnsQueue, MnsTrigger
from .oss import OssApp
from .persist import STATE_FILE_NAME, StateFile
from .state import ApiCredential, Asset, AttachedMedia, Delivery, EmulatorState, Image, Video
from .storage import ObjectStore
from .vod_api import VodApi
from .wsgi import Request, Response, WsgiApp

if TYPE_CHECKING:
    import httpx

__all__ = ["Emulator", "EmulatorConfig", "ServerThread", "make_emulator"]


class ServerThread:
    """One waitress server on a loopback port, run by a thread, stoppable."""

    def __init__(self, app: WsgiApp, *, host: str, port: int, threads: int, name: str, ident: str) -> None:
        from waitress.server import create_server

        self._map: dict[int, Any] = {}
        self._server: Any = create_server(
            app, map=self._map, host=host, port=port, threads=threads, ident=ident, asyncore_use_poll=True
        )
        self.host = host
        self.port: int = int(self._server.effective_port)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()

    def _run(self) -> None:
        from waitress import wasyncore

        try:
            while not self._stop.is_set():
                wasyncore.loop(timeout=0.5, map=self._map, use_poll=True, count=1)
        finally:
            for channel in list(self._map.values()):
                with contextlib.suppress(OSError):
                    channel.close()
            self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)

    def close(self) -> None:
        """Release the socket and workers of a server that was never started."""
        self._server.close()
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, close connections, join the thread."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._server.pull_trigger()
        if self._thread.is_alive():
            self._thread.join(timeout)


class Emulator:
    """VOD's OpenAPI, OSS and event notifications, in one process."""

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        clock: Callable[[], float] = time.time,
        callback_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.state_file = StateFile(config.data_dir / STATE_FILE_NAME) if config.persist else None
        self.state = EmulatorState(self.state_file)
        self.restored = self.state.restore()
        self.faults = Faults()
        self.scheduler = Scheduler()
        self._install_api_keys()
        self.store = ObjectStore(config.data_dir, max_bytes=config.max_storage_bytes)
        self.mns_queue = MnsQueue(
            config.mns_queue_name, region=config.region, account_id=config.account_id, clock=clock
        )
        self._triggers: list[MnsTrigger] = []
        self.engine = EventEngine(
            config,
            self.state,
            self.faults,
            self.scheduler,
            clock=clock,
            oss_base_url=lambda: self.oss_url,
            transport=callback_transport,
            mns_queue=self.mns_queue,
        )
        self.oss_app = OssApp(config, self.state, self.faults, self.engine, clock=clock, store=self.store)
        self.vod_app = VodApi(
            config,
            self.state,
            self.faults,
            self.engine,
            clock=clock,
            oss_base_url=lambda: self.oss_url,
            storage_delete=self.oss_app.delete_media_files,
            admin=self._admin,
        )
        self._vod_server: ServerThread | None = None
        self._oss_server: ServerThread | None = None

    def _install_api_keys(self) -> None:
        for key_id, secret in self.config.access_keys.items():
            self.state.add_api_credential(ApiCredential(key_id, secret, self.config.account_id))
        for key_id, secret, token in self.config.sts_credentials:
            self.state.add_api_credential(ApiCredential(key_id, secret, self.config.account_id, token))

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Serve both apps on loopback (free ports unless configured); returns self."""
        if self._vod_server is not None:
            return self
        cfg = self.config
        oss_server = ServerThread(
            self.oss_app,
            host=cfg.host,
            port=cfg.oss_port,
            threads=cfg.server_threads,
            name="oss-emulator",
            ident="AliyunOSS",
        )
        try:
            vod_server = ServerThread(
                self.vod_app,
                host=cfg.host,
                port=cfg.vod_port,
                threads=cfg.server_threads,
                name="vod-emulator",
                ident="Tengine",
            )
        except BaseException:
            oss_server.close()
            raise
        self._oss_server, self._vod_server = oss_server, vod_server
        oss_server.start()
        vod_server.start()
        self.scheduler.start()
        self.engine.resume()
        return self

    def stop(self) -> None:
        """Stop the servers and the event thread (pending events are dropped)."""
        for server in (self._vod_server, self._oss_server):
            if server is not None:
                server.stop()
        self._vod_server = self._oss_server = None
        for trigger in self._triggers:
            trigger.stop()
        self.scheduler.stop()
        self.engine.close()
        if self.state_file is not None:
            self.state_file.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def access_key_id(self) -> str:
        """The first configured AccessKeyId (the dev key by default)."""
        return next(iter(self.config.access_keys))

    @property
    def access_key_secret(self) -> str:
        """Its secret (a development value, never a real one)."""
        return self.config.access_keys[self.access_key_id]

    def _url(self, port: int) -> str:
        # A wildcard bind address is reached on loopback; an IPv6 address goes in brackets.
        from devkit.local import api_url

        return api_url(self.config.public_host or self.config.host, port)

    @property
    def vod_url(self) -> str:
        """Base URL of the OpenAPI (the VOD endpoint), e.g. ``http://127.0.0.1:40123``."""
        return self._url(self._vod_server.port if self._vod_server else self.config.vod_port)

    @property
    def oss_url(self) -> str:
        """Base URL of OSS, as put in ``UploadAddress.Endpoint``."""
        return self._url(self._oss_server.port if self._oss_server else self.config.oss_port)

    def urls(self) -> dict[str, str]:
        """The addresses to hand to clients."""
        return {"vod": self.vod_url, "oss": self.oss_url, "admin": f"{self.vod_url}/_emulator/state"}

    def describe(self) -> str:
        """Human-readable summary: URLs, dev key id, callback target (no secrets)."""
        cfg = self.config
        lines = [
            f"VOD OpenAPI emulator: {self.vod_url}  (region {cfg.region}, "
            f"AccessKeyId {', '.join(cfg.access_keys) or '-'})",
            f"OSS emulator:         {self.oss_url}  (bucket {cfg.bucket}, data in {cfg.data_dir})",
            f"Admin:                {self.vod_url}/_emulator/state | /faults | /reset | /drain",
            (
                f"Callbacks:            SMQ queue {self.mns_queue.arn} (in process)"
                if cfg.callback_type == "mns"
                else f"Callbacks:            {cfg.callback_url or 'per-media MessageCallback only'}"
                + ("  (signed with the configured auth key)" if cfg.callback_auth_key else "  (unsigned)")
            ),
        ]
        return "\n".join(lines)

    def print_urls(self, file: IO[str] | None = None) -> None:
        """Print :meth:`describe` (stdout by default)."""
        print(self.describe(), file=file or sys.stdout, flush=True)

    # --- test hooks -----------------------------------------------------------------------------

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every pending event (transcoding, callback attempts) has run.

        With MNS triggers (:meth:`mns_trigger`), also until they have pushed every message.
        """
        deadline = time.monotonic() + timeout
        if not self.scheduler.drain(timeout):
            return False
        for trigger in self._triggers:
            if not trigger.drain(max(0.0, deadline - time.monotonic())):
                return False
        return self.scheduler.drain(max(0.0, deadline - time.monotonic()))

    def mns_trigger(
        self, handler: Callable[[bytes, Any], Any], *, start: bool = True, **options: Any
    ) -> MnsTrigger:
        """An FC SMQ queue trigger on :attr:`mns_queue` calling ``handler(event, context)``.

        ``options`` are :class:`devkit.emulator.mns.MnsTrigger`'s (shape, base64_body, batch_size,
        retry_delays, dead_letter, ...). The emulator stops it with itself and waits for it in
        :meth:`drain`. Events reach the queue only with ``callback_type="mns"``.
        """
        trigger = MnsTrigger(self.mns_queue, handler, **options)
        self._triggers.append(trigger)
        return trigger.start() if start else trigger

    def reset(self) -> None:
        """Forget media, credentials, uploads, deliveries and faults; delete stored files."""
        self.scheduler.clear()
        self.scheduler.drain(10)
        self.state.clear()
        self.mns_queue.clear()
        self.faults.clear()
        self._install_api_keys()
        self.store.wipe([self.config.bucket])

    def set_faults(self, **changes: Any) -> FaultPlan:
        """Inject faults (see :class:`devkit.emulator.faults.FaultPlan`); returns the plan."""
        return self.faults.set(**changes)

    def clear_faults(self) -> None:
        """No more faults."""
        self.faults.clear()

    def issue_api_credentials(self, ttl: float = 3600.0) -> ApiCredential:
        """An STS-style credential the OpenAPI accepts (id ``STS.…`` + secret + token) until ``ttl``."""
        return self.state.issue_api_sts(self.config.account_id, now=self.clock(), ttl=ttl)

    def expire_upload_credentials(self, media_id: str | None = None) -> int:
        """Make the OSS credentials of one asset (video, image, attached media; or all) expire now."""
        return self.state.expire_upload_credentials(media_id, now=self.clock())

    def finish_transcode(self, video_id: str, *, success: bool = True) -> bool:
        """End fake transcoding now (with ``auto_transcode=False``); events are queued."""
        return self.engine.finish_transcode(video_id, success=success)

    def media(self, media_id: str) -> Asset | None:
        """The record of any kind (:class:`Video`, :class:`Image`, :class:`AttachedMedia`), if any."""
        with self.state.lock:
            return self.state.assets.get(media_id)

    def video(self, video_id: str) -> Video | None:
        """The video record, if it exists."""
        asset = self.media(video_id)
        return asset if isinstance(asset, Video) else None

    def image(self, image_id: str) -> Image | None:
        """The image record, if it exists."""
        asset = self.media(image_id)
        return asset if isinstance(asset, Image) else None

    def attached_media(self, media_id: str) -> AttachedMedia | None:
        """The attached-media record, if it exists."""
        asset = self.media(media_id)
        return asset if isinstance(asset, AttachedMedia) else None

    @property
    def deliveries(self) -> list[Delivery]:
        """Callback records, oldest first (the last 1000)."""
        with self.state.lock:
            return list(self.state.deliveries)

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /_emulator/state`` answers (no secrets)."""
        cfg = self.config
        return {
            "urls": self.urls(),
            "config": {
                "region": cfg.region,
                "bucket": cfg.bucket,
                "access_key_ids": sorted(cfg.access_keys),
                "callback_type": cfg.callback_type,
                "callback_url": cfg.callback_url,
                "callback_signed": bool(cfg.callback_auth_key),
                "event_types": list(cfg.event_types),
                "upload_credential_ttl_seconds": cfg.upload_credential_ttl_seconds,
                "transcode_delay_seconds": cfg.transcode_delay_seconds,
                "auto_transcode": cfg.auto_transcode,
                "persist": cfg.persist,
            },
            "faults": self.faults.plan().to_dict(),
            "pending_events": self.scheduler.pending(),
            "mns_queue": self.mns_queue.snapshot(),
            "storage": {"data_dir": str(cfg.data_dir), **self.store.usage()},
            **self.state.snapshot(now=self.clock()),
        }

    # --- /_emulator/* ---------------------------------------------------------------------------

    def _admin(self, req: Request) -> Response:
        route = req.path[len("/_emulator/") :].strip("/")
        try:
            body = req.read_body(64 * 1024) or b""
            data: Any = json.loads(body) if body.strip() else {}
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            if route == "state" and req.method == "GET":
                return Response.json(200, self.snapshot())
            if route == "faults" and req.method == "GET":
                return Response.json(200, self.faults.plan().to_dict())
            if route == "faults" and req.method == "POST":
                return Response.json(200, self.faults.update_from_json(data).to_dict())
            if route == "faults" and req.method == "DELETE":
                self.faults.clear()
                return Response.json(200, self.faults.plan().to_dict())
            if route == "reset" and req.method == "POST":
                self.reset()
                return Response.json(200, {"reset": True})
            if route == "drain" and req.method == "POST":
                timeout = float(req.query().get("timeout") or data.get("timeout") or 30)
                return Response.json(200, {"drained": self.drain(timeout)})
            if route == "transcode" and req.method == "POST":
                ok = self.finish_transcode(
                    str(data.get("VideoId", "")), success=bool(data.get("success", True))
                )
                return Response.json(200 if ok else 404, {"finished": ok})
            if route == "expire" and req.method == "POST":
                media_id = data.get("MediaId") or data.get("ImageId") or data.get("VideoId")
                return Response.json(
                    200, {"expired": self.expire_upload_credentials(media_id and str(media_id))}
                )
        except (ValueError, TypeError) as exc:
            return Response.json(400, {"error": str(exc)})
        return Response.json(404, {"error": f"no admin route {req.method} /_emulator/{route}"})


def make_emulator(
    config: EmulatorConfig | Mapping[str, Any] | None = None,
    *,
    clock: Callable[[], float] = time.time,
    callback_transport: httpx.BaseTransport | None = None,
    **overrides: Any,
) -> Emulator:
    """Build (not start) an emulator from a config object, a plain mapping, and/or keyword overrides."""
    if config is None:
        cfg = EmulatorConfig()
    elif isinstance(config, EmulatorConfig):
        cfg = config
    else:
        cfg = EmulatorConfig.from_mapping(config)
    if overrides:
        cfg = EmulatorConfig.from_mapping({**_as_mapping(cfg), **overrides})
    return Emulator(cfg, clock=clock, callback_transport=callback_transport)


def _as_mapping(cfg: EmulatorConfig) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
