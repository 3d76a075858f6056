"""Delivering the app's notifications: right after each change, then from every cleanup run.

The store writes a notification into its outbox in the transaction of the change itself
(:mod:`shared.store`); this module sends what is due through :class:`shared.webhooks.Deliverer`:

- **right after a change** (:func:`deliver_pending` with ``upload_id``: the callback path, the
  upload routes): that upload's oldest due notification (the change's own, unless an earlier
  one is still waiting), within what the caller's budget leaves, and never failing the caller
  (its answer is the same whatever the receiver does): one claim, one POST, one write. The
  callback path spares the claim: the event's own statement leases the change's notification
  (:func:`lease_seconds`, ``Store.apply_event``) and hands it over as ``leased``;
- **from every cleanup run** (:func:`deliver_due`): every due notification, oldest first, within
  the run's budget, with a summary for the run's log line.

``WEBHOOK_DELIVERY=timer`` leaves every notification to the cleanup runs: a change then costs its
caller only the outbox row, never a wait on the app's receiver (which, on the callback path, is
most of what notifications cost: bench/README.md, section 4), and the app hears of it at the next
run (FC's timer: every minute).

A receiver sees each upload's changes in order: the store hands a notification out only once
every earlier one of its upload is delivered or dead, and leases keep two workers off one row.
Delivery is at least once: an answer lost after the receiver acted (a timeout, a crash before
the row is marked) means the same ``webhook-id`` again, which receivers dedupe on.

What an answer does (Standard Webhooks, "Operational considerations",
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):

- **2xx**: delivered.
- **410 Gone**: the endpoint (this ``WEBHOOK_URL``) is disabled in the store and nothing more
  is sent to it; the notification stays pending, like every later one, until the operator runs
  ``vodfc webhooks enable``, and then all of them go out in order (an instance rereads the
  endpoint's state at most once a minute, a cleanup run at its start).
- **anything else, a timeout or no connection**: due again after the schedule's next step
  (:data:`shared.webhooks.RETRY_DELAYS`, jittered; a longer ``Retry-After`` honoured up to an
  hour); after the last step the notification is **dead**, logged and counted
  (``vodfc webhooks list``, ``replay``).
- **timeouts, no connection, 429, 502, 503, 504** also throttle: the rest of a cleanup run sends
  nothing more, and this instance pauses its deliveries right after changes until the failed
  notification is due again (at most five minutes).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from shared import errors

if TYPE_CHECKING:
    from shared.services.deps import Deps
    from shared.store import Notification
    from shared.webhooks import Deliverer, Outcome

__all__ = ["ROUTE_BUDGET_SECONDS", "DeliveryCounts", "deliver_due", "deliver_pending", "lease_seconds"]

log = logging.getLogger("vodfc.notifications")

#: What an upload route (create, delete) may spend on its notification before it answers: the
#: client is waiting; a slower receiver gets it from the timer instead.
ROUTE_BUDGET_SECONDS: Final = 2.0
_MIN_ATTEMPT_SECONDS: Final = 0.25  # less left than this: the attempt is left to the timer
# Notifications sent right after one change: its own. A backlog (an earlier one failed) is the
# timer's, and sending one more would cost a claim that finds nothing in the usual case.
_IMMEDIATE_LIMIT: Final = 1
_BATCH: Final = 10  # notifications cleanup claims at once (one per upload at most)
_LEASE_MARGIN_SECONDS: Final = 30.0  # a claim outlives its attempt by this much
_ENDPOINT_RECHECK_SECONDS: Final = 60.0  # how long an instance trusts what it read of the endpoint
_MAX_PAUSE_SECONDS: Final = 300.0


@dataclass
class DeliveryCounts:
    """What one call did: notifications delivered, failed (due again), dead; store or other
    errors; and why nothing was sent when the endpoint is disabled."""

    delivered: int = 0
    failed: int = 0
    dead: int = 0
    errors: int = 0
    disabled: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lease_seconds(deps: Deps) -> float | None:
    """How long a change may lease its own notification for :func:`deliver_pending` to send right
    after the commit (``Store.apply_event``'s ``lease_seconds``); ``None`` when nothing would be
    sent then (notifications off, paused, the endpoint known to be disabled). A lease taken and
    not used (the budget ran out meanwhile) only delays that notification to the first timer run
    after the lease ends."""
    deliverer = deps.webhooks
    if deliverer is None or not _sends_right_after(deps, deliverer):
        return None
    known, reason = deliverer.remembered_endpoint(_ENDPOINT_RECHECK_SECONDS)
    if known and reason is not None:
        return None
    return deps.settings.webhook_timeout_seconds + _LEASE_MARGIN_SECONDS


def deliver_pending(
    deps: Deps,
    *,
    seconds: float,
    upload_id: str | None = None,
    limit: int | None = None,
    leased: Notification | None = None,
) -> DeliveryCounts:
    """Send the due notifications (of ``upload_id`` only, when given) within ``seconds``, starting
    with ``leased`` (a notification the caller holds the lease of: sent without a claim).

    A no-op when notifications are off, and for one upload's change (``upload_id``) when
    ``WEBHOOK_DELIVERY`` is ``timer``. Never raises: a failure of the store is counted in
    ``errors`` and logged, and the notifications wait for the next call.
    """
    counts = DeliveryCounts()
    deliverer = deps.webhooks
    if deliverer is None:
        return counts
    immediate = upload_id is not None
    if immediate and not _sends_right_after(deps, deliverer):
        return counts
    deadline = deliverer.monotonic() + seconds
    try:
        counts.disabled = _disabled(deps, deliverer, fresh=not immediate)
        if counts.disabled is None:
            cap = limit if limit is not None else (_IMMEDIATE_LIMIT if immediate else 1_000_000)
            _send(deps, deliverer, counts, deadline=deadline, upload_id=upload_id, limit=cap, leased=leased)
    except errors.VodfcError as exc:
        counts.errors += 1
        log.warning("notifications not delivered", extra={"code": exc.code})
    except Exception:
        # A bug must not change what the caller answers; it is logged with its traceback.
        counts.errors += 1
        log.exception("notifications not delivered")
    return counts


def deliver_due(deps: Deps, *, seconds: float) -> dict[str, Any]:
    """Cleanup's step: every due notification within ``seconds``; the run line's summary
    (``delivered``, ``failed``, ``dead``, ``pending``, ``disabled``), empty when notifications are off."""
    if deps.webhooks is None:
        return {}
    summary = deliver_pending(deps, seconds=seconds).to_dict()
    try:
        summary["pending"] = deps.store.notification_counts().pending
    except errors.VodfcError:
        summary["errors"] += 1
    if summary["disabled"] is not None:
        log.warning(
            "notifications are not sent: the endpoint is disabled",
            extra={"host": deps.webhooks.host, "reason": summary["disabled"], "fix": "vodfc webhooks enable"},
        )
    if not summary["errors"]:
        del summary["errors"]
    return summary


def _sends_right_after(deps: Deps, deliverer: Deliverer) -> bool:
    """Whether a change's notification goes out right after it: not with ``WEBHOOK_DELIVERY=timer``,
    nor while this instance pauses after a throttling answer."""
    return deps.settings.webhook_delivery == "immediate" and not deliverer.paused()


def _disabled(deps: Deps, deliverer: Deliverer, *, fresh: bool) -> str | None:
    known, reason = deliverer.remembered_endpoint(0.0 if fresh else _ENDPOINT_RECHECK_SECONDS)
    if not known:
        reason = deps.store.webhook_endpoint_disabled(deliverer.url)
        deliverer.remember_endpoint(reason)
    return reason


def _send(
    deps: Deps,
    deliverer: Deliverer,
    counts: DeliveryCounts,
    *,
    deadline: float,
    upload_id: str | None,
    limit: int,
    leased: Notification | None,
) -> None:
    timeout = deps.settings.webhook_timeout_seconds
    lease = timeout + _LEASE_MARGIN_SECONDS
    sent = 0
    while sent < limit and deadline - deliverer.monotonic() >= _MIN_ATTEMPT_SECONDS:
        if leased is not None:
            batch, leased = [leased], None
        else:
            # One at a time for one upload (each claim hands out its next one only), batches otherwise.
            size = 1 if upload_id is not None else min(_BATCH, limit - sent)
            batch = deps.store.claim_notifications(
                limit=size, lease_seconds=lease, now=deps.clock(), upload_id=upload_id
            )
        if not batch:
            return
        for notification in batch:
            left = deadline - deliverer.monotonic()
            if left < _MIN_ATTEMPT_SECONDS:
                return  # the rest keeps its lease and is due again when that ends
            sent += 1
            outcome = deliverer.attempt(
                notification.notification_id, notification.body, timeout=min(timeout, left)
            )
            if not _record(deps, deliverer, notification, outcome, counts):
                return


def _record(
    deps: Deps, deliverer: Deliverer, notification: Notification, outcome: Outcome, counts: DeliveryCounts
) -> bool:
    """Write the attempt's outcome; whether to go on sending."""
    now = deps.clock()
    nid = notification.notification_id
    if outcome.delivered:
        deps.store.notification_delivered(nid, status=outcome.status or 200, now=now)
        counts.delivered += 1
        return True
    error = outcome.error or f"HTTP {outcome.status}"
    if outcome.gone:
        reason = f"HTTP 410 Gone at {now:%Y-%m-%dT%H:%M:%SZ}"
        deps.store.set_webhook_endpoint(deliverer.url, disabled_reason=reason, now=now)
        deliverer.remember_endpoint(reason)
        # Still pending, due at once: the first to go out when the endpoint is enabled again.
        deps.store.notification_failed(nid, status=outcome.status, error=error, retry_at=now, now=now)
        counts.failed += 1
        counts.disabled = reason
        log.warning(
            "webhook endpoint disabled: it answered 410 Gone",
            extra={"host": deliverer.host, "notification_id": nid, "fix": "vodfc webhooks enable"},
        )
        return False
    attempts = notification.attempts + 1
    delay = deliverer.next_attempt(attempts, outcome.retry_after)
    if delay is None:
        deps.store.notification_failed(nid, status=outcome.status, error=error, retry_at=None, now=now)
        counts.dead += 1
        log.warning(
            "notification dead: no attempt was delivered",
            extra={"notification_id": nid, "type": notification.type, "attempts": attempts, "error": error},
        )
    else:
        retry_at = now + timedelta(seconds=delay)
        deps.store.notification_failed(nid, status=outcome.status, error=error, retry_at=retry_at, now=now)
        counts.failed += 1
        log.warning(
            "notification not delivered; retried later",
            extra={"notification_id": nid, "attempts": attempts, "error": error, "retry_in": round(delay, 1)},
        )
    if outcome.throttle:
        deliverer.pause(min(delay if delay is not None else _MAX_PAUSE_SECONDS, _MAX_PAUSE_SECONDS))
        return False
    return True
