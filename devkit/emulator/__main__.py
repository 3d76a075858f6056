"""``python -m devkit.emulator [--callback-url URL] [--vod-port N] [--oss-port N] [--data-dir DIR] ...``."""

from __future__ import annotations

import argparse
import signal
import threading

from .app import make_emulator


def main(argv: list[str] | None = None) -> None:
    """Run the emulator in the foreground until Ctrl-C."""
    p = argparse.ArgumentParser(prog="python -m devkit.emulator", description=__doc__)
    p.add_argument("--callback-url")
    p.add_argument("--vod-port", type=int, default=0)
    p.add_argument("--oss-port", type=int, default=0)
    p.add_argument("--data-dir", default=".vodfc/oss")
    p.add_argument("--transcode-delay", type=float, default=2.0)
    p.add_argument("--no-persist", action="store_true", help="forget every record on stop")
    p.add_argument(
        "--max-storage-mb", type=int, default=256, help="prune the oldest objects beyond (0: never)"
    )
    args = p.parse_args(argv)
    emu = make_emulator(
        callback_url=args.callback_url,
        vod_port=args.vod_port,
        oss_port=args.oss_port,
        data_dir=args.data_dir,
        transcode_delay_seconds=args.transcode_delay,
        persist=not args.no_persist,
        max_storage_bytes=args.max_storage_mb * 1024 * 1024,
    ).start()
    emu.print_urls()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    emu.stop()


if __name__ == "__main__":
    main()
