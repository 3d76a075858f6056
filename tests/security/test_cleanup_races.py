"""Two cleanups at once, and a cleanup that dies midway, on SQLite and on PostgreSQL.

The cleanup service runs in threads against its own store instance each (as two FC instances
would), with one shared fake VOD that is slow enough for the runs to interleave. Whatever the
interleaving: every abandoned media is deleted exactly once, nothing live is deleted, and every
record ends in the right status.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from shared.services.cleanup import CleanupSummary, run_cleanup
from shared.services.deps import Deps
from shared.settings import Settings
from shared.signing import Credentials
from shared.store import Store, new_reservation
from shared.vod import VodClient
from tests.conftest import count_pending
from tests.security.helpers import Crash, FlakyStore

NOW = datetime.now(timezone.utc)
OLD = NOW - timedelta(hours=3)


@dataclass
class SharedVod:
    """A thread-safe VOD media table answering GetVideoInfos and DeleteVideo (by ids or ReferenceIds)."""

    videos: dict[str, dict[str, Any]] = field(default_factory=dict)
    deletes: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay: float = 0.002

    def __call__(self, request: httpx.Request) -> httpx.Response:
        time.sleep(self.delay)  # let concurrent runs interleave
        action = request.headers.get("x-acs-action")
        params = dict(parse_qsl(request.url.query.decode()))
        with self.lock:
            if action == "GetVideoInfos":
                ids = params["VideoIds"].split(",")
                found = [self.videos[i] for i in ids if i in self.videos]
                missing = [i for i in ids if i not in self.videos]
                return httpx.Response(
                    200, json={"RequestId": "r", "VideoList": found, "NonExistVideoIds": missing}
                )
            if action == "DeleteVideo":
                for vid in filter(None, params.get("VideoIds", "").split(",")):
                    self.deletes[vid] += 1
                    self.videos.pop(vid, None)
                refs = set(filter(None, params.get("ReferenceIds", "").split(",")))
                for ref in refs:
                    self.deletes["ref:" + ref] += 1
                for vid in [v for v, rec in self.videos.items() if rec.get("ReferenceId") in refs]:
                    self.videos.pop(vid)
                return httpx.Response(200, json={"RequestId": "r"})
        return httpx.Response(400, json={"RequestId": "r", "Code": "InvalidParameter", "Message": action})


@dataclass
class World:
    vod: SharedVod
    abandoned: list[str]
    lost: list[str]  # VOD finished them; the callbacks never came
    recent: list[str]
    refreshed: list[str]  # old, but the client refreshed its credential a minute ago
    reservations: list[str]  # reference ids of 'creating' rows whose media VOD did make


def _settings(url: str) -> Settings:
    return Settings(
        database_url=url,
        alibaba_cloud_access_key_id="race-key",
        alibaba_cloud_access_key_secret="race-secret",
        stale_upload_seconds=60,
        auth_mode="none",
    )


def _deps(url: str, vod: SharedVod, make_store: Callable[..., Store]) -> Deps:
    settings = _settings(url)
    client = VodClient(
        settings,
        credentials=lambda: Credentials("race-key", "race-secret"),
        transport=httpx.MockTransport(vod),
        sleep=lambda _: None,
    )
    return Deps(settings=settings, store=make_store(), vod_source=lambda: client, clock=lambda: NOW)


def _seed(store: Store, vod: SharedVod) -> World:
    world = World(vod, [], [], [], [], [])
    n = 0

    def add(kind: list[str], *, created: datetime, expires: datetime, vod_status: str | None) -> None:
        nonlocal n
        n += 1
        uid = f"u{n:031d}"
        vid = f"v{n:031d}"
        store.reserve_upload(
            new_reservation(
                upload_id=uid, owner=f"o{n % 7}", reference_id=uid, title="t", file_name="t.mp4",
                file_size=1, now=created,
            ),
            max_pending=10_000,
        )  # fmt: skip
        if vod_status is None:  # a crash before the record write: only the ReferenceId ties them
            vod.videos[vid] = {"VideoId": vid, "Status": "Uploading", "ReferenceId": uid}
            kind.append(uid)
            return
        store.attach_video(uid, vid, expires, now=created)
        vod.videos[vid] = {"VideoId": vid, "Status": vod_status, "ReferenceId": uid, "Duration": "5.0"}
        kind.append(vid)

    for _ in range(90):
        add(world.abandoned, created=OLD, expires=OLD + timedelta(seconds=3000), vod_status="Uploading")
    for _ in range(12):
        add(world.lost, created=OLD, expires=OLD + timedelta(seconds=3000), vod_status="Normal")
    for _ in range(10):
        add(world.recent, created=NOW - timedelta(seconds=10), expires=NOW + timedelta(seconds=2990),
            vod_status="Uploading")  # fmt: skip
    for _ in range(8):
        add(world.refreshed, created=OLD, expires=NOW + timedelta(seconds=2900), vod_status="Uploading")
    for _ in range(9):
        add(world.reservations, created=OLD, expires=OLD, vod_status=None)
    return world


def _check(world: World, store: Store) -> None:
    vod = world.vod
    # every abandoned media deleted exactly once, every orphan reservation's media too
    assert {v: vod.deletes[v] for v in world.abandoned} == dict.fromkeys(world.abandoned, 1)
    assert {r: vod.deletes["ref:" + r] for r in world.reservations} == dict.fromkeys(world.reservations, 1)
    # nothing live was deleted
    live = world.lost + world.recent + world.refreshed
    assert not any(vod.deletes[v] for v in live)
    assert all(v in vod.videos for v in live)
    assert not any(v in vod.videos for v in world.abandoned)
    # every record in the right status
    assert {store.get_by_video_id(v).status for v in world.abandoned} == {"expired"}  # type: ignore[union-attr]
    assert {store.get_by_video_id(v).status for v in world.lost} == {"ready"}  # type: ignore[union-attr]
    assert {store.get_by_video_id(v).status for v in world.recent + world.refreshed} == {"created"}  # type: ignore[union-attr]
    assert all(store.find_by_idempotency_key(f"o{i}", "x") is None for i in range(7))
    assert sum(count_pending(store, f"o{i}") for i in range(7)) == len(world.recent) + len(world.refreshed)


@pytest.fixture
def world(store: Store) -> World:
    return _seed(store, SharedVod())


def _in_threads(*jobs: Callable[[], CleanupSummary]) -> list[CleanupSummary | BaseException]:
    results: list[CleanupSummary | BaseException] = [RuntimeError("not run")] * len(jobs)
    start = threading.Barrier(len(jobs))

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = jobs[i]()
        except BaseException as exc:  # a Crash is an outcome here, not a test failure
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_two_cleanups_at_once_delete_each_media_once(
    world: World, store: Store, store_url: str, make_store: Callable[..., Store]
) -> None:
    a, b = _deps(store_url, world.vod, make_store), _deps(store_url, world.vod, make_store)

    results = _in_threads(lambda: run_cleanup(a), lambda: run_cleanup(b))

    summaries = [r for r in results if isinstance(r, CleanupSummary)]
    assert len(summaries) == 2, results
    assert all(s.errors == 0 for s in summaries), summaries
    assert sum(s.deleted for s in summaries) == len(world.abandoned) + len(world.reservations)
    assert sum(s.reconciled for s in summaries) == len(world.lost)
    _check(world, store)


def test_a_cleanup_dying_midway_beside_another_loses_nothing(
    world: World, store: Store, store_url: str, make_store: Callable[..., Store]
) -> None:
    dying, steady = _deps(store_url, world.vod, make_store), _deps(store_url, world.vod, make_store)
    flaky = FlakyStore(dying.store)
    flaky.crash["expire_created"] = {1}  # dies after VOD deleted a batch, before its records are written
    dying = replace(dying, store=flaky)

    results = _in_threads(lambda: run_cleanup(dying), lambda: run_cleanup(steady))
    assert any(isinstance(r, Crash) for r in results), results

    # the dead run's claimed rows wait for their lease; the next run after it finishes the job
    after_lease = _deps(store_url, world.vod, make_store)
    after_lease = replace(after_lease, clock=lambda: NOW + timedelta(minutes=6))  # past the 300 s lease
    final = run_cleanup(after_lease)
    assert final.errors == 0
    _check(world, store)


def test_a_cleanup_whose_store_fails_midway_resumes_without_deleting_twice(
    world: World, store: Store, store_url: str, make_store: Callable[..., Store]
) -> None:
    first = _deps(store_url, world.vod, make_store)
    flaky = FlakyStore(first.store)
    flaky.fail["expire_created"] = {2}
    first = replace(first, store=flaky)
    summary = run_cleanup(first)
    assert summary.errors == 1

    again = _deps(store_url, world.vod, make_store)
    again = replace(again, clock=lambda: NOW + timedelta(minutes=6))  # past the 300 s lease
    assert run_cleanup(again).errors == 0
    _check(world, store)
