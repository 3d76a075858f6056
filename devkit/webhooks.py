"""``vodfc webhooks``: the operator's tools for the app's notifications (the store's outbox).

- ``list``: how many notifications are pending, delivered and dead, whether the endpoint is
  disabled, and the latest failures;
- ``replay --id msg_... | --since 2h``: delivered or dead notifications become pending again
  with their original ``webhook-id`` (receivers dedupe on it); the next cleanup run sends them;
- ``enable``: resume deliveries to an endpoint that answered 410 Gone;
- ``verify --secret whsec_... < request``: check a captured request (headers, a blank line, the
  body, as ``nc -l`` or a proxy shows it) with :func:`shared.webhooks.verify`, the verifier the
  local sink uses and the tests hold to the ``standardwebhooks`` package.

The store is ``--database-url``, else ``DATABASE_URL`` (default: the SQLite of ``vodfc serve``).
Only ``argparse`` is imported here; each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.store import Notification, Store

__all__ = ["add_parser", "parse_captured_request", "parse_since"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_REQUEST_LINE = re.compile(rb"^[A-Z]+ \S+ HTTP/\d(\.\d)?$")


def add_parser(sub: Any) -> None:
    """Add ``webhooks`` and its subcommands to ``vodfc``'s subparsers."""
    p = sub.add_parser("webhooks", help="the app's notifications: list, replay, enable, verify")
    p.add_argument("--database-url", help="default: DATABASE_URL, else vodfc serve's SQLite")
    commands = p.add_subparsers(dest="webhooks_command", required=True)

    c = commands.add_parser("list", help="counts, the endpoint's state and the latest failures")
    c.add_argument("--limit", type=int, default=10, help="failures shown (default 10)")
    c.set_defaults(func=cmd_list)

    c = commands.add_parser("replay", help="send delivered or dead notifications again (same id)")
    which = c.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", dest="notification_id", help="one notification, e.g. msg_<upload>_3")
    which.add_argument("--since", help="every one created since: 90m, 2h, 3d or an ISO 8601 time")
    c.set_defaults(func=cmd_replay)

    c = commands.add_parser("enable", help="resume deliveries after the endpoint answered 410 Gone")
    c.add_argument("--url", help="default: WEBHOOK_URL")
    c.set_defaults(func=cmd_enable)

    c = commands.add_parser(
        "verify",
        help="check a captured request read from stdin",
        description="Read one HTTP request (request line optional, headers, a blank line, the body) "
        "from stdin and check its Standard Webhooks signature. Exit 0 when it verifies, 1 otherwise.",
    )
    c.add_argument(
        "--secret",
        action="append",
        help="whsec_... (repeatable; default: WEBHOOK_SECRET and WEBHOOK_SECRET_PREVIOUS)",
    )
    c.add_argument("--any-time", action="store_true", help="skip the 5-minute timestamp window")
    c.set_defaults(func=cmd_verify)


# --- parsing helpers (pure) ---------------------------------------------------------------------


def parse_since(text: str, *, now: datetime) -> datetime:
    """``90m``/``2h``/``3d``/``45s`` before ``now``, or an ISO 8601 time (``Z`` allowed; UTC if naive)."""
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match:
        return now - timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since takes 90m, 2h, 3d or an ISO 8601 time, not {text!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def parse_captured_request(raw: bytes) -> tuple[dict[str, str], bytes]:
    """``(headers, body)`` of a captured HTTP request: an optional request line, ``Name: value``
    lines, a blank line, the body (cut to ``Content-Length`` when the capture holds more)."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = raw.partition(separator)
        if found:
            break
    else:
        raise ValueError("no blank line between the headers and the body")
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    if lines and _REQUEST_LINE.match(lines[0].strip()):
        lines = lines[1:]
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not name.strip():
            raise ValueError(f"not a header line: {line[:60]!r}")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length", "")
    if length.isdigit() and len(body) > int(length):
        body = body[: int(length)]
    return headers, body


# --- commands -------------------------------------------------------------------------------------


def _store(args: argparse.Namespace) -> Store:
    from shared.settings import get_settings
    from shared.store import create_store

    settings = get_settings()
    return create_store(
        args.database_url or settings.database_url, connect_timeout=settings.db_connect_timeout
    )


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or url


def _row(n: Notification) -> str:
    when = (n.next_attempt_at if n.state == "pending" else n.finished_at) or n.created_at
    label = "next" if n.state == "pending" else "at"
    return (
        f"  {n.notification_id}  {n.type:<24} {n.state:<8} {n.attempts} attempt(s)  "
        f"{n.last_error or '-'}  {label} {when:%Y-%m-%dT%H:%M:%SZ}"
    )


def cmd_list(args: argparse.Namespace) -> int:
    from shared.settings import get_settings

    store = _store(args)
    try:
        counts = store.notification_counts()
        url = get_settings().webhook_url
        if url:
            reason = store.webhook_endpoint_disabled(url)
            state = f"DISABLED ({reason}; vodfc webhooks enable)" if reason else "enabled"
            print(f"endpoint   {_host(url)}: {state}")
        else:
            print("endpoint   WEBHOOK_URL is not set here (vodfc serve sets its own sink)")
        print(f"pending    {counts.pending}\ndelivered  {counts.delivered}\ndead       {counts.dead}")
        failures = [
            *store.list_notifications(state="dead", limit=args.limit),
            *(n for n in store.list_notifications(state="pending", limit=args.limit) if n.attempts),
        ]
        failures.sort(key=lambda n: n.created_at, reverse=True)
        if failures:
            print("\nlatest failures:")
            for n in failures[: args.limit]:
                print(_row(n))
    finally:
        store.close()
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from shared.settings import get_settings

    now = datetime.now(timezone.utc)
    try:
        since = parse_since(args.since, now=now) if args.since else None
    except ValueError as exc:
        print(f"vodfc webhooks replay: {exc}", file=sys.stderr)
        return 2
    store = _store(args)
    try:
        count = store.requeue_notifications(now=now, notification_id=args.notification_id, since=since)
        print(f"{count} notification(s) pending again, with their original id")
        if count:
            print("they go out at the next cleanup run (vodfc serve: every --cleanup-every seconds)")
        url = get_settings().webhook_url
        if url and store.webhook_endpoint_disabled(url):
            print(f"the endpoint {_host(url)} is disabled: run `vodfc webhooks enable` first")
    finally:
        store.close()
    return 0 if count else 1


def cmd_enable(args: argparse.Namespace) -> int:
    from shared.settings import get_settings

    url = args.url or get_settings().webhook_url
    if not url:
        print("vodfc webhooks enable: no WEBHOOK_URL set; give --url", file=sys.stderr)
        return 2
    store = _store(args)
    try:
        was = store.webhook_endpoint_disabled(url)
        store.set_webhook_endpoint(url, disabled_reason=None, now=datetime.now(timezone.utc))
        pending = store.notification_counts().pending
    finally:
        store.close()
    state = f"was disabled: {was}" if was else "was not disabled"
    print(f"{_host(url)} enabled ({state}); {pending} pending go out at the next cleanup run")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import json

    from shared import errors
    from shared.settings import get_settings
    from shared.webhooks import verify

    secrets = tuple(args.secret or get_settings().webhook_secrets)
    if not secrets:
        print("vodfc webhooks verify: give --secret whsec_... (or set WEBHOOK_SECRET)", file=sys.stderr)
        return 2
    raw = sys.stdin.buffer.read()
    try:
        headers, body = parse_captured_request(raw)
        index = verify(secrets, headers, body, now=time.time(), tolerance=None if args.any_time else 300.0)
    except (ValueError, errors.InvalidSignature) as exc:
        print(f"NOT verified: {exc}")
        return 1
    what = ""
    try:
        payload = json.loads(body)
        data = payload.get("data") or {}
        media = data.get("VideoId") or data.get("ImageId") or data.get("MediaId")
        what = f" {payload.get('type')} of {media} (Sequence {data.get('Sequence')})"
    except (ValueError, AttributeError):
        pass
    print(
        f"verified: {headers['webhook-id']}{what}, signed at {headers['webhook-timestamp']} "
        f"with key {index + 1} of {len(secrets)}",
    )
    return 0
