"""SQLite and PostgreSQL, driven by the same random operation sequences, must end with the same rows.

Each dialect writes ``apply_event`` and the claims its own way (a Python plan on SQLite, one SQL
statement on PostgreSQL); everything else is shared SQL. Hypothesis generates sequences of store
operations (reservations, attachments, transitions, events with and without fields, claims,
expiries, prunes) over a handful of owners, ids, times and keys, so that collisions, duplicates,
stale events and conflicts are common; both stores get the same sequence, every answer (value or
error type and code) must agree, and so must every row of every table at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import errors, states
from shared.store import Store, Upload, create_store, new_reservation
from shared.store.base import COLUMNS
from tests import pg

pytestmark = pytest.mark.postgres

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
OWNERS = ("alice", "bob", "carol")
UPLOAD_IDS = tuple(f"u{i}" for i in range(4))
VIDEO_IDS = tuple(f"v{i}" for i in range(4))
KEYS = ("k1", "k2")
EVENT_TYPES = ("FileUploadComplete", "StreamTranscodeComplete", "TranscodeComplete", "VideoAnalysisComplete")


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


times = st.sampled_from((0, 1, 2, 5, 10, 60, 200)).map(at)  # coarse: equal times are common
statuses = st.sampled_from(states.PUBLIC_STATUSES)
maybe_status = st.one_of(st.none(), statuses)
fields = st.fixed_dictionaries(
    {},
    optional={
        "duration": st.sampled_from([None, 1.5, 9.0]),
        "size": st.sampled_from([None, 7, 2**40]),
        "error": st.sampled_from([None, "oops", "x y"]),
    },
)

# Events mostly hit the prelude's two videos (v2 is an orphan until attached), with event times
# that often equal the last one recorded: where "newer", "stale" and "fill" decide.
_events = st.tuples(
    st.just("event"),
    st.sampled_from(("v0", "v0", "v1", "v1", "v2")),
    st.sampled_from(("d1", "d2", "d3", "d4", "d5", "d6")),
    st.sampled_from(EVENT_TYPES),
    st.sampled_from((None, at(1), at(1), at(2), at(5))),
    maybe_status,
    fields,
    times,
)
_transitions = st.tuples(st.just("transition"), st.sampled_from(VIDEO_IDS), statuses, fields, times)
# Events and transitions, where the dialects differ most, are drawn five and three times as often.
operations = st.one_of(
    _events,
    _events,
    _events,
    _events,
    _transitions,
    _transitions,
    st.tuples(
        st.just("reserve"),
        st.sampled_from(UPLOAD_IDS),
        st.sampled_from(OWNERS),
        st.one_of(st.none(), st.sampled_from(KEYS)),
        st.integers(min_value=1, max_value=3),
        times,
    ),
    st.tuples(st.just("attach"), st.sampled_from(UPLOAD_IDS), st.sampled_from(VIDEO_IDS), times),
    st.tuples(st.just("discard"), st.sampled_from(UPLOAD_IDS)),
    _transitions,
    _events,
    st.tuples(st.just("expiry"), st.sampled_from(VIDEO_IDS), times, times),
    st.tuples(st.just("claim_stale"), times, st.integers(min_value=1, max_value=4), times),
    st.tuples(st.just("claim_stuck"), times, st.integers(min_value=1, max_value=4), times),
    st.tuples(st.just("expire"), st.lists(st.sampled_from(VIDEO_IDS), max_size=3, unique=True), times),
    st.tuples(st.just("release"), st.sampled_from(UPLOAD_IDS)),
    st.tuples(st.just("prune"), times, times, times, times),
    st.tuples(st.just("read"), st.sampled_from(OWNERS), st.sampled_from(VIDEO_IDS), maybe_status),
)


# Every sequence starts from two uploads with videos (v0, v1) and one reservation (u2): the
# random operations then mostly act on records that exist, where the dialects could differ.
PRELUDE: tuple[tuple[Any, ...], ...] = (
    ("reserve", "u0", "alice", None, 3, at(0)),
    ("attach", "u0", "v0", at(1)),
    ("reserve", "u1", "bob", "k1", 3, at(2)),
    ("attach", "u1", "v1", at(3)),
    ("reserve", "u2", "alice", "k2", 3, at(4)),
)


def run(store: Store, op: tuple[Any, ...]) -> Any:
    """One operation's answer, comparable across dialects (errors by type and code)."""
    kind, *args = op
    try:
        if kind == "reserve":
            upload_id, owner, key, max_pending, now = args
            return store.reserve_upload(
                new_reservation(
                    upload_id=upload_id,
                    owner=owner,
                    reference_id=f"ref-{upload_id}",
                    title="t",
                    file_name="f.mp4",
                    file_size=1,
                    now=now,
                    idempotency_key=key,
                    request_hash="h" if key else None,
                ),
                max_pending=max_pending,
            )
        if kind == "attach":
            upload_id, video_id, now = args
            return store.attach_video(upload_id, video_id, now + timedelta(seconds=3000), now)
        if kind == "discard":
            return store.discard_reservation(args[0])
        if kind == "transition":
            video_id, to, changes, now = args
            if to == states.CREATING:
                return None
            return store.transition(video_id, to=to, now=now, fields=changes)
        if kind == "event":
            video_id, key, event_type, event_time, to, changes, now = args
            return store.apply_event(
                video_id,
                dedupe_key=f"{key}|{video_id}",
                event_type=event_type,
                event_time=event_time,
                to=to,
                fields=changes,
                now=now,
                payload={"EventType": event_type, "VideoId": video_id},
            )
        if kind == "expiry":
            video_id, expires_at, now = args
            return store.set_credential_expiry(video_id, expires_at, now)
        if kind == "claim_stale":
            before, limit, now = args
            return store.claim_stale(created_before=before, limit=limit, lease_seconds=60, now=now)
        if kind == "claim_stuck":
            before, limit, now = args
            return store.claim_stuck(updated_before=before, limit=limit, lease_seconds=60, now=now)
        if kind == "expire":
            video_ids, now = args
            return store.expire_created(video_ids, now=now)
        if kind == "release":
            return store.release_claim(args[0])
        if kind == "prune":
            now, dedupe, idem, orphans = args
            return store.prune(now=now, dedupe_before=dedupe, idempotency_before=idem, orphans_before=orphans)
        owner, video_id, status = args
        page, cursor = store.list_uploads(owner, status=status, limit=2)
        return (store.get(owner, video_id), store.get_by_video_id(video_id), page, cursor is not None)
    except (errors.VodfcError, ValueError) as exc:
        return ("error", type(exc).__name__, getattr(exc, "code", None))


def rows(store: Store) -> dict[str, list[Any]]:
    """Every row of every table, times as aware datetimes, payloads as JSON values."""

    def select(sql: str) -> list[Any]:
        return list(store._read(lambda cur: store._exec(cur, sql).fetchall()))  # type: ignore[attr-defined]

    def when(value: Any) -> datetime | None:
        return None if value is None else store._from_time(value)  # type: ignore[attr-defined]

    uploads: list[Upload] = [
        store._upload(r)  # type: ignore[attr-defined]
        for r in select(f"SELECT {COLUMNS} FROM uploads ORDER BY upload_id")  # noqa: S608
    ]
    dedupe = [
        (k, v, e, when(r))
        for k, v, e, r in select(
            "SELECT dedupe_key, video_id, event_type, received_at FROM event_dedupe ORDER BY dedupe_key"
        )
    ]
    orphans = [
        (v, k, e, when(t), p if isinstance(p, dict) else json.loads(p), when(r))
        for v, k, e, t, p, r in select(
            "SELECT video_id, dedupe_key, event_type, event_time, payload, received_at FROM orphan_events "
            "ORDER BY dedupe_key, video_id"
        )
    ]
    return {"uploads": uploads, "dedupe": dedupe, "orphans": orphans}


@pytest.fixture(scope="module")
def stores(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Store, str]]:
    path: Path = tmp_path_factory.mktemp("differential") / "vodfc.db"
    sqlite, postgres = create_store(f"sqlite:///{path}"), create_store(postgres_url)
    sqlite.migrate()
    postgres.migrate()
    yield sqlite, postgres, postgres_url
    sqlite.close()
    postgres.close()


def _empty(sqlite: Store, postgres_url: str) -> None:
    sqlite._write(  # type: ignore[attr-defined]
        lambda cur: [cur.execute(f"DELETE FROM {table}") for table in pg.TABLES]  # noqa: S608
    )
    pg.truncate(postgres_url)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(operations, min_size=15, max_size=40))
def test_both_dialects_answer_alike_and_end_with_the_same_rows(
    stores: tuple[Store, Store, str], sequence: list[tuple[Any, ...]]
) -> None:
    sqlite, postgres, url = stores
    _empty(sqlite, url)
    for step, op in enumerate([*PRELUDE, *sequence]):
        assert run(sqlite, op) == run(postgres, op), f"step {step}: {op}"
    assert rows(sqlite) == rows(postgres)
