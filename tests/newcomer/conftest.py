"""A newcomer's first hour: ``vodfc serve`` as a process, started the way the README says.

``Serve`` (tests/served.py) runs ``vodfc serve`` with an explicit environment (PATH, HOME and
what a test adds: nothing of the developer's shell), its data in a temporary directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.served import ROOT, VENV, Serve, bare_env, free_port_trio, port_is_free

__all__ = ["ROOT", "VENV", "Serve", "bare_env", "free_port_trio", "port_is_free", "serve"]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """A not yet started ``vodfc serve`` on free ports; stopped at teardown."""
    server = Serve(port=free_port_trio(), data_dir=tmp_path / "data", home=tmp_path / "home")
    server.home.mkdir()
    yield server
    server.stop()
