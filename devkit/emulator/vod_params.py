"""OpenAPI action errors and parameter rules shared by every emulated VOD action.

Errors have VOD's codes and statuses (https://error-center.alibabacloud.com/status/product/vod); the
text rules (UTF-8 *byte* limits, no characters outside the BMP) are those of CreateUploadVideo
(https://www.alibabacloud.com/help/doc-detail/55407.htm), reused for images and attached media.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .state import UploadCredential, iso_time

__all__ = [
    "MAX_AUTH_TIMEOUT_OSS",
    "MAX_BATCH_IDS",
    "UserData",
    "VodApiError",
    "b64_json",
    "check_text",
    "exceeded_max",
    "ids_param",
    "int_param",
    "invalid",
    "missing",
    "no_such_resource",
    "output_options",
    "parse_user_data",
    "server_error",
    "tags_param",
    "upload_answer",
    "video_not_found",
]

MAX_BATCH_IDS = 20  # GetVideoInfos, DeleteVideo, GetImageInfos, DeleteImage, GetAttachedMediaInfo, ...
# AuthTimeout with OutputType=oss: at most 30 days for VOD's own buckets (GetImageInfo,
# https://www.alibabacloud.com/help/en/vod/api-getimageinfo).
MAX_AUTH_TIMEOUT_OSS = 2_592_000


class VodApiError(Exception):
    """An error answer of one action: its HTTP status and VOD ``Code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def missing(name: str) -> VodApiError:
    """``MissingParameter`` 400."""
    return VodApiError(
        400,
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request is not supplied.',
    )


def invalid(name: str, why: str = "") -> VodApiError:
    """``InvalidParameter`` 400."""
    return VodApiError(400, "InvalidParameter", f"The specified parameter {name} is not valid. {why}".strip())


def exceeded_max(name: str) -> VodApiError:
    """``ExceededMax`` 400, GetAttachedMediaInfo's documented answer to more than 20 ids."""
    return VodApiError(400, "ExceededMax", f"The input parameter '{name}' Exceed the limit.")


def video_not_found() -> VodApiError:
    """``InvalidVideo.NotFound`` 404."""
    return VodApiError(404, "InvalidVideo.NotFound", "The video does not exist.")


def no_such_resource() -> VodApiError:
    """``NoSuchResource`` 404 (GetImageInfo, DeleteImage)."""
    return VodApiError(404, "NoSuchResource", "The specified resource does not exist.")


def server_error(status: int) -> VodApiError:
    """``InternalError`` 500 or ``ServiceUnAvailable`` 503."""
    if status == 500:
        return VodApiError(
            500,
            "InternalError",
            "The request processing has failed due to some unknown error, exception or failure.",
        )
    return VodApiError(
        503, "ServiceUnAvailable", "The request has failed due to a temporary failure of the server."
    )


def b64_json(data: Mapping[str, Any]) -> str:
    """Standard Base64 of compact UTF-8 JSON (UploadAddress, UploadAuth)."""
    return base64.b64encode(json.dumps(data, separators=(",", ":")).encode("utf-8")).decode("ascii")


def check_text(name: str, value: str, max_bytes: int) -> None:
    """At most ``max_bytes`` UTF-8 bytes (``LengthExceededMax``) and no emoji (``IllegalCharacters``)."""
    if len(value.encode("utf-8")) > max_bytes:
        raise VodApiError(400, "LengthExceededMax", f"The {name} length has exceeded {max_bytes} bytes.")
    if any(ord(ch) > 0xFFFF for ch in value):
        raise VodApiError(400, "IllegalCharacters", f"The {name} contains illegal characters.")


def int_param(params: Mapping[str, str], name: str, *, default: int | None = None) -> int | None:
    """An optional integer parameter (``InvalidParameter`` when it is not one)."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise invalid(name, "It must be an integer.") from None


def ids_param(params: Mapping[str, str], name: str) -> list[str]:
    """A comma-separated list, blanks dropped, order and duplicates kept."""
    return [p.strip() for p in params.get(name, "").split(",") if p.strip()]


def tags_param(params: Mapping[str, str]) -> str | None:
    """``Tags``: at most 16 comma-separated tags of at most 32 bytes each, re-joined without blanks."""
    raw = params.get("Tags") or None
    if raw is None:
        return None
    tags = [t.strip() for t in raw.split(",") if t.strip()]
    if len(tags) > 16:
        raise VodApiError(400, "TagsExceededMax", "The Tags exceeded maximum.")
    for tag in tags:
        check_text("Tags", tag, 32)
    return ",".join(tags)


def output_options(params: Mapping[str, str], *, default: str) -> tuple[str, int | None]:
    """``OutputType`` (``oss`` | ``cdn``) and ``AuthTimeout`` (>= 1 s; <= 30 days for ``oss``)."""
    output = params.get("OutputType") or default
    if output not in ("oss", "cdn"):
        raise invalid("OutputType", "It must be oss or cdn.")
    timeout = int_param(params, "AuthTimeout")
    if timeout is not None and (timeout < 1 or (output == "oss" and timeout > MAX_AUTH_TIMEOUT_OSS)):
        raise invalid("AuthTimeout", f"It must be between 1 and {MAX_AUTH_TIMEOUT_OSS} seconds for oss.")
    return output, timeout


@dataclass(frozen=True)
class UserData:
    """``UserData`` as given, plus the two parts the emulator acts on."""

    raw: str | None = None
    callback_url: str | None = None  # MessageCallback.CallbackURL
    extend: str | None = None  # Extend as a JSON string (how callbacks carry it)


def parse_user_data(raw: str | None) -> UserData:
    """Validate ``UserData`` (https://www.alibabacloud.com/help/doc-detail/86952.html).

    A JSON object; ``MessageCallback`` an object (or a JSON string of one, as some docs show)
    whose ``CallbackURL`` is an http(s) URL of at most 256 bytes; ``Extend`` at most 512 bytes.
    """
    if raw is None:
        return UserData()
    try:
        data = json.loads(raw)
    except ValueError:
        raise invalid("UserData", "It must be a JSON object.") from None
    if not isinstance(data, dict):
        raise invalid("UserData", "It must be a JSON object.")
    callback_url: str | None = None
    mc = data.get("MessageCallback")
    if isinstance(mc, str):
        try:
            mc = json.loads(mc)
        except ValueError:
            raise invalid("UserData", "MessageCallback must be a JSON object.") from None
    if mc is not None:
        if not isinstance(mc, dict):
            raise invalid("UserData", "MessageCallback must be a JSON object.")
        url = mc.get("CallbackURL")
        if url is not None:
            if not isinstance(url, str) or not re.match(r"^https?://", url) or len(url.encode()) > 256:
                raise invalid(
                    "UserData", "MessageCallback.CallbackURL must be an http(s) URL of at most 256 bytes."
                )
            callback_url = url
    extend: str | None = None
    if data.get("Extend") is not None:
        value = data["Extend"]
        extend = (
            value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        )
        if len(extend.encode("utf-8")) > 512:
            raise invalid("UserData", "Extend must be at most 512 bytes.")
    return UserData(raw, callback_url, extend)


def upload_answer(
    *, endpoint: str, bucket: str, key: str, cred: UploadCredential, region: str
) -> dict[str, str]:
    """``UploadAddress`` and ``UploadAuth`` (Base64 JSON, https://www.alibabacloud.com/help/doc-detail/55397.htm)."""
    address = {"Endpoint": endpoint, "Bucket": bucket, "FileName": key}
    auth = {
        "SecurityToken": cred.security_token,
        "AccessKeyId": cred.access_key_id,
        "ExpireUTCTime": iso_time(cred.expires_at),
        "AccessKeySecret": cred.access_key_secret,
        "Expiration": str(int(cred.expires_at - cred.issued_at)),
        "Region": region,
    }
    return {"UploadAddress": b64_json(address), "UploadAuth": b64_json(auth)}
