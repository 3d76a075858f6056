"""FC-like context objects for local invocation and tests (never imported by a deployed function:
:mod:`shared.invocation` reads the real context).

The real ``context`` (FC 2.0 / 3.0, python3.9/3.10) has ``request_id``, ``credentials``
(``access_key_id``, ``access_key_secret``, ``security_token``), ``function`` (``name``, ``handler``,
``memory``, ``timeout``), ``service`` (``name``, ``log_project``, ``log_store``, ``qualifier``,
``version_id``), ``region`` and ``account_id``. python3.12 drops ``credentials`` and ``service``,
so :mod:`shared.invocation` reads every attribute defensively.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ContextCredentials",
    "FakeContext",
    "FunctionMeta",
    "ServiceMeta",
    "make_context",
]


@dataclass(frozen=True)
class ContextCredentials:
    """The STS credentials of the service role; ``repr`` never shows the secret or the token."""

    access_key_id: str = ""
    access_key_secret: str = dataclasses.field(default="", repr=False)
    security_token: str = dataclasses.field(default="", repr=False)


@dataclass(frozen=True)
class FunctionMeta:
    name: str = "local-function"
    handler: str = "index.handler"
    memory: int = 512
    timeout: int = 60
    initializer: str | None = None


@dataclass(frozen=True)
class ServiceMeta:
    name: str = "vodfc"
    log_project: str = ""
    log_store: str = ""
    qualifier: str = "LATEST"
    version_id: str = ""


@dataclass(frozen=True)
class FakeContext:
    """Stands in for FC's ``context`` when invoking a handler locally or in tests."""

    request_id: str = "local-request-0001"
    credentials: ContextCredentials = field(default_factory=ContextCredentials)
    function: FunctionMeta = field(default_factory=FunctionMeta)
    service: ServiceMeta = field(default_factory=ServiceMeta)
    region: str = "cn-shanghai"
    account_id: str = "1234567890123456"
    tracing: Any = None


def make_context(
    request_id: str | None = None,
    *,
    function_name: str = "local-function",
    handler: str = "index.handler",
    credentials: ContextCredentials | None = None,
    region: str = "cn-shanghai",
) -> FakeContext:
    """A :class:`FakeContext` for one local invocation (a fresh UUID request id unless given)."""
    if request_id is None:
        import uuid

        request_id = str(uuid.uuid4())
    return FakeContext(
        request_id=request_id,
        credentials=credentials or ContextCredentials(),
        function=FunctionMeta(name=function_name, handler=handler),
        region=region,
    )
