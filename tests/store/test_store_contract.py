"""The store contract: one suite, run against SQLite and PostgreSQL (real servers, no mocks)."""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from shared import errors, states
from shared.states import CREATED, CREATING, DELETED, EXPIRED, FAILED, PROCESSING, READY, UPLOADED
from shared.store import (
    Applied,
    ApplyResult,
    InboxEvent,
    Notification,
    NotificationCounts,
    PruneCounts,
    Store,
    Upload,
    create_store,
    new_reservation,
    open_store,
)
from shared.store.base import CHECKED_SQL, EVENT_COLUMNS, MIGRATIONS, PENDING_SQL, SCHEMA_TYPES
from tests import pg
from tests.conftest import count_pending

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
MakeStore = Callable[..., Store]
ALL_TYPES = frozenset(states.NOTIFICATION_TYPES)
LEASE = 60.0


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
        **kw,
    )


def created(
    store: Store, owner: str = "alice", *, now: datetime = T0, max_pending: int = 1000, **kw: Any
) -> Upload:
    """Reserve and attach: an upload in ``created`` with a fresh media id."""
    upload = store.reserve_upload(reservation(owner, now=now, **kw), max_pending=max_pending)
    video_id = f"vid-{uuid.uuid4().hex}"
    assert store.attach_video(upload.upload_id, video_id, now + timedelta(seconds=3000), now)
    found = store.get(owner, video_id, kind=upload.kind)
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


def record(
    store: Store,
    video_id: str,
    key: str,
    *,
    now: datetime = at(20),
    event_type: str | None = None,
    event_time: datetime | None = at(10),
    lease_seconds: float = LEASE,
    body: str | None = None,
    source: str = "http",
    message_id: str | None = None,
) -> tuple[InboxEvent, bool, Upload | None]:
    """``record_event`` of one VOD event, its body made up from its type and media id."""
    event_type = event_type or f"Event-{key}"
    return store.record_event(
        dedupe_key=key,
        media_id=video_id,
        event_type=event_type,
        event_time=event_time,
        source=source,
        message_id=message_id,
        body=body if body is not None else json.dumps({"EventType": event_type, "VideoId": video_id}),
        now=now,
        lease_seconds=lease_seconds,
    )


def event(
    store: Store,
    video_id: str,
    key: str,
    to: str | None,
    fields: dict[str, object] | None = None,
    *,
    now: datetime = at(20),
    event_time: datetime | None = at(10),
    event_type: str | None = None,
    allowed_from: set[str] | None = None,
) -> ApplyResult:
    """One delivery of an event: record it (its key claimed), then apply it."""
    event_type = event_type or f"Event-{key}"
    entry, _owned, _upload = record(
        store, video_id, key, now=now, event_type=event_type, event_time=event_time
    )
    return store.apply_event(
        entry.event_id,
        video_id=video_id,
        event_type=event_type,
        event_time=event_time,
        to=to,
        allowed_from=allowed_from,
        fields=fields,
        now=now,
    ).result


def inbox(store: Store) -> dict[str, InboxEvent]:
    """Every inbox row by dedupe key, read straight from the table (no lease taken, unlike the
    store's operations, which is why tests use it to look)."""
    sql = f"SELECT {EVENT_COLUMNS} FROM event_inbox"  # noqa: S608
    rows = store._read(lambda cur: store._exec(cur, sql).fetchall())  # type: ignore[attr-defined]
    events = [store._event(r) for r in rows]  # type: ignore[attr-defined]
    return {e.dedupe_key: e for e in events}


def outbox(store: Store) -> list[Notification]:
    """Every notification, in upload and sequence order."""
    return sorted(store.list_notifications(limit=10_000), key=lambda n: (n.upload_id, n.seq))


def body(notification: Notification) -> Any:
    return json.loads(notification.body)


class Direct:
    """A connection of the test's own to a store's database, beside the store (``?`` placeholders,
    autocommit unless :meth:`begin` is called)."""

    def __init__(self, url: str) -> None:
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            self.conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        else:
            import psycopg

            self.conn = psycopg.connect(url, autocommit=True)

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        if self.sqlite:
            values = [p.isoformat(timespec="microseconds") if isinstance(p, datetime) else p for p in params]
            self.conn.execute(sql, values)
        else:
            self.conn.execute(sql.replace("?", "%s"), params)

    def begin(self) -> None:
        self.run("BEGIN IMMEDIATE" if self.sqlite else "BEGIN")

    def close(self) -> None:
        self.conn.close()


def raw_outbox_row(store_url: str, notification_id: str, upload_id: str, seq: int) -> None:
    """A notification row written behind the store's back (to make the store's own insert fail)."""
    direct = Direct(store_url)
    try:
        direct.run(
            "INSERT INTO webhook_outbox (notification_id, upload_id, seq, type, body, created_at, state, "
            "next_attempt_at) VALUES (?, ?, ?, 'upload.uploaded', '{}', ?, 'delivered', NULL)",
            (notification_id, upload_id, seq, T0),
        )
    finally:
        direct.close()


@pytest.fixture
def notifying(make_store: MakeStore) -> Store:
    """A migrated store that writes every type of notification."""
    store = make_store(notify_types=ALL_TYPES)
    store.migrate()
    return store


# --- schema ------------------------------------------------------------------------------------


def test_migrate_is_idempotent_and_reports_the_version(store: Store, make_store: MakeStore) -> None:
    assert store.migrate() == 4
    assert store.migrate() == 4
    assert make_store().migrate() == 4


def test_concurrent_migrations_do_not_collide(make_store: MakeStore) -> None:
    stores = [make_store() for _ in range(4)]
    assert run_threads(4, lambda i: stores[i].migrate()) == [4, 4, 4, 4]


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
    assert (got.kind, got.media_type, got.extend) == ("video", None, None)
    # created: due for a check with VOD first_check_seconds (600 by default) after the move.
    assert (got.notify_seq, got.check_at, got.checks, got.claimed_until) == (1, at(601), 0, None)
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
    bad = Upload(**{**upload._asdict(), "status": READY, "video_id": "v"})
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


def test_an_attach_run_again_after_it_committed_changes_nothing(make_store: MakeStore) -> None:
    """What a replay after a lost answer does (PostgreSQL runs the attach in autocommit when it
    writes no notification): False, the row as the first run left it, no second notification."""
    for notify_types in (None, ALL_TYPES, frozenset({"upload.ready"})):
        store = make_store(notify_types=notify_types)
        store.migrate()
        up = store.reserve_upload(reservation(), max_pending=5)
        assert store.attach_video(up.upload_id, f"vid-r-{up.upload_id}", at(3600), at(1))
        first = store.get_by_video_id(f"vid-r-{up.upload_id}")
        assert not store.attach_video(up.upload_id, f"vid-r-{up.upload_id}", at(7200), at(2))
        assert store.get_by_video_id(f"vid-r-{up.upload_id}") == first
        assert first is not None and first.notify_seq == 1
        mine = [n for n in outbox(store) if n.upload_id == up.upload_id]
        assert len(mine) == (1 if notify_types == ALL_TYPES else 0)


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


# --- media kinds ---------------------------------------------------------------------------------


def test_kinds_keep_their_media_type_and_extend(store: Store) -> None:
    image = created(store, kind="image", media_type="cover", extend='{"album":"summer","n":[1,2]}')
    attached = created(store, kind="attached", media_type="watermark")
    video = created(store, extend='{"a":1}')
    assert (image.kind, image.media_type, image.extend) == ("image", "cover", '{"album":"summer","n":[1,2]}')
    assert (attached.kind, attached.media_type, attached.extend) == ("attached", "watermark", None)
    assert (video.kind, video.media_type, video.extend) == ("video", None, '{"a":1}')


def test_get_never_crosses_kinds(store: Store) -> None:
    image = created(store, kind="image")
    video = created(store)
    assert image.video_id and video.video_id
    assert store.get("alice", image.video_id) is None  # the default kind is video
    assert store.get("alice", image.video_id, kind="image") == image
    assert store.get("alice", image.video_id, kind="attached") is None
    assert store.get("alice", video.video_id, kind="image") is None
    assert store.get("alice", video.video_id) == video
    # Callbacks and cleanup look media up whatever their kind.
    assert store.get_by_video_id(image.video_id) == image


def test_list_never_crosses_kinds(store: Store) -> None:
    videos = [created(store, now=at(i)) for i in range(3)]
    images = [created(store, now=at(10 + i), kind="image") for i in range(2)]
    attached = created(store, now=at(20), kind="attached")
    created(store, "bob", now=at(30), kind="image")  # someone else's
    assert store.list_uploads("alice") == (videos[::-1], None)
    assert store.list_uploads("alice", kind="image") == (images[::-1], None)
    assert store.list_uploads("alice", kind="attached") == ([attached], None)
    page, cursor = store.list_uploads("alice", kind="image", limit=1)
    assert page == [images[1]] and cursor is not None
    assert store.list_uploads("alice", kind="image", limit=1, cursor=cursor) == ([images[0]], None)
    assert store.list_uploads("alice", kind="image", status=READY) == ([], None)


def test_quota_counts_every_kind(store: Store) -> None:
    store.reserve_upload(reservation(kind="image"), max_pending=3)
    store.reserve_upload(reservation(kind="attached"), max_pending=3)
    store.reserve_upload(reservation(), max_pending=3)
    for kind in states.KINDS:
        with pytest.raises(errors.QuotaExceeded):
            store.reserve_upload(reservation(kind=kind), max_pending=3)
    assert count_pending(store, "alice") == 3
    store.reserve_upload(reservation(kind="image"), max_pending=4)


def test_reserve_refuses_an_unknown_kind(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown media kind"):
        reservation(kind="audio")
    good = reservation(kind="attached")
    bad = Upload(**{**good._asdict(), "kind": "audio"})
    with pytest.raises(ValueError, match="unknown media kind"):
        store.reserve_upload(bad, max_pending=5)
    assert count_pending(store, "alice") == 0
    assert store.reserve_upload(good, max_pending=5) == good


# --- replace_media -----------------------------------------------------------------------------


def test_replace_media_points_a_created_upload_at_a_new_media(notifying: Store) -> None:
    store = notifying
    image = created(store, kind="image", now=at(0))
    old = image.video_id or ""
    assert store.replace_media(image.upload_id, "img-new", at(7000), at(5))
    assert store.get_by_video_id(old) is None
    got = store.get("alice", "img-new", kind="image")
    assert got is not None
    assert got == Upload(
        **{**image._asdict(), "video_id": "img-new", "credential_expires_at": at(7000), "updated_at": at(5)}
    )
    # Not a status change: no sequence number, no notification.
    assert got.notify_seq == image.notify_seq
    assert [n.seq for n in outbox(store)] == [1]
    # Replacing with the media it already has is harmless.
    assert store.replace_media(image.upload_id, "img-new", None, at(6))
    again = store.get_by_video_id("img-new")
    assert again is not None and again.credential_expires_at is None


def test_replace_media_only_while_created(store: Store) -> None:
    creating = store.reserve_upload(reservation(kind="image"), max_pending=100)
    assert not store.replace_media(creating.upload_id, "img-a", None, at(1))
    assert not store.replace_media("up-missing", "img-b", None, at(1))
    for status in (UPLOADED, READY, FAILED, EXPIRED, DELETED):
        up = in_status(store, status)
        assert not store.replace_media(up.upload_id, f"img-{status}", None, at(1)), status
        assert store.get_by_video_id(up.video_id or "") == up
        assert store.get_by_video_id(f"img-{status}") is None
    assert store.get_by_video_id("img-a") is None


def test_replace_media_refuses_a_media_id_in_use(store: Store) -> None:
    a = created(store, kind="image")
    b = created(store, kind="image")
    with pytest.raises(errors.Conflict) as caught:
        store.replace_media(b.upload_id, a.video_id or "", None, at(1))
    assert caught.value.code == "VideoIdInUse"
    assert store.get_by_video_id(b.video_id or "") == b
    assert store.get_by_video_id(a.video_id or "") == a
    with pytest.raises(ValueError, match="timezone-aware"):
        store.replace_media(b.upload_id, "img-x", datetime(2024, 1, 1), at(1))


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


# --- sequence numbers and check schedule -------------------------------------------------------


def test_notify_seq_counts_each_status_change_exactly_once(store: Store) -> None:
    def seq() -> int:
        found = store.get_by_video_id(vid)
        assert found is not None
        return found.notify_seq

    upload = store.reserve_upload(reservation(), max_pending=5)
    assert upload.notify_seq == 0
    assert store.attach_video(upload.upload_id, "vid-seq", at(3000), at(1))
    vid = "vid-seq"
    assert seq() == 1
    assert not store.attach_video(upload.upload_id, "vid-other", None, at(2))  # refused
    assert store.set_credential_expiry(vid, at(9000), at(2))  # not a status change
    assert seq() == 1
    assert store.transition(vid, to=UPLOADED, now=at(3))
    assert seq() == 2
    assert not store.transition(vid, to=EXPIRED, now=at(4))  # refused by the state machine
    assert store.expire_created([vid], now=at(4)) == 0
    assert store.schedule_check(upload.upload_id, check_at=at(100), now=at(4))
    assert store.release_claim(upload.upload_id)
    assert seq() == 2
    assert event(store, vid, "e-proc", PROCESSING, now=at(5)) is ApplyResult.APPLIED
    assert seq() == 3
    assert event(store, vid, "e-proc", PROCESSING, now=at(6)) is ApplyResult.DUPLICATE
    assert event(store, vid, "e-up", UPLOADED, {"size": 5}, now=at(6)) is ApplyResult.STALE
    assert event(store, vid, "e-info", None, {"duration": 2.0}, now=at(7)) is ApplyResult.APPLIED
    assert seq() == 3  # an informational event fills fields, it changes no status
    assert store.transition(vid, to=READY, now=at(8))
    assert store.transition(vid, to=DELETED, now=at(9))
    assert seq() == 5
    other = created(store, now=at(10))
    assert store.expire_created([other.video_id or ""], now=at(11)) == 1
    expired = store.get_by_video_id(other.video_id or "")
    assert expired is not None and expired.notify_seq == 2


def test_check_is_due_on_entering_a_checked_status_and_cleared_on_leaving(make_store: MakeStore) -> None:
    """created, uploaded and processing uploads are checked with VOD: each move into one of them
    starts a new schedule (``now + first_check_seconds``, no checks yet); a move out clears it."""
    store = make_store(first_check_seconds=300)
    store.migrate()

    def schedule() -> tuple[datetime | None, int]:
        found = store.get_by_video_id(vid)
        assert found is not None
        return found.check_at, found.checks

    reserved = store.reserve_upload(reservation(now=at(0)), max_pending=100)
    assert (reserved.check_at, reserved.checks) == (None, 0)  # creating: VOD has not answered yet
    assert store.attach_video(reserved.upload_id, "vid-check", None, at(1))
    vid = "vid-check"
    assert schedule() == (at(301), 0)
    assert store.schedule_check(reserved.upload_id, check_at=at(500), now=at(302))
    assert schedule() == (at(500), 1)
    assert store.transition(vid, to=UPLOADED, now=at(10))
    assert schedule() == (at(310), 0)
    assert store.schedule_check(reserved.upload_id, check_at=at(1000), now=at(320))
    assert store.schedule_check(reserved.upload_id, check_at=at(2000), now=at(1010))
    assert schedule() == (at(2000), 2)
    # Entering processing starts a new schedule.
    assert event(store, vid, "e1", PROCESSING, now=at(1500)) is ApplyResult.APPLIED
    assert schedule() == (at(1800), 0)
    # A refused move, a stale event and an informational one leave it alone.
    assert event(store, vid, "e2", UPLOADED, now=at(1600)) is ApplyResult.STALE
    assert not store.transition(vid, to=EXPIRED, now=at(1600))
    assert event(store, vid, "e2i", None, {"size": 1}, now=at(1600)) is ApplyResult.APPLIED
    assert schedule() == (at(1800), 0)
    assert event(store, vid, "e3", READY, now=at(1700)) is ApplyResult.APPLIED
    assert schedule() == (None, 0)
    assert not store.schedule_check(reserved.upload_id, check_at=at(9000), now=at(1701))
    assert schedule() == (None, 0)

    # uploaded → created (VOD still reports Uploading) starts a new one as well.
    back = created(store, now=at(0))
    bvid = back.video_id or ""
    assert store.transition(bvid, to=UPLOADED, now=at(5))
    assert store.schedule_check(back.upload_id, check_at=at(900), now=at(5))
    assert store.transition(bvid, to=CREATED, allowed_from={UPLOADED}, now=at(6))
    found = store.get_by_video_id(bvid)
    assert found is not None and (found.status, found.check_at, found.checks) == (CREATED, at(306), 0)
    # Leaving for a final status clears it: failed from processing, expired from created.
    failing = created(store, now=at(0))
    fvid = failing.video_id or ""
    assert store.transition(fvid, to=PROCESSING, now=at(5))
    assert event(store, fvid, "f1", FAILED, {"error": "TranscodeFail"}, now=at(6)) is ApplyResult.APPLIED
    failed = store.get_by_video_id(fvid)
    assert failed is not None and (failed.check_at, failed.checks) == (None, 0)
    assert store.expire_created([bvid], now=at(7)) == 1
    expired = store.get_by_video_id(bvid)
    assert expired is not None and (expired.status, expired.check_at, expired.checks) == (EXPIRED, None, 0)


def test_schedule_check_is_only_for_uploads_being_checked(store: Store) -> None:
    for status in (READY, FAILED, EXPIRED, DELETED):
        up = in_status(store, status)
        assert not store.schedule_check(up.upload_id, check_at=at(100), now=at(1)), status
        assert store.get_by_video_id(up.video_id or "") == up
    creating = store.reserve_upload(reservation(), max_pending=100)
    assert not store.schedule_check(creating.upload_id, check_at=at(100), now=at(1))
    assert not store.schedule_check("up-missing", check_at=at(100), now=at(1))
    for status in (CREATED, UPLOADED, PROCESSING):
        up = in_status(store, status)
        assert store.schedule_check(up.upload_id, check_at=at(100), now=at(1)), status
        got = store.get_by_video_id(up.video_id or "")
        assert got == Upload(**{**up._asdict(), "check_at": at(100), "checks": 1})
    up = in_status(store, PROCESSING)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.schedule_check(up.upload_id, check_at=datetime(2024, 1, 1), now=at(1))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.schedule_check(up.upload_id, check_at=at(100), now=datetime(2024, 1, 1))
    assert store.get_by_video_id(up.video_id or "") == up


# --- callback events: applying ------------------------------------------------------------------


def test_event_applies_once_then_is_a_duplicate(store: Store) -> None:
    up = created(store)
    vid = up.video_id or ""
    assert event(store, vid, "k1", UPLOADED, {"size": 1234}, event_type="FileUploadComplete") is (
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
    assert inbox(store)["k1"].state == "done" and inbox(store)["k1"].result == "applied"
    # The same key again changes nothing, even with other content.
    assert event(store, vid, "k1", READY, {"duration": 3.0}, now=at(30)) is ApplyResult.DUPLICATE
    assert store.get_by_video_id(vid) == got


def test_apply_after_finish_is_a_duplicate(store: Store) -> None:
    up = created(store)
    vid = up.video_id or ""
    entry, owned, _ = record(store, vid, "fin")
    assert owned
    assert store.finish_event(entry.event_id, result="ignored", now=at(21), error="nothing to do")
    assert not store.finish_event(entry.event_id, result="again", now=at(22))
    done = inbox(store)["fin"]
    assert (done.state, done.result, done.last_error, done.claimed_until) == (
        "done",
        "ignored",
        "nothing to do",
        None,
    )
    result = store.apply_event(
        entry.event_id, video_id=vid, event_type="X", event_time=at(10), to=UPLOADED, now=at(23)
    )
    assert result == Applied(ApplyResult.DUPLICATE)
    assert store.get_by_video_id(vid) == up
    assert inbox(store)["fin"] == done
    # An event id nobody recorded is no more than a duplicate.
    missing = store.apply_event(10**9, video_id=vid, event_type="X", event_time=None, to=UPLOADED, now=at(24))
    assert missing.result is ApplyResult.DUPLICATE
    assert store.get_by_video_id(vid) == up


def test_events_for_unknown_media_are_kept_as_orphans_until_orphans_before(store: Store) -> None:
    body_text = json.dumps({"EventType": "FileUploadComplete", "VideoId": "vid-nobody"})
    entry, owned, upload = record(store, "vid-nobody", "o1", body=body_text)
    assert owned and upload is None
    assert (
        store.apply_event(
            entry.event_id, video_id="vid-nobody", event_type="X", event_time=at(10), to=UPLOADED, now=at(20)
        ).result
        is ApplyResult.ORPHAN
    )
    assert event(store, "vid-nobody", "o1", UPLOADED) is ApplyResult.DUPLICATE
    assert event(store, "vid-nobody", "o2", None, {"duration": 1}) is ApplyResult.ORPHAN
    # A reservation still ``creating`` has no media id yet: its events are orphans too.
    store.reserve_upload(reservation(), max_pending=5)
    assert event(store, "vid-later", "o3", READY, now=at(30)) is ApplyResult.ORPHAN
    rows = inbox(store)
    assert {k: (e.state, e.result) for k, e in rows.items()} == {
        "o1": ("done", "orphan"),
        "o2": ("done", "orphan"),
        "o3": ("done", "orphan"),
    }
    assert rows["o1"].body == body_text and rows["o1"].media_id == "vid-nobody"
    # Orphans outlive the other finished events: only orphans_before forgets them.
    long_ago = at(-(10**6))
    kept = store.prune(
        now=at(40), events_before=at(10**6), idempotency_before=long_ago, orphans_before=at(25)
    )
    assert kept == PruneCounts(events=0, idempotency=0, orphans=2)
    assert set(inbox(store)) == {"o3"}
    gone = store.prune(now=at(40), events_before=long_ago, idempotency_before=long_ago, orphans_before=at(31))
    assert gone == PruneCounts(events=0, idempotency=0, orphans=1)
    assert inbox(store) == {}


def test_stale_events_change_nothing(store: Store) -> None:
    up = created(store)
    vid = up.video_id or ""
    assert event(store, vid, "t", PROCESSING, {"size": 5}, event_type="StreamTranscodeComplete") is (
        ApplyResult.APPLIED
    )
    before = store.get_by_video_id(vid)
    assert before is not None
    # FileUploadComplete arrives late: it would move processing → uploaded (backwards). Nothing of
    # it is written, not even the fields the upload lacks.
    result = event(
        store,
        vid,
        "u",
        UPLOADED,
        {"size": 999, "duration": 61.5},
        event_type="FileUploadComplete",
        event_time=at(5),
        now=at(40),
    )
    assert result is ApplyResult.STALE
    assert store.get_by_video_id(vid) == before
    stale = inbox(store)["u"]
    assert (stale.state, stale.result, stale.claimed_until) == ("done", "stale", None)
    assert event(store, vid, "u", UPLOADED) is ApplyResult.DUPLICATE
    # With a narrower allowed_from that excludes the current status, likewise.
    assert event(store, vid, "n", READY, {"error": "x"}, allowed_from={UPLOADED}) is ApplyResult.STALE
    assert store.get_by_video_id(vid) == before


def test_final_states_are_not_left_by_events(store: Store) -> None:
    failed = in_status(store, FAILED)
    vid = failed.video_id or ""
    assert event(store, vid, "ready-late", READY, {"duration": 3}, event_type="TranscodeComplete") is (
        ApplyResult.STALE
    )
    assert store.get_by_video_id(vid) == failed
    deleted = in_status(store, DELETED)
    assert event(store, deleted.video_id or "", "x", READY) is ApplyResult.STALE
    assert store.get_by_video_id(deleted.video_id or "") == deleted


def test_informational_events_fill_only_empty_fields(store: Store) -> None:
    up = in_status(store, READY)
    vid = up.video_id or ""
    assert store.transition(vid, to=DELETED, allowed_from={READY}, now=at(1)) is True
    gone = store.get_by_video_id(vid)
    assert gone is not None
    # Whatever the status (even a final one), an informational event fills what is missing...
    result = event(store, vid, "snap", None, {"duration": 7}, event_type="SnapshotComplete", now=at(30))
    assert result is ApplyResult.APPLIED
    got = store.get_by_video_id(vid)
    assert got is not None
    assert got == Upload(**{**gone._asdict(), "duration": 7.0, "updated_at": at(30)})
    # ... and never overwrites what is there, nor records itself as the last event.
    assert event(store, vid, "snap2", None, {"duration": 9.5, "size": 3}, now=at(40)) is ApplyResult.APPLIED
    got = store.get_by_video_id(vid)
    assert got is not None
    assert (got.duration, got.size, got.last_event, got.updated_at) == (7.0, 3, gone.last_event, at(40))
    # Nothing left to fill: stale, and nothing changes (not even updated_at).
    assert event(store, vid, "snap3", None, {"duration": 1.0, "size": 4}, now=at(50)) is ApplyResult.STALE
    assert event(store, vid, "snap4", None, now=at(50)) is ApplyResult.STALE
    assert store.get_by_video_id(vid) == got
    assert inbox(store)["snap3"].result == "stale"


def test_last_event_never_goes_back_in_time(store: Store) -> None:
    up = created(store)
    vid = up.video_id or ""
    assert event(store, vid, "a", UPLOADED, event_type="Newer", event_time=at(100)) is ApplyResult.APPLIED
    assert event(store, vid, "b", PROCESSING, event_type="Older", event_time=at(50)) is ApplyResult.APPLIED
    got = store.get_by_video_id(vid)
    assert got is not None
    assert (got.status, got.last_event, got.last_event_at) == (PROCESSING, "Newer", at(100))
    # An event at the very same time as the recorded one replaces it (newer or equal).
    assert event(store, vid, "c", READY, event_type="Same", event_time=at(100)) is ApplyResult.APPLIED
    got = store.get_by_video_id(vid)
    assert got is not None
    assert (got.status, got.last_event, got.last_event_at) == (READY, "Same", at(100))


EVENTS: list[tuple[str, str | None, dict[str, object]]] = [
    ("FileUploadComplete", UPLOADED, {"size": 100}),
    ("VideoAnalysisComplete", PROCESSING, {"duration": 12.0}),
    ("StreamTranscodeComplete", None, {"duration": 11.0}),
    ("TranscodeComplete", READY, {}),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(EVENTS)))))
def test_events_in_any_order_end_ready_and_only_applied_events_write(
    store: Store, order: tuple[int, ...]
) -> None:
    up = created(store)
    vid = up.video_id or ""
    results = {}
    for i in order:
        name, to, fields = EVENTS[i]
        results[name] = event(store, vid, name, to, fields, event_type=name, event_time=at(i))
    got = store.get_by_video_id(vid)
    assert got is not None
    first = {name: order.index(i) for i, (name, _, _) in enumerate(EVENTS)}
    # A move applies only while it is ahead of the upload; the file upload before any other move.
    upload_applied = first["FileUploadComplete"] < min(
        first["VideoAnalysisComplete"], first["TranscodeComplete"]
    )
    analysis_applied = first["VideoAnalysisComplete"] < first["TranscodeComplete"]
    assert results["FileUploadComplete"] is (ApplyResult.APPLIED if upload_applied else ApplyResult.STALE)
    assert results["VideoAnalysisComplete"] is (
        ApplyResult.APPLIED if analysis_applied else ApplyResult.STALE
    )
    assert results["TranscodeComplete"] is ApplyResult.APPLIED
    # The informational event fills the duration only if nothing set it before it arrived.
    info_fills = not (analysis_applied and first["VideoAnalysisComplete"] < first["StreamTranscodeComplete"])
    assert results["StreamTranscodeComplete"] is (ApplyResult.APPLIED if info_fills else ApplyResult.STALE)
    assert got.status == READY
    assert got.size == (100 if upload_applied else None)
    # A move writes its fields over the informational event's; the informational one only fills.
    assert got.duration == (12.0 if analysis_applied else 11.0)
    assert got.notify_seq == 1 + upload_applied + analysis_applied + 1
    # The newest move (by EventTime) is the one remembered, whatever the arrival order.
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
    assert event(store, other.video_id or "", "c", UPLOADED, event_type="First", event_time=None) is (
        ApplyResult.APPLIED
    )
    first = store.get_by_video_id(other.video_id or "")
    assert first is not None and (first.last_event, first.last_event_at) == ("First", None)


def test_an_applied_move_ends_a_cleanup_claim(store: Store) -> None:
    up = created(store, now=at(0))
    vid = up.video_id or ""
    assert len(store.claim_stale(created_before=at(10), limit=10, lease_seconds=600, now=at(10))) == 1
    # An event that keeps the status keeps the lease; one that moves it ends the lease.
    assert event(store, vid, "same", None, {"duration": 1}) is ApplyResult.APPLIED
    kept = store.get_by_video_id(vid)
    assert kept is not None and kept.claimed_until == at(610)
    assert event(store, vid, "move", UPLOADED) is ApplyResult.APPLIED
    moved = store.get_by_video_id(vid)
    assert moved is not None and moved.status == UPLOADED and moved.claimed_until is None


def test_apply_event_validates_its_arguments(store: Store) -> None:
    up = created(store)
    vid = up.video_id or ""
    entry, _, _ = record(store, vid, "bad")
    apply = store.apply_event
    with pytest.raises(ValueError, match="cannot move"):
        apply(
            entry.event_id,
            video_id=vid,
            event_type="X",
            event_time=None,
            to=UPLOADED,
            allowed_from={READY},
            now=at(20),
        )
    with pytest.raises(ValueError, match="cannot be updated"):
        apply(
            entry.event_id,
            video_id=vid,
            event_type="X",
            event_time=None,
            to=UPLOADED,
            fields={"owner": "m"},
            now=at(20),
        )
    with pytest.raises(ValueError, match="number"):
        apply(
            entry.event_id,
            video_id=vid,
            event_type="X",
            event_time=None,
            to=UPLOADED,
            fields={"size": "lots"},
            now=at(20),
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        apply(
            entry.event_id,
            video_id=vid,
            event_type="X",
            event_time=None,
            to=UPLOADED,
            now=datetime(2024, 1, 1),
        )
    with pytest.raises(ValueError, match="unknown upload status"):
        apply(entry.event_id, video_id=vid, event_type="X", event_time=None, to="gone", now=at(20))
    # The refused calls changed nothing: the event is still pending and applies.
    assert inbox(store)["bad"].state == "pending"
    assert store.get_by_video_id(vid) == up
    result = apply(entry.event_id, video_id=vid, event_type="X", event_time=None, to=UPLOADED, now=at(20))
    assert result.result is ApplyResult.APPLIED


def test_concurrent_events_on_one_upload_end_in_the_furthest_state(make_store: MakeStore) -> None:
    stores = [make_store() for _ in range(len(EVENTS))]
    stores[0].migrate()
    up = created(stores[0])
    vid = up.video_id or ""

    def deliver(i: int) -> object:
        name, to, fields = EVENTS[i]
        return event(stores[i], vid, name, to, fields, event_type=name, event_time=at(i))

    results = run_threads(len(EVENTS), deliver)
    assert all(r in (ApplyResult.APPLIED, ApplyResult.STALE) for r in results), results
    got = stores[0].get_by_video_id(vid)
    assert got is not None
    assert got.status == READY
    assert (got.last_event, got.last_event_at) == ("TranscodeComplete", at(3))
    # Whatever the interleaving, what is stored is what the applied events wrote.
    applied = {EVENTS[i][0] for i, r in enumerate(results) if r is ApplyResult.APPLIED}
    assert got.size == (100 if "FileUploadComplete" in applied else None)
    assert got.notify_seq == 1 + len(applied - {"StreamTranscodeComplete"})
    filled = 11.0 if "StreamTranscodeComplete" in applied else None
    assert got.duration == (12.0 if "VideoAnalysisComplete" in applied else filled)


# --- callback events: the inbox ------------------------------------------------------------------


def test_record_event_stores_the_event_leases_it_and_returns_its_upload(store: Store) -> None:
    up = created(store)
    vid = up.video_id or ""
    raw = json.dumps(
        {"EventType": "FileUploadComplete", "VideoId": vid, "Extra": "ünïcode"}, ensure_ascii=False
    )
    entry, owned, upload = record(
        store,
        vid,
        "FileUploadComplete|" + vid,
        event_type="FileUploadComplete",
        event_time=at(10),
        now=at(20),
        body=raw,
        source="mns",
        message_id="msg-1",
        lease_seconds=45,
    )
    assert owned
    assert upload == up
    assert entry == InboxEvent(
        event_id=entry.event_id,
        dedupe_key="FileUploadComplete|" + vid,
        media_id=vid,
        event_type="FileUploadComplete",
        event_time=at(10),
        source="mns",
        message_id="msg-1",
        body=raw,
        received_at=at(20),
        state="pending",
        result=None,
        attempts=0,
        next_attempt_at=at(20),
        claimed_until=at(65),
        last_error=None,
    )
    assert inbox(store) == {entry.dedupe_key: entry}
    # An event for a media nobody holds is recorded all the same, with no upload.
    other, owned, upload = record(store, "vid-nobody", "k2", event_time=None)
    assert owned and upload is None and other.event_time is None and other.event_id != entry.event_id


def test_a_second_record_of_a_key_finds_the_first_row(store: Store) -> None:
    up = created(store)
    vid = up.video_id or ""
    first, owned, _ = record(store, vid, "dup", now=at(20), body='{"n": 1}')
    assert owned and first.claimed_until == at(80)
    # While the first recorder's lease lives, a second delivery finds the row but does not own it.
    again, owned, upload = record(store, vid, "dup", now=at(50), body='{"n": 2}', event_type="Other")
    assert not owned and upload == up
    assert again == first
    just_before, owned, _ = record(store, vid, "dup", now=at(80) - timedelta(microseconds=1))
    assert not owned and just_before == first
    # Once the lease has ended, the next delivery owns it (a new lease, the first content kept).
    later, owned, _ = record(store, vid, "dup", now=at(80), lease_seconds=30)
    assert owned
    assert later == InboxEvent(**{**first._asdict(), "claimed_until": at(110)})
    # Once the event is done, nobody owns it again, ever.
    assert (
        store.apply_event(
            first.event_id, video_id=vid, event_type="X", event_time=at(10), to=UPLOADED, now=at(90)
        ).result
        is ApplyResult.APPLIED
    )
    for now in (at(91), at(10**6)):
        done, owned, upload = record(store, vid, "dup", now=now)
        assert not owned and done.state == "done" and done.claimed_until is None
        assert upload is not None and upload.status == UPLOADED
    assert len(inbox(store)) == 1


def test_a_second_record_at_the_same_instant_does_not_own_the_event(store: Store) -> None:
    up = created(store)
    vid = up.video_id or ""
    first, owned, _ = record(store, vid, "twin", now=at(20))
    assert owned
    # Same time, same lease length: the same lease end, which is still someone else's lease.
    second, owned, _ = record(store, vid, "twin", now=at(20))
    assert not owned and second == first


def test_concurrent_recorders_of_one_key_own_it_exactly_once(make_store: MakeStore) -> None:
    stores = [make_store() for _ in range(8)]
    stores[0].migrate()
    up = created(stores[0])
    vid = up.video_id or ""
    for warm in stores:  # connected beforehand, so that the recorders really race
        warm.get_by_video_id("vid-none")
    results = run_threads(8, lambda i: record(stores[i], vid, "race", now=at(20)))
    assert all(isinstance(r, tuple) for r in results), results
    owners = [r for r in results if isinstance(r, tuple) and r[1]]
    assert len(owners) == 1, results
    ids = {r[0].event_id for r in results if isinstance(r, tuple)}
    assert len(ids) == 1 and len(inbox(stores[0])) == 1


def test_a_record_waits_for_a_concurrent_insert_of_its_key_and_finds_its_row(
    store: Store, store_url: str
) -> None:
    up = created(store)
    vid = up.video_id or ""
    other = Direct(store_url)
    results: list[object] = []

    def deliver() -> None:
        try:
            results.append(record(store, vid, "raced", now=at(20)))
        except BaseException as exc:
            results.append(exc)

    try:
        # Another delivery of the same event is inserting it, not committed yet.
        other.begin()
        other.run(
            "INSERT INTO event_inbox (dedupe_key, media_id, event_type, source, body, received_at, state, "
            "next_attempt_at, claimed_until) VALUES (?, ?, 'E', 'mns', '{}', ?, 'pending', ?, ?)",
            ("raced", vid, at(19), at(19), at(79)),
        )
        thread = threading.Thread(target=deliver)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive(), results  # it waits for the other transaction
        other.run("COMMIT")
        thread.join(timeout=30)
    finally:
        other.close()
    (answer,) = results
    assert isinstance(answer, tuple), answer
    entry, owned, upload = answer
    assert not owned and upload == up
    assert (entry.dedupe_key, entry.source, entry.received_at, entry.claimed_until) == (
        "raced",
        "mns",
        at(19),
        at(79),
    )


def test_concurrent_appliers_of_one_event_apply_it_once(make_store: MakeStore) -> None:
    stores = [make_store(notify_types=ALL_TYPES) for _ in range(8)]
    stores[0].migrate()
    up = created(stores[0])
    vid = up.video_id or ""
    entry, owned, _ = record(stores[0], vid, "same")
    assert owned
    results = run_threads(
        8,
        lambda i: (
            stores[i]
            .apply_event(
                entry.event_id, video_id=vid, event_type="E", event_time=at(10), to=UPLOADED, now=at(21 + i)
            )
            .result
        ),
    )
    assert results.count(ApplyResult.APPLIED) == 1 and results.count(ApplyResult.DUPLICATE) == 7, results
    got = stores[0].get_by_video_id(vid)
    assert got is not None and got.status == UPLOADED and got.notify_seq == 2
    assert [(n.seq, n.type) for n in outbox(stores[0])] == [(1, "upload.created"), (2, "upload.uploaded")]


def test_concurrent_deliveries_of_one_event_apply_once(make_store: MakeStore) -> None:
    stores = [make_store() for _ in range(8)]
    stores[0].migrate()
    up = created(stores[0])
    vid = up.video_id or ""
    results = run_threads(8, lambda i: event(stores[i], vid, "same", UPLOADED))
    assert results.count(ApplyResult.APPLIED) == 1
    assert results.count(ApplyResult.DUPLICATE) == 7


def test_defer_event_counts_the_attempt_drops_the_lease_and_makes_it_due_later(store: Store) -> None:
    up = created(store)
    vid = up.video_id or ""
    entry, owned, _ = record(store, vid, "later", now=at(20))
    assert owned
    assert store.defer_event(entry.event_id, next_attempt_at=at(100), error="VOD unavailable", now=at(21))
    deferred = inbox(store)["later"]
    assert deferred == InboxEvent(
        **{
            **entry._asdict(),
            "attempts": 1,
            "claimed_until": None,
            "next_attempt_at": at(100),
            "last_error": "VOD unavailable",
        }
    )
    # Not due yet: no claim takes it.
    assert store.claim_events(limit=10, lease_seconds=LEASE, now=at(99)) == []
    # Due: a claim leases it, and deferring again counts a second attempt.
    (claimed,) = store.claim_events(limit=10, lease_seconds=LEASE, now=at(100))
    assert claimed == InboxEvent(**{**deferred._asdict(), "claimed_until": at(160)})
    assert store.defer_event(claimed.event_id, next_attempt_at=at(300), error=None, now=at(101))
    again = inbox(store)["later"]
    assert (again.attempts, again.claimed_until, again.next_attempt_at, again.last_error) == (
        2,
        None,
        at(300),
        None,
    )
    # A redelivery needs no due time: the event is pending and unleased, so it is owned.
    _, owned, _ = record(store, vid, "later", now=at(102))
    assert owned
    assert (
        store.apply_event(
            entry.event_id, video_id=vid, event_type="E", event_time=at(10), to=UPLOADED, now=at(103)
        ).result
        is ApplyResult.APPLIED
    )
    assert not store.defer_event(entry.event_id, next_attempt_at=at(400), error="x", now=at(104))
    finished = inbox(store)["later"]
    assert (finished.state, finished.attempts, finished.next_attempt_at) == ("done", 2, at(300))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.defer_event(entry.event_id, next_attempt_at=datetime(2024, 1, 1), error=None, now=at(1))


def test_claim_events_takes_due_unleased_pending_events_oldest_due_first(store: Store) -> None:
    entries = {}
    for key, now in (("a", at(10)), ("b", at(5)), ("c", at(7)), ("d", at(8)), ("e", at(6))):
        entries[key], _, _ = record(store, "vid-x", key, now=now, lease_seconds=1)
    assert store.defer_event(entries["c"].event_id, next_attempt_at=at(500), error=None, now=at(11))
    assert store.finish_event(entries["d"].event_id, result="ignored", now=at(11))
    # "e" is leased again by a redelivery: skipped while that lease lives.
    _, owned, _ = record(store, "vid-x", "e", now=at(20), lease_seconds=100)
    assert owned
    claimed = store.claim_events(limit=2, lease_seconds=30, now=at(50))
    assert [e.dedupe_key for e in claimed] == ["b", "a"]
    assert all(e.claimed_until == at(80) for e in claimed)
    assert store.claim_events(limit=10, lease_seconds=30, now=at(79)) == []
    # Every lease has ended: the due ones come back, "c" still waits for its time.
    assert [e.dedupe_key for e in store.claim_events(limit=10, lease_seconds=30, now=at(120))] == [
        "b",
        "e",
        "a",
    ]
    assert [e.dedupe_key for e in store.claim_events(limit=10, lease_seconds=30, now=at(500))] == [
        "b",
        "e",
        "a",
        "c",
    ]
    with pytest.raises(ValueError, match="limit must be at least 1"):
        store.claim_events(limit=0, lease_seconds=30, now=at(0))
    with pytest.raises(ValueError, match="lease_seconds must be positive"):
        store.claim_events(limit=1, lease_seconds=0, now=at(0))


def test_concurrent_event_claimers_never_share_an_event(make_store: MakeStore) -> None:
    setup = make_store()
    setup.migrate()
    keys = {f"k{i}" for i in range(40)}
    for i, key in enumerate(sorted(keys)):
        record(setup, "vid-x", key, now=at(i), lease_seconds=1)
    claimers = [make_store(), make_store()]

    def drain(i: int) -> list[str]:
        got: list[str] = []
        while page := claimers[i].claim_events(limit=3, lease_seconds=600, now=at(1000)):
            got += [e.dedupe_key for e in page]
        return got

    first, second = run_threads(2, drain)
    assert isinstance(first, list) and isinstance(second, list), (first, second)
    assert len(first) + len(second) == 40
    assert set(first).isdisjoint(second)
    assert set(first) | set(second) == keys


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


def _claim_plan(store: Store, claim: Callable[[], object], select: str, query: str, params: int) -> str:
    """The query plan of a claim's SELECT.

    SQLite: the store's own statement (the one starting with ``select``), traced while ``claim``
    runs. PostgreSQL: ``query`` (the same SELECT, written out with ``params`` placeholders ``{p}``;
    its subselect cannot be traced), with sequential scans discouraged because a 30-row table
    would otherwise be read whole.
    """
    if store.dialect == "sqlite":
        conn = store._conn  # type: ignore[attr-defined]
        seen: list[str] = []
        conn.set_trace_callback(seen.append)
        try:
            claim()
        finally:
            conn.set_trace_callback(None)
        (traced,) = [q for q in seen if q.startswith(select)]
        return " ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + traced).fetchall())

    def explain(cur: Any) -> str:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN " + query.format(p="%s"), (at(9),) * params)
        return " ".join(r[0] for r in cur.fetchall())

    plan: str = store._run(explain)  # type: ignore[attr-defined]
    return plan


def test_claim_stale_reads_the_partial_index_without_sorting(store: Store) -> None:
    """The claim walks uploads_stale_pending in order (no scan and sort of every upload)."""
    store.migrate()
    for i in range(30):
        created(store, now=at(i))
    query = (
        f"SELECT upload_id FROM uploads WHERE status IN {PENDING_SQL} AND created_at < {{p}}"  # noqa: S608
        " AND (claimed_until IS NULL OR claimed_until <= {p}) ORDER BY created_at, upload_id LIMIT 20"
    )
    plan = _claim_plan(
        store,
        lambda: store.claim_stale(created_before=at(9), limit=20, lease_seconds=60, now=at(9)),
        "SELECT upload_id FROM uploads",
        query,
        2,
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


def due(store: Store, status: str, *, check_at: datetime, created_at: datetime = T0) -> Upload:
    """An upload in ``status`` (uploaded or processing) due for a check at ``check_at``."""
    upload = created(store, now=created_at)
    assert upload.video_id is not None
    for step in PATHS[status]:
        assert store.transition(upload.video_id, to=step, now=created_at)
    assert store.schedule_check(upload.upload_id, check_at=check_at, now=created_at)
    found = store.get_by_video_id(upload.video_id)
    assert found is not None and found.status == status and found.check_at == check_at
    return found


def test_claim_stuck_returns_due_uploads_soonest_due_first(store: Store) -> None:
    late = due(store, UPLOADED, check_at=at(30), created_at=at(0))
    early = due(store, PROCESSING, check_at=at(10), created_at=at(5))
    not_yet = due(store, PROCESSING, check_at=at(5000))
    creating = store.reserve_upload(reservation(now=at(0)), max_pending=100)  # never checked
    waiting = created(store, now=at(0))  # created: checked too, due first_check_seconds later
    for final in (READY, FAILED, EXPIRED, DELETED):
        in_status(store, final, now=at(0))  # never checked: they have no check_at

    claimed = store.claim_stuck(limit=10, lease_seconds=60, now=at(1000))
    assert [u.upload_id for u in claimed] == [early.upload_id, late.upload_id, waiting.upload_id]
    assert all(u.claimed_until == at(1060) for u in claimed)
    # The claim is not a change.
    assert [u.updated_at for u in claimed] == [at(5), at(0), at(0)]
    assert [(u.check_at, u.checks) for u in claimed] == [(at(10), 1), (at(30), 1), (at(600), 0)]
    # While the lease lives nobody else gets them, stale claimers included.
    assert store.claim_stuck(limit=10, lease_seconds=60, now=at(1059)) == []
    stale = store.claim_stale(created_before=at(2000), limit=10, lease_seconds=60, now=at(1059))
    assert [u.upload_id for u in stale] == [creating.upload_id]
    # Once it lapses they come back; a transition ends the claim for good.
    assert store.transition(late.video_id or "", to=READY, now=at(1059))
    again = store.claim_stuck(limit=10, lease_seconds=30, now=at(1060))
    assert [u.upload_id for u in again] == [early.upload_id, waiting.upload_id]
    assert {u.claimed_until for u in again} == {at(1090)}
    # A check exactly at its time is due.
    last = store.claim_stuck(limit=10, lease_seconds=30, now=at(5000))
    assert [u.upload_id for u in last] == [early.upload_id, waiting.upload_id, not_yet.upload_id]


def test_uploads_become_due_first_check_seconds_after_they_move(make_store: MakeStore) -> None:
    store = make_store(first_check_seconds=120)
    store.migrate()
    up = created(store, now=at(0))
    vid = up.video_id or ""
    assert event(store, vid, "e", UPLOADED, now=at(10)) is ApplyResult.APPLIED
    assert store.claim_stuck(limit=10, lease_seconds=60, now=at(129)) == []
    (claimed,) = store.claim_stuck(limit=10, lease_seconds=60, now=at(130))
    assert claimed.upload_id == up.upload_id and claimed.check_at == at(130)


def test_schedule_check_ends_the_claim_and_postpones_the_check(store: Store) -> None:
    up = due(store, PROCESSING, check_at=at(10))
    (claimed,) = store.claim_stuck(limit=10, lease_seconds=600, now=at(20))
    assert claimed.upload_id == up.upload_id
    assert store.schedule_check(up.upload_id, check_at=at(300), now=at(21))
    got = store.get_by_video_id(up.video_id or "")
    assert got is not None
    assert (got.claimed_until, got.check_at, got.checks, got.updated_at) == (None, at(300), 2, up.updated_at)
    assert store.claim_stuck(limit=10, lease_seconds=60, now=at(299)) == []
    assert [u.upload_id for u in store.claim_stuck(limit=10, lease_seconds=60, now=at(300))] == [up.upload_id]
    # release_claim ends a claim without postponing anything.
    assert store.release_claim(up.upload_id)
    assert [u.upload_id for u in store.claim_stuck(limit=10, lease_seconds=60, now=at(301))] == [up.upload_id]


def test_claim_stuck_pages_and_claim_stale_never_sees_stuck_uploads(store: Store) -> None:
    ids = {due(store, PROCESSING, check_at=at(i), created_at=at(0)).upload_id for i in range(25)}
    assert store.claim_stale(created_before=at(100), limit=100, lease_seconds=600, now=at(1000)) == []
    pages = []
    while page := store.claim_stuck(limit=10, lease_seconds=600, now=at(1000)):
        pages.append([u.upload_id for u in page])
    assert [len(p) for p in pages] == [10, 10, 5]
    assert {i for p in pages for i in p} == ids


def test_claim_stuck_reads_the_partial_index_without_sorting(store: Store) -> None:
    """The claim walks uploads_check in order (no scan and sort of every upload)."""
    store.migrate()
    for i in range(30):
        due(store, PROCESSING, check_at=at(i))
    query = (
        f"SELECT upload_id FROM uploads WHERE status IN {CHECKED_SQL} AND check_at <= {{p}}"  # noqa: S608
        " AND (claimed_until IS NULL OR claimed_until <= {p}) ORDER BY check_at, upload_id LIMIT 20"
    )
    plan = _claim_plan(
        store,
        lambda: store.claim_stuck(limit=20, lease_seconds=60, now=at(9)),
        "SELECT upload_id FROM uploads",
        query,
        2,
    )
    assert "uploads_check" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_claim_events_reads_the_partial_index_without_sorting(store: Store) -> None:
    """The claim walks event_inbox_pending in order (no scan and sort of the whole inbox)."""
    for i in range(30):
        record(store, "vid-x", f"k{i}", now=at(i), lease_seconds=1)
    query = (
        "SELECT event_id FROM event_inbox WHERE state = 'pending' AND next_attempt_at <= {p}"
        " AND (claimed_until IS NULL OR claimed_until <= {p}) ORDER BY next_attempt_at, event_id LIMIT 20"
    )
    plan = _claim_plan(
        store,
        lambda: store.claim_events(limit=20, lease_seconds=60, now=at(9)),
        "SELECT event_id FROM event_inbox",
        query,
        2,
    )
    assert "event_inbox_pending" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_claim_stuck_validates_arguments(store: Store) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        store.claim_stuck(limit=0, lease_seconds=60, now=at(0))
    with pytest.raises(ValueError, match="lease_seconds must be positive"):
        store.claim_stuck(limit=1, lease_seconds=0, now=at(0))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.claim_stuck(limit=1, lease_seconds=60, now=datetime(2024, 1, 1))


def test_concurrent_stuck_claimers_never_share_an_upload(make_store: MakeStore) -> None:
    setup = make_store()
    setup.migrate()
    ids = {due(setup, PROCESSING, check_at=at(i)).upload_id for i in range(60)}
    claimers = [make_store(), make_store()]

    def drain(i: int) -> list[str]:
        got: list[str] = []
        while page := claimers[i].claim_stuck(limit=3, lease_seconds=600, now=at(1000)):
            got += [u.upload_id for u in page]
        return got

    first, second = run_threads(2, drain)
    assert isinstance(first, list) and isinstance(second, list), (first, second)
    assert len(first) + len(second) == 60
    assert set(first).isdisjoint(second)
    assert set(first) | set(second) == ids


# --- notifications: the outbox -------------------------------------------------------------------


def test_no_notifications_when_notify_types_is_none(store: Store) -> None:
    up = created(store, now=at(0))
    vid = up.video_id or ""
    assert store.transition(vid, to=UPLOADED, now=at(1))
    assert event(store, vid, "e", PROCESSING, now=at(2)) is ApplyResult.APPLIED
    other = created(store, now=at(3))
    assert store.expire_created([other.video_id or ""], now=at(4)) == 1
    assert store.list_notifications(limit=100) == []
    assert store.notification_counts() == NotificationCounts(pending=0, delivered=0, dead=0)
    assert store.claim_notifications(limit=10, lease_seconds=LEASE, now=at(100)) == []
    # The sequence counts the changes all the same.
    got = store.get_by_video_id(vid)
    assert got is not None and got.notify_seq == 3


def test_a_notification_per_status_change_whose_type_is_selected(make_store: MakeStore) -> None:
    store = make_store(
        notify_types=frozenset({"upload.created", "upload.ready", "upload.expired", "image.ready"})
    )
    store.migrate()
    a = created(store, now=at(0))
    avid = a.video_id or ""
    assert store.transition(avid, to=UPLOADED, now=at(1))  # upload.uploaded: not selected
    assert not store.transition(avid, to=EXPIRED, now=at(2))  # refused: nothing
    assert event(store, avid, "p", PROCESSING, now=at(3)) is ApplyResult.APPLIED  # not selected
    assert event(store, avid, "late", UPLOADED, now=at(4)) is ApplyResult.STALE  # stale: nothing
    assert event(store, avid, "info", None, {"size": 1}, now=at(4)) is ApplyResult.APPLIED  # no change
    assert event(store, avid, "r", READY, now=at(5)) is ApplyResult.APPLIED
    assert event(store, avid, "r", READY, now=at(6)) is ApplyResult.DUPLICATE
    b = created(store, now=at(7))
    assert store.expire_created([b.video_id or ""], now=at(8)) == 1
    image = created(store, now=at(9), kind="image")  # image.created: not selected
    assert event(store, image.video_id or "", "i", READY, now=at(10)) is ApplyResult.APPLIED

    expected = [
        (a.upload_id, 1, "upload.created", at(0)),
        (a.upload_id, 4, "upload.ready", at(5)),
        (b.upload_id, 1, "upload.created", at(7)),
        (b.upload_id, 2, "upload.expired", at(8)),
        (image.upload_id, 2, "image.ready", at(10)),
    ]
    assert sorted((n.upload_id, n.seq, n.type, n.created_at) for n in outbox(store)) == sorted(expected)
    for n in outbox(store):
        assert n == Notification(
            notification_id=f"msg_{n.upload_id}_{n.seq}",
            upload_id=n.upload_id,
            seq=n.seq,
            type=n.type,
            body=n.body,
            created_at=n.created_at,
            state="pending",
            attempts=0,
            next_attempt_at=n.created_at,
            claimed_until=None,
            last_status=None,
            last_error=None,
            finished_at=None,
        )
        assert body(n)["type"] == n.type and body(n)["data"]["Sequence"] == n.seq
    assert store.notification_counts() == NotificationCounts(pending=5, delivered=0, dead=0)


def test_notification_types_and_id_keys_follow_the_kind(notifying: Store) -> None:
    store = notifying
    image = created(store, now=at(0), kind="image", media_type="cover")
    attached = created(store, now=at(1), kind="attached", media_type="watermark")
    video = created(store, now=at(2))
    assert event(store, image.video_id or "", "i", READY, now=at(3)) is ApplyResult.APPLIED
    assert store.transition(attached.video_id or "", to=FAILED, now=at(4), fields={"error": "Bad"})
    assert store.expire_created([video.video_id or ""], now=at(5)) == 1
    seen = {(n.upload_id, n.seq): (n.type, body(n)["data"]) for n in outbox(store)}
    assert {k: t for k, (t, _) in seen.items()} == {
        (image.upload_id, 1): "image.created",
        (image.upload_id, 2): "image.ready",
        (attached.upload_id, 1): "attached_media.created",
        (attached.upload_id, 2): "attached_media.failed",
        (video.upload_id, 1): "upload.created",
        (video.upload_id, 2): "upload.expired",
    }
    id_keys = {"ImageId": image, "MediaId": attached, "VideoId": video}
    for (upload_id, _), (_, data) in seen.items():
        (key,) = set(data) & set(id_keys)
        assert id_keys[key].upload_id == upload_id and data[key] == id_keys[key].video_id
    assert seen[(attached.upload_id, 2)][1]["Error"] == "Bad"


TITLE = 'Summer "holiday" 假期 🎬'
EXTEND = '{"album":"summer","tags":["a","b"],"n":null,"deep":{"x":1.5}}'
SECRETS = ("idem-secret", "hash-secret", "ref-secret")


def test_notification_body_holds_the_public_fields_only(notifying: Store) -> None:
    store = notifying
    upload = store.reserve_upload(
        reservation(
            key="idem-secret",
            request_hash="hash-secret",
            reference_id="ref-secret",
            title=TITLE,
            extend=EXTEND,
            now=at(0),
        ),
        max_pending=5,
    )
    assert store.attach_video(upload.upload_id, "vid-body", at(3000), at(1))  # seq 1 (transition path)
    assert store.transition("vid-body", to=PROCESSING, now=at(2), fields={"duration": 12.5, "size": 2**40})
    # seq 3 through apply_event (on PostgreSQL its body is built in SQL: it must be the same JSON)
    assert event(store, "vid-body", "r", READY, now=at(3.5)) is ApplyResult.APPLIED
    data = {
        "VideoId": "vid-body",
        "Owner": "alice",
        "Status": READY,
        "Title": TITLE,
        "FileName": "holiday.mp4",
        "Size": 2**40,
        "Duration": 12.5,
        "Error": None,
        "CreatedAt": "2024-05-01T12:00:00Z",
        "UpdatedAt": "2024-05-01T12:00:03Z",
        "Extend": {"album": "summer", "tags": ["a", "b"], "n": None, "deep": {"x": 1.5}},
        "Sequence": 3,
    }
    notes = outbox(store)
    assert [n.seq for n in notes] == [1, 2, 3]
    assert body(notes[2]) == {
        "type": "upload.ready",
        "timestamp": "2024-05-01T12:00:03.623456Z",
        "data": data,
    }
    assert body(notes[1]) == {
        "type": "upload.processing",
        "timestamp": "2024-05-01T12:00:02.123456Z",
        "data": {**data, "Status": PROCESSING, "UpdatedAt": "2024-05-01T12:00:02Z", "Sequence": 2},
    }
    assert body(notes[0]) == {
        "type": "upload.created",
        "timestamp": "2024-05-01T12:00:01.123456Z",
        "data": {
            **data,
            "Status": CREATED,
            "Size": None,
            "Duration": None,
            "UpdatedAt": "2024-05-01T12:00:01Z",
            "Sequence": 1,
        },
    }
    # An error, and an upload without Extend, through the event path too.
    other = created(store, now=at(4))
    assert event(store, other.video_id or "", "f", FAILED, {"error": "TranscodeFail"}, now=at(5)) is (
        ApplyResult.APPLIED
    )
    (failed,) = [n for n in outbox(store) if n.upload_id == other.upload_id and n.seq == 2]
    assert body(failed)["data"]["Error"] == "TranscodeFail" and body(failed)["data"]["Extend"] is None
    # An empty Extend is no Extend, on every path.
    empty = created(store, now=at(6), extend="")
    assert store.transition(empty.video_id or "", to=UPLOADED, now=at(7))
    assert event(store, empty.video_id or "", "e", READY, now=at(8)) is ApplyResult.APPLIED
    assert [body(n)["data"]["Extend"] for n in outbox(store) if n.upload_id == empty.upload_id] == [None] * 3
    for n in outbox(store):
        assert not any(secret in n.body for secret in SECRETS), n.body
        assert set(body(n)) == {"type", "timestamp", "data"}
        assert set(body(n)["data"]) == set(data)


def test_a_change_that_rolls_back_leaves_no_notification(notifying: Store, store_url: str) -> None:
    store = notifying
    up = created(store, now=at(0))
    vid = up.video_id or ""
    other = created(store, now=at(1))
    # The next notification's id is already taken: writing it fails, and the change with it.
    raw_outbox_row(store_url, f"msg_{up.upload_id}_2", up.upload_id, 2)
    before = {n.notification_id: n for n in outbox(store)}
    with pytest.raises(errors.Conflict):
        store.transition(vid, to=UPLOADED, now=at(5))
    assert store.get_by_video_id(vid) == up
    entry, owned, _ = record(store, vid, "blocked", now=at(6))
    assert owned
    with pytest.raises(errors.Conflict):
        store.apply_event(
            entry.event_id, video_id=vid, event_type="E", event_time=at(6), to=UPLOADED, now=at(6)
        )
    assert store.get_by_video_id(vid) == up
    assert inbox(store)["blocked"].state == "pending"  # not finished: it is applied later
    # A batch is one transaction: the upload that could move does not move either.
    with pytest.raises(errors.Conflict):
        store.expire_created([other.video_id or "", vid], now=at(7))
    assert store.get_by_video_id(other.video_id or "") == other
    assert store.get_by_video_id(vid) == up
    pending = store.reserve_upload(reservation(key="k-attach", now=at(8)), max_pending=100)
    raw_outbox_row(store_url, f"msg_{pending.upload_id}_1", pending.upload_id, 1)
    with pytest.raises(errors.Conflict):
        store.attach_video(pending.upload_id, "vid-never", None, at(9))
    assert store.find_by_idempotency_key("alice", "k-attach") == pending
    assert store.get_by_video_id("vid-never") is None
    after = {n.notification_id: n for n in outbox(store)}
    assert set(after) == {*before, f"msg_{pending.upload_id}_1"}
    assert after[f"msg_{up.upload_id}_2"] == before[f"msg_{up.upload_id}_2"]


def test_claim_notifications_keeps_each_uploads_order(notifying: Store) -> None:
    store = notifying
    a = created(store, now=at(0))  # a1
    assert store.transition(a.video_id or "", to=UPLOADED, now=at(1))  # a2
    b = created(store, now=at(2))  # b1
    assert event(store, b.video_id or "", "bp", PROCESSING, now=at(3)) is ApplyResult.APPLIED  # b2
    a1, a2, b1, b2 = (f"msg_{u.upload_id}_{s}" for u, s in ((a, 1), (a, 2), (b, 1), (b, 2)))

    def claim(now: float, **kw: Any) -> list[str]:
        return [
            n.notification_id
            for n in store.claim_notifications(limit=10, lease_seconds=30, now=at(now), **kw)
        ]

    assert claim(10) == [a1, b1]  # oldest first; a2 and b2 wait for them
    assert claim(20) == []  # leased
    assert claim(40) == [a1, b1]  # the leases ended, still pending: the same ones, never a2 or b2
    assert store.notification_delivered(a1, status=200, now=at(41))
    assert claim(41) == [a2]  # b1 is still leased
    # A failed b1 due again later still holds b2 back...
    assert store.notification_failed(b1, status=500, error="boom", retry_at=at(100), now=at(42))
    assert claim(80) == [a2]
    assert claim(100) == [b1]
    # ... until it is dead.
    assert store.notification_failed(b1, status=None, error="gone for good", retry_at=None, now=at(101))
    assert claim(200) == [a2, b2]


def test_claim_notifications_for_one_upload_and_its_lease(notifying: Store) -> None:
    store = notifying
    a = created(store, now=at(0))
    b = created(store, now=at(1))
    assert store.transition(b.video_id or "", to=UPLOADED, now=at(2))
    (only,) = store.claim_notifications(limit=10, lease_seconds=30, now=at(5), upload_id=b.upload_id)
    assert (only.notification_id, only.claimed_until) == (f"msg_{b.upload_id}_1", at(35))
    assert store.claim_notifications(limit=10, lease_seconds=30, now=at(6), upload_id=b.upload_id) == []
    assert store.claim_notifications(limit=10, lease_seconds=30, now=at(6), upload_id="up-missing") == []
    (rest,) = store.claim_notifications(limit=10, lease_seconds=30, now=at(6))
    assert rest.notification_id == f"msg_{a.upload_id}_1"
    assert rest == Notification(
        **{**rest._asdict(), "state": "pending", "attempts": 0, "claimed_until": at(36)}
    )
    got = store.claim_notifications(limit=1, lease_seconds=30, now=at(36))
    assert [n.notification_id for n in got] == [f"msg_{a.upload_id}_1"]
    with pytest.raises(ValueError, match="limit must be at least 1"):
        store.claim_notifications(limit=0, lease_seconds=30, now=at(0))
    with pytest.raises(ValueError, match="lease_seconds must be positive"):
        store.claim_notifications(limit=1, lease_seconds=0, now=at(0))


def _apply_leasing(store: Store, video_id: str, key: str, to: str, now: datetime) -> Applied:
    entry, owned, _ = record(store, video_id, key, now=now, event_type=f"Event-{key}")
    assert owned
    return store.apply_event(
        entry.event_id, video_id=video_id, event_type=f"Event-{key}", event_time=now, to=to, now=now,
        lease_seconds=30,
    )  # fmt: skip


def test_apply_event_leases_the_moves_notification_to_its_caller(notifying: Store) -> None:
    store = notifying
    up = created(store, now=at(0))
    assert store.notification_delivered(f"msg_{up.upload_id}_1", status=200, now=at(1))
    applied = _apply_leasing(store, up.video_id or "", "lease-1", UPLOADED, at(10))
    assert applied.result is ApplyResult.APPLIED
    leased = applied.notification
    assert leased is not None
    (row,) = (n for n in outbox(store) if n.seq == 2)
    # What the caller holds is the row as a claim would have returned it: same id, body, lease.
    assert leased == row and leased.claimed_until == at(40) and leased.attempts == 0
    assert body(leased)["type"] == "upload.uploaded" and body(leased)["data"]["Sequence"] == 2
    # Nobody else can claim it while the lease runs; once it ends, it is an ordinary pending row.
    assert store.claim_notifications(limit=10, lease_seconds=30, now=at(39)) == []
    assert [n.notification_id for n in store.claim_notifications(limit=10, lease_seconds=30, now=at(40))] == [
        row.notification_id
    ]
    # Not a move (a duplicate, a stale event): nothing written, nothing leased.
    assert _apply_leasing(store, up.video_id or "", "lease-2", UPLOADED, at(50)) == Applied(ApplyResult.STALE)


def test_apply_event_leases_nothing_behind_an_earlier_pending_notification(notifying: Store) -> None:
    store = notifying
    up = created(store, now=at(0))  # upload.created: pending, never sent
    applied = _apply_leasing(store, up.video_id or "", "behind-1", UPLOADED, at(10))
    assert applied == Applied(ApplyResult.APPLIED)  # written, not leased: the earlier one goes first
    assert [(n.seq, n.claimed_until) for n in outbox(store)] == [(1, None), (2, None)]
    (first,) = store.claim_notifications(limit=10, lease_seconds=30, now=at(11), upload_id=up.upload_id)
    assert first.seq == 1
    # Dead counts as out of the way, like delivered.
    assert store.notification_failed(first.notification_id, status=None, error="x", retry_at=None, now=at(12))
    (second,) = store.claim_notifications(limit=10, lease_seconds=30, now=at(13), upload_id=up.upload_id)
    assert store.notification_delivered(second.notification_id, status=200, now=at(14))
    applied = _apply_leasing(store, up.video_id or "", "behind-2", PROCESSING, at(20))
    assert applied.notification is not None and applied.notification.seq == 3


def test_apply_event_leases_nothing_when_notifications_are_off(store: Store) -> None:
    up = created(store, now=at(0))
    assert _apply_leasing(store, up.video_id or "", "off-1", UPLOADED, at(10)) == Applied(ApplyResult.APPLIED)
    assert outbox(store) == []


def test_apply_event_leases_nothing_when_the_type_is_not_selected(make_store: MakeStore) -> None:
    store = make_store(notify_types=frozenset({"upload.ready"}))
    store.migrate()
    up = created(store, now=at(0))
    assert _apply_leasing(store, up.video_id or "", "sel-1", UPLOADED, at(10)) == Applied(ApplyResult.APPLIED)
    applied = _apply_leasing(store, up.video_id or "", "sel-2", READY, at(20))
    assert applied.notification is not None and body(applied.notification)["type"] == "upload.ready"


def test_the_delivered_mark_alone_commits_lazily(notifying: Store, make_store: MakeStore) -> None:
    """PostgreSQL: the mark's statement turns ``synchronous_commit`` off for its own transaction
    only; the next statements on the same connection commit durably again, and the mark is as
    committed as any (another connection reads it)."""
    store = notifying
    up = created(store, now=at(0))
    nid = f"msg_{up.upload_id}_1"
    assert store.notification_delivered(nid, status=204, now=at(1))
    assert not store.notification_delivered(nid, status=204, now=at(2))  # a replay: a no-op
    if store.dialect == "postgresql":
        shown = store._read(  # type: ignore[attr-defined]
            lambda cur: cur.execute("SELECT current_setting('synchronous_commit')").fetchone()
        )
        assert shown[0] == "on"
    else:
        assert store.LAZY_COMMIT is None  # type: ignore[attr-defined]  # SQLite's WAL commits never fsync
    other = make_store(notify_types=ALL_TYPES)
    (row,) = other.list_notifications(limit=10)
    assert (row.state, row.last_status, row.attempts, row.finished_at) == ("delivered", 204, 1, at(1))


def test_notification_failed_retries_then_dies_and_delivered_finishes(notifying: Store) -> None:
    store = notifying
    up = created(store, now=at(0))
    nid = f"msg_{up.upload_id}_1"
    (claimed,) = store.claim_notifications(limit=10, lease_seconds=30, now=at(10))
    assert claimed.notification_id == nid
    assert store.notification_failed(nid, status=503, error="x" * 600, retry_at=at(100), now=at(11))
    (retry,) = store.list_notifications()
    assert retry == Notification(
        **{
            **claimed._asdict(),
            "attempts": 1,
            "last_status": 503,
            "last_error": "x" * 500,
            "claimed_until": None,
            "next_attempt_at": at(100),
        }
    )
    assert store.claim_notifications(limit=10, lease_seconds=30, now=at(99)) == []
    assert [
        n.notification_id for n in store.claim_notifications(limit=10, lease_seconds=30, now=at(100))
    ] == [nid]
    assert store.notification_failed(nid, status=None, error="timeout", retry_at=None, now=at(101))
    (dead,) = store.list_notifications()
    assert (dead.state, dead.attempts, dead.last_status, dead.last_error) == ("dead", 2, None, "timeout")
    assert (dead.next_attempt_at, dead.claimed_until, dead.finished_at) == (None, None, at(101))
    # A finished notification takes no more outcomes.
    assert not store.notification_failed(nid, status=500, error="again", retry_at=at(500), now=at(102))
    assert not store.notification_delivered(nid, status=200, now=at(102))
    assert store.list_notifications() == [dead]
    assert store.claim_notifications(limit=10, lease_seconds=30, now=at(10**6)) == []

    other = created(store, now=at(200))
    oid = f"msg_{other.upload_id}_1"
    assert store.claim_notifications(limit=10, lease_seconds=30, now=at(201))
    assert store.notification_delivered(oid, status=204, now=at(202))
    (delivered,) = store.list_notifications(state="delivered")
    assert (delivered.notification_id, delivered.state, delivered.attempts) == (oid, "delivered", 1)
    assert (delivered.last_status, delivered.claimed_until, delivered.finished_at) == (204, None, at(202))
    assert not store.notification_delivered(oid, status=200, now=at(203))
    assert not store.notification_delivered("msg_nobody_1", status=200, now=at(203))
    assert not store.notification_failed("msg_nobody_1", status=None, error="x", retry_at=None, now=at(203))


def test_requeue_notifications_by_id_and_since_keeps_their_ids_and_restarts_the_schedule(
    notifying: Store,
) -> None:
    store = notifying
    a = created(store, now=at(0))  # a1
    assert store.transition(a.video_id or "", to=UPLOADED, now=at(1))  # a2
    assert store.transition(a.video_id or "", to=PROCESSING, now=at(2))  # a3, stays pending
    b = created(store, now=at(10))  # b1
    a1, a2, a3, b1 = (f"msg_{u.upload_id}_{s}" for u, s in ((a, 1), (a, 2), (a, 3), (b, 1)))
    assert store.notification_delivered(a1, status=200, now=at(20))
    assert store.notification_failed(a2, status=410, error="Gone", retry_at=None, now=at(21))
    assert store.notification_delivered(b1, status=200, now=at(22))
    before = {n.notification_id: n for n in store.list_notifications()}

    assert store.requeue_notifications(now=at(30), notification_id=a2) == 1
    requeued = {n.notification_id: n for n in store.list_notifications()}
    # The same id, pending again, its retry schedule started afresh; what it answered is kept.
    assert requeued[a2] == Notification(
        **{
            **before[a2]._asdict(),
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": at(30),
            "finished_at": None,
        }
    )
    assert store.requeue_notifications(now=at(31), notification_id=a2) == 0  # pending already
    assert store.requeue_notifications(now=at(31), notification_id=a3) == 0
    assert store.requeue_notifications(now=at(31), notification_id="msg_nobody_1") == 0
    assert store.requeue_notifications(now=at(32), since=at(5)) == 1  # b1 only
    assert store.requeue_notifications(now=at(33), since=at(0)) == 1  # then a1
    after = {n.notification_id: n for n in store.list_notifications()}
    assert set(after) == set(before)
    assert {n.state for n in after.values()} == {"pending"}
    assert (after[a1].next_attempt_at, after[b1].next_attempt_at) == (at(33), at(32))
    assert (after[a1].attempts, after[a1].last_status) == (0, 200)
    # Requeued in order: a1 before a2 before a3.
    claimed = store.claim_notifications(limit=10, lease_seconds=30, now=at(40))
    assert [n.notification_id for n in claimed] == [b1, a1]
    with pytest.raises(ValueError, match="requeue"):
        store.requeue_notifications(now=at(40))
    with pytest.raises(ValueError, match="requeue"):
        store.requeue_notifications(now=at(40), notification_id=a1, since=at(0))


def test_notification_counts_and_list(notifying: Store) -> None:
    store = notifying
    ups = [created(store, now=at(i)) for i in range(4)]
    ids = [f"msg_{u.upload_id}_1" for u in ups]
    assert store.notification_delivered(ids[0], status=200, now=at(10))
    assert store.notification_delivered(ids[1], status=200, now=at(10))
    assert store.notification_failed(ids[2], status=None, error="x", retry_at=None, now=at(10))
    assert store.notification_counts() == NotificationCounts(pending=1, delivered=2, dead=1)
    assert [n.notification_id for n in store.list_notifications()] == ids[::-1]  # newest first
    assert [n.notification_id for n in store.list_notifications(limit=2)] == [ids[3], ids[2]]
    assert [n.notification_id for n in store.list_notifications(state="delivered")] == [ids[1], ids[0]]
    assert [n.notification_id for n in store.list_notifications(state="dead")] == [ids[2]]
    assert [n.notification_id for n in store.list_notifications(since=at(1))] == [ids[3], ids[2], ids[1]]
    assert [n.notification_id for n in store.list_notifications(state="delivered", since=at(1))] == [ids[1]]
    assert store.list_notifications(since=at(100)) == []
    with pytest.raises(ValueError, match="limit must be at least 1"):
        store.list_notifications(limit=0)


def test_webhook_endpoints_can_be_disabled_and_enabled(store: Store) -> None:
    url, other = "https://hooks.example.com/vod", "https://other.example.com/vod"
    assert store.webhook_endpoint_disabled(url) is None
    store.set_webhook_endpoint(url, disabled_reason="410 Gone", now=at(1))
    assert store.webhook_endpoint_disabled(url) == "410 Gone"
    assert store.webhook_endpoint_disabled(other) is None
    store.set_webhook_endpoint(url, disabled_reason="410 Gone again", now=at(2))
    assert store.webhook_endpoint_disabled(url) == "410 Gone again"
    store.set_webhook_endpoint(url, disabled_reason=None, now=at(3))
    assert store.webhook_endpoint_disabled(url) is None
    store.set_webhook_endpoint(other, disabled_reason=None, now=at(3))  # enabling a new one is harmless
    assert store.webhook_endpoint_disabled(other) is None


def test_concurrent_notification_claimers_never_share_and_keep_the_order(make_store: MakeStore) -> None:
    setup = make_store(notify_types=ALL_TYPES)
    setup.migrate()
    firsts = set()
    for i in range(30):
        up = created(setup, now=at(i))
        assert setup.transition(up.video_id or "", to=UPLOADED, now=at(100 + i))
        firsts.add(f"msg_{up.upload_id}_1")
    claimers = [make_store(), make_store()]

    def drain(i: int) -> list[str]:
        got: list[str] = []
        while page := claimers[i].claim_notifications(limit=3, lease_seconds=600, now=at(1000)):
            got += [n.notification_id for n in page]
        return got

    first, second = run_threads(2, drain)
    assert isinstance(first, list) and isinstance(second, list), (first, second)
    assert set(first).isdisjoint(second)
    # Nothing was delivered: only each upload's first notification could be claimed.
    assert sorted(first + second) == sorted(firsts)


# --- pruning -----------------------------------------------------------------------------------


def test_prune_forgets_old_bookkeeping(notifying: Store) -> None:
    store = notifying
    up = created(store, now=at(0))  # its notification: created at(0)
    vid = up.video_id or ""
    assert event(store, vid, "old", None, {"duration": 1}, now=at(10)) is ApplyResult.APPLIED
    assert event(store, vid, "new", None, {"size": 2}, now=at(1000)) is ApplyResult.APPLIED
    assert event(store, "vid-x", "orphan-old", None, now=at(10)) is ApplyResult.ORPHAN
    assert event(store, "vid-x", "orphan-new", None, now=at(1000)) is ApplyResult.ORPHAN
    record(store, vid, "pending-old", now=at(10))  # recorded, never finished
    keyed = store.reserve_upload(reservation(key="k-old", now=at(1)), max_pending=100)
    store.attach_video(keyed.upload_id, "vid-keyed", None, at(1))
    pending = store.reserve_upload(reservation(key="k-pending", now=at(1)), max_pending=100)
    store.reserve_upload(reservation(key="k-new", now=at(1000)), max_pending=100)
    # Notifications: one delivered and one dead long ago, one still pending, one delivered lately.
    assert store.notification_delivered(f"msg_{up.upload_id}_1", status=200, now=at(5))
    assert store.notification_failed(
        f"msg_{keyed.upload_id}_1", status=None, error="x", retry_at=None, now=at(6)
    )
    assert store.transition(vid, to=UPLOADED, now=at(7))  # pending, never pruned
    late = created(store, now=at(900))
    assert store.notification_delivered(f"msg_{late.upload_id}_1", status=200, now=at(1000))

    counts = store.prune(
        now=at(2000),
        events_before=at(500),
        idempotency_before=at(500),
        orphans_before=at(500),
        notifications_before=at(500),
    )
    # events: "old" (not the pending one); idempotency: only the attached upload (creating is kept).
    assert counts == PruneCounts(events=1, idempotency=1, orphans=1, notifications=2)
    assert set(inbox(store)) == {"new", "orphan-new", "pending-old"}
    assert {(n.upload_id, n.seq, n.state) for n in outbox(store)} == {
        (up.upload_id, 2, "pending"),
        (late.upload_id, 1, "delivered"),
    }

    got = store.get_by_video_id("vid-keyed")
    assert got is not None and (got.idempotency_key, got.request_hash) == (None, None)
    assert store.find_by_idempotency_key("alice", "k-old") is None
    assert store.find_by_idempotency_key("alice", "k-pending") == pending
    store.reserve_upload(reservation(key="k-old", now=at(2000)), max_pending=100)  # reusable now
    assert (
        event(store, vid, "old", None, {"error": "e"}, now=at(2000)) is ApplyResult.APPLIED
    )  # key forgotten
    assert inbox(store)["old"].received_at == at(2000)
    assert event(store, vid, "new", None, {"size": 3}, now=at(2000)) is ApplyResult.DUPLICATE
    # Without notifications_before, notifications are kept.
    nothing = store.prune(now=at(3000), events_before=at(0), idempotency_before=at(0), orphans_before=at(0))
    assert nothing == PruneCounts(0, 0, 0, 0)
    everything = store.prune(
        now=at(3000),
        events_before=at(0),
        idempotency_before=at(0),
        orphans_before=at(0),
        notifications_before=at(10**6),
    )
    assert everything == PruneCounts(events=0, idempotency=0, orphans=0, notifications=1)


# --- migrations --------------------------------------------------------------------------------


@contextmanager
def version_3_database(store_url: str, tmp_path: Path) -> Iterator[tuple[str, Direct]]:
    """A new database at schema version 3 (the first three migrations, as ``_apply_migrations``
    would have applied them): its URL, and a direct connection to it."""
    dialect = "sqlite" if store_url.startswith("sqlite") else "postgresql"
    types = SCHEMA_TYPES[dialect]
    schema = f"v3_{uuid.uuid4().hex[:12]}"
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'v3.db'}"
    else:
        setup = Direct(store_url)
        setup.run(f"CREATE SCHEMA {schema}")
        setup.close()
        url = pg.with_search_path(store_url, schema)
    direct = Direct(url)
    try:
        direct.run(
            "CREATE TABLE schema_version (version {int} PRIMARY KEY, description TEXT NOT NULL, "
            "applied_at {time} NOT NULL)".format(**types)
        )
        for version, description, statements in MIGRATIONS[:3]:
            for statement in statements:
                direct.run(statement.format(**types))
            direct.run("INSERT INTO schema_version VALUES (?, ?, ?)", (version, description, T0))
        yield url, direct
    finally:
        direct.close()
        if dialect == "postgresql":
            teardown = Direct(store_url)
            teardown.run(f"DROP SCHEMA {schema} CASCADE")
            teardown.close()


@pytest.mark.direct_postgres
def test_migration_4_carries_version_3_data_over(store_url: str, tmp_path: Path) -> None:
    with version_3_database(store_url, tmp_path) as (url, direct):
        old_columns = ", ".join(
            c
            for c in Upload._fields
            if c not in ("kind", "media_type", "extend", "notify_seq", "check_at", "checks")
        )
        insert = f"INSERT INTO uploads ({old_columns}) VALUES ({', '.join('?' * 19)})"  # noqa: S608
        for upload_id, video_id, status, updated in (
            ("u-created", "vid-c", CREATED, at(1)),
            ("u-uploaded", "vid-u", UPLOADED, at(50)),
            ("u-processing", "vid-p", PROCESSING, at(60)),
            ("u-ready", "vid-r", READY, at(70)),
        ):
            direct.run(
                insert,
                (upload_id, "alice", video_id, f"ref-{upload_id}", "t", "f.mp4", 1, status, at(0), updated)
                + (None,) * 9,
            )
        dedupe = (
            "INSERT INTO event_dedupe (dedupe_key, video_id, event_type, received_at) VALUES (?, ?, ?, ?)"
        )
        direct.run(dedupe, ("d-applied", "vid-u", "FileUploadComplete", at(40)))
        # Version 3 recorded an orphan in both tables.
        direct.run(dedupe, ("d-orphan", "vid-gone", "FileUploadComplete", at(41)))
        payload = '{"EventType": "FileUploadComplete", "VideoId": "vid-gone"}'
        direct.run(
            "INSERT INTO orphan_events (video_id, dedupe_key, event_type, event_time, payload, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            ("vid-gone", "d-orphan", "FileUploadComplete", at(39), payload, at(41)),
        )

        store = create_store(url, notify_types=ALL_TYPES)
        try:
            assert store.migrate() == 4
            assert store.migrate() == 4
            rows = inbox(store)
            assert set(rows) == {"d-applied", "d-orphan"}
            applied, orphan = rows["d-applied"], rows["d-orphan"]
            assert (applied.state, applied.result, applied.media_id, applied.received_at) == (
                "done",
                "applied",
                "vid-u",
                at(40),
            )
            assert (orphan.state, orphan.result, orphan.media_id, orphan.event_time) == (
                "done",
                "orphan",
                "vid-gone",
                at(39),
            )
            assert json.loads(orphan.body) == json.loads(payload)
            assert (orphan.claimed_until, orphan.attempts, orphan.next_attempt_at) == (None, 0, None)
            # Their keys still stop a second delivery: found, done, not owned.
            for key in ("d-applied", "d-orphan"):
                found, owned, _ = record(store, "vid-u", key, now=at(100))
                assert not owned and found.state == "done"
            uploads = {
                u.upload_id: u
                for u in (store.get_by_video_id(v) for v in ("vid-c", "vid-u", "vid-p", "vid-r"))
                if u
            }
            assert {u.kind for u in uploads.values()} == {"video"}
            assert {u.notify_seq for u in uploads.values()} == {0}
            # Uploads still waiting (on the client or on VOD) are due for a check at once (their
            # last change); final ones are not checked.
            assert {k: u.check_at for k, u in uploads.items()} == {
                "u-created": at(1),
                "u-uploaded": at(50),
                "u-processing": at(60),
                "u-ready": None,
            }
            claimed = store.claim_stuck(limit=10, lease_seconds=60, now=at(55))
            assert [u.upload_id for u in claimed] == ["u-created", "u-uploaded"]
            # The old tables are gone; the migrated store works as a new one.
            assert store.transition("vid-u", to=READY, now=at(200))
            (note,) = store.list_notifications()
            assert (note.notification_id, note.type) == ("msg_u-uploaded_1", "upload.ready")
            kept = store.prune(
                now=at(300), events_before=at(1000), idempotency_before=at(0), orphans_before=at(0)
            )
            assert kept == PruneCounts(events=1, idempotency=0, orphans=0)
            assert store.prune(
                now=at(300), events_before=at(0), idempotency_before=at(0), orphans_before=at(1000)
            ) == PruneCounts(events=0, idempotency=0, orphans=1)
        finally:
            store.close()
        for table in ("event_dedupe", "orphan_events"):
            with pytest.raises(Exception, match=table):
                direct.run(f"SELECT 1 FROM {table}")  # noqa: S608


# --- failures and reconnection -----------------------------------------------------------------


@pytest.mark.direct_postgres
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


@pytest.mark.direct_postgres
@pytest.mark.parametrize(
    "notify_types",
    [None, ALL_TYPES],
    ids=["attach in autocommit", "attach and its notification in a transaction"],
)
def test_an_attach_whose_answer_is_lost_may_have_committed(
    postgres_url: str, notify_types: frozenset[str] | None
) -> None:
    """A real lost answer: the server commits, then the connection goes before its answer is read.
    The store cannot know the outcome and says so (``may_have_committed``); the row is attached."""
    from urllib.parse import urlsplit

    import psycopg

    from shared.store.postgres import PostgresStore
    from tests.netfault import TcpProxy

    db = pg.create_test_database(postgres_url)
    proxy: TcpProxy | None = None
    store: PostgresStore | None = None
    try:
        pg.migrate(db.url)
        # Runs when the attach's transaction commits (its implicit one, in autocommit), before
        # the commit is recorded; the proxy is cut meanwhile, so the answer finds no client.
        with psycopg.connect(db.url, autocommit=True) as admin:
            admin.execute(
                "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN PERFORM pg_sleep(1.5); RETURN NULL; END $$"
            )
            admin.execute(
                "CREATE CONSTRAINT TRIGGER slow_commit AFTER UPDATE ON uploads DEFERRABLE "
                "INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status = 'created') "
                "EXECUTE FUNCTION slow_commit()"
            )
        parts = urlsplit(db.url)
        proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
        store = PostgresStore(proxy.url(db.url), notify_types=notify_types)
        upload = store.reserve_upload(reservation(), max_pending=10)  # the connection is warm

        def cut_while_the_commit_sleeps() -> None:
            with psycopg.connect(db.url, autocommit=True) as watcher:
                deadline = time.monotonic() + 10
                while (
                    time.monotonic() < deadline
                    and not watcher.execute(
                        "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
                        "AND datname = current_database()"
                    ).fetchone()
                ):
                    time.sleep(0.01)
            assert proxy is not None
            proxy.cut()

        threading.Thread(target=cut_while_the_commit_sleeps, daemon=True).start()
        with pytest.raises(errors.StoreUnavailable) as caught:
            store.attach_video(upload.upload_id, "vid-lost-answer", T0 + timedelta(seconds=3000), T0)
        assert caught.value.may_have_committed
        direct = PostgresStore(db.url)
        try:  # the server commits once the trigger is done, with no client left to tell
            deadline = time.monotonic() + 10
            while (found := direct.get_by_video_id("vid-lost-answer")) is None:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        finally:
            direct.close()
        assert found is not None and found.upload_id == upload.upload_id and found.status == CREATED
    finally:
        if store is not None:
            store.close()
        if proxy is not None:
            proxy.cut()
        db.drop()


def test_a_store_that_cannot_connect_says_nothing_may_have_committed() -> None:
    store = create_store(f"postgresql://vodfc@127.0.0.1:{pg._free_port()}/vodfc", connect_timeout=2)
    with pytest.raises(errors.StoreUnavailable) as caught:
        store.attach_video("up-any", "vid-any", None, T0)
    assert not caught.value.may_have_committed
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
    assert relative.migrate() == 4
    relative.close()
    assert (tmp_path / ".vodfc" / "vodfc.db").is_file()

    absolute = create_store(f"sqlite:///{tmp_path / 'deep' / 'er' / 'abs.db'}")
    assert absolute.migrate() == 4
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
def test_postgres_url_options_are_kept_beside_the_statement_timeout(postgres_url: str) -> None:
    """``?options=-csearch_path%3D...`` in DATABASE_URL selects the schema the store works in."""
    schema = f"opt_{uuid.uuid4().hex[:12]}"
    admin = Direct(postgres_url)
    admin.run(f"CREATE SCHEMA {schema}")
    store = create_store(pg.with_search_path(postgres_url, schema), statement_timeout=0.25)
    try:
        assert store.migrate() == 4
        up = created(store)
        shown = store._run(  # type: ignore[attr-defined]
            lambda cur: cur.execute(
                "SELECT current_schema(), current_setting('statement_timeout')"
            ).fetchone()
        )
        assert tuple(shown) == (schema, "250ms")
        # The store's tables are the schema's own.
        check = Direct(pg.with_search_path(postgres_url, schema))
        try:
            found = check.conn.execute("SELECT upload_id FROM uploads").fetchall()
        finally:
            check.close()
        assert found == [(up.upload_id,)]
    finally:
        store.close()
        admin.run(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.mark.postgres
def test_a_reservation_on_a_connection_the_server_killed_is_replayed(postgres_url: str) -> None:
    """The reservation's statements go out together (pipeline mode) with nothing committed before
    its COMMIT: a session the server ended while the instance was idle is replayed on a fresh
    connection, once, and the reservation is made exactly once."""
    from shared.store.postgres import PostgresStore

    name = f"vodfc-test-{uuid.uuid4().hex[:12]}"
    store = PostgresStore(postgres_url, application_name=name)
    try:
        store.migrate()
        store.reserve_upload(reservation("pipe-owner"), max_pending=5)  # the connection is warm
        assert pg.terminate(postgres_url, name) == 1
        second = store.reserve_upload(reservation("pipe-owner", key="after-kill"), max_pending=5)
        assert store.find_by_idempotency_key("pipe-owner", "after-kill") == second
        with pytest.raises(errors.Conflict):  # made once: the key is now used
            store.reserve_upload(reservation("pipe-owner", key="after-kill"), max_pending=5)
    finally:
        store.close()


@pytest.mark.postgres
def test_a_reservation_whose_lock_times_out_writes_nothing_and_keeps_the_connection(
    postgres_url: str,
) -> None:
    """A statement of the pipeline that fails (here the owner's lock, held elsewhere past the
    statement timeout) fails the reservation by the pipeline's end: StoreUnavailable, nothing
    possibly committed (its COMMIT was never sent), nothing written, and the next call works."""
    import psycopg

    from shared.store.postgres import _LOCK_NAMESPACE

    store = create_store(postgres_url, statement_timeout=0.2)
    try:
        store.migrate()
        store.reserve_upload(reservation("locked-owner"), max_pending=5)
        with psycopg.connect(postgres_url) as holder:
            lock = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"
            holder.execute(lock, (_LOCK_NAMESPACE, "locked-owner"))
            with pytest.raises(errors.StoreUnavailable) as caught:
                store.reserve_upload(reservation("locked-owner", key="blocked"), max_pending=5)
            assert not caught.value.may_have_committed
            holder.rollback()
        assert store.find_by_idempotency_key("locked-owner", "blocked") is None
        made = store.reserve_upload(reservation("locked-owner", key="blocked"), max_pending=5)
        assert store.find_by_idempotency_key("locked-owner", "blocked") == made
    finally:
        store.close()


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
