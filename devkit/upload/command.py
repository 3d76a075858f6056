"""``vodfc upload FILE --api URL``: ask for a credential, print the id, send, wait for ``ready``.

stdout carries the result (the id line first, the final record last); stderr the progress and
the one-line errors. Every failure leaves by :meth:`Session.fail`, with its class's exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shlex
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from devkit.upload.api import (
    ATTACHED,
    IMAGE,
    VIDEO,
    ApiError,
    Client,
    MediaKind,
    attached_body,
    image_body,
    video_body,
    wait_until_final,
)
from devkit.upload.errors import Interrupted, PolicyError, ProcessingError, UploadError, UsageError
from devkit.upload.logs import library_logs, log
from devkit.upload.progress import make_view
from devkit.upload.state import FileIdentity, StateDir, UploadState, default_state_dir
from devkit.upload.storage import DEFAULT_PART_SIZE, TransferOptions, object_of, transfer

__all__ = ["Plan", "Session", "parse_size", "plan_from_args", "upload"]

MIN_PART_SIZE = 100 * 1024  # OSS: every part but the last
MAX_PART_SIZE = 5 * 1024**3
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str, what: str) -> int:
    """``1048576``, ``512K``, ``1.5M``, ``2GiB`` (binary multiples, as curl's --limit-rate)."""
    found = _SIZE.match(text)
    if not found:
        raise UsageError(f"{what}: not a size: {text!r} (e.g. 512K, 2M)")
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[found.group(2).lower()]
    return int(float(found.group(1)) * scale)


@dataclass(frozen=True)
class Plan:
    """The command line, checked."""

    path: Path
    file: FileIdentity
    kind: MediaKind
    kind_key: str
    body: dict[str, Any]
    api: str
    token: str | None
    options: TransferOptions
    resume: bool
    restart: bool
    wait: bool
    timeout: float
    quiet: bool
    debug: bool
    state_dir: Path
    kind_args: tuple[str, ...]
    state_dir_given: bool


def _kind(args: argparse.Namespace) -> tuple[MediaKind, str, tuple[str, ...]]:
    if args.image_type is not None and not args.image:
        raise UsageError("--image-type goes with --image")
    if args.image:
        image_type = args.image_type or "default"
        return IMAGE, f"image:{image_type}", ("--image", "--image-type", image_type)
    if args.attached:
        return ATTACHED, f"attached:{args.attached}", ("--attached", args.attached)
    return VIDEO, "video", ()


def _body(kind: MediaKind, args: argparse.Namespace, title: str, path: Path) -> dict[str, Any]:
    if kind is IMAGE:
        return image_body(title, path, args.image_type or "default")
    if kind is ATTACHED:
        return attached_body(args.attached, title, path)
    return video_body(title, path)


def _options(args: argparse.Namespace) -> TransferOptions:
    part_size = parse_size(args.part_size, "--part-size") if args.part_size else DEFAULT_PART_SIZE
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise UsageError("--part-size must be between 100K and 5G (OSS's limits for a part)")
    limit_rate = parse_size(args.limit_rate, "--limit-rate") if args.limit_rate else None
    if limit_rate is not None and limit_rate < 1024:
        raise UsageError("--limit-rate must be at least 1K (bytes per second)")
    if args.max_refreshes is not None and args.max_refreshes < 0:
        raise UsageError("--max-refreshes must be 0 or more")
    return TransferOptions(part_size=part_size, max_refreshes=args.max_refreshes, limit_rate=limit_rate)


def plan_from_args(args: argparse.Namespace) -> Plan:
    """Check the arguments and the file; :class:`UsageError` otherwise."""
    path = Path(args.file).expanduser()
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    try:
        with path.open("rb"):
            pass
        file = FileIdentity.of(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    kind, kind_key, kind_args = _kind(args)
    title = args.title or path.stem
    return Plan(
        path=path,
        file=file,
        kind=kind,
        kind_key=kind_key,
        body=_body(kind, args, title, path),
        api=args.api.rstrip("/"),
        token=args.token or None,
        options=_options(args),
        resume=args.resume,
        restart=args.restart,
        wait=not args.no_wait,
        timeout=args.timeout,
        quiet=args.quiet,
        debug=args.debug,
        state_dir=Path(args.state_dir).expanduser() if args.state_dir else default_state_dir(),
        kind_args=kind_args,
        state_dir_given=bool(args.state_dir),
    )


class Session:
    """One run of the command; knows enough about its progress to say what to do after a failure."""

    def __init__(self, plan: Plan, states: StateDir) -> None:
        self.plan = plan
        self.states = states
        self.key = StateDir.key(plan.file, plan.api, plan.kind_key)
        self.options = plan.options
        self.media_id: str | None = None
        self.pending = False  # the media exists and its file is not (known to be) stored
        self.state_kept = False  # and it is recorded: --resume can continue it
        self.sending = False  # the libraries have logged something worth reading

    # --- output ---------------------------------------------------------------------------------

    def say(self, message: str) -> None:
        if not self.plan.quiet:
            print(f"  {message}", file=sys.stderr, flush=True)

    def media_url(self, media_id: str) -> str:
        return f"{self.plan.api}{self.plan.kind.route}/{media_id}"

    def delete_command(self, media_id: str) -> str:
        auth = '-H "Authorization: Bearer $VODFC_TOKEN" ' if self.plan.token else ""
        return f"curl -X DELETE {auth}{self.media_url(media_id)}"

    def again_command(self, flag: str) -> str:
        plan = self.plan
        argv = ["vodfc", "upload", plan.file.path, "--api", plan.api, *plan.kind_args]
        if plan.state_dir_given:
            argv += ["--state-dir", str(plan.state_dir)]
        return shlex.join([*argv, flag])

    def leftover_hints(self) -> list[str]:
        """What to do with the unfinished upload this run leaves behind."""
        if self.media_id is None or not self.pending:
            return []
        id_field, cancel = self.plan.kind.id_field, self.delete_command(self.media_id)
        if not self.state_kept:
            return [f"{id_field} {self.media_id} is not uploaded; to cancel it: {cancel}"]
        if self.plan.kind.refreshable:
            return [
                f"{id_field} {self.media_id} is not uploaded yet; resume: {self.again_command('--resume')}",
                f"or cancel it: {cancel}",
            ]
        return [
            f"{id_field} {self.media_id} is not uploaded; upload anew: {self.again_command('--restart')}",
            f"and cancel the old one: {cancel}",
        ]

    def fail(self, exc: UploadError, *, unexpected: BaseException | None = None) -> int:
        """Print the one-line error and its hints; the exit code of its class."""
        # With --debug the log is echoed on stderr, traceback included.
        log.error("failed (exit %d): %s", exc.exit_code, exc.message, exc_info=unexpected or exc.__cause__)
        print(f"vodfc upload: {exc.message}", file=sys.stderr)
        hints = [exc.hint] if exc.hint else []
        hints += self.leftover_hints()
        if unexpected is not None or (self.sending and not isinstance(exc, Interrupted)):
            hints.append(f"details: {self.states.log_path}")
        for hint in hints:
            print(f"  {hint}", file=sys.stderr)
        sys.stderr.flush()
        return exc.exit_code

    def interrupted(self) -> Interrupted:
        if self.media_id is None:
            return Interrupted("interrupted before any upload started")
        if self.pending:
            return Interrupted("interrupted")
        id_field = self.plan.kind.id_field
        return Interrupted(
            f"interrupted while waiting for {id_field} {self.media_id}; the file itself is uploaded",
            hint=f"its status: curl {self.media_url(self.media_id)}",
        )

    def announce(self, media_id: str) -> None:
        """The id, on stdout, before anything is sent: whatever happens next, it is known."""
        self.media_id = media_id
        self.pending = True
        print(f"{self.plan.kind.id_field} {media_id}", flush=True)

    # --- the flow -------------------------------------------------------------------------------

    def run(self) -> int:
        plan = self.plan
        with Client(plan.api, plan.token) as client:
            creds = self.start(client)
            if creds is not None:
                self.send(client, creds)
            assert self.media_id is not None
            if not plan.wait:
                return 0
            record = wait_until_final(client, self.media_id, plan.timeout, kind=plan.kind, quiet=plan.quiet)
        print(json.dumps(record, ensure_ascii=False, indent=2), flush=True)
        if record.get("Status") != "ready":
            error = record.get("Error")
            detail = f": {error}" if error else ""
            raise ProcessingError(
                f"{plan.kind.id_field} {self.media_id} ended {record.get('Status')}{detail}"
            )
        return 0

    def start(self, client: Client) -> dict[str, Any] | None:
        """A credential to send with (None: nothing left to send), the id announced."""
        plan = self.plan
        existing = self.states.load(self.key)
        if existing is not None and not (plan.resume or plan.restart):
            raise UsageError(
                f"an interrupted upload of this file exists ({plan.kind.id_field} {existing.media_id}, "
                f"started {existing.created_at}); use --resume or --restart",
                hint=f"--restart leaves it as it is; to cancel it: {self.delete_command(existing.media_id)}",
            )
        if existing is not None and (plan.restart or not plan.kind.refreshable):
            self.states.remove(self.key, existing)
            reason = "" if plan.restart else f" ({plan.kind.name} credentials cannot be refreshed)"
            self.say(
                f"starting over{reason}; the earlier {plan.kind.id_field} {existing.media_id} is left "
                f"as it is; to cancel it: {self.delete_command(existing.media_id)}"
            )
            existing = None
        if existing is not None:
            return self.resume(client, existing)
        if plan.resume:
            self.say("no interrupted upload of this file; starting a new one")
        return self.create(client)

    def create(self, client: Client) -> dict[str, Any]:
        plan = self.plan
        creds = client.create_media(plan.kind, plan.body)
        self.announce(str(creds[plan.kind.id_field]))
        _, bucket, object_key = object_of(creds)
        self.states.save(
            self.key,
            UploadState(
                kind=plan.kind_key,
                media_id=str(self.media_id),
                api=plan.api,
                file=plan.file.path,
                size=plan.file.size,
                mtime_ns=plan.file.mtime_ns,
                part_size=plan.options.part_size,
                bucket=bucket,
                object_key=object_key,
                created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            ),
        )
        self.state_kept = True
        return creds

    def resume(self, client: Client, existing: UploadState) -> dict[str, Any] | None:
        """A fresh credential for the recorded video (None if it needs no more bytes)."""
        kind = self.plan.kind
        self.announce(existing.media_id)
        self.state_kept = True
        # oss2's checkpoint holds the part size of the first run: keep it.
        self.options = dataclasses.replace(self.options, part_size=existing.part_size)
        try:
            status = client.status(existing.media_id, kind).get("Status")
        except ApiError as exc:
            if exc.status != 404:
                raise
            self.forget(existing)
            raise PolicyError(
                f"the API does not know {kind.id_field} {existing.media_id} ({exc.code})",
                hint="run again without --resume to start a new upload",
            ) from exc
        if status == "created":
            self.say(f"resuming {kind.id_field} {existing.media_id}")
            return client.refresh(existing.media_id)
        self.forget(existing)
        if status in ("failed", "expired", "deleted"):
            raise ProcessingError(
                f"{kind.id_field} {existing.media_id} is {status}; it cannot be resumed",
                hint="run again without --resume to start a new upload",
            )
        self.say(f"{kind.id_field} {existing.media_id} is uploaded already ({status})")
        return None

    def forget(self, existing: UploadState) -> None:
        """The recorded upload needs nothing more from this file."""
        self.states.remove(self.key, existing)
        self.pending = self.state_kept = False

    def send(self, client: Client, creds: dict[str, Any]) -> None:
        plan = self.plan
        assert self.media_id is not None
        self.sending = True
        path = Path(plan.file.path)
        transfer(
            client,
            plan.kind,
            self.media_id,
            creds,
            path,
            store=self.states.oss2_store(),
            options=self.options,
            view=make_view(quiet=plan.quiet),
        )
        # oss2 removed its own checkpoint when it completed the upload.
        self.states.remove(self.key)
        self.pending = self.state_kept = self.sending = False
        log.info("%s %s uploaded (%d bytes)", plan.kind.id_field, self.media_id, plan.file.size)


def _open_states(plan: Plan) -> StateDir:
    try:
        return StateDir(plan.state_dir).ensure()
    except OSError as exc:
        raise UsageError(
            f"cannot use {plan.state_dir} for the upload state: {exc.strerror}; choose one with --state-dir"
        ) from exc


def upload(args: argparse.Namespace) -> int:
    """The ``vodfc upload`` command; its exit code."""
    try:
        plan = plan_from_args(args)
        states = _open_states(plan)
    except UploadError as exc:
        print(f"vodfc upload: {exc.message}", file=sys.stderr)
        return exc.exit_code
    with library_logs(states.log_path, echo=plan.debug):
        session = Session(plan, states)
        try:
            return session.run()
        except KeyboardInterrupt:
            return session.fail(session.interrupted())
        except UploadError as exc:
            return session.fail(exc)
        except Exception as exc:
            error = UploadError(
                f"unexpected error: {type(exc).__name__}: {exc}",
                hint="--debug prints its traceback here",
            )
            return session.fail(error, unexpected=exc)
