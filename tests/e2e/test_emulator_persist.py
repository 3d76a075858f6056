"""Restarts stay consistent: a restarted emulator knows every record the product's database knows.

Given an emulator with ``persist`` on (the default), when it is stopped and a new one starts on
the same ``data_dir`` (and ports), then media of all three kinds, their statuses, upload
credentials and their expiry, multipart uploads in progress and issued STS keys are all back, and
an uploaded video that had not finished transcoding finishes after the restart.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import oss2
import pytest

from devkit.emulator import Emulator, make_emulator
from devkit.emulator.persist import STATE_FILE_NAME, StateFile
from devkit.emulator.state import Image, MultipartUpload, Part

from .conftest import CallbackSink, OfficialVodClient
from .test_emulator import bucket_for, create, decode, expect_error

pytestmark = pytest.mark.e2e


def start(data_dir: Path, sink: CallbackSink, **overrides: Any) -> Emulator:
    settings: dict[str, Any] = {
        "data_dir": data_dir,
        "callback_url": sink.url(),
        "callback_retry_interval_seconds": 0,
        "server_threads": 2,
        **overrides,
    }
    return make_emulator(**settings).start()


def oss_bucket(answer: dict[str, Any]) -> tuple[oss2.Bucket, str]:
    address, auth = decode(answer["UploadAddress"]), decode(answer["UploadAuth"])
    sts = oss2.StsAuth(auth["AccessKeyId"], auth["AccessKeySecret"], auth["SecurityToken"])
    return oss2.Bucket(sts, address["Endpoint"], address["Bucket"]), address["FileName"]


def test_records_credentials_uploads_and_transcoding_survive_a_restart(
    tmp_path: Path, callback_sink: CallbackSink
) -> None:
    data_dir = tmp_path / "oss"
    first = start(data_dir, callback_sink, transcode_delay_seconds=3600)  # never finishes here
    vod = OfficialVodClient(first)
    try:
        video = create(vod, ReferenceId="restart-video-1")
        bucket_for(video).put_object(video["address"]["FileName"], b"uploaded before the restart")
        image = vod.call("CreateUploadImage", {"ImageType": "default", "Title": "kept"})
        img_bucket, img_key = oss_bucket(image)
        img_bucket.put_object(img_key, b"GIF89a\x02\x00\x03\x00" + b"\x00" * 16)
        attached = vod.call("CreateUploadAttachedMedia", {"BusinessType": "subtitle", "MediaExt": "vtt"})
        pending = create(vod)
        mp_bucket, mp_key = bucket_for(pending), pending["address"]["FileName"]
        upload_id = mp_bucket.init_multipart_upload(mp_key).upload_id
        part1 = mp_bucket.upload_part(mp_key, upload_id, 1, b"a" * (100 * 1024))
        expired = create(vod)
        first.expire_upload_credentials(expired["VideoId"])
        sts = first.issue_api_credentials(ttl=3600)
        assert not first.drain(0.3)  # the transcode would finish in an hour
        first_video = first.video(video["VideoId"])
        assert first_video is not None and first_video.status == "Transcoding"
        ports = {
            "vod_port": int(first.vod_url.rsplit(":", 1)[1]),
            "oss_port": int(first.oss_url.rsplit(":", 1)[1]),
        }
    finally:
        vod.close()
        first.stop()
    callback_sink.received.clear()

    second = start(data_dir, callback_sink, transcode_delay_seconds=0, **ports)
    vod = OfficialVodClient(second)
    try:
        assert second.restored >= 9
        assert second.drain(10)
        (final,) = callback_sink.events("TranscodeComplete")
        assert final["VideoId"] == video["VideoId"] and final["Status"] == "success"
        info = vod.call("GetVideoInfo", {"ReferenceId": "restart-video-1"})["Video"]
        assert info["VideoId"] == video["VideoId"] and info["Status"] == "Normal" and info["Size"] == 27
        expect_error(
            vod.v3(
                "CreateUploadVideo", {"Title": "t", "FileName": "a.mp4", "ReferenceId": "restart-video-1"}
            ),
            400,
            "InvalidParameter.ReferenceId",
        )
        image_info = vod.call("GetImageInfo", {"ImageId": image["ImageId"]})["ImageInfo"]
        assert image_info["Status"] == "Normal" and image_info["Title"] == "kept"
        assert (image_info["Mezzanine"]["Width"], image_info["Mezzanine"]["Height"]) == (2, 3)

        # The attached media's credential, issued before the restart, still uploads.
        att_bucket, att_key = oss_bucket(attached)
        att_bucket.put_object(att_key, b"WEBVTT\n")
        assert second.drain(10)
        (att_event,) = callback_sink.events("AttachedMediaUploadComplete")
        assert att_event["AttachedMediaId"] == attached["MediaId"]

        # The multipart upload goes on where it was.
        assert [p.part_number for p in mp_bucket.list_parts(mp_key, upload_id).parts] == [1]
        part2 = mp_bucket.upload_part(mp_key, upload_id, 2, b"b" * 10)
        parts = [oss2.models.PartInfo(1, part1.etag), oss2.models.PartInfo(2, part2.etag)]
        mp_bucket.complete_multipart_upload(mp_key, upload_id, parts)
        assert second.drain(10)
        assert vod.call("GetVideoInfo", {"VideoId": pending["VideoId"]})["Video"]["Size"] == 100 * 1024 + 10

        with pytest.raises(oss2.exceptions.OssError) as exc_info:  # expired stays expired
            bucket_for(expired).put_object(expired["address"]["FileName"], b"late")
        assert exc_info.value.code == "SecurityTokenExpired"
        ok = vod.v3(
            "GetVideoInfos",
            {"VideoIds": video["VideoId"]},
            key_id=sts.access_key_id,
            secret=sts.access_key_secret,
            token=sts.security_token,
        )
        assert ok.status_code == 200, ok.text
    finally:
        vod.close()
        second.stop()


def test_deletes_and_reset_are_persisted_too(tmp_path: Path, callback_sink: CallbackSink) -> None:
    data_dir = tmp_path / "oss"
    emu = start(data_dir, callback_sink)
    vod = OfficialVodClient(emu)
    try:
        gone = create(vod)
        kept = vod.call("CreateUploadImage", {"ImageType": "cover"})
        vod.call("DeleteVideo", {"VideoIds": gone["VideoId"]})
    finally:
        vod.close()
        emu.stop()
    emu = start(data_dir, callback_sink)
    try:
        assert emu.video(gone["VideoId"]) is None and emu.image(kept["ImageId"]) is not None
        emu.reset()
    finally:
        emu.stop()
    emu = start(data_dir, callback_sink)
    try:
        assert emu.restored == 0 and emu.image(kept["ImageId"]) is None
    finally:
        emu.stop()


def test_persist_off_writes_nothing_and_forgets(tmp_path: Path, callback_sink: CallbackSink) -> None:
    data_dir = tmp_path / "oss"
    emu = start(data_dir, callback_sink, persist=False)
    vod = OfficialVodClient(emu)
    try:
        video = create(vod)
    finally:
        vod.close()
        emu.stop()
    assert not (data_dir / STATE_FILE_NAME).exists()
    emu = start(data_dir, callback_sink, persist=False)
    try:
        assert emu.video(video["VideoId"]) is None
    finally:
        emu.stop()


def test_state_file_round_trips_and_starts_empty_on_another_schema(tmp_path: Path) -> None:
    path = tmp_path / STATE_FILE_NAME
    journal = StateFile(path)
    image = Image(
        media_id="a" * 32,
        account="1",
        seq=7,
        object_key="image/default/A.png",
        extension="png",
        created=1.0,
        modified=2.0,
        app_id="app-1000000",
        storage_location="s",
        image_type="default",
        width=3,
        height=4,
    )
    upload = MultipartUpload("U1", "b", "k", "m", 1.0, {2: Part(2, '"E"', 5, None, 1.0)})
    journal.put(image, upload)
    journal.put(image)  # replaced, not duplicated
    loaded = journal.load()
    assert loaded == [image, upload]
    journal.delete(upload)
    assert journal.load() == [image]
    journal.close()

    with sqlite3.connect(path) as conn:  # a row a future version wrote, and an older schema
        conn.execute("INSERT INTO records VALUES ('image', 'b', ?)", (json.dumps({"media_id": "b"}),))
    assert StateFile(path).load() == [image]  # unreadable row skipped
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '0' WHERE name = 'schema'")
    assert StateFile(path).load() == []
