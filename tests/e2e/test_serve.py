"""End to end: ``vodfc serve`` as a process, the real oss2 client, callbacks, refresh, cleanup, for
videos, images and attached media."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import oss2
import pytest

from devkit.upload import Client, decode, make_bucket, upload_file, wait_until_final
from devkit.upload.api import ATTACHED, IMAGE, MediaKind
from tests.served import bare_env

pytestmark = pytest.mark.e2e

CALLBACK_KEY = "E2eCallbackKey42"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Served:
    api: str
    process: subprocess.Popen[str]
    log: Path

    @property
    def callback_url(self) -> str:
        return f"{self.api}/callbacks/vod"

    def emulator_url(self) -> str:
        for line in self.log.read_text().splitlines():
            if "emulated VOD" in line:
                return line.split()[-1]
        raise AssertionError("emulator URL not printed")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("serve")
    port = _free_port()
    log = data / "serve.log"
    # Nothing of the shell's settings leaks in (a LOG_LEVEL, a WEBHOOK_URL, a DATABASE_URL ...).
    env = bare_env(
        data, CALLBACK_AUTH_KEY=CALLBACK_KEY, STALE_UPLOAD_SECONDS="3", MAX_PENDING_UPLOADS_PER_OWNER="50"
    )
    cmd = [
        sys.executable,
        "-m",
        "devkit.cli",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--transcode-delay",
        "1.5",
        "--cleanup-every",
        "1",
        "--credential-ttl",
        "3",
        "--vod-port",
        "0",
        "--oss-port",
        "0",
    ]
    with log.open("w") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, text=True)
    api = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        raise AssertionError("vodfc serve did not start:\n" + log.read_text())
    yield Served(api=api, process=process, log=log)
    process.terminate()
    process.wait(timeout=10)


def test_multipart_upload_with_oss2_goes_uploaded_then_ready(served: Served, tmp_path: Path) -> None:
    # given a file of several parts
    path = tmp_path / "clip.mp4"
    path.write_bytes(os.urandom(700 * 1024))
    with Client(served.api, None) as client:
        # when the reference client uploads it with oss2's resumable multipart upload
        creds = upload_file(client, path, "e2e clip", part_size=200 * 1024, quiet=True)
        video_id = creds["VideoId"]
        seen: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (not seen or seen[-1] != "ready"):
            status = client.status(video_id)["Status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            time.sleep(0.1)
        record = client.status(video_id)

    # then the record went through uploaded to ready, with the emulator's transcode results
    assert "uploaded" in seen and seen[-1] == "ready", seen
    order = ["created", "uploaded", "processing", "ready"]
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)
    assert record["Size"] == 700 * 1024 and record["Duration"] > 0


def test_an_expired_credential_is_refused_and_the_refresh_path_recovers(
    served: Served, tmp_path: Path
) -> None:
    path = tmp_path / "long.mp4"
    path.write_bytes(os.urandom(600 * 1024))
    expired: list[bool] = []

    def expire_after_first_part(done: int, total: int | None) -> None:
        # Mid-upload, the emulator expires every issued upload credential (as 3,000 s passing would).
        if done >= 200 * 1024 and not expired:
            expired.append(True)
            httpx.post(f"{served.emulator_url()}/_emulator/expire", timeout=5).raise_for_status()

    with Client(served.api, None) as client:
        creds = upload_file(
            client, path, "refresh me", part_size=200 * 1024, quiet=True, on_progress=expire_after_first_part
        )
        # the upload finished after the credential expired mid-way (so through a refresh)
        assert expired
        record = wait_until_final(client, creds["VideoId"], 20, quiet=True)
    assert record["Status"] == "ready"


def test_the_emulated_oss_refuses_an_expired_token(served: Served, tmp_path: Path) -> None:
    client = Client(served.api, None)
    (tmp_path / "t.mp4").write_bytes(b"x" * 10)
    creds = client.create("stale token", tmp_path / "t.mp4")
    client.close()
    httpx.post(f"{served.emulator_url()}/_emulator/expire", timeout=5).raise_for_status()
    bucket, key = make_bucket(creds)
    with pytest.raises(oss2.exceptions.OssError) as info:
        bucket.put_object(key, b"x" * 10)
    assert info.value.status == 403
    # a refreshed credential for the same address works
    with Client(served.api, None) as client:
        fresh = client.refresh(creds["VideoId"])
    assert decode(fresh["UploadAddress"]) == decode(creds["UploadAddress"])
    bucket, key = make_bucket(fresh)
    assert bucket.put_object(key, b"x" * 10).status == 200


def test_a_callback_with_a_wrong_signature_is_refused(served: Served) -> None:
    ts = str(int(time.time()))
    body = {
        "EventType": "FileUploadComplete",
        "EventTime": "2026-11-25T10:00:00Z",
        "VideoId": "0" * 32,
        "Status": "success",
    }
    bad = hashlib.md5(f"{served.callback_url}|{ts}|WrongKey1".encode()).hexdigest()
    answer = httpx.post(
        served.callback_url, json=body, headers={"X-VOD-TIMESTAMP": ts, "X-VOD-SIGNATURE": bad}
    )
    assert answer.status_code == 401 and answer.json()["Code"] == "InvalidSignature"
    good = hashlib.md5(f"{served.callback_url}|{ts}|{CALLBACK_KEY}".encode()).hexdigest()
    answer = httpx.post(
        served.callback_url, json=body, headers={"X-VOD-TIMESTAMP": ts, "X-VOD-SIGNATURE": good}
    )
    assert answer.status_code == 200 and answer.json()["Result"] == "orphan"


def test_cleanup_expires_an_abandoned_upload(served: Served, tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"x" * 10)
    record: dict[str, Any] = {}
    with Client(served.api, None) as client:
        video_id = client.create("abandoned", tmp_path / "a.mp4")["VideoId"]  # never uploaded
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            record = client.status(video_id)
            if record["Status"] == "expired":
                break
            time.sleep(0.5)
    cleanup_lines = [ln for ln in served.log.read_text().splitlines() if '"function":"cleanup"' in ln]
    assert record["Status"] == "expired", (record, cleanup_lines[-3:])
    state = httpx.get(f"{served.emulator_url()}/_emulator/state", timeout=5).json()
    assert video_id not in json.dumps(state.get("videos", state))


def test_invoke_against_a_running_serve_uses_its_emulator_and_database(
    served: Served, tmp_path: Path
) -> None:
    # given the environment of a fresh shell (the server's own callback key is not in it)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CALLBACK_AUTH_KEY": CALLBACK_KEY}
    event = Path(__file__).resolve().parents[2] / "events" / "http" / "create_upload.json"
    cmd = [sys.executable, "-m", "devkit.cli", "invoke", "upload_credentials", "--event", str(event)]

    # when a sample create is invoked against the server
    proc = subprocess.run(
        [*cmd, "--against", served.api], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    # then the upload is in the server's database, and its emulator knows the video
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    video_id = json.loads(answer["body"])["VideoId"]
    assert httpx.get(f"{served.api}/uploads/{video_id}", timeout=5).json()["Status"] == "created"
    assert httpx.post(f"{served.api}/uploads/{video_id}/refresh", timeout=5).status_code == 200


def _wait_status(
    client: Client, media_id: str, kind: MediaKind, want: str, timeout: float = 20
) -> dict[str, Any]:
    record: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = client.status(media_id, kind)
        if record["Status"] == want:
            break
        time.sleep(0.2)
    return record


def test_an_image_and_a_subtitle_put_with_oss2_reach_ready(served: Served) -> None:
    with Client(served.api, None) as client:
        # an image: POST /images, then one PutObject with oss2
        image = client.create_media(IMAGE, {"ImageType": "cover", "ImageExt": "jpg", "Title": "e2e cover"})
        bucket, key = make_bucket(image)
        assert (
            key.endswith(".jpg") and bucket.put_object(key, b"\xff\xd8\xff" + os.urandom(2048)).status == 200
        )
        # a subtitle: POST /attached-media, the extension taken from FileName
        vtt = b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n"
        body = {
            "BusinessType": "subtitle",
            "FileName": "english.vtt",
            "FileSize": len(vtt),
            "Title": "English",
        }
        subtitle = client.create_media(ATTACHED, body)
        bucket, key = make_bucket(subtitle)
        assert key.endswith(".vtt") and bucket.put_object(key, vtt).status == 200

        image_record = _wait_status(client, image["ImageId"], IMAGE, "ready")
        subtitle_record = _wait_status(client, subtitle["MediaId"], ATTACHED, "ready")
    assert image_record["Status"] == "ready" and image_record["Size"] == 2051
    assert image_record["LastEvent"] == "ImageUploadComplete"
    assert subtitle_record["Status"] == "ready" and subtitle_record["Size"] == subtitle_record["FileSize"]
    # VOD (emulated) has both as Normal: the callbacks were confirmed against it
    state = json.dumps(httpx.get(f"{served.emulator_url()}/_emulator/state", timeout=5).json())
    assert image["ImageId"] in state and subtitle["MediaId"] in state


def test_cleanup_expires_an_abandoned_image_and_deletes_it_at_vod(served: Served) -> None:
    with Client(served.api, None) as client:
        image_id = client.create_media(IMAGE, {"ImageType": "default"})["ImageId"]  # never uploaded
        record = _wait_status(client, image_id, IMAGE, "expired")
    assert record["Status"] == "expired", record
    state = httpx.get(f"{served.emulator_url()}/_emulator/state", timeout=5).json()
    assert image_id not in json.dumps(state.get("images", state))
