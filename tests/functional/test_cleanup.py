"""Cleanup through the real timer handler: expire abandoned uploads, reconcile lost callbacks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from shared.settings import get_settings
from shared.store import get_store
from tests.functional.conftest import Stack


def _age(video_ids: list[str], seconds: int) -> None:
    """Pretend these uploads were created ``seconds`` ago (the store is the test's own SQLite)."""
    import sqlite3

    url = get_settings().database_url.get_secret_value()
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    when = (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat()
    with conn:
        for vid in video_ids:
            conn.execute(
                "UPDATE uploads SET created_at = ?, credential_expires_at = ? WHERE video_id = ?",
                (when, when, vid),
            )
    conn.close()


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
