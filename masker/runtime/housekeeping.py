"""Periodic chores of the service (vault purge) on their own thread.

A purge is a SQLite write that may take a while on a big vault: it must never
run on sippy's event loop or the media tick.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger()


class Periodic:
    """Calls `job()` every `interval_s` seconds on a daemon thread until `stop()`."""

    def __init__(self, name: str, job: Callable[[], Any], interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError("interval must be positive")
        self.name = name
        self.runs = 0
        self._job = job
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                result = self._job()
            except Exception as exc:  # the next run may succeed; never the text (may be SQL)
                log.error("periodic job failed", job=self.name, exc_type=type(exc).__name__)
                continue
            self.runs += 1
            log.info("periodic job ran", job=self.name, result=result)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
