"""Cleanup through the real timer handler: expire abandoned uploads, reconcile lost callbacks."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from shared.services.deps import get_deps, set_deps
from shared.settings import get_settings
from shared.store import get_store
from tests.functional.conftest import Stack
from tests.functional.conftest import age as _age


def _due(video_ids: list[str]) -> None:
    """Make these uploads due for their check with VOD now (as their schedule would, later)."""
    import sqlite3

    url = get_settings().database_url.get_secret_value()
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    when = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat(timespec="microseconds")
    with conn:
        for vid in video_ids:
            conn.execute("UPDATE uploads SET check_at = ? WHERE video_id = ?", (when, vid))
    conn.close()


def _stuck(stack: Stack, *, processing: bool = True) -> str:
    """An upload whose file arrived (and transcoding started) but whose final callback never came."""
    video_id: str = stack.create(owner="erin")["VideoId"]
    stack.vod.videos[video_id]["Status"] = "UploadSucc"
    assert stack.callback(stack.vod_event("FileUploadComplete", video_id))[0] == 200
    if processing:
        stack.vod.videos[video_id]["Status"] = "Transcoding"
        assert stack.callback(stack.vod_event("StreamTranscodeComplete", video_id))[0] == 200
    assert _status(stack, video_id) == ("processing" if processing else "uploaded")
    return video_id


def _status(stack: Stack, video_id: str, owner: str = "erin") -> str:
    status: str = stack.http("upload_credentials", "GET", f"/uploads/{video_id}", owner=owner)[1]["Status"]
    return status


def test_cleanup_expires_the_abandoned_and_reconciles_the_lost(stack: Stack) -> None:
    abandoned = stack.create(owner="erin")["VideoId"]
    lost = stack.create(owner="erin")["VideoId"]
    fresh = stack.create(owner="erin")["VideoId"]
    _age([abandoned, lost], 3600)
    stack.vod.videos[lost].update(Status="Normal", Duration="9.0")  # its callbacks never came

    summary = stack.cleanup()

    assert summary["scanned"] == 2 and summary["deleted"] == 1 and summary["reconciled"] == 1
    assert summary["vod_calls"] == 2  # one GetVideoInfos, one DeleteVideo
    assert _status(stack, abandoned) == "expired" and abandoned not in stack.vod.videos
    assert _status(stack, lost) == "ready"
    assert _status(stack, fresh) == "created" and fresh in stack.vod.videos
    # a second run finds nothing
    assert stack.cleanup()["scanned"] == 0


def test_an_old_upload_with_a_live_refreshed_credential_is_left_alone(stack: Stack) -> None:
    video_id = stack.create(owner="erin")["VideoId"]
    _age([video_id], 3600)
    assert stack.http("upload_credentials", "POST", f"/uploads/{video_id}/refresh", owner="erin")[0] == 200
    assert stack.cleanup()["scanned"] == 0
    assert _status(stack, video_id) == "created" and video_id in stack.vod.videos


def test_dry_run_changes_nothing(stack: Stack) -> None:
    video_id = stack.create(owner="erin")["VideoId"]
    _age([video_id], 3600)
    summary = stack.cleanup('{"dryRun": true}')
    assert summary["dry_run"] is True and summary["scanned"] == 1 and summary["deleted"] == 0
    assert _status(stack, video_id) == "created" and video_id in stack.vod.videos


def test_cleanup_removes_a_media_whose_record_write_failed(stack: Stack) -> None:
    """A crash between CreateUploadVideo and the record write: found again through ReferenceId."""
    from shared.store import new_reservation

    store = get_store(get_settings())
    old = datetime.now(timezone.utc) - timedelta(hours=3)
    store.reserve_upload(
        new_reservation(
            upload_id="c" * 32,
            owner="frank",
            reference_id="c" * 32,
            title="t",
            file_name="t.mp4",
            file_size=None,
            now=old,
        ),
        max_pending=10,
    )
    stack.vod.videos["v" * 32] = {"VideoId": "v" * 32, "Status": "Uploading", "ReferenceId": "c" * 32}

    summary = stack.cleanup()

    assert summary["deleted"] == 1
    assert "v" * 32 not in stack.vod.videos
    assert store.find_by_idempotency_key("frank", "none") is None
    sent = stack.vod.action_calls("DeleteVideo")[0]
    assert sent["ReferenceIds"] == "c" * 32


def test_cleanup_reconciles_uploads_stuck_after_a_lost_final_callback(stack: Stack) -> None:
    done = _stuck(stack)  # VOD finished; TranscodeComplete was lost
    broken = _stuck(stack, processing=False)  # VOD failed it; the failure event was lost
    gone = _stuck(stack)  # VOD no longer has it
    busy = _stuck(stack)  # VOD is still transcoding
    fresh = _stuck(stack)  # not due yet: its first check is 10 minutes after it started
    stack.vod.videos[done].update(Status="Normal", Duration="12.5", Size=4096)
    stack.vod.videos[broken]["Status"] = "TranscodeFail"
    del stack.vod.videos[gone]
    _due([done, broken, gone, busy])
    before = len(stack.vod.calls)

    summary = stack.cleanup()

    assert summary["scanned"] == 0 and summary["stuck_checked"] == 4
    assert summary["reconciled"] == 3 and summary["deleted"] == 0 and summary["errors"] == 0
    calls = stack.vod.calls[before:]
    assert [name for name, _ in calls] == ["GetVideoInfos"]  # one batch; never DeleteVideo
    assert set(calls[0][1]["VideoIds"].split(",")) == {done, broken, gone, busy}
    view = stack.http("upload_credentials", "GET", f"/uploads/{done}", owner="erin")[1]
    assert view["Status"] == "ready" and view["Duration"] == 12.5
    assert _status(stack, broken) == "failed"
    gone_view = stack.http("upload_credentials", "GET", f"/uploads/{gone}", owner="erin")[1]
    assert gone_view["Status"] == "deleted" and gone_view["Error"].startswith("MediaNotFound")
    assert _status(stack, busy) == "processing" and _status(stack, fresh) == "processing"
    assert busy in stack.vod.videos and fresh in stack.vod.videos

    # The next run skips the one still transcoding (its next check is later); the rest are done.
    again = stack.cleanup()
    assert again["stuck_checked"] == 0 and again["vod_calls"] == 0


def test_a_stuck_upload_still_transcoding_is_checked_again_on_its_schedule(stack: Stack) -> None:
    busy = _stuck(stack)
    _due([busy])
    assert stack.cleanup()["stuck_checked"] == 1
    row = get_store(get_settings()).get_by_video_id(busy)
    assert row is not None and row.status == "processing" and row.checks == 1
    # the schedule's second step (30 minutes) comes next; nothing of the record was faked
    assert row.check_at is not None
    assert timedelta(minutes=29) < row.check_at - datetime.now(timezone.utc) <= timedelta(minutes=30)

    # the next hourly run
    set_deps(replace(get_deps(), clock=lambda: datetime.now(timezone.utc) + timedelta(hours=1)))
    stack.vod.videos[busy].update(Status="Normal", Duration="3.0")
    summary = stack.cleanup()
    assert summary["stuck_checked"] == 1 and summary["reconciled"] == 1
    assert _status(stack, busy) == "ready"


def test_a_created_upload_whose_events_were_lost_is_reconciled_in_minutes(stack: Stack) -> None:
    """Every event of an upload lost (the store was down while VOD tried): the upload is still
    ``created`` but VOD is done. Its first check (10 minutes after creation, not the stale sweep's
    110) moves it to what VOD says; one still being uploaded is checked again later; one VOD no
    longer has cannot be uploaded to any more: expired."""
    done = stack.create(owner="erin")["VideoId"]
    waiting = stack.create(owner="erin")["VideoId"]
    vanished = stack.create(owner="erin")["VideoId"]
    stack.vod.videos[done].update(Status="Normal", Duration="8.0", Size=1024)
    del stack.vod.videos[vanished]
    row = get_store(get_settings()).get_by_video_id(done)
    assert row is not None and row.check_at is not None
    assert timedelta(minutes=10) <= row.check_at - row.created_at < timedelta(minutes=10, seconds=5)
    _due([done, waiting, vanished])

    summary = stack.cleanup()

    assert summary["stuck_checked"] == 3 and summary["scanned"] == 0
    assert _status(stack, done) == "ready"
    assert _status(stack, waiting) == "created"
    assert _status(stack, vanished) == "expired"
    waiting_row = get_store(get_settings()).get_by_video_id(waiting)
    assert waiting_row is not None and waiting_row.checks == 1


def test_dry_run_leaves_stuck_uploads_alone(stack: Stack) -> None:
    done = _stuck(stack)
    gone = _stuck(stack)
    stack.vod.videos[done]["Status"] = "Normal"
    del stack.vod.videos[gone]
    _due([done, gone])

    summary = stack.cleanup('{"dryRun": true}')

    assert summary["dry_run"] is True and summary["stuck_checked"] == 2 and summary["reconciled"] == 0
    assert _status(stack, done) == "processing" and _status(stack, gone) == "processing"
    assert stack.vod.action_calls("DeleteVideo") == []
