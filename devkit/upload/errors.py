"""What can go wrong in ``vodfc upload``, one class per exit code.

::

    UploadError                 1  an unexpected error, named (the command wraps it)
    ├── UsageError              2  bad arguments, missing file, an interrupted upload in the way
    ├── AuthError               3  the API refused the token (401, 403 InvalidToken/Forbidden)
    ├── PolicyError             4  the API refused the request (400/403/404/409/413: type, size, quota)
    ├── NetworkError            5  the API or storage cannot be reached, times out, or keeps failing
    ├── StorageError            6  OSS refused the upload (other than an expired credential)
    ├── ProcessingError         7  the media ended failed/expired/deleted, or the wait timed out
    └── Interrupted           130  Ctrl-C

Foreign exceptions (httpx, oss2) are translated where they are raised (``api``, ``storage``);
the command renders these in one place and exits with ``exit_code``.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AuthError",
    "Interrupted",
    "NetworkError",
    "PolicyError",
    "ProcessingError",
    "StorageError",
    "UploadError",
    "UsageError",
]


class UploadError(Exception):
    """A failure the user can act on: one line of ``message``, optional ``hint`` lines."""

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(UploadError):
    exit_code = 2


class AuthError(UploadError):
    exit_code = 3


class PolicyError(UploadError):
    exit_code = 4


class NetworkError(UploadError):
    exit_code = 5


class StorageError(UploadError):
    exit_code = 6


class ProcessingError(UploadError):
    exit_code = 7


class Interrupted(UploadError):
    exit_code = 130
