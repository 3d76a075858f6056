"""Fixtures shared by every test package.

Store fixtures:

- ``postgres_url`` (session): a private PostgreSQL database for this run (see ``tests/pg.py``);
  skips without PostgreSQL, fails under ``CI=true``.
- ``store_url``: parametrised over ``sqlite`` (a file in ``tmp_path``) and ``postgres``
  (marked ``postgres``; tables emptied before each test); ``make_store()`` builds fresh,
  uncached store instances on it (closed at teardown); ``store`` is one migrated instance.
  A test that asks for any of them runs once per backend.
- ``sqlite_store``: a migrated SQLite store in ``tmp_path``, for tests that need just one store.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.store import Store, create_store, reset_stores
from tests import pg


def _under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def _fresh_store_cache() -> Iterator[None]:
    """No test sees another test's cached ``open_store`` instances."""
    yield
    reset_stores()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL database private to this test session (dropped at the end)."""
    with pg.session_database() as (url, note):
        if url is None:
            if _under_ci():
                pytest.fail(f"PostgreSQL is required under CI=true and none is available: {note}")
            pytest.skip(f"no PostgreSQL available ({note}); set ${pg.ENV_URL} to run these tests")
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL per backend, with an empty, migrated schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vodfc.db'}"
    url: str = request.getfixturevalue("postgres_url")
    setup = create_store(url)
    try:
        setup.migrate()
    finally:
        setup.close()
    pg.truncate(url)
    return url


@pytest.fixture
def make_store(store_url: str) -> Iterator[Callable[..., Store]]:
    """Factory of fresh (uncached, not yet connected) stores on ``store_url``."""
    made: list[Store] = []

    def make(**kwargs: Any) -> Store:
        store = create_store(store_url, **kwargs)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    """One migrated store per backend."""
    store = make_store()
    store.migrate()
    return store


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store in ``tmp_path``."""
    store = create_store(f"sqlite:///{tmp_path / 'vodfc.db'}")
    store.migrate()
    yield store
    store.close()
