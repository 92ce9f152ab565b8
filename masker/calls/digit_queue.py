"""Hands key presses from the media thread to the tokeniser on a worker thread.

Completing a capture issues a token (key derivation, vault write): that must
never stall the media tick of every other call, so the media thread only
enqueues.  One worker keeps each call's digits in order.

Bounded (issue 13): at most `per_call` presses of one call and `total` of all calls
wait at once.  A press that finds the queue full is dropped, never silently: it is
counted (`counters["digits_dropped"]`) and the call gets one *loss marker* behind its
queued presses (markers bypass the bound, one per call at most).  When the worker
reaches it, `on_lost(call_id, count, source)` runs, in order with the call's
presses: the service fails the call's running capture there, so a card can never
be completed from a sequence with a key missing.  `lost()` reports presses dropped
upstream (SIP INFO over its rate limit) the same way.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger()

Sink = Callable[[str, str, str], Any]
LostSink = Callable[[str, int, str], Any]  # (call_id, presses lost, source)

#: Presses of one call waiting for the worker: a person keys ~10 a second, and the
#: worker is only ever behind by a vault write or a slow session.
PER_CALL = 256
#: Presses of all calls waiting for the worker.
TOTAL = 16384


class DigitQueue:
    """`put(call_id, digit, source)` from any thread; `sink` runs on the worker."""

    def __init__(
        self,
        sink: Sink,
        on_lost: LostSink | None = None,
        *,
        per_call: int = PER_CALL,
        total: int = TOTAL,
    ) -> None:
        self._sink = sink
        self._on_lost = on_lost
        self.per_call = per_call
        self.total = total
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}  # call -> presses queued (no zero entries)
        self._size = 0
        self._lost: dict[str, tuple[int, str]] = {}  # call -> (lost, source) of its marker
        self.counters: Counter[str] = Counter()
        self._q: queue.SimpleQueue[tuple[str, str | None, str] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="digits", daemon=True)
        self._thread.start()

    def put(self, call_id: str, digit: str, source: str) -> bool:
        """Queue one press; False when it was dropped (queue full: a loss is reported)."""
        with self._lock:
            queued = self._pending.get(call_id, 0)
            if queued >= self.per_call or self._size >= self.total:
                self.counters["digits_dropped"] += 1
                self._mark_lost(call_id, 1, source)
                return False
            self._pending[call_id] = queued + 1
            self._size += 1
            self._q.put((call_id, digit, source))
        return True

    def lost(self, call_id: str, count: int, source: str) -> None:
        """Presses of the call lost before they got here (e.g. SIP INFO over its rate):
        reported to `on_lost` after the presses already queued."""
        with self._lock:
            self.counters["digits_lost_upstream"] += count
            self._mark_lost(call_id, count, source)

    def _mark_lost(self, call_id: str, count: int, source: str) -> None:
        marked = self._lost.get(call_id)
        if marked is None:
            self._lost[call_id] = (count, source)
            self._q.put((call_id, None, source))
        else:
            self._lost[call_id] = (marked[0] + count, marked[1])

    @property
    def size(self) -> int:
        """Presses waiting for the worker now."""
        return self._size

    def stop(self, timeout: float = 5.0) -> None:
        self._q.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            call_id, digit, source = item
            if digit is None:
                with self._lock:
                    count, source = self._lost.pop(call_id, (0, source))
                self._report_lost(call_id, count, source)
                continue
            with self._lock:
                left = self._pending.get(call_id, 1) - 1
                if left > 0:
                    self._pending[call_id] = left
                else:
                    self._pending.pop(call_id, None)
                self._size -= 1
            try:
                self._sink(call_id, digit, source)
            except Exception:
                log.error("digit sink failed", call=call_id)

    def _report_lost(self, call_id: str, count: int, source: str) -> None:
        log.debug("digits lost", call=call_id, count=count, source=source)  # a flood: no spam
        if self._on_lost is None:
            return
        try:
            self._on_lost(call_id, count, source)
        except Exception:
            log.error("digit loss handler failed", call=call_id)
