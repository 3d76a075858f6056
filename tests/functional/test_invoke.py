"""``vodfc invoke`` runs each handler with every sample event in events/ and prints FC's answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devkit.cli import main
from tests.functional.conftest import EVENTS, Stack

HTTP_EVENTS = sorted((EVENTS / "http").glob("*.json"))
VOD_EVENTS = sorted((EVENTS / "vod").glob("*.json"))


def _function_for(path: Path) -> str:
    if path.parent.name == "timer":
        return "cleanup"
    if path.parent.name == "vod" or path.stem == "vod_callback":
        return "vod_callback"
    return "upload_credentials"


@pytest.mark.parametrize(
    "path",
    [*HTTP_EVENTS, *VOD_EVENTS, EVENTS / "timer" / "cleanup.json"],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_invoke_prints_the_fc_answer_for_every_sample(
    stack: Stack, path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given local mode (the samples carry a placeholder token) and an upload the samples can name
    from tests.functional.conftest import reset_instance_state

    monkeypatch.setenv("AUTH_MODE", "none")
    reset_instance_state()
    stack.create(owner="local")
    capsys.readouterr()

    # when the sample is invoked
    assert main(["invoke", _function_for(path), "--event", str(path)]) == 0

    # then stdout is FC's JSON answer alone (the log lines went to stderr), never a 5xx
    captured = capsys.readouterr()
    answer = json.loads(captured.out)
    assert '"vodfc.invocation"' in captured.err or _function_for(path) == "cleanup"
    if _function_for(path) == "cleanup":
        assert "scanned" in answer
        return
    assert answer["statusCode"] < 500, answer
    body = json.loads(answer["body"]) if answer["body"] else {}
    assert "RequestId" in body or answer["statusCode"] == 204
    succeed = {"vod_callback", "create_upload", "list_uploads", "create_image", "list_images"}
    succeed |= {"create_attached_media", "list_attached_media"}
    if path.parent.name == "vod" or path.stem in succeed:
        assert answer["statusCode"] == 200, body
