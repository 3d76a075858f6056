"""The README's Quickstart, as written, against a started ``vodfc serve``; and the README's claims.

The Quickstart's shell block is taken from README.md and run by bash in a directory holding
``.venv`` and ``events`` (links to this checkout's), with ``set -e``; only its ``API=`` line is
pointed at the test's server, whose port is free rather than 8000.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from devkit.local import LocalStack, loopback_origins
from tests.newcomer.conftest import ROOT, VENV, Serve, bare_env

pytestmark = pytest.mark.e2e

README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    found = re.search(rf"^##+ {re.escape(title)}\n(.*?)(?=^##+ )", README, re.S | re.M)
    assert found, f"README.md has no section {title!r}"
    return found.group(1)


def quickstart() -> str:
    """The shell block of the Quickstart section."""
    block = re.search(r"```sh\n(.*?)```", _section("Quickstart (after `make serve`)"), re.S)
    assert block, "the Quickstart has no sh block"
    return block.group(1)


def test_the_quickstart_runs_as_written(serve: Serve, tmp_path: Path) -> None:
    if not (shutil.which("curl") and shutil.which("bash")) and os.environ.get("CI") != "true":
        pytest.skip("the Quickstart needs curl and bash")
    # given a started server and the Quickstart pointed at it (its one API= line)
    serve.start()
    script, replaced = re.subn(
        r"^API=http://127\.0\.0\.1:8000\b", f"API={serve.api}", quickstart(), flags=re.M
    )
    assert replaced == 1, "the Quickstart's first line sets API=http://127.0.0.1:8000"
    work = tmp_path / "clone"
    work.mkdir()
    (work / ".venv").symlink_to(VENV)
    (work / "events").symlink_to(ROOT / "events")

    # when it is run line by line, stopping at the first failing command
    proc = subprocess.run(
        ["bash", "-e", "-u", "-o", "pipefail", "-c", script],
        cwd=work,
        env=bare_env(serve.home),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    # then every command did what its comment says
    out = proc.stdout
    assert proc.returncode == 0, f"stdout:\n{out}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    assert re.search(r'"VideoId":"[0-9a-f]{32}".*"UploadAddress":".+".*"UploadAuth":"', out)
    assert '"Status":"deleted"' in out  # the DELETE of the upload that never got its file
    uploaded = re.search(r"VideoId ([0-9a-f]{32})\n", out)
    assert uploaded, out
    assert '"Status": "ready"' in out  # vodfc upload's final record
    assert re.search(rf'"Uploads":\[\{{"VideoId":"{uploaded.group(1)}".*"Status":"ready"', out)
    assert '"statusCode": 200' in out  # vodfc invoke --against
    # and nothing is left pending: the quota is where it started
    assert serve.get("/uploads?Status=created").json()["Uploads"] == []


def test_the_local_defaults_table_is_what_devkit_local_sets() -> None:
    # given the stack vodfc serve builds with its defaults (the emulator, SQLite in .vodfc)
    stack = LocalStack(api_url="http://127.0.0.1:8000", data_dir=Path(".vodfc"), vod_endpoint="http://e")
    rows = dict(re.findall(r"^\| `([A-Z_]+)`(?: / `[A-Z_]+`)? \| (.*) \|$", _section("Local defaults"), re.M))
    values = {**stack.defaults(), **stack.imposed()}
    values.pop("ALIBABA_CLOUD_ACCESS_KEY_SECRET")  # in the KEY_ID row

    # then the README documents every variable it sets, once, with the values it sets
    assert set(rows) == set(values)
    assert "`vodfc-dev-key` / `vodfc-dev-secret`" in rows["ALIBABA_CLOUD_ACCESS_KEY_ID"]
    assert f"`{values['AUTH_MODE']}`" in rows["AUTH_MODE"]
    assert f"`{values['CALLBACK_AUTH_KEY']}`" in rows["CALLBACK_AUTH_KEY"]
    assert "sqlite:///<data dir>/vodfc.db" in rows["DATABASE_URL"]
    assert "<API>/callbacks/vod" in rows["CALLBACK_URL"]
    assert "emulated VOD" in rows["VOD_ENDPOINT"]
    origins = [o.replace("8000", "<port>") for o in loopback_origins("http://127.0.0.1:8000")]
    assert origins == re.findall(r"`(http://[^`]+)`", rows["ALLOWED_ORIGINS"])


def test_the_readme_names_the_flags_that_exist(serve: Serve) -> None:
    help_text = subprocess.run(
        [*serve.command()[:4], "--help"], capture_output=True, text=True, check=True, env=bare_env(serve.home)
    ).stdout
    for flag in ("--port", "--vod-port", "--oss-port", "--data-dir", "--max-storage-mb", "--vod-endpoint"):
        assert flag in help_text
        assert f"`{flag}" in README, flag
    assert "make serve PORT=8010" in README and "rm -rf .vodfc" in README
    assert "--against" in README
