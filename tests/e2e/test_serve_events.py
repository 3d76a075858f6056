"""``vodfc serve --events mns``: VOD's events through the emulated SMQ queue and FC's queue trigger
(no HTTP callback at all), and the template's two cleanup timers."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from devkit.serve import CleanupTimer
from devkit.template import load_template
from devkit.upload import Client, upload_file, wait_until_final
from tests.served import Serve, free_port_trio

pytestmark = pytest.mark.e2e


def log_lines(serve: Serve) -> list[dict[str, object]]:
    text = (serve.data_dir.parent / f"serve-{serve.port}.log").read_text()
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_events_through_the_queue_trigger_make_the_upload_ready(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    serve = Serve(
        port=free_port_trio(),
        data_dir=tmp_path / "data",
        home=home,
        args=("--events", "mns", "--transcode-delay", "0.5", "--cleanup-every", "0"),
    ).start()
    try:
        assert "events         the emulated SMQ queue" in serve.output
        assert "callbacks      " not in serve.output
        path = tmp_path / "clip.mp4"
        path.write_bytes(os.urandom(64 * 1024))
        with Client(serve.api, None) as client:
            video_id = upload_file(client, path, "queued", quiet=True)["VideoId"]
            record = wait_until_final(client, video_id, timeout=30)
        assert record["Status"] == "ready", record
    finally:
        serve.stop()

    # then only the queue trigger invoked vod_callback, and cleanup never ran (--cleanup-every 0);
    # read once stopped: the record is visible before the invocation's line is written
    invocations = [line for line in log_lines(serve) if line.get("message") == "invocation"]
    callbacks = [line for line in invocations if line["function"] == "vod_callback"]
    assert callbacks and {line["route"] for line in callbacks} == {"mns"}
    assert sum(int(str(line.get("applied", 0))) for line in callbacks) >= 1
    assert not [line for line in invocations if line["function"] == "cleanup"]


def test_queue_delivery_needs_the_emulator(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    serve = Serve(
        port=free_port_trio(),
        data_dir=tmp_path / "data",
        home=home,
        args=("--events", "mns", "--vod-endpoint", "http://127.0.0.1:9"),
    )
    with pytest.raises(AssertionError, match="exited with 1") as exc:
        serve.start(timeout=30)
    assert "--events mns needs the emulated VOD" in str(exc.value)
    assert "Traceback" not in str(exc.value)


def test_the_timer_fires_each_template_timer_in_turn() -> None:
    cleanup = load_template().functions["cleanup"]
    names = {t.name for t in cleanup.timers}
    assert names == {"every-15-minutes", "every-minute"}
    timer = CleanupTimer(module=None, timers=cleanup.timers, every=None)  # type: ignore[arg-type]

    delay, first = timer.next_timer(datetime(2026, 12, 1, 10, 15, 30, tzinfo=timezone.utc))
    assert (delay, first.name) == (30.0, "every-minute")
    assert json.loads(first.payload or "{}") == {"budgetSeconds": 45, "prune": False}
    # at a quarter hour both are due: one run, the sweep (it finishes pending events first too)
    _, at_quarter = timer.next_timer(datetime(2026, 12, 1, 10, 14, 30, tzinfo=timezone.utc))
    assert at_quarter.name == "every-15-minutes"

    assert CleanupTimer(None, cleanup.timers, every=2.5).next_timer(datetime.now(timezone.utc))[0] == 2.5  # type: ignore[arg-type]
    assert not CleanupTimer(None, cleanup.timers, every=0).enabled  # type: ignore[arg-type]
