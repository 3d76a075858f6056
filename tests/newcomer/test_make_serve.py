"""``make serve`` as the README has a newcomer run it.

The first test uses this checkout's venv as it is (make is told not to reinstall it); the second,
opt-in (``VODFC_TEST_FRESH_CLONE=1``, ``make test-newcomer``), clones the repository into a
temporary directory and times ``make serve`` there from nothing to its "ready" line: a new venv,
the runtime and devkit only, from pip's (warm) cache.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.newcomer.conftest import ROOT, VENV, bare_env, free_port_trio

pytestmark = pytest.mark.e2e

FRESH_CLONE = os.environ.get("VODFC_TEST_FRESH_CLONE") == "1"
# The goal for a fresh clone with a warm package cache; VODFC_SERVE_BUDGET_SECONDS changes it.
BUDGET_SECONDS = float(os.environ.get("VODFC_SERVE_BUDGET_SECONDS") or 15)
TEST_TOOLS = ("pytest", "ruff", "mypy", "hypothesis", "respx")


def _make_serve(cwd: Path, env: dict[str, str], *make_args: str, timeout: float) -> tuple[str, float]:
    """Run ``make serve ...`` until its "ready" line; (its output, seconds until then)."""
    started = time.monotonic()
    with subprocess.Popen(
        ["make", "--no-print-directory", "serve", *make_args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # Ctrl-C reaches make and vodfc serve, as in a terminal
    ) as process:
        assert process.stdout is not None
        output = ""
        try:
            for line in process.stdout:
                output += line
                if line.startswith("vodfc ready"):
                    return output, time.monotonic() - started
                if time.monotonic() - started > timeout:
                    break
            raise AssertionError(f"make serve printed no ready line (exit {process.poll()}):\n{output}")
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)


def test_make_serve_port_serves_there(tmp_path: Path) -> None:
    port = free_port_trio()
    env = bare_env(tmp_path)
    # this checkout's venv as installed (-o: make must not rebuild its stamp)
    args = [f"VENV={VENV}", "-o", f"{VENV}/.installed-devkit", f"PORT={port}"]
    output, _ = _make_serve(ROOT, env, *args, f"ARGS=--data-dir {tmp_path / 'data'}", timeout=60)
    assert f"vodfc ready: http://127.0.0.1:{port} (demo http://127.0.0.1:{port}/demo)" in output
    assert f"emulated OSS   http://127.0.0.1:{port + 2}" in output


@pytest.mark.skipif(not FRESH_CLONE, reason="opt-in: VODFC_TEST_FRESH_CLONE=1 (make test-newcomer)")
def test_a_fresh_clone_serves_quickly_with_only_what_serving_needs(tmp_path: Path) -> None:
    # given a fresh clone, and pip's configuration and cache as the user has them
    clone = tmp_path / "vodfc"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    env = {
        **bare_env(Path(os.environ["HOME"])),
        **{k: v for k, v in os.environ.items() if k.startswith(("PIP_", "XDG_")) or k == "PYTHON"},
    }

    # when make serve runs there for the first time
    output, seconds = _make_serve(clone, env, f"PORT={free_port_trio()}", timeout=300)
    print(f"make serve on a fresh clone: ready after {seconds:.1f} s")

    # then it installed no test tool, printed no warning box, and was ready within the budget
    venv_bin = clone / ".venv" / "bin"
    assert [tool for tool in TEST_TOOLS if (venv_bin / tool).exists()] == []
    assert (venv_bin / "vodfc").exists() and (clone / ".venv" / ".installed-devkit").exists()
    assert not re.search(r"\*{20}|!!|Warning", output), output
    assert len([line for line in output.splitlines() if "ready" in line]) == 1
    assert seconds <= BUDGET_SECONDS, f"make serve took {seconds:.1f} s (goal {BUDGET_SECONDS:.0f} s)"
