"""``devkit.upload``'s parts without a server: the API's error classes, state, refresh rule, progress."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import stat
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from devkit.cli import main
from devkit.upload import errors
from devkit.upload.api import IMAGE, VIDEO, Client, wait_until_final
from devkit.upload.command import parse_size
from devkit.upload.logs import library_logs
from devkit.upload.progress import PlainLines, RichBar, Silent, make_view, parts_done
from devkit.upload.state import FileIdentity, StateDir, UploadState, default_state_dir
from devkit.upload.storage import Recovery, RefreshBudget, Tracker, TransferOptions

with warnings.catch_warnings():
    # oss2's docstrings hold invalid escape sequences: compiled afresh (no .pyc, as under
    # PYTHONDONTWRITEBYTECODE) while pytest turns warnings into errors, its import would fail.
    warnings.filterwarnings("ignore", "invalid escape sequence", DeprecationWarning)
    warnings.filterwarnings("ignore", "invalid escape sequence", SyntaxWarning)
    import oss2

ROOT = Path(__file__).resolve().parents[2]
API = "http://api.test"
EXIT_CODES = {
    cls.exit_code: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.UploadError)
}


@pytest.fixture(autouse=True)
def _no_token_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VODFC_TOKEN", raising=False)


def _client(**kw: Any) -> tuple[Client, list[float]]:
    slept: list[float] = []
    return Client(API, "t0ken", sleep=slept.append, **kw), slept


def _credentials() -> dict[str, Any]:
    return {"VideoId": "v1", "UploadAddress": "YQ==", "UploadAuth": "Yg=="}


# --- the API's answers become exit-code classes -------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (401, "InvalidToken", errors.AuthError),
        (403, "Forbidden", errors.AuthError),
        (403, "QuotaExceeded.PendingUploads", errors.PolicyError),
        (403, "Forbidden.TemplateGroupId", errors.PolicyError),
        (400, "InvalidFileName.Extension", errors.PolicyError),
        (409, "IllegalStatus", errors.PolicyError),
        (404, "InvalidVideo.NotFound", errors.PolicyError),
    ],
)
def test_api_refusals_map_to_their_exit_code_class_with_the_apis_words(
    status: int, code: str, expected: type[errors.UploadError]
) -> None:
    client, _ = _client()
    with respx.mock(base_url=API, assert_all_called=True) as api:
        api.post("/uploads").respond(status, json={"Code": code, "Message": "What to do."})
        with pytest.raises(expected) as info:
            client.create_media(VIDEO, {"Title": "t"})
    assert f"{status} {code}: What to do." in info.value.message


def test_a_create_retried_after_5xx_keeps_its_idempotency_key_and_honours_retry_after() -> None:
    client, slept = _client()
    with respx.mock(base_url=API, assert_all_called=True) as api:
        route = api.post("/uploads")
        route.side_effect = [
            httpx.Response(503, json={"Code": "Throttling"}, headers={"Retry-After": "0.25"}),
            httpx.ConnectError("refused"),
            httpx.Response(200, json=_credentials()),
        ]
        assert client.create_media(VIDEO, {"Title": "t"})["VideoId"] == "v1"
    keys = {call.request.headers["Idempotency-Key"] for call in route.calls}
    assert len(route.calls) == 3 and len(keys) == 1
    assert slept == [0.25, 1.0]
    assert route.calls.last.request.headers["Authorization"] == "Bearer t0ken"


def test_a_create_still_in_progress_is_asked_again_with_the_same_key() -> None:
    client, slept = _client()
    in_use = {
        "Code": "IdempotencyKeyInUse",
        "Message": "A request with this Idempotency-Key is still in progress.",
    }
    with respx.mock(base_url=API, assert_all_called=True) as api:
        route = api.post("/uploads")
        route.side_effect = [
            httpx.Response(409, json=in_use, headers={"Retry-After": "1"}),
            httpx.Response(200, json=_credentials()),
        ]
        assert client.create_media(VIDEO, {"Title": "t"})["VideoId"] == "v1"
    assert len({call.request.headers["Idempotency-Key"] for call in route.calls}) == 1
    assert slept == [1.0]


def test_other_conflicts_are_not_retried() -> None:
    client, slept = _client()
    with respx.mock(base_url=API) as api:
        route = api.post("/uploads").respond(409, json={"Code": "IdempotencyKeyReused", "Message": "x"})
        with pytest.raises(errors.PolicyError, match="409 IdempotencyKeyReused"):
            client.create_media(VIDEO, {"Title": "t"})
    assert len(route.calls) == 1 and slept == []


def test_an_api_that_keeps_failing_is_a_network_error() -> None:
    client, slept = _client()
    with respx.mock(base_url=API) as api:
        api.get("/uploads/v1").respond(503, json={"Code": "ServiceUnavailable", "Message": "Later."})
        with pytest.raises(errors.NetworkError, match=r"the API is unavailable: 503 ServiceUnavailable"):
            client.status("v1")
    assert len(slept) == 2


def test_an_image_create_is_not_repeated_once_it_may_have_reached_the_api() -> None:
    client, slept = _client()
    with respx.mock(base_url=API) as api:
        route = api.post("/images").respond(503, json={"Code": "ServiceUnavailable", "Message": "x"})
        with pytest.raises(errors.NetworkError):
            client.create_media(IMAGE, {"ImageType": "default"})
    assert len(route.calls) == 1 and slept == []


@pytest.mark.parametrize(
    ("side_effect", "message"),
    [
        (
            httpx.ConnectError("[Errno 111] Connection refused"),
            "cannot reach the API at {url}: connection refused",
        ),
        (httpx.ReadTimeout("timed out"), "the API at {url} did not answer within 30 s"),
        (httpx.RemoteProtocolError("peer closed"), "lost the connection to the API at {url}: peer closed"),
    ],
)
def test_transport_failures_are_network_errors_naming_the_url(side_effect: Exception, message: str) -> None:
    client, _ = _client()
    with respx.mock(base_url=API) as api:
        api.get("/uploads/v1").mock(side_effect=side_effect)
        with pytest.raises(errors.NetworkError) as info:
            client.status("v1")
    assert info.value.message == message.format(url=f"{API}/uploads/v1")


def test_a_server_that_is_not_the_vodfc_api_is_named_as_such() -> None:
    client, _ = _client()
    with respx.mock(base_url=API) as api:
        api.post("/uploads").respond(404, text="<html>Not Found</html>")
        with pytest.raises(errors.NetworkError, match=r"HTTP 404 without a JSON body: is --api"):
            client.create_media(VIDEO, {})


def test_an_answer_without_the_media_id_is_refused() -> None:
    client, _ = _client()
    with respx.mock(base_url=API) as api:
        api.post("/images").respond(200, json={"RequestId": "r"})
        with pytest.raises(errors.NetworkError, match="answered without ImageId"):
            client.create_media(IMAGE, {})


def test_waiting_past_the_timeout_is_a_processing_error() -> None:
    client, _ = _client()
    with respx.mock(base_url=API) as api:
        api.get("/images/i1").respond(200, json={"Status": "created"})
        with pytest.raises(errors.ProcessingError, match="ImageId i1 is still created after 0 s"):
            wait_until_final(client, "i1", 0, kind=IMAGE, quiet=True, poll=0)


def test_the_api_url_must_be_http() -> None:
    with pytest.raises(errors.UsageError, match="--api must be an http"):
        Client("localhost:8000", None)


# --- state --------------------------------------------------------------------------------------


def test_the_state_dir_follows_xdg_cache_home_and_defaults_to_dot_cache(tmp_path: Path) -> None:
    assert default_state_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "vodfc" / "uploads"
    # a relative XDG_CACHE_HOME is invalid by the spec: ignored
    assert default_state_dir({"XDG_CACHE_HOME": "rel"}) == Path.home() / ".cache" / "vodfc" / "uploads"
    assert default_state_dir({}) == Path.home() / ".cache" / "vodfc" / "uploads"


def test_the_state_key_changes_with_the_file_the_api_and_the_kind(tmp_path: Path) -> None:
    path = tmp_path / "a.mp4"
    path.write_bytes(b"x" * 10)
    file = FileIdentity.of(path)
    key = StateDir.key(file, API, "video")
    assert key == StateDir.key(FileIdentity.of(tmp_path / "." / "a.mp4"), API + "/", "video")
    assert key != StateDir.key(file, "http://other.test", "video")
    assert key != StateDir.key(file, API, "image:default")
    os.utime(path, ns=(file.mtime_ns, file.mtime_ns + 1))
    assert key != StateDir.key(FileIdentity.of(path), API, "video")


def test_a_state_round_trips_privately_and_a_damaged_one_reads_as_none(tmp_path: Path) -> None:
    states = StateDir(tmp_path / "state")
    state = UploadState("video", "v1", API, "/f.mp4", 10, 1, 1024, "bucket", "key", "2026-01-01T00:00:00Z")
    states.save("k", state)
    assert states.load("k") == state
    assert stat.S_IMODE((tmp_path / "state" / "k.json").stat().st_mode) == 0o600
    (tmp_path / "state" / "k.json").write_text('{"kind": "video"}')
    assert states.load("k") is None
    assert states.load("missing") is None
    states.remove("k", state)
    states.remove("k", state)  # forgetting twice is fine
    assert not (tmp_path / "state" / "k.json").exists()


# --- refreshes, progress ------------------------------------------------------------------------


def test_refreshes_go_on_while_parts_are_stored_and_stop_when_a_fresh_credential_does_not_help() -> None:
    budget = RefreshBudget()
    assert not budget.stalled(0)  # the first expiry: always refreshed
    for done in (0, 100, 250, 900):
        assert not budget.exhausted() and not budget.stalled(done)
        budget.spend(done)
    assert budget.stalled(900)


def test_max_refreshes_caps_the_total() -> None:
    budget = RefreshBudget(limit=2)
    budget.spend(1)
    assert not budget.exhausted()
    budget.spend(2)
    assert budget.exhausted()
    assert RefreshBudget(limit=0).exhausted()


def _oss_error(status: int, code: str) -> Exception:
    details = {"Code": code, "Message": f"{code} says so."}
    return oss2.exceptions.make_exception(_OssAnswer(status, details))


class _OssAnswer:
    """Just enough of an oss2 response for ``oss2.exceptions.make_exception``."""

    def __init__(self, status: int, details: dict[str, str]) -> None:
        self.status = status
        self.headers = {"x-oss-request-id": "5F0REQ"}
        fields = "".join(f"<{k}>{v}</{k}>" for k, v in details.items())
        self.body = f"<?xml version='1.0'?><Error>{fields}</Error>".encode()

    def read(self, amount: int | None = None) -> bytes:
        return self.body[:amount]


def _recovery(kind: Any = VIDEO, **options: Any) -> tuple[Recovery, Recorder]:
    view = Recorder()
    client, _ = _client()
    tracker = Tracker(view, "f", 1000, 100)
    return Recovery(client, kind, "v1", TransferOptions(retry_delays=(0, 0), **options), tracker), view


def test_recovery_refreshes_an_expired_video_credential() -> None:
    recovery, view = _recovery()
    with respx.mock(base_url=API, assert_all_called=True) as api:
        api.post("/uploads/v1/refresh").respond(200, json=_credentials())
        assert recovery.after(_oss_error(403, "SecurityTokenExpired"), {}) == _credentials()
    assert view.calls == [("note", "credential expired (SecurityTokenExpired); refreshed it, resuming")]
    # a second expiry before any new part: the fresh credential did not help
    with pytest.raises(errors.StorageError, match=r"also a fresh one, before any new part is stored"):
        recovery.after(_oss_error(403, "AccessDenied"), {})


def test_recovery_never_refreshes_an_image_credential() -> None:
    recovery, _ = _recovery(IMAGE)
    with pytest.raises(errors.StorageError) as info:
        recovery.after(_oss_error(403, "SecurityTokenExpired"), {})
    assert info.value.message == (
        "the image credential expired (SecurityTokenExpired, OSS request id 5F0REQ) and cannot be refreshed"
    )
    assert info.value.hint == "run again with --restart to upload it under a new ImageId"


def test_recovery_retries_a_transient_error_then_names_the_oss_code_and_request_id() -> None:
    recovery, view = _recovery()
    address = {"Endpoint": "http://oss.test", "Bucket": "b", "FileName": "k"}
    creds = {"UploadAddress": base64.b64encode(json.dumps(address).encode()).decode()}
    for _ in range(2):
        assert recovery.after(_oss_error(503, "ServiceUnavailable"), creds) is creds
    with pytest.raises(errors.StorageError) as info:
        recovery.after(_oss_error(503, "ServiceUnavailable"), creds)
    assert info.value.message == (
        "storage refused the upload: 503 ServiceUnavailable: ServiceUnavailable says so. "
        "(OSS request id 5F0REQ)"
    )
    assert view.calls[0] == ("note", "storage: 503 ServiceUnavailable; retrying in 0 s (1/2)")
    # a refusal that waiting cannot fix is not retried
    with pytest.raises(errors.StorageError, match="400 InvalidDigest"):
        _recovery()[0].after(_oss_error(400, "InvalidDigest"), creds)


@pytest.mark.parametrize(
    ("done", "expected"), [(0, 0), (99, 0), (100, 1), (250, 2), (299, 2), (300, 3), (350, 4)]
)
def test_parts_done_counts_whole_parts(done: int, expected: int) -> None:
    assert parts_done(done, 350, 100) == expected


def test_plain_progress_prints_a_line_per_ten_percent_and_never_a_carriage_return() -> None:
    out = io.StringIO()
    now = [0.0]
    view = PlainLines(out, clock=lambda: now[0])
    view.begin("clip.mp4", 1000, 100, 300)
    for done in range(300, 1001, 25):
        now[0] += 0.1
        view.advance(done)
    lines = out.getvalue().splitlines()
    assert lines[:2] == [
        "  uploading clip.mp4: 1.0 kB in 10 parts",
        "  resuming: 3/10 parts already in storage",
    ]
    assert [int(re.match(r"\s+(\d+)%", ln).group(1)) for ln in lines[2:]] == list(range(30, 101, 10))  # type: ignore[union-attr]
    assert lines[-1].startswith("  100%  1.0 kB of 1.0 kB  10/10 parts  ")
    assert "\r" not in out.getvalue()


def test_plain_progress_also_prints_every_thirty_seconds() -> None:
    out = io.StringIO()
    now = [0.0]
    view = PlainLines(out, clock=lambda: now[0])
    view.begin("big.mp4", 10_000, 100, 0)
    view.advance(1)
    now[0] = 31
    view.advance(2)
    now[0] = 32
    view.advance(3)
    assert len(out.getvalue().splitlines()) == 3  # the header, 0 %, then 30 s later


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_is_drawn_only_on_a_terminal() -> None:
    assert isinstance(make_view(quiet=False, stream=_Terminal()), RichBar)
    assert isinstance(make_view(quiet=False, stream=io.StringIO()), PlainLines)
    assert isinstance(make_view(quiet=True, stream=_Terminal()), Silent)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def begin(self, label: str, size: int, part_size: int, done: int) -> None:
        self.calls.append(("begin", done))

    def advance(self, done: int) -> None:
        self.calls.append(("advance", done))

    def note(self, message: str) -> None:
        self.calls.append(("note", message))

    def end(self) -> None:
        self.calls.append(("end", None))


def test_the_tracker_paces_limit_rate_from_the_bytes_stored_in_this_run() -> None:
    now = [10.0]
    slept: list[float] = []
    view = Recorder()
    tracker = Tracker(view, "f", 1000, 100, limit_rate=100, clock=lambda: now[0], sleep=slept.append)
    tracker(300, 1000)  # resumed with three parts stored: not counted as speed
    now[0] += 0.5
    tracker(400, 1000)  # 100 bytes in 0.5 s at 100 B/s: wait another 0.5 s
    assert slept == [pytest.approx(0.5)]
    assert view.calls[:2] == [("begin", 300), ("advance", 300)]
    tracker.close()
    tracker(500, 1000)  # oss2's threads may report after an interruption: ignored
    assert view.calls[-1] == ("end", None)


def test_a_single_put_does_not_begin_as_resumed() -> None:
    view = Recorder()
    Tracker(view, "f", 1000, 1000)(16, 1000)
    assert view.calls[0] == ("begin", 0)


@pytest.mark.parametrize(
    ("text", "expected"), [("1048576", 1048576), ("512K", 524288), ("1.5m", 1572864), ("2GiB", 2 * 1024**3)]
)
def test_sizes_take_binary_suffixes(text: str, expected: int) -> None:
    assert parse_size(text, "--x") == expected


def test_a_bad_size_is_a_usage_error() -> None:
    with pytest.raises(errors.UsageError, match=r"--part-size: not a size: '1 MB per second'"):
        parse_size("1 MB per second", "--part-size")


# --- logs ---------------------------------------------------------------------------------------


def test_library_logs_go_to_the_file_and_not_to_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "upload.log"
    root_handlers = list(logging.getLogger().handlers)
    with library_logs(path):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("oss2.task_queue").exception("An exception was thrown by producer or consumer")
        logging.getLogger("oss2.api").debug("Send request, headers: {'x-oss-security-token': 'secret'}")
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    text = path.read_text()
    assert "An exception was thrown" in text and "RuntimeError: boom" in text
    assert "secret" not in text  # oss2's DEBUG lines carry signed headers
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert logging.getLogger().handlers == root_handlers


# --- the command line ---------------------------------------------------------------------------


def test_help_and_readme_list_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["upload", "--help"])
    usage = capsys.readouterr().out
    documented = re.findall(r"^  (\d+)\s+\w", usage.split("exit codes:", 1)[1], re.MULTILINE)
    assert sorted(map(int, documented)) == sorted([0, *EXIT_CODES])  # 1: UploadError itself
    readme = (ROOT / "README.md").read_text()
    for code in [0, *EXIT_CODES]:
        assert re.search(rf"`{code}`", readme), f"README does not document exit code {code}"


def test_usage_errors_exit_2_before_anything_is_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = ["--state-dir", str(tmp_path / "s")]
    assert main(["upload", str(tmp_path / "missing.mp4"), "--api", API, *state]) == 2
    assert capsys.readouterr().err == f"vodfc upload: no such file: {tmp_path / 'missing.mp4'}\n"
    (tmp_path / "a.png").write_bytes(b"x")
    assert main(["upload", str(tmp_path / "a.png"), "--api", API, "--image-type", "cover", *state]) == 2
    assert "--image-type goes with --image" in capsys.readouterr().err
    assert main(["upload", str(tmp_path / "a.png"), "--api", API, "--part-size", "50K", *state]) == 2
    assert "--part-size must be between 100K and 5G" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["upload", str(tmp_path / "a.png"), "--api", API, "--resume", "--restart"])
    assert info.value.code == 2
    assert not (tmp_path / "s").exists()


def test_vodfc_help_does_not_import_the_upload_client() -> None:
    code = "import sys; from devkit.cli import build_parser; build_parser(); print(sorted(sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    modules = json.loads(proc.stdout.replace("'", '"'))
    heavy = [m for m in modules if m.split(".")[0] in {"httpx", "oss2", "rich", "requests"}]
    assert heavy == [] and "devkit.upload" not in modules


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_error_is_one_named_line_with_its_traceback_in_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], debug: bool
) -> None:
    # given an API whose answer is not what it should be (UploadAddress is not Base64 JSON)
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"x" * 10)
    argv = ["upload", str(path), "--api", API, "--state-dir", str(tmp_path / "s")] + ["--debug"] * debug
    with respx.mock(base_url=API, assert_all_called=True) as api:
        api.post("/uploads").respond(200, json=_credentials())
        code = main(argv)

    # then: exit 1, the exception named in one line, the traceback in the log (and with --debug, here)
    assert code == 1
    out, err = capsys.readouterr()
    assert out == "VideoId v1\n"
    assert "vodfc upload: unexpected error: JSONDecodeError: " in err
    assert f"VideoId v1 is not uploaded; to cancel it: curl -X DELETE {API}/uploads/v1" in err
    assert f"details: {tmp_path / 's' / 'upload.log'}" in err
    assert ("Traceback" in err) is debug
    assert "Traceback" in (tmp_path / "s" / "upload.log").read_text()
