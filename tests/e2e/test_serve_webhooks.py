"""End to end: ``vodfc serve`` notifies its own sink (no ``WEBHOOK_URL`` given), and the operator's
``vodfc webhooks`` commands read the same store."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from devkit.cli import main as vodfc
from devkit.local import DEV_WEBHOOK_SECRET
from devkit.upload import Client, upload_file
from devkit.webhook_sink import SINK_PATH
from tests.served import bare_env

pytestmark = pytest.mark.e2e


@dataclass
class Served:
    api: str
    database_url: str
    log: Path
    delivery: str  # WEBHOOK_DELIVERY

    def sent_by_cleanup(self) -> int:
        """Notifications the cleanup runs delivered, from their log lines."""
        sent = 0
        for text in self.log.read_text().splitlines():
            try:
                line = json.loads(text)
            except ValueError:  # the banner, or a line still being written
                continue
            if isinstance(line, dict) and line.get("function") == "cleanup":
                sent += line.get("webhooks", {}).get("delivered", 0)
        return sent

    def deliveries(self, video_id: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.api}{SINK_PATH}", params={"VideoId": video_id}, timeout=5)
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()["Deliveries"]
        return found


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# immediate: each change notifies the sink right after it; timer: the cleanup runs (every second
# here) send everything, and the sink must see the same notifications in the same order.
@pytest.fixture(scope="module", params=["immediate", "timer"])
def served(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("serve-webhooks")
    port = _free_port()
    log = data / "serve.log"
    env = bare_env(data)  # nothing of the shell's settings (LOG_LEVEL, WEBHOOK_URL, ...) leaks in
    env["WEBHOOK_DELIVERY"] = request.param
    cmd = [sys.executable, "-m", "devkit.cli", "serve", "--port", str(port), "--data-dir", str(data),
           "--transcode-delay", "0.5", "--cleanup-every", "1",
           "--vod-port", "0", "--oss-port", "0"]  # fmt: skip
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
    yield Served(api, f"sqlite:///{(data / 'vodfc.db').resolve()}", log, request.param)
    process.terminate()
    process.wait(timeout=10)


def test_an_upload_notifies_the_local_sink_of_every_step_in_order(served: Served, tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(os.urandom(300 * 1024))
    with Client(served.api, None) as client:
        video_id = upload_file(client, path, "notified clip", part_size=100 * 1024, quiet=True)["VideoId"]
        deadline = time.monotonic() + 20
        types: list[str] = []
        while time.monotonic() < deadline:
            types = [d["Type"] for d in served.deliveries(video_id)]
            if types and types[-1] == "upload.ready":
                break
            time.sleep(0.2)
    assert types == ["upload.created", "upload.uploaded", "upload.processing", "upload.ready"], types
    assert [d["Sequence"] for d in served.deliveries(video_id)] == [1, 2, 3, 4]
    if served.delivery == "timer":  # every one of them went out from a cleanup run
        deadline = time.monotonic() + 10
        while served.sent_by_cleanup() < 4 and time.monotonic() < deadline:
            time.sleep(0.2)  # the run's log line follows its deliveries
        assert served.sent_by_cleanup() == 4
    assert "your app was notified: upload.ready" in served.log.read_text()
    assert f"notifications  {served.api}{SINK_PATH}" in served.log.read_text()  # the banner names the sink


def test_the_sink_refuses_what_the_dev_secret_did_not_sign(served: Served) -> None:
    body = '{"type":"upload.ready","timestamp":"2026-11-25T10:00:00.000000Z","data":{"VideoId":"x"}}'
    now = int(time.time())
    when = datetime.fromtimestamp(now, tz=timezone.utc)
    forged = Webhook("whsec_Zm9yZ2VkLXNlY3JldC1mb3JnZWQtc2VjcmV0IQ==").sign("msg_forged_1", when, body)
    headers = {"webhook-id": "msg_forged_1", "webhook-timestamp": str(now), "webhook-signature": forged}
    answer = httpx.post(f"{served.api}{SINK_PATH}", content=body, headers=headers, timeout=5)
    assert answer.status_code == 401 and answer.json()["Code"] == "InvalidSignature"
    assert served.deliveries("x") == []
    # the same body signed with the stack's dev secret is taken, once per webhook-id
    headers["webhook-signature"] = Webhook(DEV_WEBHOOK_SECRET).sign("msg_forged_1", when, body)
    first = httpx.post(f"{served.api}{SINK_PATH}", content=body, headers=headers, timeout=5).json()
    again = httpx.post(f"{served.api}{SINK_PATH}", content=body, headers=headers, timeout=5).json()
    assert (first["Duplicate"], again["Duplicate"]) == (False, True)
    assert len(served.deliveries("x")) == 1


def test_vodfc_webhooks_list_reads_the_stack_store(served: Served) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert vodfc(["webhooks", "--database-url", served.database_url, "list"]) == 0
    text = out.getvalue()
    delivered = int(next(line.split()[1] for line in text.splitlines() if line.startswith("delivered")))
    assert delivered >= 1 and "dead       0" in text
