"""Fixtures shared by every test package.

Every test starts from a clean environment (httpx's ``clean_environ`` is the model): no vodfc
setting and no ``ALIBABA_CLOUD_*`` variable of the developer's shell is visible, and every cached
factory (settings, dependencies, VOD client, stores, logging level) is reset before and after.
A test that needs a setting sets it (``monkeypatch.setenv``) or builds ``Settings(...)``.

Store fixtures:

- ``postgres_url`` (session): a private PostgreSQL database for this run (see ``tests/pg.py``);
  skips without PostgreSQL, fails under ``CI=true``.
- ``pgbouncer_url`` (session): the same database through a private PgBouncer in transaction
  pooling mode (``tests/pgbouncer.py``), with fewer server connections than the tests' clients;
  skips without a ``pgbouncer`` binary, fails under ``CI=true``.
- ``store_url``: parametrised by ``store_backend`` over ``STORE_BACKENDS``: ``sqlite`` (a file in
  ``tmp_path``) and ``postgres`` (marked ``postgres``; tables emptied before each test);
  ``tests/store/conftest.py`` adds ``pgbouncer`` for the store's own suites. ``store_options``
  are the keyword arguments a deployment on that backend would pass (``prepare=False`` through
  the pooler: ``DB_PREPARED_STATEMENTS=false``). ``make_store()`` builds fresh, uncached store
  instances with them (closed at teardown); ``store`` is one migrated instance. A test that asks
  for any of them runs once per backend.
- ``sqlite_store``: a migrated SQLite store in ``tmp_path``, for tests that need just one store.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest

from shared.services.deps import reset_deps
from shared.settings import ENV_NAMES, get_settings
from shared.store import Store, create_store, reset_stores
from shared.vod import reset_vod_client
from shared.webhooks import Deliverer
from tests import pg, pgbouncer


def _under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def count_pending(store: Store, owner: str) -> int:
    """How many of ``owner``'s uploads count against the quota (``creating`` or ``created``).

    Read straight from the database: the store has no such operation, production never needs it.
    """
    sql = "SELECT count(*) FROM uploads WHERE owner = ? AND status IN ('creating', 'created')"
    return int(store._read(lambda cur: store._exec(cur, sql, (owner,)).fetchone()[0]))  # type: ignore[attr-defined]


def import_oracle(name: str) -> ModuleType:
    """Import a test oracle (an official SDK); skip without it, but fail under ``CI=true``."""
    if _under_ci():
        return importlib.import_module(name)
    return pytest.importorskip(name)


def _reset_instance_state() -> None:
    get_settings.cache_clear()
    reset_deps()
    reset_vod_client()
    reset_stores()


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No setting from the shell, and no cached instance state from another test."""
    for name in list(os.environ):
        if name.upper() in _SETTING_NAMES or name.upper().startswith("ALIBABA_CLOUD_"):
            monkeypatch.delenv(name)
    _reset_instance_state()
    yield
    _reset_instance_state()


_SETTING_NAMES = frozenset(ENV_NAMES)


@pytest.fixture(autouse=True)
def _close_deliverers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every ``Deliverer`` a test builds has its kept-alive connections closed at teardown (a
    socket left to the garbage collector is a ResourceWarning, an error here)."""
    made: list[Deliverer] = []
    init = Deliverer.__init__

    def tracked(self: Deliverer, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Deliverer, "__init__", tracked)
    yield
    for deliverer in made:
        deliverer.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL database private to this test session (dropped at the end)."""
    with pg.session_database() as (url, note):
        if url is None:
            if _under_ci():
                pytest.fail(f"PostgreSQL is required under CI=true and none is available: {note}")
            pytest.skip(f"no PostgreSQL available ({note}); set ${pg.ENV_URL} to run these tests")
        yield url


@pytest.fixture(scope="session")
def pgbouncer_url(postgres_url: str) -> Iterator[str]:
    """``postgres_url``'s database through a private PgBouncer (transaction pooling, 3 server
    connections for many clients)."""
    if "options" in postgres_url:
        # A schema chosen with ``options=-csearch_path``: PgBouncer before 1.20 refuses the
        # ``options`` startup parameter, so the session's database cannot be reached through it.
        _unavailable("the test database is a schema chosen with options=, which PgBouncer refuses")
    try:
        bouncer = pgbouncer.start(pgbouncer.server_url_of(postgres_url), pool_size=3)
    except pgbouncer.Unavailable as exc:
        _unavailable(str(exc))
    try:
        yield bouncer.url(pgbouncer.dbname_of(postgres_url))
    finally:
        bouncer.stop()


def _unavailable(reason: str) -> NoReturn:
    if _under_ci():
        pytest.fail(f"PgBouncer is required under CI=true: {reason}")
    pytest.skip(f"no PgBouncer ({reason}); `make test` installs Debian's pgbouncer when apt is usable")


STORE_BACKENDS: list[Any] = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
PGBOUNCER_BACKEND = pytest.param("pgbouncer", marks=[pytest.mark.postgres, pytest.mark.pgbouncer])


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request: pytest.FixtureRequest) -> str:
    """Which database the store tests run on (``sqlite``, ``postgres``, ``pgbouncer``)."""
    backend: str = request.param
    return backend


@pytest.fixture
def store_url(store_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL per backend, with an empty, migrated schema."""
    if store_backend == "sqlite":
        return f"sqlite:///{tmp_path / 'vodfc.db'}"
    direct: str = request.getfixturevalue("postgres_url")
    pg.migrate(direct)
    pg.truncate(direct)
    url: str = request.getfixturevalue("pgbouncer_url") if store_backend == "pgbouncer" else direct
    return url


@pytest.fixture
def store_options(store_backend: str) -> dict[str, Any]:
    """What a deployment on ``store_backend`` passes to the store: through a transaction pooler,
    no server-side prepared statements (``DB_PREPARED_STATEMENTS=false``)."""
    return {"prepare": False} if store_backend == "pgbouncer" else {}


@pytest.fixture
def make_store(store_url: str, store_options: dict[str, Any]) -> Iterator[Callable[..., Store]]:
    """Factory of fresh (uncached, not yet connected) stores on ``store_url``."""
    made: list[Store] = []

    def make(**kwargs: Any) -> Store:
        store = create_store(store_url, **{**store_options, **kwargs})
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
