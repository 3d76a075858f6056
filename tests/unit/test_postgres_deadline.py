"""shared/store/postgres.py without a server: the client-side deadline and the missing driver."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable

import pytest

from shared import errors
from shared.store.postgres import PostgresStore, _Deadline


def _eventually(condition: Callable[[], bool], *, within: float = 10.0) -> bool:
    """Poll ``condition`` (no timing is asserted: ``within`` only bounds a failing test)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_an_overrun_shuts_the_socket_down() -> None:
    ours, peer = socket.socketpair()
    try:
        deadline = _Deadline(0.05)
        deadline.arm(ours.fileno())
        ours.settimeout(10)
        assert ours.recv(1) == b""  # what libpq sees: the end of the stream, at once
        deadline.disarm()
        assert deadline.fired
    finally:
        ours.close()
        peer.close()


def test_a_round_trip_within_the_deadline_is_left_alone() -> None:
    ours, peer = socket.socketpair()
    try:
        deadline = _Deadline(5.0)
        deadline.arm(ours.fileno())
        peer.sendall(b"x")
        assert ours.recv(1) == b"x"
        deadline.disarm()
        assert not deadline.fired
        peer.sendall(b"y")
        assert ours.recv(1) == b"y"  # still open
    finally:
        ours.close()
        peer.close()


def test_the_watcher_ends_when_idle_and_comes_back() -> None:
    ours, peer = socket.socketpair()
    try:
        deadline = _Deadline(0.02)
        deadline.arm(ours.fileno())
        deadline.disarm()
        assert _eventually(lambda: not deadline._watching)
        deadline.arm(ours.fileno())
        assert deadline._watching
        assert _eventually(lambda: deadline.fired)
    finally:
        ours.close()
        peer.close()


def test_without_the_driver_the_store_is_a_clear_503(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as on FC without the layer attached
    store = PostgresStore("postgresql://vodfc:pw@127.0.0.1:1/vodfc")
    with pytest.raises(errors.ServiceUnavailable) as raised:
        store.get_by_video_id("vid-1")
    assert raised.value.code == "MissingDatabaseDriver" and raised.value.status == 503
    assert isinstance(raised.value.__cause__, ImportError)
    assert "pw" not in raised.value.message
