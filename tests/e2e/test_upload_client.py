"""``vodfc upload`` driven as a user would: a process against ``vodfc serve`` (JWT mode).

The stack runs once per module with short emulator delays; every upload is a fresh
``python -m devkit.cli upload`` process with its own ``--state-dir``, an environment without the
developer's ``VODFC_TOKEN`` or proxies, and stderr on a pipe (so: plain progress lines).
Images and attached media go through ``POST /images`` and ``POST /attached-media`` of the same stack.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest

if TYPE_CHECKING:
    pass

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "upload-client-e2e-secret-0123456789abcdef"
KiB = 1024
_DROPPED_ENV = ("VODFC_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "XDG_CACHE_HOME")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _token(sub: str = "upload-tester") -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 3600}, JWT_SECRET, algorithm="HS256")


def _client_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_DROPPED_ENV)}
    return {**env, "HOME": str(home), "COLUMNS": "100"}


@dataclass
class Stack:
    api: str
    data: Path
    emulator: str
    process: subprocess.Popen[str]

    def admin(self, route: str, body: dict[str, Any] | None = None) -> Any:
        answer = httpx.post(f"{self.emulator}/_emulator/{route}", json=body or {}, timeout=5)
        answer.raise_for_status()
        return answer.json()

    def parts(self, video_id: str) -> list[int]:
        state = httpx.get(f"{self.emulator}/_emulator/state", timeout=5).json()
        uploads = [u for u in state["multipart_uploads"] if u["MediaId"] == video_id]
        return uploads[0]["Parts"] if uploads else []

    def settled_parts(self, video_id: str) -> list[int]:
        """The stored parts once the server has finished what a killed client had sent."""
        before, now = None, self.parts(video_id)
        while now != before:
            time.sleep(0.2)
            before, now = now, self.parts(video_id)
        return now

    def part_files(self, video_id: str) -> dict[int, tuple[int, int]]:
        """Stored parts of the video's multipart upload: number -> (inode, mtime_ns) of its file."""
        state = httpx.get(f"{self.emulator}/_emulator/state", timeout=5).json()
        found: dict[int, tuple[int, int]] = {}
        for u in state["multipart_uploads"]:
            if u["MediaId"] != video_id:
                continue
            # Only acknowledged parts: a part cut off by the interruption may have left a file.
            for number in u["Parts"]:
                try:
                    st = (self.data / "oss" / ".multipart" / u["UploadId"] / f"{number:05d}").stat()
                except FileNotFoundError:  # the upload completed meanwhile
                    continue
                found[number] = (st.st_ino, st.st_mtime_ns)
        return found


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("stack")
    port = _free_port()
    log = data / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_DROPPED_ENV)}
    for name in ("DATABASE_URL", "VOD_ENDPOINT", "CALLBACK_URL", "ALLOWED_ORIGINS", "ALLOWED_EXTENSIONS"):
        env.pop(name, None)
    env |= {"AUTH_MODE": "jwt", "JWT_SECRET": JWT_SECRET, "MAX_PENDING_UPLOADS_PER_OWNER": "100"}
    cmd = [sys.executable, "-m", "devkit.cli", "serve", "--port", str(port), "--data-dir", str(data)]
    cmd += ["--transcode-delay", "0.2", "--cleanup-every", "3600", "--vod-port", "0", "--oss-port", "0"]
    with log.open("w") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, text=True, cwd=ROOT)
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
    emulator = next(ln.split()[-1] for ln in log.read_text().splitlines() if "emulated VOD" in ln)
    yield Stack(api=api, data=data, emulator=emulator, process=process)
    process.terminate()
    process.wait(timeout=10)


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def first_line(self) -> str:
        return self.stdout.splitlines()[0] if self.stdout else ""

    def record(self) -> dict[str, Any]:
        """The final record (the JSON after the id line)."""
        body: dict[str, Any] = json.loads(self.stdout.split("\n", 1)[1])
        return body


@dataclass
class Uploader:
    """Runs ``vodfc upload`` processes with one state dir and a clean environment."""

    api: str
    home: Path
    state_dir: Path
    token: str | None = field(default_factory=_token)

    def argv(self, path: Path, *args: str) -> list[str]:
        argv = [sys.executable, "-m", "devkit.cli", "upload", str(path), "--api", self.api]
        argv += ["--state-dir", str(self.state_dir), *args]
        return argv + (["--token", self.token] if self.token else [])

    def run(self, path: Path, *args: str, timeout: float = 60) -> Run:
        proc = subprocess.run(
            self.argv(path, *args),
            env=_client_env(self.home),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def start(self, path: Path, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(path, *args),
            env=_client_env(self.home),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def states(self) -> list[Path]:
        return sorted(self.state_dir.glob("*.json"))


@pytest.fixture
def uploader(stack: Stack, tmp_path: Path) -> Uploader:
    return Uploader(api=stack.api, home=tmp_path / "home", state_dir=tmp_path / "state")


def _file(tmp_path: Path, name: str, size: int) -> Path:
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return path


def _video_id(line: str) -> str:
    found = re.fullmatch(r"VideoId ([0-9a-f]{32})", line.strip())
    assert found, line
    return found.group(1)


def _wait_for(predicate: Any, timeout: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _clean(stderr: str) -> None:
    """No traceback and no carriage-return redraws on a stderr that is not a terminal."""
    assert "Traceback" not in stderr, stderr
    assert "\r" not in stderr, stderr


# --- the happy path -----------------------------------------------------------------------------


def test_a_multipart_upload_prints_the_video_id_first_and_ends_ready(
    uploader: Uploader, tmp_path: Path
) -> None:
    # given a file of four 200 KiB parts
    path = _file(tmp_path, "clip.mp4", 700 * KiB)

    # when it is uploaded
    run = uploader.run(path, "--part-size", "200K", "--title", "e2e clip")

    # then the id is the first line, the record the rest, and it is ready
    assert run.code == 0, run.stderr
    video_id = _video_id(run.first_line)
    record = run.record()
    assert record["VideoId"] == video_id and record["Status"] == "ready"
    assert record["Title"] == "e2e clip" and record["Size"] == 700 * KiB
    # with plain progress lines (stderr is a pipe) up to all four parts
    assert "100%" in run.stderr and "4/4 parts" in run.stderr
    _clean(run.stderr)
    # and nothing left to resume
    assert uploader.states() == []
    assert list((uploader.state_dir / "oss2").iterdir()) == []


# --- interruptions ------------------------------------------------------------------------------


def test_an_interrupted_upload_resumes_with_the_same_video_id_without_resending_parts(
    stack: Stack, uploader: Uploader, tmp_path: Path
) -> None:
    # given an upload of twelve parts, paced so that it can be interrupted in the middle
    path = _file(tmp_path, "long.mp4", 12 * 100 * KiB)
    proc = uploader.start(path, "--part-size", "100K", "--limit-rate", "400K")
    assert proc.stdout is not None
    video_id = _video_id(proc.stdout.readline())
    _wait_for(lambda: len(stack.parts(video_id)) >= 3, what="three parts")

    # when the user presses Ctrl-C
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)

    # then it exits 130 and says how to resume or cancel
    assert proc.returncode == 130, err
    assert "vodfc upload: interrupted" in err
    assert f"VideoId {video_id} is not uploaded yet; resume: " in err and "--resume" in err
    assert f'curl -X DELETE -H "Authorization: Bearer $VODFC_TOKEN" {stack.api}/uploads/{video_id}' in err
    _clean(err)
    stack.settled_parts(video_id)
    stored = stack.part_files(video_id)
    assert 3 <= len(stored) < 12

    # and running it again plainly is refused: an interrupted upload exists
    again = uploader.run(path)
    assert again.code == 2 and again.stdout == ""
    assert f"an interrupted upload of this file exists (VideoId {video_id}" in again.stderr
    assert "use --resume or --restart" in again.stderr

    # when it is resumed (paced again, so that the parts can be watched)
    proc = uploader.start(path, "--resume", "--limit-rate", "400K")
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == f"VideoId {video_id}"
    watched_new_parts = False
    while proc.poll() is None:
        now = stack.part_files(video_id)
        unchanged = {n: now[n] for n in stored if n in now}
        assert unchanged == {n: stored[n] for n in unchanged}, "a finished part was sent again"
        watched_new_parts |= len(unchanged) == len(stored) and len(now) > len(stored)
        time.sleep(0.02)
    out, err = proc.communicate(timeout=20)

    # then it finished the same video, from where it stopped
    assert proc.returncode == 0, err
    assert watched_new_parts
    assert f"resuming: {len(stored)}/12 parts already in storage" in err
    assert json.loads(out)["VideoId"] == video_id and json.loads(out)["Status"] == "ready"
    _clean(err)
    assert uploader.states() == []


def test_a_killed_upload_resumes_with_the_same_video_id(
    stack: Stack, uploader: Uploader, tmp_path: Path
) -> None:
    # given an upload killed outright after two parts (no chance to save anything then)
    path = _file(tmp_path, "killed.mp4", 8 * 100 * KiB)
    proc = uploader.start(path, "--part-size", "100K", "--limit-rate", "400K", "--no-wait")
    assert proc.stdout is not None
    video_id = _video_id(proc.stdout.readline())
    _wait_for(lambda: len(stack.parts(video_id)) >= 2, what="two parts")
    proc.kill()
    proc.communicate(timeout=10)
    stored = len(stack.settled_parts(video_id))

    # when it is resumed
    run = uploader.run(path, "--resume")

    # then the same video is completed from where it stopped
    assert run.code == 0, run.stderr
    assert run.first_line == f"VideoId {video_id}"
    assert f"resuming: {stored}/8 parts already in storage" in run.stderr
    assert run.record()["Status"] == "ready"
    _clean(run.stderr)


def test_a_credential_expiring_mid_upload_is_refreshed_without_a_traceback(
    stack: Stack, uploader: Uploader, tmp_path: Path
) -> None:
    # given an upload in progress
    path = _file(tmp_path, "expiring.mp4", 8 * 100 * KiB)
    proc = uploader.start(path, "--part-size", "100K", "--limit-rate", "400K")
    assert proc.stdout is not None
    video_id = _video_id(proc.stdout.readline())
    _wait_for(lambda: len(stack.parts(video_id)) >= 2, what="two parts")

    # when its credential expires (as 3,000 s passing would)
    assert stack.admin("expire", {"VideoId": video_id})["expired"] >= 1
    out, err = proc.communicate(timeout=30)

    # then the client refreshed it and finished, and oss2's traceback went to the log only
    assert proc.returncode == 0, err
    assert "credential expired (SecurityTokenExpired); refreshed it, resuming" in err
    assert json.loads(out)["Status"] == "ready"
    _clean(err)
    log = (uploader.state_dir / "upload.log").read_text()
    assert "SecurityTokenExpired" in log and "Traceback" in log
    assert f"/uploads/{video_id}/refresh" in log


# --- failures, one line each --------------------------------------------------------------------


def test_a_stopped_server_is_a_network_error(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there
    uploader = Uploader(api=f"http://127.0.0.1:{port}", home=tmp_path, state_dir=tmp_path / "state")
    run = uploader.run(_file(tmp_path, "clip.mp4", 10 * KiB))
    assert run.code == 5
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        f"vodfc upload: cannot reach the API at http://127.0.0.1:{port}/uploads: connection refused"
    ]


@pytest.mark.parametrize("token", ["not-the-right.jwt.token", None])
def test_a_wrong_or_missing_token_is_an_authentication_error(
    uploader: Uploader, tmp_path: Path, token: str | None
) -> None:
    uploader.token = token
    run = uploader.run(_file(tmp_path, "clip.mp4", 10 * KiB))
    assert run.code == 3, run.stderr
    assert run.stdout == ""
    assert run.stderr.startswith("vodfc upload: the API refused the token: 401 InvalidToken: ")
    assert "check --token (or $VODFC_TOKEN)" in run.stderr
    _clean(run.stderr)


def test_a_refused_file_type_is_a_policy_error_with_the_apis_message(
    uploader: Uploader, tmp_path: Path
) -> None:
    run = uploader.run(_file(tmp_path, "notes.txt", 100))
    assert run.code == 4, run.stderr
    assert run.stdout == ""
    first = run.stderr.splitlines()[0]
    assert first.startswith("vodfc upload: the API refused the request: 400 InvalidFileName.Extension: ")
    assert ".txt" in first
    _clean(run.stderr)


def test_a_storage_fault_is_a_storage_error_naming_the_oss_code_and_request_id(
    stack: Stack, uploader: Uploader, tmp_path: Path
) -> None:
    stack.admin("faults", {"clear": True, "oss_errors": -1})
    try:
        run = uploader.run(_file(tmp_path, "clip.mp4", 300 * KiB), "--part-size", "100K")
    finally:
        stack.admin("faults", {"clear": True})
    assert run.code == 6, run.stderr
    video_id = _video_id(run.first_line)
    assert "storage: 503 ServiceUnavailable; retrying in 0.5 s (1/3)" in run.stderr
    assert re.search(
        r"^vodfc upload: storage refused the upload: 503 ServiceUnavailable: .+ \(OSS request id \w+\)$",
        run.stderr,
        re.MULTILINE,
    ), run.stderr
    assert f"VideoId {video_id} is not uploaded yet; resume: " in run.stderr
    assert f"details: {uploader.state_dir / 'upload.log'}" in run.stderr
    _clean(run.stderr)


# --- images and attached media ----------------------------------------------------------------


def _media_id(line: str, id_field: str) -> str:
    found = re.fullmatch(rf"{id_field} ([0-9a-f]{{32}})", line.strip())
    assert found, line
    return found.group(1)


def _emulated(stack: Stack, collection: str, media_id: str) -> dict[str, Any]:
    state = httpx.get(f"{stack.emulator}/_emulator/state", timeout=5).json()
    found: list[dict[str, Any]] = [m for m in state[collection] if media_id in json.dumps(m)]
    assert len(found) == 1, state[collection]
    return found[0]


def test_an_image_is_uploaded_as_a_cover_and_reaches_ready(
    stack: Stack, uploader: Uploader, tmp_path: Path
) -> None:
    # given an image of three parts
    path = _file(tmp_path, "poster.png", 300 * KiB)

    # when it is uploaded as a cover
    run = uploader.run(path, "--image", "--image-type", "cover", "--part-size", "100K")

    # then POST /images made a cover image at VOD, and the record reached ready with its size
    assert run.code == 0, run.stderr
    image_id = _media_id(run.first_line, "ImageId")
    record = run.record()
    assert (record["ImageId"], record["Status"], record["ImageType"]) == (image_id, "ready", "cover")
    assert record["Size"] == 300 * KiB and record["OriginalFileName"] == "poster.png"
    assert record["LastEvent"] == "ImageUploadComplete"
    image = _emulated(stack, "images", image_id)
    assert image["Status"] == "Normal" and "cover" in json.dumps(image)
    assert "3/3 parts" in run.stderr
    _clean(run.stderr)
    assert uploader.states() == []


def test_a_subtitle_file_is_uploaded_as_attached_media_and_reaches_ready(
    stack: Stack, uploader: Uploader, tmp_path: Path
) -> None:
    path = tmp_path / "english.vtt"
    path.write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n" * 50)
    run = uploader.run(path, "--attached", "subtitle", "--title", "English")
    assert run.code == 0, run.stderr
    media_id = _media_id(run.first_line, "MediaId")
    record = run.record()
    assert (record["MediaId"], record["Status"], record["BusinessType"]) == (media_id, "ready", "subtitle")
    assert record["Title"] == "English" and record["FileSize"] == record["Size"] == path.stat().st_size
    assert _emulated(stack, "attached_media", media_id)["Status"] == "Normal"
    _clean(run.stderr)


def test_an_expired_image_credential_is_not_refreshed_but_reported(
    stack: Stack, uploader: Uploader, tmp_path: Path
) -> None:
    # given an image upload in progress
    path = _file(tmp_path, "logo.png", 8 * 100 * KiB)
    proc = uploader.start(path, "--image", "--part-size", "100K", "--limit-rate", "400K")
    assert proc.stdout is not None
    image_id = _media_id(proc.stdout.readline(), "ImageId")
    _wait_for(lambda: len(stack.parts(image_id)) >= 2, what="two parts")

    # when its credential expires: VOD offers no refresh for images
    assert stack.admin("expire", {"ImageId": image_id})["expired"] >= 1
    out, err = proc.communicate(timeout=30)

    # then the client says so and names the way out (no record on stdout: it did not finish)
    assert proc.returncode == 6, err
    assert out == ""
    assert "vodfc upload: the image credential expired (SecurityTokenExpired" in err
    assert "and cannot be refreshed" in err
    assert f"ImageId {image_id} is not uploaded; upload anew: " in err and "--restart" in err
    assert f'curl -X DELETE -H "Authorization: Bearer $VODFC_TOKEN" {stack.api}/images/{image_id}' in err
    _clean(err)

    # and a plain --resume starts over under a new ImageId (the old record stays for cleanup)
    again = uploader.run(path, "--image", "--resume")
    assert again.code == 0, again.stderr
    new_id = _media_id(again.first_line, "ImageId")
    assert new_id != image_id and again.record()["Status"] == "ready"
    assert f"the earlier ImageId {image_id} is left as it is" in again.stderr
    old = httpx.get(f"{stack.api}/images/{image_id}", headers={"Authorization": f"Bearer {uploader.token}"})
    assert old.json()["Status"] == "created"
