"""``vodfc``: local tooling around the three functions (never deployed).

Each command imports what it needs when it runs, so ``vodfc --help`` stays instant.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from devkit.handlers import FUNCTIONS
from devkit.local import DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_MAX_STORAGE_MB, DEFAULT_PORT


def cmd_invoke(args: argparse.Namespace) -> int:
    from devkit.invoke import invoke

    return invoke(args)


def cmd_migrate(args: argparse.Namespace) -> int:
    from shared.settings import get_settings
    from shared.store import open_store

    settings = get_settings()
    url = args.database_url or settings.database_url.get_secret_value()
    version = open_store(url, connect_timeout=settings.db_connect_timeout).migrate()
    print(f"schema version {version}")
    return 0


def cmd_sign_callback(args: argparse.Namespace) -> int:
    from shared.signing import callback_signature

    ts = str(args.timestamp if args.timestamp is not None else int(time.time()))
    print(f"X-VOD-TIMESTAMP: {ts}")
    print(f"X-VOD-SIGNATURE: {callback_signature(args.url, ts, args.key)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from devkit.serve import serve

    return serve(args)


def cmd_upload(args: argparse.Namespace) -> int:
    from devkit.upload import upload

    return upload(args)


def cmd_package(args: argparse.Namespace) -> int:
    from devkit.package import package

    return package(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vodfc",
        description="vodfc local tooling: run the stack offline, upload, invoke handlers, package.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "serve",
        help="run all functions locally against an emulated VOD and OSS",
        description="Run the three functions behind one local address, on the local defaults "
        "(README.md, Local defaults): SQLite, AUTH_MODE=none, and the emulated VOD and OSS on the "
        "next two ports unless a VOD endpoint is set. Settings in the environment win.",
    )
    p.add_argument("--host", default=DEFAULT_HOST)
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="the API's port (make serve PORT=N)")
    p.add_argument("--vod-port", type=int, help="the emulated VOD's port (default: --port + 1; 0: any free)")
    p.add_argument("--oss-port", type=int, help="the emulated OSS's port (default: --port + 2; 0: any free)")
    p.add_argument(
        "--vod-endpoint", help="a real or external VOD endpoint instead of the emulator (or $VOD_ENDPOINT)"
    )
    p.add_argument("--database-url", help="default: $DATABASE_URL, else sqlite:///<data dir>/vodfc.db")
    p.add_argument(
        "--cleanup-every", type=float, help="run cleanup every N seconds instead of the timers (0: never)"
    )
    p.add_argument(
        "--events",
        choices=("http", "mns"),
        help="how VOD events arrive: http callbacks, or an SMQ queue and FC's queue trigger "
        "(default: $VOD_EVENT_DELIVERY, else http)",
    )
    p.add_argument(
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        help=f"where SQLite and the emulator's records and objects live (default {DEFAULT_DATA_DIR})",
    )
    p.add_argument(
        "--max-storage-mb",
        type=int,
        default=DEFAULT_MAX_STORAGE_MB,
        help="emulated OSS: MiB of uploaded objects kept before the oldest are pruned (0: no cap)",
    )
    p.add_argument(
        "--transcode-delay", type=float, default=2.0, help="emulated VOD: seconds from upload to transcoded"
    )
    p.add_argument(
        "--credential-ttl", type=int, default=3000, help="emulated VOD: life of upload credentials, seconds"
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "upload",
        help="upload a file through a vodfc API (the reference client)",
        description="Upload FILE through a vodfc API straight to VOD's storage and wait until it is "
        "ready. The media id is printed on stdout first (VideoId, ImageId or MediaId), the final "
        "record last; progress and errors go to stderr. An interrupted video upload continues "
        "with --resume.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""exit codes:
  0    success
  1    unexpected error (its traceback is in upload.log; --debug shows it)
  2    usage: bad arguments, no such file, an interrupted upload of FILE exists
  3    authentication: the API refused the token (401, 403 InvalidToken/Forbidden)
  4    policy: the API refused the request (file type, size, quota...); its Code and Message say why
  5    network: the API or storage cannot be reached, timed out, or keeps answering 5xx
  6    storage: OSS refused the upload (its code and request id are printed)
  7    processing: the media ended failed/expired/deleted, or --timeout passed
  130  interrupted (Ctrl-C): continue with --resume

state and log: $XDG_CACHE_HOME/vodfc/uploads (default ~/.cache/vodfc/uploads) or --state-dir""",
    )
    p.add_argument("file")
    p.add_argument("--api", required=True, help="base URL of the API, e.g. http://127.0.0.1:8000")
    p.add_argument("--token", default=os.environ.get("VODFC_TOKEN"), help="bearer JWT (or $VODFC_TOKEN)")
    p.add_argument("--title", help="default: the file name without its extension")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--image", action="store_true", help="upload an image (POST /images)")
    kind.add_argument(
        "--attached",
        choices=("watermark", "subtitle", "material"),
        help="upload attached media of this type (POST /attached-media)",
    )
    p.add_argument("--image-type", choices=("default", "cover"), help="with --image (default: default)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the interrupted upload of FILE")
    again.add_argument("--restart", action="store_true", help="forget an interrupted upload of FILE")
    p.add_argument("--state-dir", metavar="DIR", help="where interrupted uploads and upload.log are kept")
    p.add_argument("--part-size", metavar="SIZE", help="part size, e.g. 1M (default) or 8M; at least 100K")
    p.add_argument(
        "--max-refreshes",
        type=int,
        metavar="N",
        help="cap on credential refreshes (default: refresh as long as the upload makes progress)",
    )
    p.add_argument("--limit-rate", metavar="RATE", help="cap the speed, e.g. 500K or 2M (bytes per second)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S", help="seconds to wait for 'ready'")
    p.add_argument("--no-wait", action="store_true", help="do not wait for the status to become ready")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, only the id, record and errors")
    p.add_argument("--debug", action="store_true", help="tracebacks and library logs on stderr too")
    p.set_defaults(func=cmd_upload)

    p = sub.add_parser(
        "invoke",
        help="run one handler in-process with a sample event",
        description="Run one handler in-process with an event and print its answer (FC 3.0) on "
        "stdout, its log lines on stderr. Settings: the local defaults (README.md, Local defaults) "
        "with an emulated VOD and a database in a temporary directory, or with --against the "
        "emulator and database of a running vodfc serve. Exit 1 when the answer is a 5xx (or a "
        "cleanup run counts errors).",
    )
    p.add_argument("function", choices=FUNCTIONS)
    p.add_argument("--event", required=True, help="event JSON file, e.g. events/http/create_upload.json")
    p.add_argument(
        "--against",
        metavar="URL",
        help="use the emulator and database of the vodfc serve at URL, e.g. http://127.0.0.1:8000",
    )
    p.add_argument(
        "--no-resign",
        action="store_true",
        help="keep a callback event's X-VOD-* headers instead of signing it afresh",
    )
    p.set_defaults(func=cmd_invoke)

    p = sub.add_parser("migrate", help="apply the store's schema migrations (idempotent)")
    p.add_argument("--database-url")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("sign-callback", help="print X-VOD-* headers for a hand-made callback")
    p.add_argument("--url", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--timestamp", type=int)
    p.set_defaults(func=cmd_sign_callback)

    p = sub.add_parser("package", help="build one deployment zip per function")
    p.add_argument("--out", default="dist")
    p.set_defaults(func=cmd_package)

    from devkit.webhooks import add_parser as add_webhooks_parser

    add_webhooks_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vodfc`` console script."""
    from shared.errors import Misconfigured

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Misconfigured as exc:  # an invalid environment variable: say which, no traceback
        print(f"vodfc: {exc.detail} (see README.md, Settings)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
