"""Faults on demand: throttling, 5xx, slow answers, garbage bodies, dropped callbacks.

Counters count *calls that reach an action* (signature already verified), so a test's own
badly-signed probe never eats a fault. ``-1`` means "every call until cleared".
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FaultPlan", "Faults", "VodFault"]

_COUNTERS = (
    "throttle",
    "forbidden",
    "errors",
    "lost_answers",
    "garbage",
    "slow_calls",
    "drop_callbacks",
    "oss_errors",
)


@dataclass
class FaultPlan:
    """What to inject; all zero = behave."""

    throttle: int = 0  # Throttling.User (HTTP 400)
    forbidden: int = 0  # Forbidden (HTTP 403), as when RAM does not grant the action
    errors: int = 0  # InternalError 500 or ServiceUnAvailable 503 (``error_status``)
    lost_answers: int = 0  # the action runs, then the answer is that error (a lost answer)
    error_status: int = 503
    garbage: int = 0  # HTTP 200 with a non-JSON body
    slow_seconds: float = 0.0  # sleep before answering ...
    slow_calls: int = 0  # ... this many calls (-1: all)
    drop_callbacks: int = 0  # callbacks silently not delivered
    oss_errors: int = 0  # OSS answers 503 ServiceUnavailable
    retry_after: int | None = None  # x-acs-retry-after header on throttling answers
    actions: frozenset[str] = frozenset()  # limit VOD faults to these actions (empty: all)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy."""
        return {
            "throttle": self.throttle,
            "forbidden": self.forbidden,
            "errors": self.errors,
            "lost_answers": self.lost_answers,
            "error_status": self.error_status,
            "garbage": self.garbage,
            "slow_seconds": self.slow_seconds,
            "slow_calls": self.slow_calls,
            "drop_callbacks": self.drop_callbacks,
            "oss_errors": self.oss_errors,
            "retry_after": self.retry_after,
            "actions": sorted(self.actions),
        }


@dataclass(frozen=True)
class VodFault:
    """The fault chosen for one OpenAPI call."""

    kind: str  # "throttle" | "forbidden" | "error" | "lost" | "garbage" | "none"
    status: int = 200
    slow_seconds: float = 0.0
    retry_after: int | None = None


def _take(value: int) -> tuple[bool, int]:
    if value == 0:
        return False, 0
    return True, value if value < 0 else value - 1


class Faults:
    """Thread-safe holder of the current :class:`FaultPlan`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plan = FaultPlan()

    def set(self, **changes: Any) -> FaultPlan:
        """Change some fields (others keep their value); returns the new plan."""
        with self._lock:
            plan = self._plan
            for name, value in changes.items():
                if name == "actions":
                    value = frozenset([value] if isinstance(value, str) else (value or ()))
                elif name in _COUNTERS:
                    value = int(value)
                    if value < -1:
                        raise ValueError(f"{name} must be >= -1")
                elif name == "error_status":
                    value = int(value)
                    if value not in (500, 503):
                        raise ValueError("error_status must be 500 or 503")
                elif name == "slow_seconds":
                    value = float(value)
                    if value < 0:
                        raise ValueError("slow_seconds must be >= 0")
                elif name == "retry_after":
                    value = None if value is None else int(value)
                else:
                    raise ValueError(f"unknown fault {name!r}")
                setattr(plan, name, value)
            if changes.get("slow_seconds") and "slow_calls" not in changes and plan.slow_calls == 0:
                plan.slow_calls = -1
            return FaultPlan(**vars(plan))

    def update_from_json(self, data: Mapping[str, Any]) -> FaultPlan:
        """``{"clear": true, ...}`` resets first; other keys as :meth:`set`."""
        changes = dict(data)
        if changes.pop("clear", False):
            self.clear()
        return self.set(**changes)

    def clear(self) -> None:
        """Back to no faults."""
        with self._lock:
            self._plan = FaultPlan()

    def plan(self) -> FaultPlan:
        """A copy of the current plan."""
        with self._lock:
            return FaultPlan(**vars(self._plan))

    def take_vod(self, action: str) -> VodFault:
        """Consume the fault (if any) for one OpenAPI call of ``action``."""
        with self._lock:
            plan = self._plan
            if plan.actions and action not in plan.actions:
                return VodFault("none")
            slow = 0.0
            hit, plan.slow_calls = _take(plan.slow_calls)
            if hit:
                slow = plan.slow_seconds
            hit, plan.throttle = _take(plan.throttle)
            if hit:
                return VodFault("throttle", 400, slow, plan.retry_after)
            hit, plan.forbidden = _take(plan.forbidden)
            if hit:
                return VodFault("forbidden", 403, slow)
            hit, plan.errors = _take(plan.errors)
            if hit:
                return VodFault("error", plan.error_status, slow)
            hit, plan.lost_answers = _take(plan.lost_answers)
            if hit:
                return VodFault("lost", plan.error_status, slow)
            hit, plan.garbage = _take(plan.garbage)
            if hit:
                return VodFault("garbage", 200, slow)
            return VodFault("none", 200, slow)

    def take_callback_drop(self) -> bool:
        """True if this callback attempt must be silently dropped."""
        with self._lock:
            hit, self._plan.drop_callbacks = _take(self._plan.drop_callbacks)
            return hit

    def take_oss_error(self) -> bool:
        """True if this OSS request must fail with 503."""
        with self._lock:
            hit, self._plan.oss_errors = _take(self._plan.oss_errors)
            return hit
