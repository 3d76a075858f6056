"""Local emulator of ApsaraVideo VOD's OpenAPI, of OSS and of VOD's events (never deployed).

``make_emulator(config).start()`` serves both on loopback ports; see :mod:`devkit.emulator.app`
and ``README.md`` in this directory (client setup, deviations from the real services).
"""

from __future__ import annotations

from .app import Emulator, ServerThread, make_emulator
from .config import DEV_ACCESS_KEY_ID, DEV_ACCESS_KEY_SECRET, DEV_CALLBACK_KEY, EmulatorConfig
from .faults import FaultPlan
from .mns import DeadLetter, MnsQueue, MnsTrigger

__all__ = [
    "DEV_ACCESS_KEY_ID",
    "DEV_ACCESS_KEY_SECRET",
    "DEV_CALLBACK_KEY",
    "DeadLetter",
    "Emulator",
    "EmulatorConfig",
    "FaultPlan",
    "MnsQueue",
    "MnsTrigger",
    "ServerThread",
    "make_emulator",
]
