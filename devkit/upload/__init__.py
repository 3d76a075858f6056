"""``vodfc upload``: the reference client. Works against ``vodfc serve`` and, unchanged, a deployment.

1. ``POST /uploads`` (or ``/images``, ``/attached-media``) for a credential; the id is printed at
   once and recorded in the state directory; 2. oss2's resumable multipart upload straight to
   storage (the OSS protocol is oss2's job, not ours); 3. when a video's temporary credential
   expires mid-upload, ``POST /uploads/{VideoId}/refresh`` and resume from oss2's checkpoint, also
   in a later run (``--resume``); 4. poll the record until ``ready`` (or a final failure).

Modules: ``errors`` (one class per exit code), ``api`` (the vodfc API over httpx), ``storage``
(oss2, refresh and retry), ``state`` (what ``--resume`` reads), ``progress`` (rich bar or plain
lines), ``logs`` (library logging into the state directory), ``command`` (the CLI flow).
"""

from __future__ import annotations

from devkit.upload.api import ATTACHED, IMAGE, VIDEO, Client, MediaKind, wait_until_final
from devkit.upload.command import upload
from devkit.upload.storage import TransferOptions, decode, make_bucket, transfer, upload_file

__all__ = [
    "ATTACHED",
    "IMAGE",
    "VIDEO",
    "Client",
    "MediaKind",
    "TransferOptions",
    "decode",
    "make_bucket",
    "transfer",
    "upload",
    "upload_file",
    "wait_until_final",
]
