"""Upload progress on stderr: rich's bar on a terminal, a plain line every 10 % or 30 s elsewhere.

A log file or a CI job gets no carriage-return redraws; ``--quiet`` prints nothing but errors.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol, TextIO

__all__ = ["PlainLines", "RichBar", "Silent", "View", "make_view", "parts_done"]


def parts_done(done: int, size: int, part_size: int) -> int:
    """Parts stored when ``done`` bytes are (every part but the last is ``part_size`` long)."""
    if part_size <= 0:
        return 0
    return math.ceil(size / part_size) if done >= size else done // part_size


class View(Protocol):
    """Where the transfer reports; ``advance`` is called from oss2's worker threads."""

    def begin(self, label: str, size: int, part_size: int, done: int) -> None: ...

    def advance(self, done: int) -> None: ...

    def note(self, message: str) -> None: ...

    def end(self) -> None: ...


class Silent:
    """``--quiet``."""

    def begin(self, label: str, size: int, part_size: int, done: int) -> None:
        pass

    def advance(self, done: int) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def end(self) -> None:
        pass


def _size(n: float) -> str:
    from rich.filesize import decimal

    return str(decimal(int(n)))


class PlainLines:
    """One line per 10 % step (or every 30 s), for a stderr that is not a terminal."""

    def __init__(
        self,
        stream: TextIO,
        *,
        step: int = 10,
        every: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream, self.step, self.every, self.clock = stream, step, every, clock
        self.size = self.part_size = self.first = 0
        self.started = self.last_time = 0.0
        self.last_step = -1

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def begin(self, label: str, size: int, part_size: int, done: int) -> None:
        self.size, self.part_size, self.first = max(size, 1), part_size, done
        self.started = self.last_time = self.clock()
        parts = parts_done(size, size, part_size)
        self._write(f"  uploading {label}: {_size(size)} in {parts} part{'s' * (parts != 1)}")
        if done:
            self._write(f"  resuming: {parts_done(done, size, part_size)}/{parts} parts already in storage")

    def advance(self, done: int) -> None:
        now = self.clock()
        current = done * 100 // self.size // self.step
        if current <= self.last_step and now - self.last_time < self.every:
            return
        self.last_step, self.last_time = current, now
        self._write(self._line(done, now))

    def _line(self, done: int, now: float) -> str:
        total = parts_done(self.size, self.size, self.part_size)
        line = (
            f"  {done * 100 // self.size:3d}%  {_size(done)} of {_size(self.size)}"
            f"  {parts_done(done, self.size, self.part_size)}/{total} parts"
        )
        elapsed = now - self.started
        sent = done - self.first
        if elapsed > 0 and sent > 0:
            speed = sent / elapsed
            eta = timedelta(seconds=round((self.size - done) / speed))
            line += f"  {_size(speed)}/s  ETA {eta}"
        return line

    def note(self, message: str) -> None:
        self._write(f"  {message}")

    def end(self) -> None:
        pass


class RichBar:
    """rich's progress bar: bytes, speed, ETA and parts; redrawn in place on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console

        self.console = Console(file=stream, highlight=False)
        self.progress: Any = None
        self.task: Any = None
        self.size = self.part_size = 0

    def begin(self, label: str, size: int, part_size: int, done: int) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.size, self.part_size = size, part_size
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[parts]} parts"),
            console=self.console,
        )
        # Created with the bytes already in storage, so that they do not count as speed.
        self.task = self.progress.add_task(label, total=size, completed=done, parts=self._parts(done))
        self.progress.start()

    def _parts(self, done: int) -> str:
        total = parts_done(self.size, self.size, self.part_size)
        return f"{parts_done(done, self.size, self.part_size)}/{total}"

    def advance(self, done: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=done, parts=self._parts(done))

    def note(self, message: str) -> None:
        self.console.print(f"  {message}", markup=False)

    def end(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def make_view(*, quiet: bool, stream: TextIO | None = None) -> View:
    """The view for this stderr."""
    out = stream or sys.stderr
    if quiet:
        return Silent()
    return RichBar(out) if out.isatty() else PlainLines(out)
