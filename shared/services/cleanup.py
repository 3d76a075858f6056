"""Scheduled cleanup: finish pending events, reconcile with VOD, expire abandoned uploads, prune.

One run does, in this order and within its time budget (``CLEANUP_TIME_BUDGET_SECONDS``, or the
timer payload's ``budgetSeconds``):

1. **Pending events.** Events the callback could not settle in VOD's 5 s window (VOD slow or
   down, not confirmed yet, a crash) wait in the store's inbox; they are settled here by the same
   code path as a fresh event (``shared.services.callbacks.finish_pending_events``), oldest first.
2. **Reconciliation.** An upload that reached ``uploaded`` or ``processing`` is due for a check
   with VOD after minutes (``RECONCILE_SCHEDULE_SECONDS``: 10 min, 30 min, 2 h, then daily by
   default), whether or not its next event arrives. GetVideoInfos in batches of 20 (GetImageInfos,
   GetAttachedMediaInfo for the other kinds); VOD's status is
   the truth: ``Normal`` → ``ready``, ``TranscodeFail``/``UploadFail``/``Blocked`` → ``failed``,
   a source still ``Uploading`` → back to ``created`` (an unconfirmed FileUploadComplete had moved
   it), missing → ``deleted``, still working → checked again at the next step of the schedule.
3. **Abandoned uploads.** An upload (of any kind) is abandoned when its credential was issued,
   nothing arrived, and it is older than ``STALE_UPLOAD_SECONDS`` (default: the 3,000 s credential
   life plus an hour). VOD sends no event for an abandoned upload (uploads are resumable), so we
   ask (GetVideoInfos, GetImageInfos or GetAttachedMediaInfo, 20 at a time) and delete
   (DeleteVideo, DeleteImage, DeleteAttachedMedia) what is still ``Uploading``/``UploadFail``;
   uploads VOD already has (their callback was lost) are reconciled instead.
4. **Notifications of the app.** Every due notification is sent (retries included, oldest
   first, per upload in order; ``shared.services.notifications``), and the run line counts them.
5. **Bookkeeping.** Old finished events, notifications and idempotency keys are pruned.

Rows claimed by one run are leased, so overlapping runs (the frequent timer beside the sweep)
never handle the same row.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shared import errors, states
from shared.services import kinds
from shared.services.callbacks import Budget, finish_pending_events
from shared.services.notifications import deliver_due

if TYPE_CHECKING:
    from datetime import datetime

    from shared.services.deps import Deps
    from shared.services.kinds import VodMedia
    from shared.store import Upload

__all__ = ["BATCH", "CleanupSummary", "run_cleanup"]

log = logging.getLogger("vodfc.cleanup")

BATCH = 20  # GetVideoInfos, DeleteVideo and their image and attached-media twins take at most 20 ids.
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
    events: dict[str, int] = field(default_factory=dict)
    webhooks: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _reconcile(deps: Deps, upload: Upload, media: VodMedia, summary: CleanupSummary, now: datetime) -> bool:
    """Move the upload to the status VOD reports (the store refuses illegal moves); whether it moved."""
    actual = media.status
    if actual is None or actual == upload.status or not states.can_move(upload.status, actual):
        return False
    fields = dict(media.fields)
    limit = kinds.max_size(deps.settings, upload.kind)
    if actual == states.READY and fields.get("size", 0) > limit:
        # Replaced by an oversized source after all: it goes, and the record fails.
        with contextlib.suppress(errors.NotFound):
            kinds.delete(deps.vod, upload.kind, [media.media_id])
        summary.vod_calls += 1
        actual = states.FAILED
        fields["error"] = f"FileTooLarge: {fields['size']} bytes exceeds the maximum of {limit}"
    if deps.store.transition(media.media_id, to=actual, now=now, fields=fields):
        summary.reconciled += 1
        return True
    return False


def _expire(
    deps: Deps, kind: str, uploads: list[Upload], summary: CleanupSummary, gone: list[Upload]
) -> None:
    ids = [u.video_id for u in uploads if u.video_id]
    # Media VOD reports as gone (an earlier run deleted them, then stopped before writing the
    # record) are only marked; they are never sent to DeleteVideo a second time.
    gone_ids = [u.video_id for u in gone if u.video_id]
    if ids:
        summary.vod_calls += 1
        with contextlib.suppress(errors.NotFound):  # already gone at VOD
            kinds.delete(deps.vod, kind, ids)
    summary.deleted += deps.store.expire_created([*ids, *gone_ids], now=deps.clock())


def _drop_reservations(deps: Deps, reservations: list[Upload], summary: CleanupSummary) -> None:
    """Reservations whose create never got recorded (a crash, or an answer VOD may have acted on)."""
    videos = [u for u in reservations if u.kind == "video"]
    if videos:
        # Only our ReferenceId ties a possible video to the row: delete by ReferenceId.
        summary.vod_calls += 1
        with contextlib.suppress(errors.NotFound):  # no media carries the ReferenceId
            deps.vod.delete_videos(reference_ids=[u.reference_id for u in videos])
    for u in reservations:
        if u.kind != "video":
            # CreateUploadImage / CreateUploadAttachedMedia take no ReferenceId: a media VOD may
            # have made cannot be found again (SECURITY.md). The log line names what to look for.
            log.warning(
                "reservation dropped; VOD may hold an untracked media",
                extra={
                    "upload_id": u.upload_id,
                    "owner": u.owner,
                    "kind": u.kind,
                    "title": u.title[:64],
                    "created_at": u.created_at.isoformat(),
                },
            )
        deps.store.discard_reservation(u.upload_id)
        summary.deleted += 1


def _handle_stale(deps: Deps, batch: list[Upload], summary: CleanupSummary) -> None:
    """Abandoned uploads: delete at VOD what never arrived, reconcile what did (each kind with its
    own operations)."""
    reservations = [u for u in batch if u.video_id is None]
    if reservations and not summary.dry_run:
        _drop_reservations(deps, reservations, summary)
    for kind, by_id in _by_kind(batch).items():
        _handle_stale_kind(deps, kind, by_id, summary)


def _by_kind(batch: list[Upload]) -> dict[str, dict[str, Upload]]:
    """The batch's uploads that have a media, by kind, then by media id."""
    by_kind: dict[str, dict[str, Upload]] = {}
    for u in batch:
        if u.video_id:
            by_kind.setdefault(u.kind, {})[u.video_id] = u
    return by_kind


def _handle_stale_kind(deps: Deps, kind: str, by_id: dict[str, Upload], summary: CleanupSummary) -> None:
    dry_run = summary.dry_run
    summary.vod_calls += 1
    found, missing = kinds.look_up(deps.vod, kind, list(by_id))
    summary.confirmed += len(found) + len(missing)
    gone = [by_id[vid] for vid in missing if vid in by_id]
    abandoned: list[Upload] = []
    now = deps.clock()
    for media in found:
        upload = by_id.get(media.media_id)
        if upload is None:
            continue
        if (media.vod_status or "") in _ABANDONED_VOD_STATUSES:
            abandoned.append(upload)
        elif not dry_run and not _reconcile(deps, upload, media, summary, now):
            deps.store.release_claim(upload.upload_id)
    if (abandoned or gone) and not dry_run:
        _expire(deps, kind, abandoned, summary, gone)


def _handle_due(deps: Deps, batch: list[Upload], summary: CleanupSummary) -> None:
    """Uploads due for a check: VOD's status decides; still working → the next check is scheduled
    (each kind asked with its own operation)."""
    for kind, by_id in _by_kind(batch).items():
        _handle_due_kind(deps, kind, by_id, summary)


def _handle_due_kind(deps: Deps, kind: str, by_id: dict[str, Upload], summary: CleanupSummary) -> None:
    summary.vod_calls += 1
    found, missing = kinds.look_up(deps.vod, kind, list(by_id))
    if summary.dry_run:
        return
    now = deps.clock()
    schedule = deps.settings.reconcile_schedule_seconds
    for media in found:
        upload = by_id.get(media.media_id)
        if upload is not None and not _reconcile(deps, upload, media, summary, now):
            delay = schedule[min(upload.checks + 1, len(schedule) - 1)]
            deps.store.schedule_check(upload.upload_id, check_at=now + timedelta(seconds=delay), now=now)
    gone_created: list[str] = []
    for video_id in missing:
        upload = by_id.get(video_id)
        if upload is None:
            continue
        if upload.status == states.CREATED:
            gone_created.append(video_id)  # nothing can be uploaded to it any more
        elif deps.store.transition(
            video_id,
            to=states.DELETED,
            allowed_from={states.UPLOADED, states.PROCESSING},
            now=now,
            fields={"error": _GONE_AT_VOD},
        ):
            summary.reconciled += 1
    if gone_created:
        summary.deleted += deps.store.expire_created(gone_created, now=now)


def _drain(
    deps: Deps,
    summary: CleanupSummary,
    *,
    claim: Callable[[], list[Upload]],
    handle: Callable[[Deps, list[Upload], CleanupSummary], None],
    counter: str,
    budget: Budget,
) -> bool:
    """Claim and handle batches until none are left, the run's cap or its budget.

    Returns False when the store went down (the rest of the run is pointless).
    """
    while summary.scanned + summary.stuck_checked < deps.settings.cleanup_max_uploads_per_run:
        if budget.remaining() <= 0:
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
            # VOD failed: the batch goes back at once, for the next run (a minute away) rather
            # than the lease's end, and this step stops (VOD would only fail again).
            for upload in batch:
                with contextlib.suppress(errors.VodfcError):
                    deps.store.release_claim(upload.upload_id)
            break
    return True


def run_cleanup(
    deps: Deps,
    *,
    dry_run: bool | None = None,
    budget_seconds: float | None = None,
    prune: bool = True,
    monotonic: Callable[[], float] = time.monotonic,
) -> CleanupSummary:
    """One cleanup run (see the module docstring). ``CLEANUP_MAX_UPLOADS_PER_RUN`` caps the
    uploads of steps 2 and 3 together, ``CLEANUP_MAX_EVENTS_PER_RUN`` the events of step 1."""
    settings = deps.settings
    summary = CleanupSummary(dry_run=settings.cleanup_dry_run if dry_run is None else dry_run)
    seconds = settings.cleanup_time_budget_seconds
    if budget_seconds is not None:
        seconds = min(seconds, budget_seconds)
    budget = Budget(seconds, clock=monotonic)
    # Claims outlive this run's budget, so a dry run or an interrupted run does not see the
    # same rows again before the lease ends, and an overlapping run skips them.
    lease = int(seconds) + 60
    if not summary.dry_run:
        try:
            summary.events = finish_pending_events(deps, budget, limit=settings.cleanup_max_events_per_run)
        except errors.VodfcError as exc:
            summary.errors += 1
            log.warning("pending events not finished", extra={"code": exc.code})
            if isinstance(exc, errors.StoreUnavailable):
                return summary

    def claim_due() -> list[Upload]:
        return deps.store.claim_stuck(limit=BATCH, lease_seconds=lease, now=deps.clock())

    cutoff = deps.clock() - timedelta(seconds=settings.stale_upload_seconds)
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

    healthy = _drain(
        deps, summary, claim=claim_due, handle=_handle_due, counter="stuck_checked", budget=budget
    )
    if healthy and not summary.out_of_time:
        healthy = _drain(
            deps, summary, claim=claim_stale, handle=_handle_stale, counter="scanned", budget=budget
        )
    if healthy and not summary.dry_run:
        # After the moves, so that their notifications go out in this run too.
        summary.webhooks = deliver_due(deps, seconds=budget.remaining())
    if healthy and prune and not summary.out_of_time:
        now = deps.clock()
        try:
            pruned = deps.store.prune(
                now=now,
                events_before=now - timedelta(seconds=settings.dedupe_ttl_seconds),
                idempotency_before=now - timedelta(seconds=settings.idempotency_ttl_seconds),
                orphans_before=now - timedelta(seconds=settings.orphan_ttl_seconds),
                notifications_before=now - timedelta(seconds=settings.dedupe_ttl_seconds),
            )
            summary.pruned = pruned.events + pruned.idempotency + pruned.orphans + pruned.notifications
        except errors.VodfcError:
            summary.errors += 1
    return summary
