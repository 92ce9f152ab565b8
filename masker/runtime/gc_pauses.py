"""How long each cyclic garbage collection holds the GIL.

A full collection stops the media thread of every call for its whole length: at
150 calls one of 40 ms or more makes a packet of every call late.  Each pause goes
to the `masker_gc_pause_seconds` histogram, and one longer than a tick's slack is
logged, so an operator can tell a collector stall from a network one.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import structlog

from masker.runtime.metrics import GC_PAUSES

log = structlog.get_logger("masker.gc")

#: A pause this long (seconds) is logged: half a 20 ms media tick.
LOGGED_PAUSE_S = 0.010


class GcPauseMeter:
    """A `gc.callbacks` entry timing each collection from its start to its stop."""

    def __init__(self) -> None:
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        generation = int(info.get("generation", 0))
        GC_PAUSES.labels(generation=str(generation)).observe(pause)
        if pause >= LOGGED_PAUSE_S:
            log.info(
                "gc pause",
                generation=generation,
                ms=round(pause * 1000, 1),
                collected=info.get("collected", 0),
            )


def meter_gc_pauses() -> GcPauseMeter:
    """Start timing every collection of this process (once)."""
    for cb in gc.callbacks:
        if isinstance(cb, GcPauseMeter):
            return cb
    meter = GcPauseMeter()
    gc.callbacks.append(meter)
    return meter
