"""The emulator's configuration: one dataclass, every knob with a development default.

Defaults mimic VOD where VOD documents a value (3000 s credentials, 15 min timestamp window,
3 callback attempts 1 s apart with a 5 s timeout, 100 KB minimum multipart part). Tests turn the
delays down to 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEV_ACCESS_KEY_ID",
    "DEV_ACCESS_KEY_SECRET",
    "DEV_CALLBACK_KEY",
    "EmulatorConfig",
]

# Deliberately not shaped like a real AccessKey (LTAI + 12 alnum trips secret scanners).
DEV_ACCESS_KEY_ID = "vodfc-dev-key"
DEV_ACCESS_KEY_SECRET = "vodfc-dev-secret"
# VOD's AuthKey rule: <= 32 characters with upper case, lower case and digits.
DEV_CALLBACK_KEY = "vodfcDevCallbackKey1"

_TUPLE_FIELDS = ("cors_allowed_origins", "event_types", "definitions", "no_transcode_template_group_ids")
DEFAULT_EVENT_TYPES = (
    "FileUploadComplete",
    "StreamTranscodeComplete",
    "TranscodeComplete",
    "ImageUploadComplete",
    "AttachedMediaUploadComplete",
)


@dataclass
class EmulatorConfig:
    """Everything the emulator can be told; build it directly or with :meth:`from_mapping`."""

    # --- network ---------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    vod_port: int = 0  # 0 = a free port
    oss_port: int = 0
    # Host put in the URLs handed out (UploadAddress.Endpoint, FileUrl). Keep an IP address:
    # oss2 and ali-oss both switch to path-style requests (/<bucket>/<key>) for IP endpoints.
    public_host: str | None = None
    server_threads: int = 8

    # --- the account -------------------------------------------------------------------------------
    region: str = "cn-shanghai"
    account_id: str = "1000000000000000"
    # AccessKeyId -> AccessKeySecret, all belonging to ``account_id``.
    access_keys: Mapping[str, str] = field(default_factory=lambda: {DEV_ACCESS_KEY_ID: DEV_ACCESS_KEY_SECRET})
    timestamp_tolerance_seconds: int = 900  # x-acs-date / Timestamp / Date window (VOD: 15 min)
    default_app_id: str = "app-1000000"
    # Known STS credentials for the OpenAPI: (AccessKeyId, AccessKeySecret, SecurityToken).
    sts_credentials: tuple[tuple[str, str, str], ...] = ()

    # --- storage -----------------------------------------------------------------------------------
    bucket: str = "outin-vodfc-emulator"
    data_dir: Path = Path(".vodfc/oss")
    # Keep the records (media of all kinds, credentials, multipart uploads, issued STS keys) in
    # <data_dir>/emulator-state.sqlite3 and load them on start, so a restart forgets nothing.
    persist: bool = True
    upload_credential_ttl_seconds: int = 3000
    min_part_size: int = 100 * 1024  # OSS: every part but the last >= 100 KB
    max_object_size: int = 48_800 * 1024**3
    # Bytes of finished objects kept on disk; beyond it the oldest objects' bytes are pruned
    # (records, size and MD5 stay; a GET answers 404). None or 0 = no cap.
    max_storage_bytes: int | None = 256 * 1024**2
    # Browser origins allowed by the bucket's CORS rule: exact origins ("*" = any) and, when
    # cors_allow_loopback, every http(s)://localhost / 127.x / [::1] origin on any port.
    cors_allowed_origins: tuple[str, ...] = ()
    cors_allow_loopback: bool = True
    public_read: bool = True  # anonymous GET/HEAD of stored objects (the FileUrl works)

    # --- callbacks ---------------------------------------------------------------------------------
    # "http": POST each event to callback_url (or the media's UserData.MessageCallback.CallbackURL).
    # "mns": write each event's JSON into the in-process SMQ queue mns_queue_name instead
    # (Emulator.mns_queue; consume it with Emulator.mns_trigger); per-media callback URLs are ignored.
    callback_type: str = "http"
    mns_queue_name: str = "vod-events"
    callback_url: str | None = None  # the console's global HTTP callback URL
    callback_auth_key: str | None = DEV_CALLBACK_KEY  # None = AuthSwitch off (no X-VOD-* headers)
    callback_timeout_seconds: float = 5.0
    callback_attempts: int = 3
    callback_retry_interval_seconds: float = 1.0
    event_types: tuple[str, ...] = DEFAULT_EVENT_TYPES  # the events "selected in the console"
    # UserData.Extend in ImageUploadComplete / AttachedMediaUploadComplete: undocumented for
    # these two events (it is for FileUploadComplete); see README.md.
    image_events_echo_extend: bool = True
    # ImageUploadComplete's EventTime: "colon-millis" = yyyy-MM-ddTHH:mm:ss:SSSZ (current page),
    # "seconds" = yyyy-MM-ddTHH:mm:ssZ (2021 page and every other event).
    image_event_time_style: str = "colon-millis"

    # --- fake media processing ------------------------------------------------------------------
    auto_transcode: bool = True  # False: stay at UploadSucc until Emulator.finish_transcode()
    transcode_delay_seconds: float = 2.0
    definitions: tuple[str, ...] = ("LD", "SD")
    no_transcode_template_group_ids: tuple[str, ...] = ("VOD_NO_TRANSCODE",)
    fake_duration_seconds: float = 10.0
    fake_width: int = 1280
    fake_height: int = 720
    fake_fps: int = 25

    # --- CreateUploadVideo with a ReferenceId already used by the account ------------------------
    # VOD documents uniqueness per user but not the answer; see README.md in this package.
    duplicate_reference_id_status: int = 400
    duplicate_reference_id_code: str = "InvalidParameter.ReferenceId"

    def __post_init__(self) -> None:
        # Accept plain values from callers that build the dataclass directly (str paths, lists).
        self.data_dir = Path(self.data_dir)
        for name in _TUPLE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str):
                value = tuple(p.strip() for p in value.split(",") if p.strip())
            setattr(self, name, tuple(value))
        self.sts_credentials = tuple((str(a), str(b), str(c)) for a, b, c in self.sts_credentials)
        if self.callback_type not in ("http", "mns"):
            raise ValueError("callback_type must be 'http' or 'mns'")
        if self.image_event_time_style not in ("colon-millis", "seconds"):
            raise ValueError("image_event_time_style must be 'colon-millis' or 'seconds'")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> EmulatorConfig:
        """Build from plain values (JSON, CLI); unknown keys raise ``TypeError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise TypeError(f"unknown emulator setting(s): {', '.join(unknown)}")
        return cls(**dict(data))

    def replace(self, **changes: Any) -> EmulatorConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)
