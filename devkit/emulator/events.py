"""Media processing and VOD event delivery (HTTP callbacks or SMQ messages), on one background thread.

:class:`Scheduler` runs jobs at their due time, in order, on a single worker thread (so events
of one media are produced in order; deliveries may still interleave, as with VOD).
:class:`EventEngine` moves videos through ``Uploading → UploadSucc → Transcoding → Normal``
(images and attached media: ``Uploading → Normal``) and delivers the callbacks the way VOD does
(https://www.alibabacloud.com/help/en/doc-detail/55627.htm): ``POST`` JSON, success = HTTP 200
only (redirects are failures), 5 s timeout, 3 attempts 1 s apart, ``X-VOD-TIMESTAMP`` /
``X-VOD-SIGNATURE = md5(url|ts|key)`` when an auth key is configured
(https://www.alibabacloud.com/help/en/vod/user-guide/http-callbacks). With ``callback_type="mns"``
the same bytes go into :class:`devkit.emulator.mns.MnsQueue` instead
(https://alibabacloud.com/help/en/vod/user-guide/smq-callbacks).
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.signing import callback_signature

from .config import EmulatorConfig
from .faults import Faults
from .imagesize import image_size
from .mns import MnsError, MnsQueue
from .state import (
    Asset,
    AttachedMedia,
    Delivery,
    EmulatorState,
    Image,
    Video,
    iso_time,
    iso_time_colon_millis,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["EventEngine", "Scheduler", "event_payload"]

log = logging.getLogger("devkit.emulator.events")

# Rough ladder for the fake streams: definition -> (width, height, kbps).
_LADDER = {
    "FD": (480, 270, 300),
    "LD": (640, 360, 400),
    "SD": (848, 480, 800),
    "HD": (1280, 720, 1500),
    "FHD": (1920, 1080, 3000),
    "2K": (2560, 1440, 6000),
    "4K": (3840, 2160, 12000),
}
_USER_AGENT = "Apache-HttpClient/4.5.13 (Java/1.8.0_152) vodfc-emulator"


def event_payload(body: dict[str, Any]) -> bytes:
    """The bytes of one event: the HTTP callback body and, unchanged, the MNS message body.

    Compact UTF-8 JSON, keys in the order the event was built (VOD's samples are compact).
    """
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class Scheduler:
    """Jobs run at their due time on one worker thread; :meth:`drain` waits for all of them."""

    def __init__(self, *, name: str = "vod-emulator-events") -> None:
        self._name = name
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._running = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._stopped = False  # stop() was called: schedule() queues but does not restart

    def start(self) -> None:
        """Start the worker (idempotent; :meth:`schedule` starts it too)."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = self._stopped = False
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker; pending jobs are dropped."""
        with self._cond:
            self._stopping = self._stopped = True
            self._heap.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._cond:
            self._thread = None

    def schedule(self, delay: float, job: Callable[[], None]) -> None:
        """Run ``job`` in ``delay`` seconds (0: as soon as the jobs before it are done)."""
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay), next(self._seq), job))
            self._cond.notify_all()
            stopped = self._stopped
        if not stopped:
            self.start()

    def clear(self) -> None:
        """Drop every pending job."""
        with self._cond:
            self._heap.clear()
            self._cond.notify_all()

    def pending(self) -> int:
        """Jobs waiting or running."""
        with self._cond:
            return len(self._heap) + self._running

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until no job is pending or running; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._heap and self._running == 0, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    self._cond.wait(None if not self._heap else self._heap[0][0] - now)
                if self._stopping:
                    return
                _, _, job = heapq.heappop(self._heap)
                self._running += 1
            try:
                job()
            except Exception:
                log.exception("emulator event job failed")
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()


class EventEngine:
    """Fake media processing plus callback delivery."""

    def __init__(
        self,
        config: EmulatorConfig,
        state: EmulatorState,
        faults: Faults,
        scheduler: Scheduler,
        *,
        clock: Callable[[], float],
        oss_base_url: Callable[[], str],
        transport: httpx.BaseTransport | None = None,
        mns_queue: MnsQueue | None = None,
    ) -> None:
        self.config = config
        self.mns_queue = mns_queue
        self.state = state
        self.faults = faults
        self.scheduler = scheduler
        self.clock = clock
        self.oss_base_url = oss_base_url
        self._transport = transport
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    def close(self) -> None:
        """Close the HTTP client."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # --- media lifecycle ----------------------------------------------------------------------

    def upload_completed(self, media_id: str, *, size: int, md5_hex: str, path: Path | None = None) -> None:
        """An object was stored under an asset's key: record it and fire its upload event.

        Videos go ``UploadSucc`` (FileUploadComplete) and on to fake transcoding; images and
        attached media go straight to ``Normal`` (ImageUploadComplete / AttachedMediaUploadComplete).
        """
        now = self.clock()
        with self.state.lock:
            asset = self.state.assets.get(media_id)
            if asset is None:
                return
            asset.size = size
            asset.file_md5 = md5_hex
            asset.modified = now
            asset.uploads += 1
            if isinstance(asset, Image) and path is not None:
                dims = image_size(path)
                asset.width, asset.height = dims if dims is not None else (None, None)
        if isinstance(asset, Video):
            self._video_uploaded(asset, size, now)
        elif isinstance(asset, Image):
            self._image_uploaded(asset, size, now)
        elif isinstance(asset, AttachedMedia):
            self._attached_uploaded(asset, size, now)

    def _video_uploaded(self, media: Video, size: int, now: float) -> None:
        video_id = media.video_id
        with self.state.lock:
            media.mezzanine_status = "Normal"
            media.status = "UploadSucc"
            no_transcode = (media.template_group_id or "") in self.config.no_transcode_template_group_ids
            body: dict[str, Any] = {
                "Status": "success",
                "EventTime": iso_time(now),
                "EventType": "FileUploadComplete",
                "VideoId": video_id,
                "Size": size,
                "FileUrl": self.file_url(media),
            }
            if media.extend is not None:
                body["Extend"] = media.extend
            if no_transcode:
                media.status = "Normal"
            self.state.save(media)
        self.emit(media, body)
        if no_transcode:
            return
        if self.config.auto_transcode:
            self.schedule_transcode(video_id, self.config.transcode_delay_seconds)

    def resume(self) -> int:
        """After a restart: fake transcoding again for uploaded videos it had not finished."""
        if not self.config.auto_transcode:
            return 0
        waiting = [
            v.video_id
            for v in self.state.of_kind(Video)
            if v.status in ("UploadSucc", "Transcoding") and v.size is not None
        ]
        for video_id in waiting:
            self.schedule_transcode(video_id, self.config.transcode_delay_seconds)
        return len(waiting)

    def schedule_transcode(self, video_id: str, delay: float) -> None:
        """Fake transcoding of an uploaded video: ``Transcoding`` now, finished after ``delay``."""
        self.scheduler.schedule(0, lambda: self._start_transcode(video_id))
        self.scheduler.schedule(delay, lambda: self._end_transcode(video_id))

    def _image_uploaded(self, image: Image, size: int, now: float) -> None:
        # https://alibabacloud.com/help/en/vod/user-guide/imageuploadcomplete: AppId is in every
        # sample though not in the field table; the current page's EventTime has ":SSS" millis.
        with self.state.lock:
            image.status = "Normal"
            colon = self.config.image_event_time_style == "colon-millis"
            body: dict[str, Any] = {
                "Status": "success",
                "FileURL": self.file_url(image),
                "AppId": image.app_id,
                "EventType": "ImageUploadComplete",
                "EventTime": iso_time_colon_millis(now) if colon else iso_time(now),
                "Size": size,
                "ImageId": image.media_id,
            }
            if image.extend is not None and self.config.image_events_echo_extend:
                body["Extend"] = image.extend
            self.state.save(image)
        self.emit(image, body)

    def _attached_uploaded(self, media: AttachedMedia, size: int, now: float) -> None:
        # https://alibabacloud.com/help/en/vod/user-guide/attachedmediauploadcomplete: the id
        # field is AttachedMediaId (the MediaId CreateUploadAttachedMedia answered).
        with self.state.lock:
            media.status = "Normal"
            body: dict[str, Any] = {
                "EventTime": iso_time(now),
                "EventType": "AttachedMediaUploadComplete",
                "AttachedMediaId": media.media_id,
                "Size": size,
                "FileURL": self.file_url(media),
                "Status": "success",
            }
            if media.extend is not None and self.config.image_events_echo_extend:
                body["Extend"] = media.extend
            self.state.save(media)
        self.emit(media, body)

    def _end_transcode(self, video_id: str) -> None:
        self.finish_transcode(video_id)

    def _start_transcode(self, video_id: str) -> None:
        with self.state.lock:
            media = self.state.assets.get(video_id)
            if isinstance(media, Video) and media.status in ("UploadSucc", "Transcoding"):
                media.status = "Transcoding"
                media.modified = self.clock()
                self.state.save(media)

    def finish_transcode(self, video_id: str, *, success: bool = True) -> bool:
        """End the fake transcoding now (events included); False if the media is gone or not uploaded."""
        cfg = self.config
        now = self.clock()
        with self.state.lock:
            media = self.state.assets.get(video_id)
            if not isinstance(media, Video) or media.size is None:
                return False
            duration = cfg.fake_duration_seconds
            base = self.oss_base_url()
            streams: list[dict[str, Any]] = []
            for n, definition in enumerate(cfg.definitions, start=1):
                width, height, kbps = _LADDER.get(definition.upper(), (cfg.fake_width, cfg.fake_height, 1000))
                stream: dict[str, Any] = {
                    "Status": "success" if success else "fail",
                    "Bitrate": str(kbps),
                    "Definition": definition,
                    "Duration": f"{duration:.3f}",
                    "Encrypt": False,
                    "Format": "mp4",
                    "Fps": str(cfg.fake_fps),
                    "Height": height,
                    "Width": width,
                    "Size": int(kbps * 1000 / 8 * duration),
                    "JobId": f"{media.video_id[:24]}{n:08x}",
                    "FileUrl": f"{base}/{cfg.bucket}/{media.video_id}/{definition.lower()}.mp4",
                }
                if not success:
                    stream.update(
                        ErrorCode="InvalidParameter.ResourceContentBad", ErrorMessage="fake failure"
                    )
                streams.append(stream)
            media.modified = now
            if success:
                media.status = "Normal"
                media.duration = duration
                media.width, media.height, media.fps = cfg.fake_width, cfg.fake_height, cfg.fake_fps
                media.bitrate = round(media.size * 8 / duration / 1000, 2) if duration else None
                media.streams = streams
            else:
                media.status = "TranscodeFail"
            self.state.save(media)
            extend = media.extend
        event_time = iso_time(now)
        for stream in streams:
            body: dict[str, Any] = {
                "EventTime": event_time,
                "EventType": "StreamTranscodeComplete",
                "VideoId": media.video_id,
                **stream,
            }
            if extend is not None:
                body["Extend"] = extend
            self.emit(media, body)
        final: dict[str, Any] = {
            "EventTime": event_time,
            "EventType": "TranscodeComplete",
            "VideoId": media.video_id,
            "Status": "success" if success else "fail",
            "StreamInfos": streams,
        }
        if extend is not None:
            final["Extend"] = extend
        self.emit(media, final)
        return True

    def media_deleted(self, media: Video) -> None:
        """DeleteMediaComplete (only if subscribed in ``event_types``)."""
        self.emit(
            media,
            {
                "EventTime": iso_time(self.clock()),
                "EventType": "DeleteMediaComplete",
                "MediaId": media.video_id,
                "MediaType": "video",
                "DeleteType": "all",
                "Status": "success",
            },
        )

    def file_url(self, media: Asset) -> str:
        """Where the stored file can be read (anonymous GET when ``public_read``)."""
        return f"{self.oss_base_url()}/{self.config.bucket}/{media.object_key}"

    # --- delivery -------------------------------------------------------------------------------

    def emit(self, media: Asset, body: dict[str, Any]) -> None:
        """Queue one event for delivery, if its type is subscribed (HTTP POST or SMQ message)."""
        event_type = str(body["EventType"])
        if event_type not in self.config.event_types:
            return
        if self.config.callback_type == "mns":
            # The SMQ configuration is global: UserData.MessageCallback overrides are HTTP only
            # (https://alibabacloud.com/help/en/vod/user-guide/smq-callbacks).
            delivery = Delivery(
                event_type=event_type, media_id=media.media_id, url=None, body=body, channel="mns"
            )
            self.state.record_delivery(delivery)
            self.scheduler.schedule(0, lambda: self._enqueue(delivery, 1))
            return
        url = media.callback_url or self.config.callback_url
        delivery = Delivery(event_type=event_type, media_id=media.media_id, url=url, body=body)
        self.state.record_delivery(delivery)
        if url is None:
            delivery.done = True
            delivery.last_error = "no callback URL configured"
            return
        self.scheduler.schedule(0, lambda: self._attempt(delivery, 1))

    def _enqueue(self, delivery: Delivery, attempt: int) -> None:
        """SMQ delivery: success = the message was written; a failed write is tried 3 times in all."""
        if attempt == 1 and self.faults.take_callback_drop():
            delivery.dropped = delivery.done = True
            return
        assert self.mns_queue is not None
        delivery.attempts = attempt
        try:
            message = self.mns_queue.send(event_payload(delivery.body).decode("utf-8"))
        except MnsError as exc:
            delivery.last_error = f"{exc.code}: {exc}"
            if attempt < self.config.callback_attempts:
                self.scheduler.schedule(
                    self.config.callback_retry_interval_seconds, lambda: self._enqueue(delivery, attempt + 1)
                )
            else:
                delivery.done = True
            return
        delivery.message_id = message.message_id
        delivery.last_error = None
        delivery.delivered = delivery.done = True

    def _http(self) -> httpx.Client:
        import httpx

        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=self.config.callback_timeout_seconds,
                    follow_redirects=False,
                    trust_env=False,  # never send local callbacks through an HTTP(S)_PROXY
                    transport=self._transport,
                )
            return self._client

    def _attempt(self, delivery: Delivery, attempt: int) -> None:
        import httpx

        if attempt == 1 and self.faults.take_callback_drop():
            delivery.dropped = delivery.done = True
            return
        assert delivery.url is not None
        delivery.attempts = attempt
        ts = str(int(self.clock()))
        headers = {"Content-Type": "application/json", "User-Agent": _USER_AGENT}
        if self.config.callback_auth_key:
            headers["X-VOD-TIMESTAMP"] = ts
            headers["X-VOD-SIGNATURE"] = callback_signature(delivery.url, ts, self.config.callback_auth_key)
        payload = event_payload(delivery.body)
        try:
            response = self._http().post(delivery.url, content=payload, headers=headers)
            delivery.last_status = response.status_code
            delivery.last_error = None
        except httpx.HTTPError as exc:
            delivery.last_status = None
            delivery.last_error = f"{type(exc).__name__}: {exc}"
        if delivery.last_status == 200:
            delivery.delivered = delivery.done = True
        elif attempt < self.config.callback_attempts:
            self.scheduler.schedule(
                self.config.callback_retry_interval_seconds, lambda: self._attempt(delivery, attempt + 1)
            )
        else:
            delivery.done = True
            log.warning(
                "callback %s for %s not delivered after %d attempts (%s)",
                delivery.event_type,
                delivery.media_id,
                attempt,
                delivery.last_error or delivery.last_status,
            )
