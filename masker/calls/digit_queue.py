"""Hands key presses from the media thread to the tokeniser on a worker thread.

Completing a capture issues a token (key derivation, vault write): that must
never stall the media tick of every other call, so the media thread only
enqueues.  One worker keeps each call's digits in order.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger()

Sink = Callable[[str, str, str], Any]


class DigitQueue:
    """`put(call_id, digit, source)` from any thread; `sink` runs on the worker."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="digits", daemon=True)
        self._thread.start()

    def put(self, call_id: str, digit: str, source: str) -> None:
        self._q.put((call_id, digit, source))

    def stop(self, timeout: float = 5.0) -> None:
        self._q.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            try:
                self._sink(*item)
            except Exception:
                log.error("digit sink failed", call=item[0])
