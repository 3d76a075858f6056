"""Dependencies of the services, built lazily once per instance and reused while warm.

:func:`get_deps` builds them from the settings on first use; a test builds its own
:class:`Deps` from injected parts and installs it with :func:`set_deps` (``Deps`` is frozen:
its parts are never swapped in place).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from shared.clock import utcnow

if TYPE_CHECKING:
    from datetime import datetime

    from shared.settings import Settings
    from shared.store import Store
    from shared.vod import VodClient
    from shared.webhooks import Deliverer

__all__ = ["Deps", "get_deps", "new_id", "reset_deps", "set_deps"]


def new_id() -> str:
    """A new opaque upload id (also our VOD ReferenceId: 32 hex characters)."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Deps:
    """What a service needs: settings, the store, the VOD client (through ``vod_source``), a clock,
    an id source and the sender of the app's notifications (``None`` when ``WEBHOOK_URL`` is not
    set)."""

    settings: Settings
    store: Store
    vod_source: Callable[[], VodClient]
    clock: Callable[[], datetime] = utcnow
    new_id: Callable[[], str] = field(default=new_id)
    webhooks: Deliverer | None = None

    @property
    def vod(self) -> VodClient:
        """The VOD client. Only a service path that calls VOD asks for it, so a route that never
        does (status, list, most callbacks) never imports :mod:`shared.vod` and httpx: about a
        tenth of a cold start (tests/test_import_budget.py holds the line)."""
        return self.vod_source()


_cached: Deps | None = None
_context: Any = None  # the newest invocation's FC context: its STS credentials are the ones used


def _instance_vod(settings: Settings) -> VodClient:
    from shared.vod import get_vod_client

    return get_vod_client(settings, _context)


def get_deps(context: Any = None) -> Deps:
    """The instance's dependencies; the store connects and the VOD client dials on first use."""
    global _cached, _context
    if context is not None:
        # FC hands each invocation the role's current STS credentials: the newest are used.
        _context = context
    if _cached is None:
        from shared.settings import get_settings
        from shared.store import get_store

        settings = get_settings()
        webhooks = None
        if settings.webhook_url:
            from shared.webhooks import Deliverer

            webhooks = Deliverer(settings)
        _cached = Deps(
            settings=settings,
            store=get_store(settings),
            vod_source=partial(_instance_vod, settings),
            webhooks=webhooks,
        )
    return _cached


def set_deps(deps: Deps | None) -> None:
    """Install ``deps`` as the instance's dependencies (tests, tools); ``None`` forgets them.

    The notification sender belongs to its ``Deps``: the one replaced is closed.
    """
    global _cached
    old, _cached = _cached, deps
    if old is not None and old.webhooks is not None and (deps is None or deps.webhooks is not old.webhooks):
        old.webhooks.close()


def reset_deps() -> None:
    """Forget the cached dependencies (tests; after settings change)."""
    set_deps(None)
