"""SQLite and PostgreSQL, driven by the same random operation sequences, must end with the same rows.

Each dialect writes ``record_event``, ``apply_event`` and the claims its own way (Python on
SQLite, one SQL statement each on PostgreSQL, including the notification ``apply_event`` writes);
everything else is shared SQL. Hypothesis generates sequences of store operations (reservations
of every kind, attachments, media replacements, transitions, events recorded, applied, deferred,
finished and claimed, notifications claimed, delivered, failed and requeued, webhook endpoints,
check schedules, the cleanup claims, expiries, prunes and reads) over a handful of owners, ids,
keys and coarse times, so that collisions, duplicates, leases that end at the same instant,
stale events and conflicts are common. Both stores are built with every notification type on and
get the same sequence; every answer (value, or error type and code) must agree, and so must every
row of every table at the end: uploads, the event inbox (event ids aside: PostgreSQL spends one on
every conflicting insert), the webhook outbox (bodies as parsed JSON) and the webhook endpoints.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from shared import errors, states
from shared.store import Applied, InboxEvent, Notification, Store, Upload, create_store, new_reservation
from shared.store.base import COLUMNS, NOTIFICATION_COLUMNS
from tests import pg

pytestmark = pytest.mark.postgres

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
OWNERS = ("alice", "bob")
UPLOAD_IDS = tuple(f"u{i}" for i in range(4))
VIDEO_IDS = tuple(f"v{i}" for i in range(5))
KEYS = ("k1", "k2")
EVENT_KEYS = ("d1", "d2", "d3", "d4", "d5", "d6", "p1", "p2")
EVENT_TYPES = ("FileUploadComplete", "StreamTranscodeComplete", "TranscodeComplete", "VideoAnalysisComplete")
NOTIFICATION_IDS = tuple(f"msg_u{i}_{seq}" for i in range(3) for seq in (1, 2, 3))
URLS = ("https://a.example/hook", "https://b.example/hook")
EXTENDS = (None, "", '{"a":1}', '{"t":"ü","n":[1,2.5,null],"o":{}}')
TITLES = ("t", 'a "quoted" \\ title, ü 🎬\n')
NOTIFY_TYPES = frozenset(states.NOTIFICATION_TYPES)
LEASE = 60.0  # one minute: with times in whole minutes, leases often end exactly at a later "now"
FIRST_CHECK = 300.0
EVENT_INBOX_COLUMNS = (
    "dedupe_key, media_id, event_type, event_time, source, message_id, body, received_at, state, "
    "result, attempts, next_attempt_at, claimed_until, last_error, done_at"
)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


times = st.sampled_from((0, 1, 2, 5, 10, 60, 200)).map(at)  # coarse: equal times are common
maybe_times = st.one_of(st.none(), times)
statuses = st.sampled_from(states.PUBLIC_STATUSES)
maybe_status = st.one_of(st.none(), statuses)
kinds = st.sampled_from(tuple(states.KINDS))
fields = st.fixed_dictionaries(
    {},
    optional={
        "duration": st.sampled_from([None, 1.5, 9.0]),
        "size": st.sampled_from([None, 7, 2**40]),
        "error": st.sampled_from([None, "oops", "x y"]),
    },
)

# Events mostly hit the prelude's two media (v2 is an orphan until attached): a dedupe key names
# its media ("d1|v0"), as VOD's do. Event times often equal the last one recorded: where "newer",
# "stale" and "fill" decide.
_dedupe_keys = st.tuples(
    st.sampled_from(EVENT_KEYS), st.sampled_from(("v0", "v0", "v0", "v1", "v1", "v2"))
).map("|".join)
# Events recorded apart (then applied, deferred, finished or claimed) draw from fewer keys; the
# operations that act on one name it, or (None) take the event recorded last, so that they often
# meet a pending event.
_parked_keys = st.tuples(st.sampled_from(("p1", "p2")), st.sampled_from(("v0", "v1", "v2"))).map("|".join)
_acted_keys = st.one_of(st.none(), _parked_keys)
_event_types = st.sampled_from(EVENT_TYPES)
# What events claim: mostly forward moves (VOD's events never expire or delete an upload), often
# nothing (informational events), sometimes created (cleanup's uploaded → created).
_event_statuses = st.sampled_from(
    (
        None,
        None,
        states.UPLOADED,
        states.UPLOADED,
        states.PROCESSING,
        states.PROCESSING,
        states.READY,
        states.FAILED,
        states.CREATED,
    )
)
_event_times = st.sampled_from((None, at(1), at(1), at(1), at(2)))
_notification_ids = st.sampled_from(NOTIFICATION_IDS)
_limits = st.integers(min_value=1, max_value=3)

# (weight, strategy): how often each operation is drawn. Events (recorded and applied in one go,
# as callbacks do, or apart) and transitions, where the dialects differ most, come most often.
# Weights, not repeated one_of branches: one_of draws each distinct strategy once.
_WEIGHTED: tuple[tuple[int, st.SearchStrategy[tuple[Any, ...]]], ...] = (
    (
        14,
        st.tuples(
            st.just("deliver"), _dedupe_keys, _event_types, _event_times, _event_statuses, fields, times
        ),
    ),
    (2, st.tuples(st.just("record"), _parked_keys, _event_types, _event_times, times)),
    # The event recorded last, delivered again at the same instant (VOD's HTTP callback and its
    # MNS message at once): both compute the same lease end, only the first may own it.
    (1, st.tuples(st.just("redeliver"))),
    (
        3,
        st.tuples(st.just("apply"), _acted_keys, _event_types, _event_times, _event_statuses, fields, times),
    ),
    (5, st.tuples(st.just("transition"), st.sampled_from(VIDEO_IDS), statuses, fields, times)),
    (
        2,
        st.tuples(
            st.just("reserve"),
            st.sampled_from(UPLOAD_IDS),
            st.sampled_from(OWNERS),
            st.one_of(st.none(), st.sampled_from(KEYS)),
            st.integers(min_value=1, max_value=3),
            kinds,
            st.sampled_from(EXTENDS),
            st.sampled_from(TITLES),
            times,
        ),
    ),
    (2, st.tuples(st.just("attach"), st.sampled_from(UPLOAD_IDS), st.sampled_from(VIDEO_IDS), times)),
    (1, st.tuples(st.just("replace"), st.sampled_from(UPLOAD_IDS), st.sampled_from(VIDEO_IDS), times)),
    (1, st.tuples(st.just("discard"), st.sampled_from(UPLOAD_IDS))),
    (1, st.tuples(st.just("defer"), _acted_keys, times, st.sampled_from((None, "busy")), times)),
    (1, st.tuples(st.just("finish"), _acted_keys, st.sampled_from(("ignored", "invalid")), times)),
    (1, st.tuples(st.just("claim_events"), _limits, times)),
    (
        2,
        st.tuples(
            st.just("claim_notifications"), _limits, times, st.one_of(st.none(), st.sampled_from(UPLOAD_IDS))
        ),
    ),
    (2, st.tuples(st.just("delivered"), _notification_ids, st.sampled_from((200, 204)), times)),
    (
        1,
        st.tuples(
            st.just("failed"),
            _notification_ids,
            st.sampled_from((None, 500)),
            st.sampled_from(("x", "y" * 600)),
            maybe_times,
            times,
        ),
    ),
    (
        1,
        st.tuples(
            st.just("requeue"),
            st.one_of(st.tuples(_notification_ids, st.none()), st.tuples(st.none(), times)),
            times,
        ),
    ),
    (
        1,
        st.tuples(
            st.just("notifications"), st.sampled_from((None, "pending", "delivered", "dead")), maybe_times
        ),
    ),
    (1, st.tuples(st.just("endpoint"), st.sampled_from(URLS), st.sampled_from((None, "410 Gone")), times)),
    (1, st.tuples(st.just("expiry"), st.sampled_from(VIDEO_IDS), times, times)),
    (1, st.tuples(st.just("claim_stale"), times, st.integers(min_value=1, max_value=4), times, maybe_times)),
    (1, st.tuples(st.just("claim_stuck"), st.integers(min_value=1, max_value=4), times)),
    (1, st.tuples(st.just("schedule"), st.sampled_from(UPLOAD_IDS), times, times)),
    (1, st.tuples(st.just("expire"), st.lists(st.sampled_from(VIDEO_IDS), max_size=3, unique=True), times)),
    (1, st.tuples(st.just("release"), st.sampled_from(UPLOAD_IDS))),
    (1, st.tuples(st.just("prune"), times, times, times, times, maybe_times)),
    (1, st.tuples(st.just("read"), st.sampled_from(OWNERS), st.sampled_from(VIDEO_IDS), kinds, maybe_status)),
)
operations = st.sampled_from([s for weight, s in _WEIGHTED for _ in range(weight)]).flatmap(lambda s: s)


# Every sequence starts from two media and one reservation (u2): a video v0 with Extend, moved to
# uploaded by a timed event that set every field, and an image v1 with an empty Extend (no Extend
# in its notifications), still created. The random
# operations then mostly act on records that exist, where the dialects could differ: later events
# on v0 at the same time, or informational ones with other values, are where "newer" and "fill"
# decide.
PRELUDE: tuple[tuple[Any, ...], ...] = (
    ("reserve", "u0", "alice", None, 3, "video", '{"x":[1,"ü"]}', TITLES[1], at(0)),
    ("attach", "u0", "v0", at(1)),
    (
        "deliver",
        "d0|v0",
        "FileUploadComplete",
        at(1),
        states.UPLOADED,
        {"size": 7, "duration": 1.5, "error": "oops"},
        at(1),
    ),
    ("reserve", "u1", "bob", "k1", 3, "image", "", "t", at(2)),
    ("attach", "u1", "v1", at(3)),
    ("reserve", "u2", "alice", "k2", 3, "video", None, "t", at(4)),
)


class Driver:
    """Runs operations on one store, remembering the event id each dedupe key got there."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.event_ids: dict[str, int] = {}
        self.last_key = "none|v0"  # recorded by the last "record" operation
        self.last_record: tuple[Any, ...] = (self.last_key, "E", None, T0)

    def key(self, key: str | None) -> str:
        return self.last_key if key is None else key

    def event_id(self, key: str) -> int:
        return self.event_ids.get(key, -1)  # never recorded: an id no row has

    def record(self, key: str, event_type: str, event_time: datetime | None, now: datetime) -> Any:
        video_id = key.split("|")[1]
        entry, owned, upload = self.store.record_event(
            dedupe_key=key,
            media_id=video_id,
            event_type=event_type,
            event_time=event_time,
            source="http",
            message_id=None,
            body=json.dumps({"EventType": event_type, "VideoId": video_id}),
            now=now,
            lease_seconds=LEASE,
        )
        self.event_ids[key] = entry.event_id
        return entry, owned, upload

    def apply(
        self,
        key: str,
        event_type: str,
        event_time: datetime | None,
        to: str | None,
        changes: dict[str, Any],
        now: datetime,
    ) -> Any:
        if to == states.CREATING:
            return None
        return self.store.apply_event(
            self.event_id(key),
            video_id=key.split("|")[1],
            event_type=event_type,
            event_time=event_time,
            to=to,
            fields=changes,
            now=now,
            lease_seconds=60.0,  # the callback path's: the move's notification leased in the statement
        )

    def run(self, op: tuple[Any, ...]) -> Any:
        """One operation's answer, comparable across dialects (errors by type and code)."""
        try:
            return normal(self._run(*op))
        except (errors.VodfcError, ValueError) as exc:
            return ("error", type(exc).__name__, getattr(exc, "code", None))

    def _run(self, kind: str, *args: Any) -> Any:
        store = self.store
        if kind == "reserve":
            upload_id, owner, key, max_pending, media_kind, extend, title, now = args
            return store.reserve_upload(
                new_reservation(
                    upload_id=upload_id,
                    owner=owner,
                    reference_id=f"ref-{upload_id}",
                    title=title,
                    file_name="f.mp4",
                    file_size=1,
                    now=now,
                    idempotency_key=key,
                    request_hash="h" if key else None,
                    kind=media_kind,
                    media_type=None if media_kind == "video" else "cover",
                    extend=extend,
                ),
                max_pending=max_pending,
            )
        if kind == "attach":
            upload_id, video_id, now = args
            return store.attach_video(upload_id, video_id, now + timedelta(seconds=3000), now)
        if kind == "replace":
            upload_id, video_id, now = args
            return store.replace_media(upload_id, video_id, now + timedelta(seconds=600), now)
        if kind == "discard":
            return store.discard_reservation(args[0])
        if kind == "transition":
            video_id, to, changes, now = args
            if to == states.CREATING:
                return None
            return store.transition(video_id, to=to, now=now, fields=changes)
        if kind == "deliver":
            key, event_type, event_time, to, changes, now = args
            recorded = self.record(key, event_type, event_time, now)
            return recorded, self.apply(key, event_type, event_time, to, changes, now)
        if kind == "record":
            self.last_key, self.last_record = args[0], args
            return self.record(*args)
        if kind == "redeliver":
            return self.record(*self.last_record)
        if kind == "apply":
            key, *apply_args = args
            return self.apply(self.key(key), *apply_args)
        if kind == "defer":
            key, next_at, error, now = args
            return store.defer_event(
                self.event_id(self.key(key)), next_attempt_at=next_at, error=error, now=now
            )
        if kind == "finish":
            key, result, now = args
            return store.finish_event(self.event_id(self.key(key)), result=result, now=now)
        if kind == "claim_events":
            limit, now = args
            return store.claim_events(limit=limit, lease_seconds=LEASE, now=now)
        if kind == "claim_notifications":
            limit, now, upload_id = args
            return store.claim_notifications(limit=limit, lease_seconds=LEASE, now=now, upload_id=upload_id)
        if kind == "delivered":
            notification_id, status, now = args
            return store.notification_delivered(notification_id, status=status, now=now)
        if kind == "failed":
            notification_id, status, error, retry_at, now = args
            return store.notification_failed(
                notification_id, status=status, error=error, retry_at=retry_at, now=now
            )
        if kind == "requeue":
            (notification_id, since), now = args
            return store.requeue_notifications(now=now, notification_id=notification_id, since=since)
        if kind == "notifications":
            state, since = args
            return store.list_notifications(state=state, since=since, limit=3), store.notification_counts()
        if kind == "endpoint":
            url, reason, now = args
            store.set_webhook_endpoint(url, disabled_reason=reason, now=now)
            return [store.webhook_endpoint_disabled(u) for u in URLS]
        if kind == "expiry":
            video_id, expires_at, now = args
            return store.set_credential_expiry(video_id, expires_at, now)
        if kind == "claim_stale":
            before, limit, now, credential_before = args
            return store.claim_stale(
                created_before=before,
                limit=limit,
                lease_seconds=LEASE,
                now=now,
                credential_expired_before=credential_before,
            )
        if kind == "claim_stuck":
            limit, now = args
            return store.claim_stuck(limit=limit, lease_seconds=LEASE, now=now)
        if kind == "schedule":
            upload_id, check_at, now = args
            return store.schedule_check(upload_id, check_at=check_at, now=now)
        if kind == "expire":
            video_ids, now = args
            return store.expire_created(video_ids, now=now)
        if kind == "release":
            return store.release_claim(args[0])
        if kind == "prune":
            now, events, idem, orphans, notifications = args
            return store.prune(
                now=now,
                events_before=events,
                idempotency_before=idem,
                orphans_before=orphans,
                notifications_before=notifications,
            )
        owner, video_id, media_kind, status = args
        page, cursor = store.list_uploads(owner, kind=media_kind, status=status, limit=2)
        rest = (
            store.list_uploads(owner, kind=media_kind, status=status, limit=2, cursor=cursor)
            if cursor
            else None
        )
        return (
            store.get(owner, video_id, kind=media_kind),
            store.get_by_video_id(video_id),
            page,
            cursor,
            rest,
        )


def normal(value: Any) -> Any:
    """``value`` comparable across dialects: events without their id, bodies as parsed JSON."""
    if isinstance(value, InboxEvent):
        return value._replace(event_id=0)
    if isinstance(value, Notification):
        return {**value._asdict(), "body": json.loads(value.body)}
    if isinstance(value, Applied):
        return (value.result, normal(value.notification))
    if isinstance(value, list) or type(value) is tuple:  # not a record (a NamedTuple): kept whole
        return type(value)(normal(v) for v in value)
    return value


def rows(store: Store) -> dict[str, list[Any]]:
    """Every row of every table: times as aware datetimes, bodies as JSON values, no event ids."""

    def select(sql: str) -> list[Any]:
        return list(store._read(lambda cur: store._exec(cur, sql).fetchall()))  # type: ignore[attr-defined]

    def when(row: Any, names: str, times: set[str]) -> dict[str, Any]:
        values = dict(zip(names.split(", "), row, strict=True))
        for name in times:
            if values[name] is not None:
                values[name] = store._from_time(values[name])  # type: ignore[attr-defined]
        return values

    uploads: list[Upload] = [
        store._upload(r)  # type: ignore[attr-defined]
        for r in select(f"SELECT {COLUMNS} FROM uploads ORDER BY upload_id")  # noqa: S608
    ]
    inbox = [
        when(
            r,
            EVENT_INBOX_COLUMNS,
            {"event_time", "received_at", "next_attempt_at", "claimed_until", "done_at"},
        )
        for r in select(f"SELECT {EVENT_INBOX_COLUMNS} FROM event_inbox ORDER BY dedupe_key")  # noqa: S608
    ]
    outbox = [
        when(r, NOTIFICATION_COLUMNS, {"created_at", "next_attempt_at", "claimed_until", "finished_at"})
        for r in select(f"SELECT {NOTIFICATION_COLUMNS} FROM webhook_outbox ORDER BY notification_id")  # noqa: S608
    ]
    for notification in outbox:
        notification["body"] = json.loads(notification["body"])
    endpoints = [
        when(r, "url, disabled_reason, changed_at", {"changed_at"})
        for r in select("SELECT url, disabled_reason, changed_at FROM webhook_endpoints ORDER BY url")
    ]
    return {
        "uploads": uploads,
        "event_inbox": inbox,
        "webhook_outbox": outbox,
        "webhook_endpoints": endpoints,
    }


@pytest.fixture(scope="module")
def stores(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Store, str]]:
    path: Path = tmp_path_factory.mktemp("differential") / "vodfc.db"
    options: dict[str, Any] = {"notify_types": NOTIFY_TYPES, "first_check_seconds": FIRST_CHECK}
    sqlite, postgres = create_store(f"sqlite:///{path}", **options), create_store(postgres_url, **options)
    sqlite.migrate()
    postgres.migrate()
    yield sqlite, postgres, postgres_url
    sqlite.close()
    postgres.close()


def _empty(*stores: Store) -> None:
    # DELETE, not TRUNCATE: for a few rows it is many times faster, and it runs once per example.
    for store in stores:
        store._write(  # type: ignore[attr-defined]
            lambda cur: [cur.execute(f"DELETE FROM {table}") for table in pg.TABLES]  # noqa: S608
        )


# A failure is shrunk once (not once per distinct error) and not explained: the explain phase
# traces every line of the failing example again and again (sys.settrace before Python 3.12),
# which takes minutes here; the shrunk sequence and the failing step say enough.
@settings(
    max_examples=100,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(sequence=st.lists(operations, min_size=15, max_size=40))
def test_both_dialects_answer_alike_and_end_with_the_same_rows(
    stores: tuple[Store, Store, str], sequence: list[tuple[Any, ...]]
) -> None:
    sqlite, postgres, _url = stores
    _empty(sqlite, postgres)
    left, right = Driver(sqlite), Driver(postgres)
    for step, op in enumerate([*PRELUDE, *sequence]):
        assert left.run(op) == right.run(op), f"step {step}: {op}"
    assert rows(sqlite) == rows(postgres)
