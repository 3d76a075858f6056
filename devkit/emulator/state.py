"""The emulator's memory: media records, credentials, multipart uploads, nonces, deliveries.

One :class:`EmulatorState` guarded by one re-entrant lock; the WSGI apps and the event thread
call its methods. Object bytes live on disk (see :mod:`devkit.emulator.storage`), never here.
"""

from __future__ import annotations

import base64
import secrets
import string
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Protocol, TypeVar

__all__ = [
    "ApiCredential",
    "Asset",
    "AttachedMedia",
    "Delivery",
    "EmulatorState",
    "Image",
    "Journal",
    "MultipartUpload",
    "Part",
    "UploadCredential",
    "Video",
    "iso_time",
    "iso_time_colon_millis",
]

_ALNUM = string.ascii_letters + string.digits
_A = TypeVar("_A", bound="Asset")


def iso_time(ts: float) -> str:
    """VOD's time format, ``yyyy-MM-ddTHH:mm:ssZ`` (UTC, whole seconds)."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_time_colon_millis(ts: float) -> str:
    """``yyyy-MM-ddTHH:mm:ss:SSSZ``: milliseconds after a *colon*, as the current
    ImageUploadComplete page documents (https://alibabacloud.com/help/en/vod/user-guide/imageuploadcomplete).
    """
    moment = datetime.fromtimestamp(ts, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f":{moment.microsecond // 1000:03d}Z"


def _random_alnum(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


@dataclass(kw_only=True)
class Asset:
    """What every uploaded kind shares: a video, an image or an attached (auxiliary) media.

    One id namespace for all kinds (VOD's ids are random 32-hex strings); ``object_key`` is the
    one OSS object an upload credential for this asset may write.
    """

    kind: ClassVar[str] = "asset"
    media_id: str
    account: str
    seq: int
    object_key: str
    extension: str
    created: float
    modified: float
    app_id: str
    storage_location: str
    status: str = "Uploading"
    title: str | None = None
    description: str | None = None
    tags: str | None = None
    user_data: str | None = None  # raw JSON string as given
    callback_url: str | None = None  # UserData.MessageCallback.CallbackURL
    extend: str | None = None  # UserData.Extend re-encoded as a JSON string
    size: int | None = None
    file_md5: str | None = None
    uploads: int = 0  # completed uploads (an overwrite counts again)


@dataclass(kw_only=True)
class Video(Asset):
    """A video (or audio) record, with the fields GetVideoInfo / GetMezzanineInfo answer."""

    kind: ClassVar[str] = "video"
    file_name: str
    mezzanine_status: str = "Uploading"
    cover_url: str | None = None
    cate_id: int | None = None
    template_group_id: str | None = None
    workflow_id: str | None = None
    reference_id: str | None = None
    declared_size: int | None = None
    duration: float | None = None
    bitrate: float | None = None
    width: int | None = None
    height: int | None = None
    fps: int | None = None
    streams: list[dict[str, Any]] = field(default_factory=list)

    @property
    def video_id(self) -> str:
        """VOD's name for the id of a video."""
        return self.media_id


@dataclass(kw_only=True)
class Image(Asset):
    """An image from CreateUploadImage (statuses ``Uploading`` -> ``Normal``)."""

    kind: ClassVar[str] = "image"
    image_type: str  # "default" | "cover"
    cate_id: int | None = None
    original_file_name: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def image_id(self) -> str:
        """VOD's name for the id of an image."""
        return self.media_id


@dataclass(kw_only=True)
class AttachedMedia(Asset):
    """An auxiliary media from CreateUploadAttachedMedia (watermark, subtitle, material)."""

    kind: ClassVar[str] = "attached"
    business_type: str
    file_name: str | None = None
    declared_size: int | None = None
    cate_ids: list[int] = field(default_factory=list)


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
    media_id: str


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
    media_id: str
    initiated: float
    parts: dict[int, Part] = field(default_factory=dict)


@dataclass
class Delivery:
    """What happened to one callback (for tests and ``/_emulator/state``)."""

    event_type: str
    media_id: str
    url: str | None  # HTTP only
    body: dict[str, Any]
    channel: str = "http"  # "http" | "mns"
    message_id: str | None = None  # MNS only
    attempts: int = 0
    delivered: bool = False
    dropped: bool = False
    last_status: int | None = None
    last_error: str | None = None
    done: bool = False


class Journal(Protocol):
    """Where records are written through (:class:`devkit.emulator.persist.StateFile`)."""

    def put(self, *records: Any) -> None: ...

    def delete(self, *records: Any) -> None: ...

    def load(self) -> list[Any]: ...

    def clear(self) -> None: ...


class EmulatorState:
    """All mutable state, behind one lock (``with state.lock:`` for compound updates).

    ``assets`` maps every media id (videos, images, attached media) to its record; upload
    credentials and multipart uploads point at an asset by ``media_id`` and die with it.
    With a ``journal``, every change to those, and to the STS credentials issued for the
    OpenAPI, is written through under the lock; code that changes a record in place calls
    :meth:`save` before releasing the lock.
    """

    def __init__(self, journal: Journal | None = None) -> None:
        self.journal = journal
        self.lock = threading.RLock()
        self.assets: dict[str, Asset] = {}
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
    def new_media_id() -> str:
        """32 lower-case hex characters, like VOD's VideoId / ImageId / MediaId."""
        return secrets.token_hex(16)

    @staticmethod
    def new_object_key(extension: str, now: float) -> str:
        """``sv/<hex>/<hex>.<ext>``: VOD's layout for videos (random id + millisecond clock, in hex)."""
        uid = f"{secrets.token_hex(4)}{int(now * 1000):011x}"
        return f"sv/{uid}/{uid}.{extension}"

    @staticmethod
    def new_image_key(image_type: str, extension: str) -> str:
        """``image/<type>/<HEX>.<ext>``, the layout of VOD's own examples (informational only)."""
        return f"image/{image_type}/{secrets.token_hex(16).upper()}.{extension}"

    @staticmethod
    def new_attached_key(business_type: str, extension: str) -> str:
        """``attached/<business type>/<hex>.<ext>``."""
        return f"attached/{business_type}/{secrets.token_hex(16)}.{extension}"

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
        with self.lock:
            self.add_api_credential(cred)
            self.save(cred)
        return cred

    def issue_upload_credential(
        self, asset: Asset, *, bucket: str, now: float, ttl: float
    ) -> UploadCredential:
        """An STS-like credential for exactly ``asset.object_key`` (earlier ones stay valid)."""
        cred = UploadCredential(
            access_key_id="STS." + _random_alnum(25),
            access_key_secret=_random_alnum(44),
            # Standard Base64 on purpose: real tokens carry "+", "/" and "=", which clients
            # must escape when the token travels in a query string.
            security_token="CAIS" + base64.b64encode(secrets.token_bytes(240)).decode("ascii"),
            issued_at=now,
            expires_at=now + ttl,
            bucket=bucket,
            key=asset.object_key,
            media_id=asset.media_id,
        )
        with self.lock:
            self.upload_credentials[cred.access_key_id] = cred
            self.save(cred)
        return cred

    def expire_upload_credentials(self, media_id: str | None, *, now: float) -> int:
        """Make the upload credentials of one asset (or all) expired now; returns how many."""
        n = 0
        with self.lock:
            for cred in self.upload_credentials.values():
                if media_id is None or cred.media_id == media_id:
                    cred.expires_at = min(cred.expires_at, now - 1)
                    self.save(cred)
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

    # --- persistence ----------------------------------------------------------------------------

    def save(self, *records: Any) -> None:
        """Write records through to the journal (a no-op without one)."""
        if self.journal is not None and records:
            with self.lock:
                self.journal.put(*records)

    def restore(self) -> int:
        """Load the journal's records (at start, before serving); returns how many."""
        if self.journal is None:
            return 0
        with self.lock:
            records = self.journal.load()
            for record in records:
                if isinstance(record, Asset):
                    self._index(record)
                    self._seq = max(self._seq, record.seq)
                elif isinstance(record, UploadCredential):
                    self.upload_credentials[record.access_key_id] = record
                elif isinstance(record, ApiCredential):
                    self.api_credentials[record.access_key_id] = record
                elif isinstance(record, MultipartUpload):
                    self.multipart[record.upload_id] = record
            return len(records)

    # --- multipart uploads ------------------------------------------------------------------------

    def add_multipart(self, upload: MultipartUpload) -> None:
        """A new multipart upload (or one whose parts changed)."""
        with self.lock:
            self.multipart[upload.upload_id] = upload
            self.save(upload)

    def add_part(self, upload: MultipartUpload, part: Part) -> None:
        """Record an uploaded part (replacing an earlier one with the same number)."""
        with self.lock:
            upload.parts[part.number] = part
            self.save(upload)

    def remove_multipart(self, upload_id: str) -> MultipartUpload | None:
        """Forget a completed or aborted multipart upload."""
        with self.lock:
            upload = self.multipart.pop(upload_id, None)
            if upload is not None and self.journal is not None:
                self.journal.delete(upload)
            return upload

    # --- assets ---------------------------------------------------------------------------------

    def _index(self, asset: Asset) -> None:
        self.assets[asset.media_id] = asset
        if isinstance(asset, Video) and asset.reference_id:
            self.reference_ids[(asset.account, asset.reference_id)] = asset.media_id

    def add_asset(self, asset: Asset) -> None:
        """Store a new record (and a video's ReferenceId)."""
        with self.lock:
            self._index(asset)
            self.save(asset)

    def find(self, account: str, media_id: str, kind: type[_A]) -> _A | None:
        """The account's asset of this kind with this id, if any."""
        with self.lock:
            asset = self.assets.get(media_id)
        return asset if isinstance(asset, kind) and asset.account == account else None

    def find_by_reference(self, account: str, reference_id: str) -> Video | None:
        """The account's video with this ReferenceId, if any."""
        with self.lock:
            video_id = self.reference_ids.get((account, reference_id))
            asset = self.assets.get(video_id) if video_id else None
        return asset if isinstance(asset, Video) else None

    def of_kind(self, kind: type[_A]) -> list[_A]:
        """Every asset of one kind, in creation order."""
        with self.lock:
            return sorted((a for a in self.assets.values() if isinstance(a, kind)), key=lambda a: a.seq)

    def remove_asset(self, asset: Asset) -> list[MultipartUpload]:
        """Forget an asset, its credentials and its multipart uploads (returned, to clean files)."""
        with self.lock:
            self.assets.pop(asset.media_id, None)
            if isinstance(asset, Video) and asset.reference_id:
                self.reference_ids.pop((asset.account, asset.reference_id), None)
            creds = [c for c in self.upload_credentials.values() if c.media_id == asset.media_id]
            for cred in creds:
                del self.upload_credentials[cred.access_key_id]
            gone = [m for m in self.multipart.values() if m.media_id == asset.media_id]
            for upload in gone:
                del self.multipart[upload.upload_id]
            if self.journal is not None:
                self.journal.delete(asset, *creds, *gone)
            return gone

    def record_delivery(self, delivery: Delivery) -> None:
        """Keep an event's delivery record (the last 1000)."""
        with self.lock:
            self.deliveries.append(delivery)

    def clear(self) -> None:
        """Forget everything except the OpenAPI credentials (see ``Emulator.reset``)."""
        with self.lock:
            self.assets.clear()
            self.reference_ids.clear()
            self.upload_credentials.clear()
            self.multipart.clear()
            self.nonces.clear()
            self.scroll_tokens.clear()
            self.deliveries.clear()
            self.request_count = 0
            if self.journal is not None:
                self.journal.clear()
                self.save(*(c for c in self.api_credentials.values() if c.security_token is not None))

    def snapshot(self, *, now: float) -> dict[str, Any]:
        """A JSON-able view for debugging: no secrets, no tokens."""
        with self.lock:
            return {
                "media": [
                    {
                        "VideoId": v.media_id,
                        "Status": v.status,
                        "Title": v.title,
                        "ReferenceId": v.reference_id,
                        "ObjectKey": v.object_key,
                        "Size": v.size,
                        "CreationTime": iso_time(v.created),
                        "CallbackURL": v.callback_url,
                    }
                    for v in self.of_kind(Video)
                ],
                "images": [
                    {
                        "ImageId": i.media_id,
                        "ImageType": i.image_type,
                        "Status": i.status,
                        "Title": i.title,
                        "ObjectKey": i.object_key,
                        "Size": i.size,
                        "Width": i.width,
                        "Height": i.height,
                        "CreationTime": iso_time(i.created),
                        "CallbackURL": i.callback_url,
                    }
                    for i in self.of_kind(Image)
                ],
                "attached_media": [
                    {
                        "MediaId": a.media_id,
                        "BusinessType": a.business_type,
                        "Status": a.status,
                        "Title": a.title,
                        "ObjectKey": a.object_key,
                        "Size": a.size,
                        "CreationTime": iso_time(a.created),
                        "CallbackURL": a.callback_url,
                    }
                    for a in self.of_kind(AttachedMedia)
                ],
                "upload_credentials": [
                    {
                        "AccessKeyId": c.access_key_id,
                        "MediaId": c.media_id,
                        "MediaType": self._kind_of(c.media_id),
                        "Key": c.key,
                        "ExpireUTCTime": iso_time(c.expires_at),
                        "Expired": c.expires_at <= now,
                    }
                    for c in self.upload_credentials.values()
                ],
                "multipart_uploads": [
                    {"UploadId": u.upload_id, "Key": u.key, "MediaId": u.media_id, "Parts": sorted(u.parts)}
                    for u in self.multipart.values()
                ],
                "deliveries": [
                    {
                        "EventType": d.event_type,
                        "MediaId": d.media_id,
                        "Channel": d.channel,
                        "URL": d.url,
                        "MessageId": d.message_id,
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

    def _kind_of(self, media_id: str) -> str | None:
        asset = self.assets.get(media_id)
        return None if asset is None else asset.kind
