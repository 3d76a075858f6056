"""Settings: one typed model, read from the environment once per instance.

Only this module reads the environment, and only in :meth:`Settings.from_env`. Services receive a
:class:`Settings`; tests build one directly (``Settings(...)`` never reads the environment, so a
developer's shell cannot change a result). Every field is documented in README.md. Environment
names are the upper-case field names, matched case-insensitively; an empty value means "not set".
List-valued settings are comma-separated strings (``ALLOWED_EXTENSIONS=mp4,mov,webm``).

A plain pydantic model rather than pydantic-settings: the latter imports asyncio, argparse and
dotenv support on every cold start (about 50 ms) for features vodfc does not use.
"""

# No ``from __future__ import annotations`` in a module of pydantic models: pydantic would compile
# and eval each field's annotation string as it builds the class (on FC's python3.10, 0.7 ms for
# the settings, 3 ms for the event models: bench/README.md, cold start).
import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from shared import errors
from shared.states import NOTIFICATION_TYPES
from shared.validation import INT64_MAX  # VOD's FileSize is a Long; the stores keep 64-bit sizes

__all__ = [
    "ATTACHED_MEDIA_EXTENSIONS",
    "DEFAULT_EXTENSIONS",
    "ENV_NAMES",
    "IMAGE_EXTENSIONS",
    "Settings",
    "configured",
    "get_settings",
]

# VOD's supported upload extensions ("Upload overview": video and audio formats),
# https://www.alibabacloud.com/help/en/vod/user-guide/overview-of-media-upload
DEFAULT_EXTENSIONS: tuple[str, ...] = (
    # video
    "3gp", "asf", "avi", "dat", "dv", "flv", "f4v", "gif", "m2t", "m4v", "mj2", "mjpeg", "mkv",
    "mov", "mp4", "mpe", "mpg", "mpeg", "mts", "ogg", "qt", "rm", "rmvb", "swf", "ts", "vob",
    "wmv", "webm", "m3u8",
    # audio
    "aac", "ac3", "acm", "amr", "ape", "caf", "flac", "m4a", "mp3", "ra", "wav", "wma",
)  # fmt: skip

# CreateUploadImage's ImageExt (png is VOD's default; no source lists heic or webp),
# https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-createuploadimage
IMAGE_EXTENSIONS: tuple[str, ...] = ("png", "jpg", "jpeg", "gif")
# CreateUploadAttachedMedia's BusinessType and the MediaExt each allows (apk for material is in the
# current SDK only),
# https://www.alibabacloud.com/help/en/vod/developer-reference/api-vod-2017-03-21-createuploadattachedmedia
ATTACHED_MEDIA_EXTENSIONS: Mapping[str, tuple[str, ...]] = {
    "watermark": ("png", "gif", "apng", "mov"),
    "subtitle": ("srt", "ass", "stl", "ttml", "vtt"),
    "material": ("jpg", "gif", "png", "mp4", "mat", "zip", "apk"),
}


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class Settings(BaseModel):
    """All of vodfc's settings; environment variable = upper-case field name."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    # --- VOD ---------------------------------------------------------------------------------
    vod_region: str = "cn-shanghai"
    vod_endpoint: str | None = None
    vod_signature_version: Literal["v3", "v1"] = "v3"
    vod_connect_timeout: float = Field(2.0, gt=0)
    vod_read_timeout: float = Field(5.0, gt=0)
    vod_deadline_seconds: float = Field(10.0, gt=0)
    vod_max_attempts: int = Field(3, ge=1, le=10)
    alibaba_cloud_access_key_id: str | None = None
    alibaba_cloud_access_key_secret: SecretStr | None = None
    alibaba_cloud_security_token: SecretStr | None = None

    # --- store --------------------------------------------------------------------------------
    database_url: SecretStr = SecretStr("sqlite:///.vodfc/vodfc.db")
    db_connect_timeout: float = Field(3.0, gt=0)
    db_statement_timeout: float = Field(10.0, gt=0)
    db_prepared_statements: bool = True

    # --- authentication of web clients --------------------------------------------------------
    auth_mode: Literal["jwt", "none"] = "jwt"
    jwt_secret: SecretStr | None = None
    jwt_public_key: str | None = None
    jwt_algorithms: tuple[str, ...] = ()
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: int = Field(30, ge=0, le=300)

    # --- VOD callbacks ------------------------------------------------------------------------
    callback_url: str | None = None
    callback_auth_key: SecretStr | None = None
    callback_auth_key_previous: SecretStr | None = None
    callback_max_skew_seconds: int = Field(300, ge=0)
    callback_confirm_with_vod: bool = True
    callback_budget_seconds: float = Field(3.0, gt=0, le=4.5)
    queue_budget_seconds: float = Field(45.0, gt=0, le=600)
    vod_event_delivery: Literal["http", "mns"] = "http"
    upload_binding_key: SecretStr | None = None

    # --- notifications of the app (Standard Webhooks) -------------------------------------------
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_secret_previous: SecretStr | None = None
    webhook_events: tuple[str, ...] = ()
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=60)
    webhook_delivery: Literal["immediate", "timer"] = "immediate"

    # --- HTTP ---------------------------------------------------------------------------------
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = Field(64 * 1024, ge=1024)

    # --- upload policy ------------------------------------------------------------------------
    allowed_extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    max_file_size: int = Field(10 * 1024**3, ge=1, le=INT64_MAX)
    max_pending_uploads_per_owner: int = Field(10, ge=1)
    allowed_image_extensions: tuple[str, ...] = IMAGE_EXTENSIONS
    max_image_size: int = Field(20 * 1024**2, ge=1, le=INT64_MAX)
    allowed_attached_business_types: tuple[str, ...] = tuple(ATTACHED_MEDIA_EXTENSIONS)
    max_attached_media_size: int = Field(1024**3, ge=1, le=INT64_MAX)
    client_extend_max_bytes: int = Field(256, ge=0, le=400)
    default_template_group_id: str | None = None
    allowed_template_group_ids: tuple[str, ...] = ()
    default_workflow_id: str | None = None
    allowed_workflow_ids: tuple[str, ...] = ()
    default_storage_location: str | None = None
    allowed_storage_locations: tuple[str, ...] = ()
    default_app_id: str | None = None
    allowed_app_ids: tuple[str, ...] = ()
    default_cate_id: int | None = None
    allowed_cate_ids: tuple[int, ...] = ()
    credential_refresh_margin_seconds: int = Field(600, ge=0, le=2900)
    idempotency_ttl_seconds: int = Field(24 * 3600, ge=60)

    # --- cleanup ------------------------------------------------------------------------------
    stale_upload_seconds: int = Field(3000 + 3600, ge=1)
    reconcile_schedule_seconds: tuple[int, ...] = (600, 1800, 7200, 86400)
    cleanup_dry_run: bool = False
    cleanup_time_budget_seconds: float = Field(240.0, gt=0)
    cleanup_max_uploads_per_run: int = Field(200_000, ge=1)
    cleanup_max_events_per_run: int = Field(2000, ge=1)
    dedupe_ttl_seconds: int = Field(7 * 24 * 3600, ge=60)
    orphan_ttl_seconds: int = Field(30 * 24 * 3600, ge=60)

    log_level: str = "INFO"

    @field_validator(
        "jwt_algorithms",
        "webhook_events",
        "reconcile_schedule_seconds",
        "allowed_origins",
        "allowed_template_group_ids",
        "allowed_workflow_ids",
        "allowed_storage_locations",
        "allowed_app_ids",
        "allowed_cate_ids",
        "allowed_attached_business_types",
        mode="before",
    )
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("allowed_extensions", "allowed_image_extensions", mode="before")
    @classmethod
    def _split_extensions(cls, value: Any) -> Any:
        value = _split(value)
        if isinstance(value, (tuple, list)):
            return tuple(str(v).lower().lstrip(".") for v in value)
        return value

    @field_validator("allowed_image_extensions")
    @classmethod
    def _image_extensions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # A value VOD does not take would only fail later, at CreateUploadImage.
        unknown = sorted(set(value) - set(IMAGE_EXTENSIONS))
        if unknown:
            raise ValueError(f"ALLOWED_IMAGE_EXTENSIONS takes {', '.join(IMAGE_EXTENSIONS)}; not {unknown}")
        return value

    @field_validator("allowed_attached_business_types")
    @classmethod
    def _business_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(ATTACHED_MEDIA_EXTENSIONS))
        if unknown:
            raise ValueError(
                f"ALLOWED_ATTACHED_BUSINESS_TYPES takes {', '.join(ATTACHED_MEDIA_EXTENSIONS)}; not {unknown}"
            )
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _no_wildcard_origin(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Credentials (Authorization) are sent cross-origin, so a wildcard would be unsafe.
        if "*" in value:
            raise ValueError("ALLOWED_ORIGINS takes exact origins; '*' is not allowed")
        return tuple(v.rstrip("/") for v in value)

    @field_validator("reconcile_schedule_seconds")
    @classmethod
    def _schedule(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(v < 1 for v in value):
            raise ValueError("RECONCILE_SCHEDULE_SECONDS takes positive delays, e.g. 600,1800,7200,86400")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        # HTTPS only, except a loopback receiver for local runs: notifications carry owners' data.
        if value is None:
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        loopback = parts.hostname in ("localhost", "::1") or (parts.hostname or "").startswith("127.")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError("WEBHOOK_URL must be https:// (http:// only on a loopback address)")
        if not parts.hostname or parts.username or parts.password:
            raise ValueError("WEBHOOK_URL needs a host and no user name or password")
        return value

    @field_validator("webhook_secret", "webhook_secret_previous")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        # Standard Webhooks: "whsec_" + Base64 of 24 to 64 random bytes.
        if value is None:
            return None
        import base64
        import binascii

        text = value.get_secret_value()
        if not text.startswith("whsec_"):
            raise ValueError("WEBHOOK_SECRET must look like whsec_<base64 of 24 to 64 bytes>")
        try:
            raw = base64.b64decode(text[6:], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("WEBHOOK_SECRET must look like whsec_<base64 of 24 to 64 bytes>") from None
        if not 24 <= len(raw) <= 64:
            raise ValueError("WEBHOOK_SECRET must hold 24 to 64 bytes")
        return value

    @field_validator("webhook_events")
    @classmethod
    def _known_events(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(NOTIFICATION_TYPES))
        if unknown:
            raise ValueError(
                f"WEBHOOK_EVENTS has unknown types {unknown}; known: {', '.join(NOTIFICATION_TYPES)}"
            )
        return value

    @model_validator(mode="after")
    def _webhooks_signed(self) -> "Settings":
        # Standard Webhooks: every notification is signed, or no receiver could trust it.
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("WEBHOOK_URL needs WEBHOOK_SECRET (whsec_<base64 of 24 to 64 bytes>)")
        if self.webhook_secret_previous is not None and self.webhook_secret is None:
            raise ValueError("WEBHOOK_SECRET_PREVIOUS is only used beside WEBHOOK_SECRET")
        return self

    @field_validator("jwt_public_key")
    @classmethod
    def _pem_newlines(cls, value: str | None) -> str | None:
        # Environment variables often carry PEM with literal "\n".
        return value.replace("\\n", "\n") if value else value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """The settings named in ``environ`` (default ``os.environ``); other fields keep defaults.

        A value the model refuses raises :class:`errors.Misconfigured` (the operator's fault: a 500
        for callers), whose detail names each variable and why, never its value.
        """
        env = os.environ if environ is None else environ
        folded: dict[str, str] = {}
        for key, value in env.items():
            lower = key.lower()
            # An exact upper-case name wins over other spellings of it.
            if lower in _FIELD_NAMES and value != "" and (lower not in folded or key.isupper()):
                folded[lower] = value
        try:
            return cls(**folded)
        except ValidationError as exc:
            raise errors.Misconfigured(_describe(exc)) from None

    # --- derived values -----------------------------------------------------------------------
    @property
    def vod_base_url(self) -> str:
        """VOD's OpenAPI endpoint (``https://vod.<region>.aliyuncs.com`` unless overridden)."""
        return (self.vod_endpoint or f"https://vod.{self.vod_region}.aliyuncs.com").rstrip("/")

    @property
    def effective_jwt_algorithms(self) -> tuple[str, ...]:
        """Accepted JWT algorithms; never mixes HMAC with public-key ones (HS/RS confusion)."""
        if self.jwt_algorithms:
            return self.jwt_algorithms
        return ("RS256", "ES256") if self.jwt_public_key else ("HS256",)

    @property
    def notification_types(self) -> frozenset[str] | None:
        """The notifications written to the outbox: ``None`` (off) without ``WEBHOOK_URL``."""
        if not self.webhook_url:
            return None
        return frozenset(self.webhook_events or NOTIFICATION_TYPES)

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """The ``whsec_`` secrets that sign notifications, the current one first."""
        keys = (self.webhook_secret, self.webhook_secret_previous)
        return tuple(k.get_secret_value() for k in keys if k is not None)

    @property
    def callback_keys(self) -> tuple[str, ...]:
        """Callback auth keys to try, current first, then the previous one during rotation."""
        keys = (self.callback_auth_key, self.callback_auth_key_previous)
        return tuple(k.get_secret_value() for k in keys if k is not None and k.get_secret_value())


_FIELD_NAMES = frozenset(Settings.model_fields)
#: Every environment variable :meth:`Settings.from_env` reads.
ENV_NAMES: tuple[str, ...] = tuple(sorted(name.upper() for name in _FIELD_NAMES))


def _describe(exc: ValidationError) -> str:
    """``invalid settings: NAME: why; ...`` (pydantic's messages; ``hide_input_in_errors`` and
    the validators' own messages keep every value, secrets included, out of it)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        message = error["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's own
        parts.append(f"{name}: {message}")
    return "invalid settings: " + "; ".join(parts)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The instance's settings, built once; ``get_settings.cache_clear()`` resets it in tests.

    Raises :class:`errors.Misconfigured` when the environment holds an invalid value (not cached:
    every invocation answers with it until the function is redeployed with a valid one).
    """
    return Settings.from_env()


@lru_cache(maxsize=1)
def _defaults() -> Settings:
    return Settings()


def configured() -> tuple[Settings, errors.Misconfigured | None]:
    """What an FC entry point starts from: the instance's settings and ``None``; or, when the
    environment holds an invalid value, the defaults (only to log and answer with) and the error
    to answer every invocation with, a 500 ``ServerMisconfigured`` without a traceback."""
    try:
        return get_settings(), None
    except errors.Misconfigured as exc:
        return _defaults(), exc
