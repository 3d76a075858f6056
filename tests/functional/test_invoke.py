"""``vodfc invoke``: every sample in events/ on a fresh clone's settings, that is none at all.

The environment is empty (tests/conftest.py clears every setting; the subprocess test passes an
explicit one), so each invocation runs on the local defaults of devkit/local.py: AUTH_MODE=none,
a SQLite database and an emulated VOD in a temporary directory. ``--against`` (the emulator and
database of a running ``vodfc serve``) is driven in tests/e2e/test_serve.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devkit.cli import main
from tests.functional.conftest import EVENTS

SAMPLES = sorted(EVENTS.glob("*/*.json"))


def _function_for(path: Path) -> str:
    if path.parent.name == "timer":
        return "cleanup"
    if path.parent.name in ("vod", "mns") or path.stem == "vod_callback":
        return "vod_callback"
    return "upload_credentials"


def _answer(out: str) -> tuple[dict[str, Any], Any]:
    """(FC's answer, its decoded body) from what ``vodfc invoke`` printed."""
    answer = json.loads(out)
    body = answer.get("body") if isinstance(answer, dict) else None
    return answer, (json.loads(body) if body else None)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_is_answered_without_any_environment(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given no setting at all (the autouse fixture), when the sample is invoked
    code = main(["invoke", _function_for(path), "--event", str(path)])

    # then stdout is FC's answer alone (the log lines went to stderr), never a 5xx, and exit 0
    captured = capsys.readouterr()
    answer, body = _answer(captured.out)
    assert code == 0, captured.err
    assert "[REDACTED]" not in captured.err
    if path.parent.name == "timer":
        assert answer["errors"] == 0 and "scanned" in answer
        return
    assert '"vodfc.invocation"' in captured.err
    if path.parent.name == "mns":
        # the queue trigger's answer: counts per result (the samples' media are not this store's)
        assert not {"failed", "pending"} & set(answer), answer
        assert sum(answer.values()) == (2 if "batch" in path.name else 1), answer
        return
    assert answer["statusCode"] < 500, body
    succeed = {"vod_callback", "create_upload", "list_uploads", "create_image", "list_images"}
    succeed |= {"create_attached_media", "list_attached_media"}
    if path.parent.name == "vod" or path.stem in succeed:
        assert answer["statusCode"] == 200, body
    id_fields = {"create_upload": "VideoId", "create_image": "ImageId", "create_attached_media": "MediaId"}
    if path.stem in id_fields:
        assert body[id_fields[path.stem]] and body["UploadAddress"] and body["UploadAuth"]


def test_a_5xx_answer_exits_1_and_its_log_line_says_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a VOD endpoint nobody listens on (so no emulator is started for it)
    monkeypatch.setenv("VOD_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("VOD_DEADLINE_SECONDS", "1")

    code = main(["invoke", "upload_credentials", "--event", str(EVENTS / "http" / "create_upload.json")])

    captured = capsys.readouterr()
    answer, body = _answer(captured.out)
    assert code == 1 and answer["statusCode"] >= 500, body
    assert "[REDACTED]" not in captured.err


def test_the_shells_settings_win_over_the_local_defaults(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given AUTH_MODE=jwt without a key: the deployed default, not configured
    monkeypatch.setenv("AUTH_MODE", "jwt")

    code = main(["invoke", "upload_credentials", "--event", str(EVENTS / "http" / "create_upload.json")])

    # then the answer is the 503 a deployment would give, its message whole in the log
    captured = capsys.readouterr()
    answer, body = _answer(captured.out)
    assert code == 1 and answer["statusCode"] == 503 and body["Code"] == "AuthNotConfigured"
    assert "Authentication is not configured" in captured.err and "[REDACTED]" not in captured.err
    assert os.environ.get("AUTH_MODE") == "jwt"  # the process's environment is given back


def test_a_missing_server_is_named_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    event = str(EVENTS / "http" / "list_uploads.json")
    code = main(["invoke", "upload_credentials", "--event", event, "--against", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("vodfc invoke: no vodfc serve answers at http://127.0.0.1:9")


def test_the_console_script_works_from_a_bare_environment(tmp_path: Path) -> None:
    # given nothing but PATH and HOME, outside the repository
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    event = EVENTS / "http" / "create_upload.json"
    vodfc = Path(sys.executable).with_name("vodfc")
    cmd = [str(vodfc), "invoke", "upload_credentials", "--event", str(event)]

    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)

    answer, body = _answer(proc.stdout)
    assert proc.returncode == 0 and answer["statusCode"] == 200, proc.stderr
    assert body["VideoId"]
    assert not (tmp_path / ".vodfc").exists()  # nothing left behind: a temporary directory


def test_a_queue_batch_that_must_be_delivered_again_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a database that cannot be opened, when a queue batch is invoked
    monkeypatch.setenv("DATABASE_URL", "postgresql://vodfc@127.0.0.1:9/vodfc")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "1")
    code = main(["invoke", "vod_callback", "--event", str(EVENTS / "mns" / "fc3_batch.json")])

    # then the invocation fails (the trigger would deliver the batch again), told in one line
    err = capsys.readouterr().err
    assert code == 1
    assert "vodfc invoke: vod_callback failed:" in err and "Traceback" not in err
