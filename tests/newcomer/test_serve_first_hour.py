"""What a newcomer runs into with ``vodfc serve`` in the first hour, each time the way they meet it.

A port already taken, a restart with uploads in flight, the pending-uploads quota, and the first
validation errors of a hand-written curl. ``vodfc upload`` against a stopped server and an
interrupted upload resumed are tests/e2e/test_upload_client.py's
(``test_a_stopped_server_is_a_network_error``, ``test_an_interrupted_upload_resumes_...``).
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import oss2
import pytest

from tests.newcomer.conftest import Serve, bare_env

pytestmark = pytest.mark.e2e

CLIP_SIZE = 300 * 1024
CLIP = {"Title": "First hour", "FileName": "clip.mp4", "FileSize": CLIP_SIZE}


@contextmanager
def listening(port: int) -> Iterator[None]:
    """Something else listening on ``port``."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", port))
        other.listen()
        yield


def _decode(value: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(value))
    return decoded


def _run(serve: Serve) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        serve.command(), env=bare_env(serve.home), capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("offset", "what"), [(0, "the API"), (1, "the emulated VOD"), (2, "the emulated OSS")]
)
def test_a_port_in_use_is_named_with_one_to_choose_instead(serve: Serve, offset: int, what: str) -> None:
    # given something else on the API's port or one of the emulator's two after it
    with listening(serve.port + offset):
        proc = _run(serve)

    # then vodfc serve says which port is taken and which to take, in one line, and starts nothing
    taken = serve.port + offset
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert f"port {taken} ({what}) on 127.0.0.1 is already in use" in proc.stderr
    assert "make serve PORT=" in proc.stderr and "--port" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    suggested = int(proc.stderr.split("make serve PORT=")[1].split(",")[0])
    assert suggested != serve.port and not serve.data_dir.exists()


def test_a_restart_keeps_uploads_and_their_addresses_working(serve: Serve, tmp_path: Path) -> None:
    # given an upload created, and a first part stored, before a restart
    serve.start()
    created = serve.post("/uploads", CLIP).json()
    video_id = created["VideoId"]
    address = _decode(created["UploadAddress"])
    ports = (serve.line("emulated VOD"), serve.line("emulated OSS"))
    serve.stop()

    # when vodfc serve starts again with the same command
    serve.start()

    # then the emulator is where it was, and it and the database agree on the upload
    assert (serve.line("emulated VOD"), serve.line("emulated OSS")) == ports
    assert ports[1] == f"http://127.0.0.1:{serve.port + 2}" == address["Endpoint"]
    assert serve.get(f"/uploads/{video_id}").json()["Status"] == "created"
    refreshed = serve.post(f"/uploads/{video_id}/refresh")
    assert refreshed.status_code == 200, refreshed.text
    assert _decode(refreshed.json()["UploadAddress"]) == address
    # and the file goes up to the address handed out before the restart, and becomes ready
    auth = _decode(refreshed.json()["UploadAuth"])
    sts = oss2.StsAuth(auth["AccessKeyId"], auth["AccessKeySecret"], auth["SecurityToken"])
    bucket = oss2.Bucket(sts, address["Endpoint"], address["Bucket"])
    assert bucket.put_object(address["FileName"], b"v" * CLIP_SIZE).status == 200
    assert serve.post("/uploads", CLIP).status_code == 200  # the quota counts what the database has


def test_the_quota_says_how_to_get_out_and_delete_does(serve: Serve) -> None:
    # given a low limit (the environment wins over the local defaults) reached
    serve.env = {"MAX_PENDING_UPLOADS_PER_OWNER": "2"}
    serve.start()
    first = serve.post("/uploads", CLIP).json()["VideoId"]
    assert serve.post("/uploads", CLIP).status_code == 200

    # when one more is asked for
    refused = serve.post("/uploads", CLIP)

    # then the answer names the way out, and the first of them works
    body = refused.json()
    assert refused.status_code == 403 and body["Code"] == "QuotaExceeded.PendingUploads"
    for hint in ("DELETE /uploads/{VideoId}", "Status=created", "STALE_UPLOAD_SECONDS", "MAX_PENDING"):
        assert hint in body["Message"], body["Message"]
    listed = serve.get("/uploads?Status=created").json()["Uploads"]
    assert first in {u["VideoId"] for u in listed}
    assert serve.get(f"/uploads/{first}").status_code == 200
    deleted = httpx.delete(f"{serve.api}/uploads/{first}", timeout=10, trust_env=False)
    assert deleted.status_code == 200
    assert serve.post("/uploads", CLIP).status_code == 200


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"title": "x", "FileName": "clip.mp4"},
            "title",
            "title is not a known parameter (did you mean Title?).",
        ),
        (
            {"Title": "x", "FileName": "clip.mp4", "FileSize": 10**23},
            "FileSize",
            "FileSize 100000000000000000000000 exceeds the maximum of 10737418240 bytes.",
        ),
    ],
)
def test_a_hand_written_requests_mistake_is_named(
    serve: Serve, body: dict[str, Any], field: str, message: str
) -> None:
    serve.start()
    answer = serve.post("/uploads", body)
    assert answer.status_code == 400
    assert (answer.json()["Field"], answer.json()["Message"]) == (field, message)


def test_serve_prints_its_addresses_then_one_ready_line(serve: Serve) -> None:
    serve.start()
    lines = serve.output.splitlines()
    ready = [line for line in lines if "ready" in line]
    assert ready == [f"vodfc ready: {serve.api} (demo {serve.api}/demo); Ctrl-C stops"]
    assert serve.line("emulated VOD") == f"http://127.0.0.1:{serve.port + 1}"
    assert f"{serve.data_dir.resolve()} (OSS keeps 256 MiB" in serve.output
    assert serve.get("/demo").status_code == 200
    # the API accepts the demo page's origin under each loopback name of its port
    for host in ("127.0.0.1", "localhost", "[::1]"):
        origin = f"http://{host}:{serve.port}"
        preflight = httpx.options(
            f"{serve.api}/uploads",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
            timeout=10,
            trust_env=False,
        )
        assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == origin
