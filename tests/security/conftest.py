"""The security and fault suite reuses the functional ``stack`` (real handlers, respx-mocked VOD)."""

from __future__ import annotations

from tests.functional.conftest import stack, stack_env  # noqa: F401  (fixtures used by this package)
