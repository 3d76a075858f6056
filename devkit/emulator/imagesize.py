"""Width and height of a PNG, GIF or JPEG file, read from its header (nothing is decoded).

Used for ``GetImageInfo``'s ``Mezzanine.Width`` / ``Height``; anything else (or a damaged
header) gives ``None`` and the fields are left out, as VOD leaves out what it does not know.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

__all__ = ["image_size"]

_PNG = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, ...), not DHT (C4), JPG (C8) or DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_MAX_SCAN = 1024 * 1024  # give up on a JPEG whose frame header is not in the first MiB


def image_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` in pixels, or ``None`` for an unknown format or a truncated header."""
    try:
        with path.open("rb") as fh:
            head = fh.read(26)
            if head.startswith(_PNG) and head[12:16] == b"IHDR":
                width, height = struct.unpack(">II", head[16:24])
                return width, height
            if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
                width, height = struct.unpack("<HH", head[6:10])
                return width, height
            if head[:2] == b"\xff\xd8":
                fh.seek(2)
                return _jpeg_size(fh)
    except (OSError, struct.error):
        return None
    return None


def _jpeg_size(fh: BinaryIO) -> tuple[int, int] | None:
    while fh.tell() < _MAX_SCAN:
        byte = fh.read(1)
        if not byte:
            return None
        if byte != b"\xff":
            continue
        marker = fh.read(1)
        while marker == b"\xff":  # fill bytes
            marker = fh.read(1)
        if not marker:
            return None
        code = marker[0]
        if code in (0x01, 0xD8) or 0xD0 <= code <= 0xD7:  # markers without a length
            continue
        length_bytes = fh.read(2)
        if len(length_bytes) < 2:
            return None
        (length,) = struct.unpack(">H", length_bytes)
        if code in _SOF:
            frame = fh.read(5)
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        fh.seek(length - 2, 1)
    return None
