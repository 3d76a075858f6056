"""The storage cap: the oldest finished objects' bytes are pruned, their records stay.

Given an :class:`ObjectStore` (or an emulator) with ``max_storage_bytes``, when finished objects
exceed it, then the oldest lose their bytes (a GET answers 404 saying so) while VOD still knows
their size and MD5; the newest object is never pruned; the index survives a restart.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from devkit.emulator import make_emulator
from devkit.emulator.storage import ObjectStore

from .conftest import OfficialVodClient
from .test_emulator import bucket_for, create

pytestmark = pytest.mark.e2e


def put(store: ObjectStore, key: str, size: int, when: float) -> None:
    path = store.object_path("b", key)
    digest = store.write_stream([b"x" * size], path, limit=10**9)
    store.finish("b", key, {"etag": digest.etag, "size": digest.size, "last_modified": when})


def present(store: ObjectStore, *keys: str) -> list[bool]:
    return [store.object_path("b", k).is_file() for k in keys]


def test_cap_prunes_oldest_first_and_exactly_at_the_cap_keeps_all(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path, max_bytes=240)
    put(store, "a", 120, 1.0)
    put(store, "b", 120, 2.0)
    assert present(store, "a", "b") == [True, True]  # 240 == cap: nothing pruned
    assert store.usage() == {"used_bytes": 240, "max_bytes": 240, "objects": 2, "pruned_objects": 0}
    put(store, "c", 1, 3.0)  # one byte over
    assert present(store, "a", "b", "c") == [False, True, True]
    assert store.is_pruned("b", "a") and not store.is_pruned("b", "b")
    meta = store.read_meta("b", "a")
    assert meta["size"] == 120 and meta["etag"]  # the record of what was there stays
    assert store.usage()["used_bytes"] == 121 and store.usage()["pruned_objects"] == 1


def test_newest_object_survives_alone_and_overwrites_count_once(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path, max_bytes=100)
    put(store, "big1", 150, 1.0)
    assert present(store, "big1") == [True]
    put(store, "big2", 150, 2.0)
    assert present(store, "big1", "big2") == [False, True]
    put(store, "big2", 80, 3.0)  # overwritten: counted once, with its new size
    assert store.usage()["used_bytes"] == 80 and store.usage()["objects"] == 1
    store.delete_object("b", "big2")
    assert store.usage()["used_bytes"] == 0


def test_index_is_rebuilt_on_start_and_no_cap_means_no_pruning(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path, max_bytes=100)
    put(store, "one", 60, 1.0)
    put(store, "two", 60, 2.0)
    again = ObjectStore(tmp_path, max_bytes=100)
    assert again.usage() == {"used_bytes": 60, "max_bytes": 100, "objects": 1, "pruned_objects": 1}
    put(again, "three", 60, 3.0)
    assert present(again, "two", "three") == [False, True]
    unlimited = ObjectStore(tmp_path / "u", max_bytes=None)
    for n in range(5):
        put(unlimited, f"k{n}", 1000, float(n))
    assert unlimited.usage()["used_bytes"] == 5000 and unlimited.usage()["pruned_objects"] == 0
    unlimited.wipe(["b"])
    assert unlimited.usage()["used_bytes"] == 0 and not (tmp_path / "u" / "b").exists()


def test_pruned_object_answers_404_and_vod_keeps_its_record(tmp_path: Path) -> None:
    with make_emulator(data_dir=tmp_path / "oss", max_storage_bytes=250, auto_transcode=False) as emu:
        vod = OfficialVodClient(emu)
        try:
            videos = [create(vod) for _ in range(3)]
            payloads = [bytes([n]) * 100 for n in range(3)]
            for video, data in zip(videos, payloads, strict=True):
                bucket_for(video).put_object(video["address"]["FileName"], data)
            assert emu.drain(10)
            urls = [f"{emu.oss_url}/{emu.config.bucket}/{v['address']['FileName']}" for v in videos]
            gone = httpx.get(urls[0], trust_env=False)
            assert gone.status_code == 404 and "<Code>NoSuchKey</Code>" in gone.text
            assert "max_storage_bytes" in gone.text
            assert httpx.head(urls[0], trust_env=False).status_code == 404
            assert [httpx.get(u, trust_env=False).content for u in urls[1:]] == payloads[1:]
            mezzanine = vod.call("GetMezzanineInfo", {"VideoId": videos[0]["VideoId"]})["Mezzanine"]
            assert mezzanine["Size"] == 100 and mezzanine["Status"] == "Normal"
            record = emu.video(videos[0]["VideoId"])
            assert record is not None and record.file_md5 == hashlib.md5(payloads[0]).hexdigest()
            storage = vod.http.get(f"{emu.vod_url}/_emulator/state").json()["storage"]
            assert storage["used_bytes"] == 200 and storage["pruned_objects"] == 1
            assert storage["max_bytes"] == 250
        finally:
            vod.close()
