"""The deployed handlers, loaded the way FC loads them, and sample events made ready for them."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["FUNCTIONS", "ROOT", "load_handler_module", "resign_callback_event", "wrap_vod_event"]

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("upload_credentials", "vod_callback", "cleanup")


def load_handler_module(function: str) -> ModuleType:
    """Import ``functions/<function>/index.py`` as FC would (its own module, shared/ importable)."""
    if function not in FUNCTIONS:
        raise SystemExit(f"unknown function {function!r}; one of: {', '.join(FUNCTIONS)}")
    path = ROOT / "functions" / function / "index.py"
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location(f"vodfc_fn_{function}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resign_callback_event(event: dict[str, Any], *, now: int | None = None) -> dict[str, Any]:
    """Give a sample callback event fresh X-VOD-* headers for the configured URL and key."""
    from shared.settings import get_settings
    from shared.signing import callback_signature

    settings = get_settings()
    if not settings.callback_url or not settings.callback_keys:
        return event
    ts = str(now if now is not None else int(time.time()))
    headers = {
        k: v
        for k, v in event.get("headers", {}).items()
        if k.lower() not in {"x-vod-timestamp", "x-vod-signature"}
    }
    headers["X-VOD-TIMESTAMP"] = ts
    headers["X-VOD-SIGNATURE"] = callback_signature(settings.callback_url, ts, settings.callback_keys[0])
    return {**event, "headers": headers}


def wrap_vod_event(body: dict[str, Any]) -> dict[str, Any]:
    """A bare VOD callback body (events/vod/*.json) inside the FC 3.0 HTTP event VOD would cause."""
    template: dict[str, Any] = json.loads((ROOT / "events" / "http" / "vod_callback.json").read_text())
    return {**template, "body": json.dumps(body, ensure_ascii=False)}
