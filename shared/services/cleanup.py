"""Scheduled cleanup: expire abandoned uploads, reconcile lost callbacks, prune bookkeeping.

An upload is abandoned when its credential was issued, nothing arrived, and it is older than
``STALE_UPLOAD_SECONDS`` (default: the 3,000 s credential life plus an hour). VOD sends no event
for an abandoned upload (uploads are resumable), so we ask: GetVideoInfos in batches of 20, then
DeleteVideo in batches of 20 for the ones still ``Uploading``/``UploadFail``. Uploads VOD already
has (a callback was lost) are reconciled instead. Rows claimed by one run are leased, so two
overlapping runs never handle the same upload; the run stops at its time budget.

An upload is stuck when it is ``uploaded`` or ``processing`` and has not changed for
``STUCK_UPLOAD_SECONDS`` (default 24 h): VOD's final callback (TranscodeComplete) was probably
lost. After the abandoned uploads, within the same budget, stuck uploads are confirmed with the
same GetVideoInfos (batches of 20) and moved forward to the status VOD reports (``Normal`` →
``ready``, ``TranscodeFail`` → ``failed``); one VOD no longer has becomes ``deleted`` (with
``error`` saying so). Nothing is ever sent to DeleteVideo on this path. An upload VOD still
reports as transcoding keeps its status and ``updated_at`` (we do not fake progress): the lease
keeps it out of the rest of the run, and every later run checks it again, one GetVideoInfos
per 20 such uploads per run, until VOD finishes it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shared import errors
from shared.states import DELETED, PROCESSING, UPLOADED, allowed_from, status_from_vod

if TYPE_CHECKING:
    from datetime import datetime

    from shared.services.deps import Deps
    from shared.store import Upload
    from shared.vod_models import Video

__all__ = ["BATCH", "CleanupSummary", "run_cleanup"]

log = logging.getLogger("vodfc.cleanup")

BATCH = 20  # GetVideoInfos and DeleteVideo both take at most 20 ids.
_ABANDONED_VOD_STATUSES = frozenset({"Uploading", "UploadFail"})
_CREDENTIAL_GRACE_SECONDS = 600
_GONE_AT_VOD = "MediaNotFound: VOD no longer has this media"


@dataclass
class CleanupSummary:
    """One run's counts, logged as one JSON line."""

    scanned: int = 0
    confirmed: int = 0
    deleted: int = 0
    reconciled: int = 0
    stuck_checked: int = 0
    errors: int = 0
    pruned: int = 0
    dry_run: bool = False
    vod_calls: int = 0
    out_of_time: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _expire(deps: Deps, uploads: list[Upload], summary: CleanupSummary, gone: list[Upload]) -> None:
    ids = [u.video_id for u in uploads if u.video_id]
    # Media VOD reports as gone (an earlier run deleted them, then stopped before writing the
    # record) are only marked; they are never sent to DeleteVideo a second time.
    gone_ids = [u.video_id for u in gone if u.video_id]
    if ids:
        summary.vod_calls += 1
        with contextlib.suppress(errors.NotFound):  # already gone at VOD
            deps.vod.delete_videos(ids)
    summary.deleted += deps.store.expire_created([*ids, *gone_ids], now=deps.clock())


def _handle_batch(deps: Deps, batch: list[Upload], summary: CleanupSummary) -> None:
    dry_run = summary.dry_run
    reservations = [u for u in batch if u.video_id is None]
    if reservations and not dry_run:
        # A crash between CreateUploadVideo and the record write: only our ReferenceId ties
        # a possible media to the row, so delete by ReferenceId, then drop the reservation.
        summary.vod_calls += 1
        with contextlib.suppress(errors.NotFound):  # no media carries the ReferenceId
            deps.vod.delete_videos(reference_ids=[u.reference_id for u in reservations])
        for u in reservations:
            deps.store.discard_reservation(u.upload_id)
            summary.deleted += 1

    by_id = {u.video_id: u for u in batch if u.video_id}
    if not by_id:
        return
    summary.vod_calls += 1
    infos = deps.vod.get_video_infos(list(by_id))
    summary.confirmed += len(infos.VideoList) + len(infos.NonExistVideoIds)
    gone = [by_id[vid] for vid in infos.NonExistVideoIds if vid in by_id]
    abandoned: list[Upload] = []
    now = deps.clock()
    for video in infos.VideoList:
        upload = by_id.get(video.VideoId)
        if upload is None:
            continue
        if (video.Status or "") in _ABANDONED_VOD_STATUSES:
            abandoned.append(upload)
            continue
        if not dry_run:
            _reconcile(deps, video, summary, now)
    if (abandoned or gone) and not dry_run:
        _expire(deps, abandoned, summary, gone)


def _reconcile(deps: Deps, video: Video, summary: CleanupSummary, now: datetime) -> None:
    """Move the upload forward to the status VOD reports (never back: the store checks)."""
    actual = status_from_vod(video.Status or "")
    if not actual or not video.VideoId:
        return
    fields: dict[str, Any] = {}
    if video.Duration is not None:
        fields["duration"] = float(video.Duration)
    if video.Size is not None:
        fields["size"] = int(video.Size)
    if deps.store.transition(
        video.VideoId, to=actual, allowed_from=allowed_from(actual), now=now, fields=fields
    ):
        summary.reconciled += 1


def _handle_stuck_batch(deps: Deps, batch: list[Upload], summary: CleanupSummary) -> None:
    """Confirm stuck uploads with VOD; reconcile, or mark ``deleted`` what VOD no longer has."""
    by_id = {u.video_id: u for u in batch if u.video_id}
    if not by_id:
        return
    summary.vod_calls += 1
    infos = deps.vod.get_video_infos(list(by_id))
    if summary.dry_run:
        return
    now = deps.clock()
    for video in infos.VideoList:
        if video.VideoId in by_id:
            _reconcile(deps, video, summary, now)
    for video_id in infos.NonExistVideoIds:
        if video_id in by_id and deps.store.transition(
            video_id,
            to=DELETED,
            allowed_from={UPLOADED, PROCESSING},
            now=now,
            fields={"error": _GONE_AT_VOD},
        ):
            summary.reconciled += 1


def _drain(
    deps: Deps,
    summary: CleanupSummary,
    *,
    claim: Callable[[], list[Upload]],
    handle: Callable[[Deps, list[Upload], CleanupSummary], None],
    counter: str,
    deadline: float,
    monotonic: Callable[[], float],
) -> bool:
    """Claim and handle batches until none are left, the run's cap or its deadline.

    Returns False when the store went down (the rest of the run is pointless).
    """
    while summary.scanned + summary.stuck_checked < deps.settings.cleanup_max_uploads_per_run:
        if monotonic() >= deadline:
            summary.out_of_time = True
            break
        batch = claim()
        if not batch:
            break
        setattr(summary, counter, getattr(summary, counter) + len(batch))
        try:
            handle(deps, batch, summary)
        except errors.VodfcError as exc:
            summary.errors += 1
            log.warning("cleanup batch failed", extra={"code": exc.code, "size": len(batch), "kind": counter})
            if isinstance(exc, errors.StoreUnavailable):
                return False
    return True


def run_cleanup(
    deps: Deps,
    *,
    dry_run: bool | None = None,
    budget_seconds: float | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> CleanupSummary:
    """One cleanup run: claim stale, then stuck uploads 20 at a time until none are left or time runs out.

    ``CLEANUP_MAX_UPLOADS_PER_RUN`` caps both kinds together.
    """
    settings = deps.settings
    summary = CleanupSummary(dry_run=settings.cleanup_dry_run if dry_run is None else dry_run)
    budget = budget_seconds if budget_seconds is not None else settings.cleanup_time_budget_seconds
    deadline = monotonic() + budget
    cutoff = deps.clock() - timedelta(seconds=settings.stale_upload_seconds)
    # Claims outlive this run's budget, so a dry run or an interrupted run does not see the
    # same rows again before the lease ends, and an overlapping run skips them.
    lease = int(budget) + 60
    # Never while a (refreshed) credential is alive, nor just after: the client may be mid-upload.
    margin = min(_CREDENTIAL_GRACE_SECONDS, settings.stale_upload_seconds)

    def claim_stale() -> list[Upload]:
        now = deps.clock()
        return deps.store.claim_stale(
            created_before=cutoff,
            limit=BATCH,
            lease_seconds=lease,
            now=now,
            credential_expired_before=now - timedelta(seconds=margin),
        )

    stuck_cutoff = deps.clock() - timedelta(seconds=settings.stuck_upload_seconds)

    def claim_stuck() -> list[Upload]:
        return deps.store.claim_stuck(
            updated_before=stuck_cutoff, limit=BATCH, lease_seconds=lease, now=deps.clock()
        )

    healthy = _drain(
        deps,
        summary,
        claim=claim_stale,
        handle=_handle_batch,
        counter="scanned",
        deadline=deadline,
        monotonic=monotonic,
    )
    if healthy and not summary.out_of_time:
        _drain(
            deps,
            summary,
            claim=claim_stuck,
            handle=_handle_stuck_batch,
            counter="stuck_checked",
            deadline=deadline,
            monotonic=monotonic,
        )
    if not summary.out_of_time:
        now = deps.clock()
        try:
            pruned = deps.store.prune(
                now=now,
                dedupe_before=now - timedelta(seconds=settings.dedupe_ttl_seconds),
                idempotency_before=now - timedelta(seconds=settings.idempotency_ttl_seconds),
                orphans_before=now - timedelta(seconds=settings.orphan_ttl_seconds),
            )
            summary.pruned = pruned.dedupe + pruned.idempotency + pruned.orphans
        except errors.VodfcError:
            summary.errors += 1
    return summary
