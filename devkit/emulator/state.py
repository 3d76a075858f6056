"""The emulator's memory: media records, credentials, multipart uploads, nonces, deliveries.

One :class:`EmulatorState` guarded by one re-entrant lock; the WSGI apps and the event thread
call its methods. Object bytes live on disk (see :mod:`devkit.emulator.oss`), never here.
Nothing here is persisted: a restarted emulator forgets its media (files stay on disk).
"""

from __future__ import annotations

import base64
import secrets
import string
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "ApiCredential",
    "Delivery",
    "EmulatorState",
    "Media",
    "MultipartUpload",
    "Part",
    "UploadCredential",
    "iso_time",
]

_ALNUM = string.ascii_letters + string.digits


def iso_time(ts: float) -> str:
    """VOD's time format, ``yyyy-MM-ddTHH:mm:ssZ`` (UTC, whole seconds)."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _random_alnum(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


@dataclass
class Media:
    """One video record, with the fields GetVideoInfo / GetMezzanineInfo answer."""

    video_id: str
    account: str
    seq: int
    title: str
    file_name: str
    extension: str
    object_key: str
    created: float
    modified: float
    app_id: str
    storage_location: str
    status: str = "Uploading"
    mezzanine_status: str = "Uploading"
    description: str | None = None
    cover_url: str | None = None
    cate_id: int | None = None
    tags: str | None = None
    template_group_id: str | None = None
    workflow_id: str | None = None
    reference_id: str | None = None
    declared_size: int | None = None
    user_data: str | None = None  # raw JSON string as given
    callback_url: str | None = None  # UserData.MessageCallback.CallbackURL
    extend: str | None = None  # UserData.Extend re-encoded as a JSON string
    size: int | None = None
    file_md5: str | None = None
    duration: float | None = None
    bitrate: float | None = None
    width: int | None = None
    height: int | None = None
    fps: int | None = None
    streams: list[dict[str, Any]] = field(default_factory=list)
    uploads: int = 0  # completed uploads (an overwrite after RefreshUploadVideo counts again)


@dataclass
class UploadCredential:
    """A temporary OSS credential issued with CreateUploadVideo / RefreshUploadVideo."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    issued_at: float
    expires_at: float
    bucket: str
    key: str
    video_id: str


@dataclass
class ApiCredential:
    """An AccessKey (or STS credential) accepted by the OpenAPI emulator."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    account: str
    security_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None


@dataclass
class Part:
    """One uploaded part of a multipart upload."""

    number: int
    etag: str  # quoted, upper-case hex MD5
    size: int
    crc64: int | None
    last_modified: float


@dataclass
class MultipartUpload:
    """An initiated multipart upload."""

    upload_id: str
    bucket: str
    key: str
    video_id: str
    initiated: float
    parts: dict[int, Part] = field(default_factory=dict)


@dataclass
class Delivery:
    """What happened to one callback (for tests and ``/_emulator/state``)."""

    event_type: str
    video_id: str
    url: str | None
    body: dict[str, Any]
    attempts: int = 0
    delivered: bool = False
    dropped: bool = False
    last_status: int | None = None
    last_error: str | None = None
    done: bool = False


class EmulatorState:
    """All mutable state, behind one lock (``with state.lock:`` for compound updates)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.media: dict[str, Media] = {}
        self.reference_ids: dict[tuple[str, str], str] = {}  # (account, ReferenceId) -> VideoId
        self.api_credentials: dict[str, ApiCredential] = {}
        self.upload_credentials: dict[str, UploadCredential] = {}
        self.multipart: dict[str, MultipartUpload] = {}
        self.nonces: dict[str, float] = {}  # nonce -> time it may be forgotten
        self.scroll_tokens: OrderedDict[str, tuple[str, int]] = OrderedDict()  # token -> (account, offset)
        self.deliveries: deque[Delivery] = deque(maxlen=1000)
        self.request_count = 0
        self._seq = 0

    # --- identifiers --------------------------------------------------------------------------

    def next_seq(self) -> int:
        """A strictly increasing number (creation order tie-breaker)."""
        with self.lock:
            self._seq += 1
            return self._seq

    @staticmethod
    def new_video_id() -> str:
        """32 lower-case hex characters, like VOD's."""
        return secrets.token_hex(16)

    @staticmethod
    def new_object_key(extension: str, now: float) -> str:
        """``sv/<hex>/<hex>.<ext>``: VOD's layout (random id + millisecond clock, in hex)."""
        uid = f"{secrets.token_hex(4)}{int(now * 1000):011x}"
        return f"sv/{uid}/{uid}.{extension}"

    # --- credentials --------------------------------------------------------------------------

    def add_api_credential(self, cred: ApiCredential) -> None:
        """Accept this key on the OpenAPI from now on."""
        with self.lock:
            self.api_credentials[cred.access_key_id] = cred

    def issue_api_sts(self, account: str, *, now: float, ttl: float) -> ApiCredential:
        """A fresh STS-style credential for the OpenAPI (what an FC role would hand out)."""
        cred = ApiCredential(
            access_key_id="STS." + _random_alnum(25),
            access_key_secret=_random_alnum(44),
            account=account,
            security_token="CAIS" + base64.b64encode(secrets.token_bytes(180)).decode("ascii"),
            expires_at=now + ttl,
        )
        self.add_api_credential(cred)
        return cred

    def issue_upload_credential(
        self, media: Media, *, bucket: str, now: float, ttl: float
    ) -> UploadCredential:
        """An STS-like credential for exactly ``media.object_key`` (earlier ones stay valid)."""
        cred = UploadCredential(
            access_key_id="STS." + _random_alnum(25),
            access_key_secret=_random_alnum(44),
            # Standard Base64 on purpose: real tokens carry "+", "/" and "=", which clients
            # must escape when the token travels in a query string.
            security_token="CAIS" + base64.b64encode(secrets.token_bytes(240)).decode("ascii"),
            issued_at=now,
            expires_at=now + ttl,
            bucket=bucket,
            key=media.object_key,
            video_id=media.video_id,
        )
        with self.lock:
            self.upload_credentials[cred.access_key_id] = cred
        return cred

    def expire_upload_credentials(self, video_id: str | None, *, now: float) -> int:
        """Make the upload credentials of one media (or all) expired now; returns how many."""
        n = 0
        with self.lock:
            for cred in self.upload_credentials.values():
                if video_id is None or cred.video_id == video_id:
                    cred.expires_at = min(cred.expires_at, now - 1)
                    n += 1
        return n

    # --- nonces ---------------------------------------------------------------------------------

    def use_nonce(self, nonce: str, *, now: float, keep_seconds: float) -> bool:
        """Record a signature nonce; False if it was already used within the window."""
        with self.lock:
            if len(self.nonces) > 10_000:
                for old in [n for n, until in self.nonces.items() if until < now]:
                    del self.nonces[old]
            until = self.nonces.get(nonce)
            if until is not None and until >= now:
                return False
            self.nonces[nonce] = now + keep_seconds
            return True

    # --- scroll tokens --------------------------------------------------------------------------

    def new_scroll_token(self, account: str, offset: int) -> str:
        """A 32-character token remembering a SearchMedia position."""
        token = secrets.token_hex(16)
        with self.lock:
            self.scroll_tokens[token] = (account, offset)
            while len(self.scroll_tokens) > 1000:
                self.scroll_tokens.popitem(last=False)
        return token

    # --- media ----------------------------------------------------------------------------------

    def add_media(self, media: Media) -> None:
        """Store a new media record (and its ReferenceId)."""
        with self.lock:
            self.media[media.video_id] = media
            if media.reference_id:
                self.reference_ids[(media.account, media.reference_id)] = media.video_id

    def find_media(self, account: str, video_id: str) -> Media | None:
        """The account's media with this id, if any."""
        with self.lock:
            media = self.media.get(video_id)
            return media if media is not None and media.account == account else None

    def find_by_reference(self, account: str, reference_id: str) -> Media | None:
        """The account's media with this ReferenceId, if any."""
        with self.lock:
            video_id = self.reference_ids.get((account, reference_id))
            return self.media.get(video_id) if video_id else None

    def remove_media(self, media: Media) -> list[MultipartUpload]:
        """Forget a media, its credentials and its multipart uploads (returned, to clean files)."""
        with self.lock:
            self.media.pop(media.video_id, None)
            if media.reference_id:
                self.reference_ids.pop((media.account, media.reference_id), None)
            for ak in [k for k, c in self.upload_credentials.items() if c.video_id == media.video_id]:
                del self.upload_credentials[ak]
            gone = [m for m in self.multipart.values() if m.video_id == media.video_id]
            for upload in gone:
                del self.multipart[upload.upload_id]
            return gone

    def record_delivery(self, delivery: Delivery) -> None:
        """Keep a callback's record (the last 1000)."""
        with self.lock:
            self.deliveries.append(delivery)

    def clear(self) -> None:
        """Forget everything except the configured API keys (see ``Emulator.reset``)."""
        with self.lock:
            self.media.clear()
            self.reference_ids.clear()
            self.upload_credentials.clear()
            self.multipart.clear()
            self.nonces.clear()
            self.scroll_tokens.clear()
            self.deliveries.clear()
            self.request_count = 0

    def snapshot(self, *, now: float) -> dict[str, Any]:
        """A JSON-able view for debugging: no secrets, no tokens."""
        with self.lock:
            return {
                "media": [
                    {
                        "VideoId": m.video_id,
                        "Status": m.status,
                        "Title": m.title,
                        "ReferenceId": m.reference_id,
                        "ObjectKey": m.object_key,
                        "Size": m.size,
                        "CreationTime": iso_time(m.created),
                        "CallbackURL": m.callback_url,
                    }
                    for m in sorted(self.media.values(), key=lambda m: m.seq)
                ],
                "upload_credentials": [
                    {
                        "AccessKeyId": c.access_key_id,
                        "VideoId": c.video_id,
                        "Key": c.key,
                        "ExpireUTCTime": iso_time(c.expires_at),
                        "Expired": c.expires_at <= now,
                    }
                    for c in self.upload_credentials.values()
                ],
                "multipart_uploads": [
                    {"UploadId": u.upload_id, "Key": u.key, "VideoId": u.video_id, "Parts": sorted(u.parts)}
                    for u in self.multipart.values()
                ],
                "deliveries": [
                    {
                        "EventType": d.event_type,
                        "VideoId": d.video_id,
                        "URL": d.url,
                        "Attempts": d.attempts,
                        "Delivered": d.delivered,
                        "Dropped": d.dropped,
                        "LastStatus": d.last_status,
                        "LastError": d.last_error,
                    }
                    for d in self.deliveries
                ],
                "requests": self.request_count,
            }
