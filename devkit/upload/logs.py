"""Library logging goes to a file, never to the terminal.

oss2 logs a traceback at ERROR whenever a worker thread fails, which includes every expired
credential that the upload then refreshes; with no handler configured, Python's last-resort
handler prints it to stderr. One file handler on the root logger, for the length of the command,
keeps all of it (and our own lines) in ``upload.log`` and off the terminal.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["LEVELS", "library_logs", "log"]

# Not under "vodfc": that is shared.log's logger, which writes JSON lines to stdout.
log = logging.getLogger("devkit.upload")

# Levels that keep secrets out: oss2's and httpcore's DEBUG lines carry the signed request
# headers (the STS security token among them).
LEVELS = {
    "devkit.upload": logging.DEBUG,
    "oss2": logging.INFO,
    "httpx": logging.INFO,
    "httpcore": logging.WARNING,
    "urllib3": logging.WARNING,
    "requests": logging.WARNING,
}
MAX_BYTES = 1024 * 1024


@contextmanager
def library_logs(path: Path, *, echo: bool = False) -> Iterator[Path]:
    """Route every log record to ``path`` (mode 0600, rotated); with ``echo``, to stderr too."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)
    handlers: list[logging.Handler] = [
        logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=1, encoding="utf-8")
    ]
    if echo:
        handlers.append(logging.StreamHandler(sys.stderr))
    fmt = logging.Formatter("%(asctime)s %(process)d %(threadName)s %(name)s %(levelname)s %(message)s")
    root = logging.getLogger()
    saved = {name: logging.getLogger(name).level for name in LEVELS}
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    for name, level in LEVELS.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield path
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
