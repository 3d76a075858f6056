"""The store contract: one suite, run against SQLite and PostgreSQL (real servers, no mocks)."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from shared import errors, states
from shared.states import CREATED, CREATING, DELETED, EXPIRED, FAILED, PROCESSING, READY, UPLOADED
from shared.store import ApplyResult, PruneCounts, Store, Upload, create_store, new_reservation, open_store
from tests import pg
from tests.conftest import count_pending

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
MakeStore = Callable[..., Store]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def reservation(owner: str = "alice", *, now: datetime = T0, key: str | None = None, **kw: Any) -> Upload:
    return new_reservation(
        upload_id=kw.pop("upload_id", f"up-{uuid.uuid4().hex}"),
        owner=owner,
        reference_id=kw.pop("reference_id", f"ref-{uuid.uuid4().hex}"),
        title=kw.pop("title", "My holiday"),
        file_name=kw.pop("file_name", "holiday.mp4"),
        file_size=kw.pop("file_size", 12_345_678_901),
        now=now,
        idempotency_key=key,
        request_hash=kw.pop("request_hash", "hash-1" if key else None),
    )


def created(store: Store, owner: str = "alice", *, now: datetime = T0, max_pending: int = 1000) -> Upload:
    """Reserve and attach: an upload in ``created`` with a fresh video id."""
    upload = store.reserve_upload(reservation(owner, now=now), max_pending=max_pending)
    video_id = f"vid-{uuid.uuid4().hex}"
    assert store.attach_video(upload.upload_id, video_id, now + timedelta(seconds=3000), now)
    found = store.get(owner, video_id)
    assert found is not None
    return found


# Shortest way to each status from ``created`` through the state machine.
PATHS = {
    CREATED: [],
    UPLOADED: [UPLOADED],
    PROCESSING: [PROCESSING],
    READY: [READY],
    FAILED: [FAILED],
    EXPIRED: [EXPIRED],
    DELETED: [DELETED],
}


def in_status(store: Store, status: str, owner: str = "alice", *, now: datetime = T0) -> Upload:
    upload = created(store, owner, now=now)
    assert upload.video_id is not None
    for step in PATHS[status]:
        assert store.transition(upload.video_id, to=step, now=now)
    found = store.get_by_video_id(upload.video_id)
    assert found is not None and found.status == status
    return found


def run_threads(n: int, target: Callable[[int], object]) -> list[object]:
    """Run ``target(i)`` in ``n`` threads started together; results (or exceptions) in order."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return results


def orphan_count(store: Store) -> int:
    """Orphans stored, counted through the public API (prune everything, nothing else)."""
    long_ago = T0 - timedelta(days=9999)
    counts = store.prune(
        now=T0, dedupe_before=long_ago, idempotency_before=long_ago, orphans_before=at(10**9)
    )
    return counts.orphans


# --- schema ------------------------------------------------------------------------------------


def test_migrate_is_idempotent_and_reports_the_version(store: Store, make_store: MakeStore) -> None:
    assert store.migrate() == 3
    assert store.migrate() == 3
    assert make_store().migrate() == 3


def test_concurrent_migrations_do_not_collide(make_store: MakeStore) -> None:
    stores = [make_store() for _ in range(4)]
    assert run_threads(4, lambda i: stores[i].migrate()) == [3, 3, 3, 3]


# --- reserve, attach, discard ------------------------------------------------------------------


def test_reserve_then_read_back_every_field(store: Store) -> None:
    upload = reservation(key="k-1", now=at(0))
    assert store.reserve_upload(upload, max_pending=5) == upload
    assert store.find_by_idempotency_key("alice", "k-1") == upload
    assert count_pending(store, "alice") == 1
    # ``creating`` rows are internal: no video id, not listed.
    assert store.list_uploads("alice") == ([], None)

    expires = at(3000)
    assert store.attach_video(upload.upload_id, "vid-1", expires, at(1))
    got = store.get("alice", "vid-1")
    assert got is not None
    assert got.status == CREATED
    assert got.video_id == "vid-1"
    assert got.credential_expires_at == expires
    assert got.created_at == upload.created_at and got.updated_at == at(1)
    assert (got.title, got.file_name, got.file_size) == ("My holiday", "holiday.mp4", 12_345_678_901)
    assert (got.idempotency_key, got.request_hash) == ("k-1", "hash-1")
    assert got.created_at.tzinfo is not None and got.created_at.utcoffset() == timedelta(0)
    assert store.get_by_video_id("vid-1") == got


def test_times_in_other_zones_are_stored_as_utc(store: Store) -> None:
    shanghai = timezone(timedelta(hours=8))
    upload = reservation(now=T0.astimezone(shanghai))
    store.reserve_upload(upload, max_pending=5)
    store.attach_video(upload.upload_id, "vid-tz", T0.astimezone(shanghai), T0.astimezone(shanghai))
    got = store.get_by_video_id("vid-tz")
    assert got is not None
    assert got.created_at == T0 and got.created_at.tzinfo == timezone.utc
    assert got.credential_expires_at == T0


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.reserve_upload(reservation(now=datetime(2024, 1, 1)), max_pending=5)
    up = created(store)
    assert up.video_id is not None
    with pytest.raises(ValueError, match="timezone-aware"):
        store.transition(up.video_id, to=UPLOADED, now=datetime(2024, 1, 1))


def test_reserve_refuses_statuses_other_than_pending(store: Store) -> None:
    upload = reservation()
    bad = Upload(**{**upload.__dict__, "status": READY, "video_id": "v"})
    with pytest.raises(ValueError, match="'creating' or 'created' only"):
        store.reserve_upload(bad, max_pending=5)
    with pytest.raises(ValueError, match="max_pending must be at least 1"):
        store.reserve_upload(upload, max_pending=0)


def test_idempotency_key_is_unique_per_owner(store: Store) -> None:
    first = store.reserve_upload(reservation("alice", key="same"), max_pending=5)
    with pytest.raises(errors.Conflict) as caught:
        store.reserve_upload(reservation("alice", key="same"), max_pending=5)
    assert caught.value.code == "IdempotencyKeyInUse"
    assert caught.value.status == 409
    # Other owners have their own key space; uploads without a key never collide.
    store.reserve_upload(reservation("bob", key="same"), max_pending=5)
    store.reserve_upload(reservation("alice"), max_pending=5)
    store.reserve_upload(reservation("alice"), max_pending=5)
    assert store.find_by_idempotency_key("alice", "same") == first
    assert store.find_by_idempotency_key("carol", "same") is None


def test_duplicate_idempotency_key_wins_over_a_full_quota(store: Store) -> None:
    store.reserve_upload(reservation(key="k"), max_pending=1)
    with pytest.raises(errors.Conflict):
        store.reserve_upload(reservation(key="k"), max_pending=1)
    with pytest.raises(errors.QuotaExceeded):
        store.reserve_upload(reservation(key="other"), max_pending=1)


def test_duplicate_ids_are_conflicts(store: Store) -> None:
    first = store.reserve_upload(reservation(), max_pending=5)
    with pytest.raises(errors.Conflict) as caught:
        store.reserve_upload(reservation(upload_id=first.upload_id), max_pending=5)
    assert caught.value.code == "UploadIdInUse"
    with pytest.raises(errors.Conflict) as caught:
        store.reserve_upload(reservation("bob", reference_id=first.reference_id), max_pending=5)
    assert caught.value.code == "ReferenceIdInUse"


def test_quota_counts_creating_and_created_only(store: Store) -> None:
    a = store.reserve_upload(reservation(), max_pending=2)
    store.reserve_upload(reservation(), max_pending=2)
    with pytest.raises(errors.QuotaExceeded) as caught:
        store.reserve_upload(reservation(), max_pending=2)
    assert caught.value.status == 403
    store.reserve_upload(reservation("bob"), max_pending=2)  # per owner

    assert store.attach_video(a.upload_id, "vid-a", None, at(1))
    with pytest.raises(errors.QuotaExceeded):  # ``created`` still counts
        store.reserve_upload(reservation(), max_pending=2)
    assert store.transition("vid-a", to=UPLOADED, now=at(2))
    store.reserve_upload(reservation(), max_pending=2)  # ``uploaded`` frees the slot
    assert count_pending(store, "alice") == 2


def test_discarding_a_reservation_frees_its_slot(store: Store) -> None:
    a = store.reserve_upload(reservation(key="k"), max_pending=1)
    assert store.discard_reservation(a.upload_id)
    assert not store.discard_reservation(a.upload_id)
    assert store.find_by_idempotency_key("alice", "k") is None
    store.reserve_upload(reservation(key="k"), max_pending=1)


def test_discard_never_deletes_an_attached_upload(store: Store) -> None:
    up = created(store)
    assert not store.discard_reservation(up.upload_id)
    assert store.get_by_video_id(up.video_id or "") == up


@pytest.mark.parametrize("shared_instance", [True, False], ids=["one-instance", "instance-per-thread"])
def test_quota_is_exact_under_concurrency(make_store: MakeStore, shared_instance: bool) -> None:
    stores = [make_store()] * 20 if shared_instance else [make_store() for _ in range(20)]
    stores[0].migrate()
    results = run_threads(20, lambda i: stores[i].reserve_upload(reservation("crowd"), max_pending=5))
    ok = [r for r in results if isinstance(r, Upload)]
    refused = [r for r in results if isinstance(r, errors.QuotaExceeded)]
    assert (len(ok), len(refused)) == (5, 15), results
    assert count_pending(stores[0], "crowd") == 5


def test_concurrent_reuse_of_one_idempotency_key_inserts_once(make_store: MakeStore) -> None:
    stores = [make_store() for _ in range(8)]
    stores[0].migrate()
    results = run_threads(8, lambda i: stores[i].reserve_upload(reservation(key="race"), max_pending=50))
    assert sum(isinstance(r, Upload) for r in results) == 1
    conflicts = [r for r in results if isinstance(r, errors.Conflict)]
    assert len(conflicts) == 7 and {c.code for c in conflicts} == {"IdempotencyKeyInUse"}


def test_attach_only_once_and_video_ids_are_unique(store: Store) -> None:
    a = store.reserve_upload(reservation(), max_pending=5)
    b = store.reserve_upload(reservation(), max_pending=5)
    assert store.attach_video(a.upload_id, "vid-x", None, at(1))
    assert not store.attach_video(a.upload_id, "vid-y", None, at(2))  # no longer creating
    assert not store.attach_video("up-missing", "vid-z", None, at(2))
    with pytest.raises(errors.Conflict) as caught:
        store.attach_video(b.upload_id, "vid-x", None, at(3))
    assert caught.value.code == "VideoIdInUse"
    got = store.get_by_video_id("vid-x")
    assert got is not None and got.upload_id == a.upload_id and got.credential_expires_at is None


# --- reads -------------------------------------------------------------------------------------


def test_get_is_scoped_to_the_owner(store: Store) -> None:
    up = created(store, "alice")
    assert up.video_id is not None
    assert store.get("alice", up.video_id) == up
    assert store.get("mallory", up.video_id) is None
    assert store.get("mallory", up.video_id) == store.get("mallory", "vid-does-not-exist")
    assert store.get_by_video_id(up.video_id) == up
    assert store.get_by_video_id("vid-does-not-exist") is None


def test_list_is_newest_first_with_a_stable_cursor(store: Store) -> None:
    uploads = [created(store, now=at(i)) for i in range(7)]
    store.reserve_upload(reservation(now=at(100)), max_pending=100)  # creating: never listed
    created(store, "bob", now=at(50))  # someone else's

    page1, cursor1 = store.list_uploads("alice", limit=3)
    assert [u.upload_id for u in page1] == [u.upload_id for u in reversed(uploads)][:3]
    assert cursor1 is not None and isinstance(cursor1, str)
    created(store, now=at(200))  # a new upload appears between pages: it must not shift them
    page2, cursor2 = store.list_uploads("alice", limit=3, cursor=cursor1)
    page3, cursor3 = store.list_uploads("alice", limit=3, cursor=cursor2)
    assert cursor3 is None
    seen = [u.upload_id for u in page1 + page2 + page3]
    assert seen == [u.upload_id for u in reversed(uploads)]

    exact, last = store.list_uploads("alice", limit=8)
    assert len(exact) == 8 and last is None


def test_list_breaks_ties_on_upload_id(store: Store) -> None:
    same = [created(store, now=T0) for _ in range(5)]
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page, cursor = store.list_uploads("alice", limit=2, cursor=cursor)
        ids += [u.upload_id for u in page]
        if cursor is None:
            break
    assert ids == sorted((u.upload_id for u in same), reverse=True)


def test_list_filters_on_status(store: Store) -> None:
    r = in_status(store, READY, now=at(1))
    f = in_status(store, FAILED, now=at(2))
    c = in_status(store, CREATED, now=at(3))
    assert store.list_uploads("alice", status=READY) == ([r], None)
    assert store.list_uploads("alice", status=FAILED)[0] == [f]
    assert store.list_uploads("alice", status=CREATED)[0] == [c]
    assert store.list_uploads("alice", status=DELETED)[0] == []


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGpzb24", "WzEsMl0", "WyJub3QgYSBkYXRlIiwieCJd", ""])
def test_malformed_cursors_are_invalid_parameters(store: Store, cursor: str) -> None:
    with pytest.raises(errors.InvalidParameter) as caught:
        store.list_uploads("alice", cursor=cursor)
    assert caught.value.field == "Cursor"


def test_list_rejects_unknown_status_and_bad_limit(store: Store) -> None:
    with pytest.raises(errors.InvalidParameter) as caught:
        store.list_uploads("alice", status=CREATING)
    assert caught.value.field == "Status"
    with pytest.raises(ValueError, match="limit must be at least 1"):
        store.list_uploads("alice", limit=0)


def test_credential_expiry_is_refreshed_only_while_created(store: Store) -> None:
    up = created(store)
    assert up.video_id is not None
    assert store.set_credential_expiry(up.video_id, at(9000), at(10))
    got = store.get_by_video_id(up.video_id)
    assert got is not None and got.credential_expires_at == at(9000) and got.updated_at == at(10)
    assert store.transition(up.video_id, to=UPLOADED, now=at(11))
    assert not store.set_credential_expiry(up.video_id, at(9999), at(12))
    assert not store.set_credential_expiry("vid-missing", at(9999), at(12))


# --- transitions -------------------------------------------------------------------------------


def test_transitions_follow_the_state_machine_for_every_pair(store: Store) -> None:
    for frm, to in itertools.product(states.PUBLIC_STATUSES, states.PUBLIC_STATUSES):
        up = in_status(store, frm, owner=f"o-{frm}-{to}")
        assert up.video_id is not None
        moved = store.transition(up.video_id, to=to, now=at(5))
        assert moved is states.can_move(frm, to), (frm, to)
        after = store.get_by_video_id(up.video_id)
        assert after is not None
        assert after.status == (to if moved else frm)
        assert after.updated_at == (at(5) if moved else up.updated_at)


def test_transition_respects_a_narrower_allowed_from(store: Store) -> None:
    up = in_status(store, UPLOADED)
    assert up.video_id is not None
    assert not store.transition(up.video_id, to=DELETED, allowed_from={CREATED}, now=at(1))
    assert store.transition(up.video_id, to=DELETED, allowed_from={UPLOADED}, now=at(1))


def test_transition_refuses_moves_the_state_machine_forbids(store: Store) -> None:
    up = in_status(store, READY)
    assert up.video_id is not None
    with pytest.raises(ValueError, match="cannot move"):
        store.transition(up.video_id, to=PROCESSING, allowed_from={READY}, now=at(1))
    with pytest.raises(ValueError, match="cannot be updated"):
        store.transition(up.video_id, to=DELETED, now=at(1), fields={"status": "ready"})


def test_transition_writes_fields_and_keeps_what_none_would_erase(store: Store) -> None:
    up = created(store)
    assert up.video_id is not None
    assert store.transition(up.video_id, to=PROCESSING, now=at(1), fields={"duration": 12.5, "size": 99})
    assert store.transition(
        up.video_id, to=FAILED, now=at(2), fields={"error": "TranscodeFail", "size": None}
    )
    got = store.get_by_video_id(up.video_id)
    assert got is not None
    assert (got.status, got.duration, got.size, got.error) == (FAILED, 12.5, 99, "TranscodeFail")


def test_transition_of_a_missing_upload_is_false(store: Store) -> None:
    assert not store.transition("vid-missing", to=DELETED, now=at(1))


def test_concurrent_transitions_move_once(make_store: MakeStore) -> None:
    stores = [make_store() for _ in range(6)]
    stores[0].migrate()
    up = created(stores[0])
    assert up.video_id is not None
    vid = up.video_id
    targets = [READY, FAILED, DELETED, EXPIRED, READY, FAILED]
    results = run_threads(
        6, lambda i: stores[i].transition(vid, to=targets[i], allowed_from={CREATED}, now=at(1))
    )
    assert results.count(True) == 1 and results.count(False) == 5


# --- callback events ---------------------------------------------------------------------------


def event(store: Store, video_id: str, key: str, to: str | None, **kw: Any) -> ApplyResult:
    return store.apply_event(
        video_id,
        dedupe_key=key,
        event_type=kw.pop("event_type", f"Event-{key}"),
        event_time=kw.pop("event_time", at(10)),
        to=to,
        now=kw.pop("now", at(20)),
        **kw,
    )


def test_event_applies_once_then_is_a_duplicate(store: Store) -> None:
    up = created(store)
    vid = up.video_id or ""
    assert event(store, vid, "k1", UPLOADED, event_type="FileUploadComplete", fields={"size": 1234}) is (
        ApplyResult.APPLIED
    )
    got = store.get_by_video_id(vid)
    assert got is not None
    assert (got.status, got.last_event, got.last_event_at, got.size, got.updated_at) == (
        UPLOADED,
        "FileUploadComplete",
        at(10),
        1234,
        at(20),
    )
    # The same key again changes nothing, even with other content.
    assert event(store, vid, "k1", READY, fields={"duration": 3.0}, now=at(30)) is ApplyResult.DUPLICATE
    assert store.get_by_video_id(vid) == got


def test_events_for_unknown_videos_are_kept_as_orphans(store: Store) -> None:
    assert event(store, "vid-nobody", "o1", UPLOADED, payload={"EventType": "FileUploadComplete"}) is (
        ApplyResult.ORPHAN
    )
    assert event(store, "vid-nobody", "o1", UPLOADED) is ApplyResult.DUPLICATE
    assert event(store, "vid-nobody", "o2", None, fields={"duration": 1}) is ApplyResult.ORPHAN
    # A reservation still ``creating`` has no video id yet: its events are orphans too.
    store.reserve_upload(reservation(), max_pending=5)
    assert event(store, "vid-later", "o3", READY) is ApplyResult.ORPHAN
    assert orphan_count(store) == 3


def test_late_events_are_stale_but_fill_in_missing_fields(store: Store) -> None:
    up = created(store)
    vid = up.video_id or ""
    assert event(store, vid, "t", PROCESSING, event_type="StreamTranscodeComplete", fields={"size": 5}) is (
        ApplyResult.APPLIED
    )
    before = store.get_by_video_id(vid)
    assert before is not None
    # FileUploadComplete arrives late: would move processing → uploaded (backwards).
    result = event(
        store,
        vid,
        "u",
        UPLOADED,
        event_type="FileUploadComplete",
        event_time=at(5),
        fields={"size": 999, "duration": 61.5},
        now=at(40),
    )
    assert result is ApplyResult.STALE
    after = store.get_by_video_id(vid)
    assert after is not None
    assert after.status == PROCESSING
    assert after.size == 5  # present: kept
    assert after.duration == 61.5  # missing: filled in
    assert (after.last_event, after.last_event_at) == (before.last_event, before.last_event_at)
    assert after.updated_at == at(40)
    # The stale event's key was recorded.
    assert event(store, vid, "u", UPLOADED) is ApplyResult.DUPLICATE
    # A stale event with nothing to fill changes nothing at all.
    assert event(store, vid, "u2", UPLOADED, now=at(50)) is ApplyResult.STALE
    assert store.get_by_video_id(vid) == after


def test_final_states_are_not_left_by_events(store: Store) -> None:
    failed = in_status(store, FAILED)
    vid = failed.video_id or ""
    assert event(store, vid, "ready-late", READY, event_type="TranscodeComplete") is ApplyResult.STALE
    got = store.get_by_video_id(vid)
    assert got is not None and got.status == FAILED
    deleted = in_status(store, DELETED)
    assert event(store, deleted.video_id or "", "x", READY) is ApplyResult.STALE


def test_events_without_a_status_record_the_event_and_fields(store: Store) -> None:
    up = in_status(store, READY)
    vid = up.video_id or ""
    assert event(store, vid, "snap", None, event_type="SnapshotComplete", fields={"duration": 7}) is (
        ApplyResult.APPLIED
    )
    got = store.get_by_video_id(vid)
    assert got is not None
    assert (got.status, got.last_event, got.duration) == (READY, "SnapshotComplete", 7.0)
    # With an allowed_from that excludes the current status it is stale.
    assert event(store, vid, "snap2", None, allowed_from={CREATED}, fields={"size": 3}) is ApplyResult.STALE
    got = store.get_by_video_id(vid)
    assert got is not None and got.size == 3 and got.last_event == "SnapshotComplete"


def test_last_event_never_goes_back_in_time(store: Store) -> None:
    up = created(store)
    vid = up.video_id or ""
    assert event(store, vid, "a", None, event_type="Newer", event_time=at(100)) is ApplyResult.APPLIED
    assert event(store, vid, "b", UPLOADED, event_type="Older", event_time=at(50)) is ApplyResult.APPLIED
    got = store.get_by_video_id(vid)
    assert got is not None
    assert (got.status, got.last_event, got.last_event_at) == (UPLOADED, "Newer", at(100))


EVENTS = [
    ("FileUploadComplete", UPLOADED, {"size": 100}),
    ("VideoAnalysisComplete", PROCESSING, {"duration": 12.0}),
    ("StreamTranscodeComplete", None, {}),
    ("TranscodeComplete", READY, {}),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(EVENTS)))))
def test_events_in_any_order_end_ready_with_all_fields(store: Store, order: tuple[int, ...]) -> None:
    up = created(store)
    vid = up.video_id or ""
    for i in order:
        name, to, fields = EVENTS[i]
        result = event(store, vid, name, to, event_type=name, event_time=at(i), fields=fields)
        assert result in (ApplyResult.APPLIED, ApplyResult.STALE)
    got = store.get_by_video_id(vid)
    assert got is not None
    assert (got.status, got.size, got.duration) == (READY, 100, 12.0)
    # The newest event (by EventTime) is the one remembered, whatever the arrival order.
    assert (got.last_event, got.last_event_at) == ("TranscodeComplete", at(3))


def test_concurrent_deliveries_of_one_event_apply_once(make_store: MakeStore) -> None:
    stores = [make_store() for _ in range(8)]
    stores[0].migrate()
    up = created(stores[0])
    vid = up.video_id or ""
    results = run_threads(8, lambda i: event(stores[i], vid, "same", UPLOADED))
    assert results.count(ApplyResult.APPLIED) == 1
    assert results.count(ApplyResult.DUPLICATE) == 7


def test_concurrent_events_on_one_upload_end_in_the_furthest_state(make_store: MakeStore) -> None:
    stores = [make_store() for _ in range(len(EVENTS))]
    stores[0].migrate()
    up = created(stores[0])
    vid = up.video_id or ""

    def deliver(i: int) -> object:
        name, to, fields = EVENTS[i]
        return event(stores[i], vid, name, to, event_type=name, event_time=at(i), fields=fields)

    results = run_threads(len(EVENTS), deliver)
    assert all(r in (ApplyResult.APPLIED, ApplyResult.STALE) for r in results), results
    got = stores[0].get_by_video_id(vid)
    assert got is not None
    assert (got.status, got.size, got.duration) == (READY, 100, 12.0)
    assert (got.last_event, got.last_event_at) == ("TranscodeComplete", at(3))


def test_events_without_a_time_do_not_replace_the_recorded_event(store: Store) -> None:
    up = created(store)
    vid = up.video_id or ""
    assert event(store, vid, "a", UPLOADED, event_type="Timed", event_time=at(5)) is ApplyResult.APPLIED
    assert event(store, vid, "b", PROCESSING, event_type="Untimed", event_time=None) is ApplyResult.APPLIED
    got = store.get_by_video_id(vid)
    assert got is not None
    assert (got.status, got.last_event, got.last_event_at) == (PROCESSING, "Timed", at(5))
    # On an upload with no event recorded yet, an untimed event is recorded.
    other = created(store)
    assert event(store, other.video_id or "", "c", None, event_type="First", event_time=None) is (
        ApplyResult.APPLIED
    )
    first = store.get_by_video_id(other.video_id or "")
    assert first is not None and (first.last_event, first.last_event_at) == ("First", None)


def test_an_applied_move_ends_a_cleanup_claim(store: Store) -> None:
    up = created(store, now=at(0))
    vid = up.video_id or ""
    assert len(store.claim_stale(created_before=at(10), limit=10, lease_seconds=600, now=at(10))) == 1
    # An event that keeps the status keeps the lease; one that moves it ends the lease.
    assert event(store, vid, "same", None) is ApplyResult.APPLIED
    kept = store.get_by_video_id(vid)
    assert kept is not None and kept.claimed_until is not None
    assert event(store, vid, "move", UPLOADED) is ApplyResult.APPLIED
    moved = store.get_by_video_id(vid)
    assert moved is not None and moved.status == UPLOADED and moved.claimed_until is None


def test_apply_event_validates_its_arguments(store: Store) -> None:
    up = created(store)
    vid = up.video_id or ""
    with pytest.raises(ValueError, match="cannot move"):
        event(store, vid, "bad", UPLOADED, allowed_from={READY})
    with pytest.raises(ValueError, match="cannot be updated"):
        event(store, vid, "bad", UPLOADED, fields={"owner": "mallory"})
    with pytest.raises(ValueError, match="number"):
        event(store, vid, "bad", UPLOADED, fields={"size": "lots"})
    # Nothing was recorded by the refused calls.
    assert event(store, vid, "bad", UPLOADED) is ApplyResult.APPLIED


# --- cleanup claims ----------------------------------------------------------------------------


def test_claim_stale_returns_old_pending_uploads_oldest_first(store: Store) -> None:
    creating = store.reserve_upload(reservation(now=at(0)), max_pending=100)
    old_created = created(store, now=at(1))
    in_status(store, UPLOADED, now=at(2))  # past created: never claimed
    in_status(store, READY, now=at(3))
    created(store, now=at(500))  # too young

    claimed = store.claim_stale(created_before=at(100), limit=10, lease_seconds=60, now=at(1000))
    assert [u.upload_id for u in claimed] == [creating.upload_id, old_created.upload_id]
    assert all(u.claimed_until == at(1060) for u in claimed)
    # While the lease lives nobody else gets them.
    assert store.claim_stale(created_before=at(100), limit=10, lease_seconds=60, now=at(1059)) == []
    # Once it lapses they come back.
    again = store.claim_stale(created_before=at(100), limit=10, lease_seconds=30, now=at(1060))
    assert [u.upload_id for u in again] == [creating.upload_id, old_created.upload_id]
    assert all(u.claimed_until == at(1090) for u in again)


def test_claim_stale_pages_through_a_backlog(store: Store) -> None:
    ids = {created(store, now=at(i)).upload_id for i in range(25)}
    pages = []
    while page := store.claim_stale(created_before=at(100), limit=10, lease_seconds=600, now=at(1000)):
        pages.append([u.upload_id for u in page])
    assert [len(p) for p in pages] == [10, 10, 5]
    assert {i for p in pages for i in p} == ids


def test_claim_stale_skips_uploads_whose_credential_is_still_alive(store: Store) -> None:
    refreshed = created(store, now=at(0))
    lapsed = created(store, now=at(1))
    assert refreshed.video_id and lapsed.video_id
    store.set_credential_expiry(refreshed.video_id, at(5000), now=at(2000))  # refreshed late
    store.set_credential_expiry(lapsed.video_id, at(3000), now=at(2))
    claimed = store.claim_stale(
        created_before=at(100), limit=10, lease_seconds=9000, now=at(4000), credential_expired_before=at(3500)
    )
    assert [u.upload_id for u in claimed] == [lapsed.upload_id]
    # once its credential has lapsed too, the refreshed upload is a candidate
    later = store.claim_stale(
        created_before=at(100), limit=10, lease_seconds=60, now=at(6000), credential_expired_before=at(5500)
    )
    assert [u.upload_id for u in later] == [refreshed.upload_id]


def test_expire_created_moves_only_created_uploads_in_one_call(store: Store) -> None:
    a = created(store, now=at(0))
    b = created(store, now=at(1))
    done = in_status(store, UPLOADED, now=at(2))
    ids = [u.video_id or "" for u in (a, b, done)] + ["vid-missing"]
    assert store.claim_stale(created_before=at(10), limit=10, lease_seconds=600, now=at(100))
    assert store.expire_created(ids, now=at(101)) == 2
    assert store.expire_created(ids, now=at(102)) == 0  # idempotent
    assert store.expire_created([], now=at(103)) == 0
    for upload, status in ((a, EXPIRED), (b, EXPIRED), (done, UPLOADED)):
        found = store.get_by_video_id(upload.video_id or "")
        assert found is not None and found.status == status
    expired = store.get_by_video_id(a.video_id or "")
    assert expired is not None and expired.claimed_until is None and expired.updated_at == at(101)


def test_release_and_transition_end_a_claim(store: Store) -> None:
    a = created(store, now=at(0))
    b = created(store, now=at(1))
    assert len(store.claim_stale(created_before=at(10), limit=10, lease_seconds=600, now=at(100))) == 2
    assert store.release_claim(a.upload_id)
    assert not store.release_claim("up-missing")
    assert store.transition(b.video_id or "", to=EXPIRED, allowed_from={CREATED}, now=at(101))
    expired = store.get_by_video_id(b.video_id or "")
    assert expired is not None and expired.claimed_until is None
    again = store.claim_stale(created_before=at(10), limit=10, lease_seconds=600, now=at(102))
    assert [u.upload_id for u in again] == [a.upload_id]


def _claim_plan(store: Store, claim: Callable[[], object], query: str) -> str:
    """The query plan of a claim's SELECT.

    SQLite: the store's own statement, traced while ``claim`` runs. PostgreSQL: ``query`` (the
    same SELECT, written out; its subselect cannot be traced), with sequential scans discouraged
    because a 30-row table would otherwise be read whole.
    """
    if store.dialect == "sqlite":
        conn = store._conn  # type: ignore[attr-defined]
        seen: list[str] = []
        conn.set_trace_callback(seen.append)
        try:
            claim()
        finally:
            conn.set_trace_callback(None)
        (select,) = [q for q in seen if q.startswith("SELECT upload_id FROM uploads")]
        return " ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + select).fetchall())

    def explain(cur: Any) -> str:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN " + query.format(p="%s"), (at(9), at(9)))
        return " ".join(r[0] for r in cur.fetchall())

    plan: str = store._run(explain)  # type: ignore[attr-defined]
    return plan


def test_claim_stale_reads_the_partial_index_without_sorting(store: Store) -> None:
    """The claim walks uploads_stale_pending in order (no scan and sort of every upload)."""
    store.migrate()
    for i in range(30):
        created(store, now=at(i))
    query = (
        "SELECT upload_id FROM uploads WHERE status IN ('creating', 'created') AND created_at < {p}"
        " AND (claimed_until IS NULL OR claimed_until <= {p}) ORDER BY created_at, upload_id LIMIT 20"
    )
    plan = _claim_plan(
        store, lambda: store.claim_stale(created_before=at(9), limit=20, lease_seconds=60, now=at(9)), query
    )
    assert "uploads_stale_pending" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_claim_stale_validates_arguments(store: Store) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        store.claim_stale(created_before=at(0), limit=0, lease_seconds=60, now=at(0))
    with pytest.raises(ValueError, match="lease_seconds must be positive"):
        store.claim_stale(created_before=at(0), limit=1, lease_seconds=0, now=at(0))


def test_concurrent_claimers_never_share_an_upload(make_store: MakeStore) -> None:
    setup = make_store()
    setup.migrate()
    ids = {created(setup, now=at(i)).upload_id for i in range(60)}
    claimers = [make_store(), make_store()]

    def drain(i: int) -> list[str]:
        got: list[str] = []
        while page := claimers[i].claim_stale(
            created_before=at(100), limit=3, lease_seconds=600, now=at(1000)
        ):
            got += [u.upload_id for u in page]
        return got

    first, second = run_threads(2, drain)
    assert isinstance(first, list) and isinstance(second, list), (first, second)
    assert len(first) + len(second) == 60
    assert set(first).isdisjoint(second)
    assert set(first) | set(second) == ids


def moved(store: Store, status: str, *, created_at: datetime, updated_at: datetime) -> Upload:
    """An upload created at ``created_at`` that reached ``status`` at ``updated_at``."""
    upload = created(store, now=created_at)
    assert upload.video_id is not None
    for step in PATHS[status]:
        assert store.transition(upload.video_id, to=step, now=updated_at)
    found = store.get_by_video_id(upload.video_id)
    assert found is not None and found.status == status and found.updated_at == updated_at
    return found


def test_claim_stuck_returns_old_uploaded_and_processing_uploads_least_recently_updated_first(
    store: Store,
) -> None:
    late_move = moved(store, UPLOADED, created_at=at(0), updated_at=at(30))
    early_move = moved(store, PROCESSING, created_at=at(5), updated_at=at(10))
    moved(store, PROCESSING, created_at=at(0), updated_at=at(500))  # moved too recently
    store.reserve_upload(reservation(now=at(0)), max_pending=100)  # creating: claim_stale's
    created(store, now=at(0))  # created: claim_stale's
    for final in (READY, FAILED, EXPIRED, DELETED):
        moved(store, final, created_at=at(0), updated_at=at(1))

    claimed = store.claim_stuck(updated_before=at(100), limit=10, lease_seconds=60, now=at(1000))
    assert [u.upload_id for u in claimed] == [early_move.upload_id, late_move.upload_id]
    assert all(u.claimed_until == at(1060) for u in claimed)
    assert [u.updated_at for u in claimed] == [at(10), at(30)]  # the claim is not a change
    # While the lease lives nobody else gets them, stale claimers included.
    assert store.claim_stuck(updated_before=at(100), limit=10, lease_seconds=60, now=at(1059)) == []
    # Once it lapses they come back; a transition ends the claim for good.
    assert store.transition(late_move.video_id or "", to=READY, now=at(1059))
    again = store.claim_stuck(updated_before=at(100), limit=10, lease_seconds=30, now=at(1060))
    assert [u.upload_id for u in again] == [early_move.upload_id]
    assert again[0].claimed_until == at(1090)


def test_claim_stuck_pages_and_claim_stale_never_sees_stuck_uploads(store: Store) -> None:
    ids = {moved(store, PROCESSING, created_at=at(0), updated_at=at(i)).upload_id for i in range(25)}
    assert store.claim_stale(created_before=at(100), limit=100, lease_seconds=600, now=at(1000)) == []
    pages = []
    while page := store.claim_stuck(updated_before=at(100), limit=10, lease_seconds=600, now=at(1000)):
        pages.append([u.upload_id for u in page])
    assert [len(p) for p in pages] == [10, 10, 5]
    assert {i for p in pages for i in p} == ids


def test_claim_stuck_reads_the_partial_index_without_sorting(store: Store) -> None:
    """The claim walks uploads_stuck in order (no scan and sort of every upload)."""
    store.migrate()
    for i in range(30):
        moved(store, PROCESSING, created_at=at(0), updated_at=at(i))
    query = (
        "SELECT upload_id FROM uploads WHERE status IN ('uploaded', 'processing') AND updated_at < {p}"
        " AND (claimed_until IS NULL OR claimed_until <= {p}) ORDER BY updated_at, upload_id LIMIT 20"
    )
    plan = _claim_plan(
        store, lambda: store.claim_stuck(updated_before=at(9), limit=20, lease_seconds=60, now=at(9)), query
    )
    assert "uploads_stuck" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_claim_stuck_validates_arguments(store: Store) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        store.claim_stuck(updated_before=at(0), limit=0, lease_seconds=60, now=at(0))
    with pytest.raises(ValueError, match="lease_seconds must be positive"):
        store.claim_stuck(updated_before=at(0), limit=1, lease_seconds=0, now=at(0))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.claim_stuck(updated_before=datetime(2024, 1, 1), limit=1, lease_seconds=60, now=at(0))


def test_concurrent_stuck_claimers_never_share_an_upload(make_store: MakeStore) -> None:
    setup = make_store()
    setup.migrate()
    ids = {moved(setup, PROCESSING, created_at=at(0), updated_at=at(i)).upload_id for i in range(60)}
    claimers = [make_store(), make_store()]

    def drain(i: int) -> list[str]:
        got: list[str] = []
        while page := claimers[i].claim_stuck(
            updated_before=at(100), limit=3, lease_seconds=600, now=at(1000)
        ):
            got += [u.upload_id for u in page]
        return got

    first, second = run_threads(2, drain)
    assert isinstance(first, list) and isinstance(second, list), (first, second)
    assert len(first) + len(second) == 60
    assert set(first).isdisjoint(second)
    assert set(first) | set(second) == ids


# --- pruning -----------------------------------------------------------------------------------


def test_prune_forgets_old_bookkeeping(store: Store) -> None:
    up = created(store, now=at(0))
    vid = up.video_id or ""
    assert event(store, vid, "old", None, now=at(10)) is ApplyResult.APPLIED
    assert event(store, vid, "new", None, now=at(1000)) is ApplyResult.APPLIED
    assert event(store, "vid-x", "orphan-old", None, now=at(10)) is ApplyResult.ORPHAN
    assert event(store, "vid-x", "orphan-new", None, now=at(1000)) is ApplyResult.ORPHAN
    keyed = store.reserve_upload(reservation(key="k-old", now=at(1)), max_pending=100)
    store.attach_video(keyed.upload_id, "vid-keyed", None, at(1))
    pending = store.reserve_upload(reservation(key="k-pending", now=at(1)), max_pending=100)
    store.reserve_upload(reservation(key="k-new", now=at(1000)), max_pending=100)

    counts = store.prune(
        now=at(2000), dedupe_before=at(500), idempotency_before=at(500), orphans_before=at(500)
    )
    # dedupe: "old" and "orphan-old"; idempotency: only the attached upload (creating is kept).
    assert counts == PruneCounts(dedupe=2, idempotency=1, orphans=1)

    got = store.get_by_video_id("vid-keyed")
    assert got is not None and (got.idempotency_key, got.request_hash) == (None, None)
    assert store.find_by_idempotency_key("alice", "k-old") is None
    assert store.find_by_idempotency_key("alice", "k-pending") == pending
    store.reserve_upload(reservation(key="k-old", now=at(2000)), max_pending=100)  # reusable now
    assert event(store, vid, "old", None, now=at(2000)) is ApplyResult.APPLIED  # key forgotten
    assert event(store, vid, "new", None, now=at(2000)) is ApplyResult.DUPLICATE
    assert store.prune(now=at(2000), dedupe_before=at(0), idempotency_before=at(0), orphans_before=at(0)) == (
        PruneCounts(0, 0, 0)
    )


# --- failures and reconnection -----------------------------------------------------------------


def test_the_store_recovers_after_its_connection_dies(store_url: str, make_store: MakeStore) -> None:
    if store_url.startswith("sqlite"):
        store = make_store()
        store.migrate()
        up = created(store)
        store._conn.close()  # type: ignore[attr-defined]  # the file handle goes away under us
    else:
        from shared.store.postgres import PostgresStore

        name = f"vodfc-test-{uuid.uuid4().hex[:12]}"
        store = PostgresStore(store_url, application_name=name)
        try:
            store.migrate()
            up = created(store)
            assert pg.terminate(store_url, name) == 1
        except BaseException:
            store.close()
            raise
    try:
        try:
            first = store.get_by_video_id(up.video_id or "")
        except errors.StoreUnavailable:
            first = store.get_by_video_id(up.video_id or "")
        assert first == up
        assert store.transition(up.video_id or "", to=UPLOADED, now=at(1))
    finally:
        store.close()


def test_a_closed_store_reopens_on_next_use(store: Store) -> None:
    up = created(store)
    store.close()
    store.close()
    assert store.get_by_video_id(up.video_id or "") == up


def test_unreachable_postgres_is_store_unavailable_without_the_password() -> None:
    port = pg._free_port()  # nothing listens there
    store = create_store(f"postgresql://vodfc:s3cr3t-pw@127.0.0.1:{port}/vodfc", connect_timeout=2)
    with pytest.raises(errors.StoreUnavailable) as caught:
        store.get_by_video_id("v-any")
    assert caught.value.status == 503
    assert "s3cr3t-pw" not in str(caught.value) and "s3cr3t-pw" not in repr(store)
    assert caught.value.__cause__ is not None
    with pytest.raises(errors.StoreUnavailable):  # and again, no lingering state
        store.get_by_video_id("v-any")
    store.close()


def test_unusable_sqlite_path_is_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = create_store(f"sqlite:///{blocker / 'sub' / 'vodfc.db'}")
    with pytest.raises(errors.StoreUnavailable) as caught:
        store.migrate()
    assert isinstance(caught.value.__cause__, OSError)


def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = create_store("sqlite:///.vodfc/vodfc.db")
    assert relative.migrate() == 3
    relative.close()
    assert (tmp_path / ".vodfc" / "vodfc.db").is_file()

    absolute = create_store(f"sqlite:///{tmp_path / 'deep' / 'er' / 'abs.db'}")
    assert absolute.migrate() == 3
    absolute.close()
    assert (tmp_path / "deep" / "er" / "abs.db").is_file()

    memory = create_store("sqlite:///:memory:")
    up = created(memory)
    assert memory.get_by_video_id(up.video_id or "") == up
    memory.close()
    assert not list(tmp_path.glob(":memory:*"))


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite://", "sqlite:///", "http://example.com"])
def test_unsupported_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ValueError, match="DATABASE_URL") as caught:
        create_store(url)
    assert "example.com" not in str(caught.value)


def test_open_store_is_cached_per_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    assert open_store(url) is open_store(url)
    assert open_store(url) is not open_store(f"sqlite:///{tmp_path / 'd.db'}")
    assert create_store(url) is not open_store(url)
    assert type(create_store("postgres://u@h/db")).__name__ == "PostgresStore"


def test_importing_the_store_does_not_import_drivers() -> None:
    code = (
        "import sys, shared.store;"
        "shared.store.create_store('postgresql://u@127.0.0.1:1/x');"
        "print('psycopg' in sys.modules, 'sqlite3' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.postgres
def test_postgres_statements_time_out(postgres_url: str) -> None:
    """A hung statement is cancelled by statement_timeout and becomes StoreUnavailable."""
    import psycopg

    store = create_store(postgres_url, statement_timeout=0.2)
    try:
        store.migrate()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(424242)")
            try:
                with pytest.raises(errors.StoreUnavailable):
                    store._run(lambda cur: cur.execute("SELECT pg_advisory_lock(424242)"))  # type: ignore[attr-defined]
            finally:
                conn.execute("SELECT pg_advisory_unlock(424242)")
        assert store.get_by_video_id("v-any") is None  # the connection is usable again
    finally:
        store.close()
