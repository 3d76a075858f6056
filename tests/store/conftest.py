"""The store's own suites also run through a transaction-pooling PgBouncer (``pgbouncer``).

A test marked ``direct_postgres`` reaches behind the store to the server itself (a schema chosen
with ``options=``, a connection killed by its application name): its ``pgbouncer`` variant is not
collected.
"""

from __future__ import annotations

import pytest

from tests.conftest import PGBOUNCER_BACKEND, STORE_BACKENDS


@pytest.fixture(params=[*STORE_BACKENDS, PGBOUNCER_BACKEND])
def store_backend(request: pytest.FixtureRequest) -> str:
    """``sqlite``, ``postgres`` and ``pgbouncer`` (the same database behind the pooler)."""
    backend: str = request.param
    return backend


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    direct = [
        item
        for item in items
        if item.get_closest_marker("direct_postgres") is not None
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("store_backend") == "pgbouncer"  # type: ignore[attr-defined]
    ]
    if direct:
        config.hook.pytest_deselected(items=direct)
        items[:] = [item for item in items if item not in direct]
