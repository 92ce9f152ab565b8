"""Waiting for an item that a reader thread appends to a list (phone events, log lines)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def first_match(
    cond: threading.Condition, items: list[T], accepts: Callable[[T], bool], timeout: float,
    since: int = 0, ended: Callable[[], bool] = lambda: False,
) -> T | None:  # fmt: skip
    """The first of `items[since:]` that `accepts`, waiting on `cond` (notified by the
    appending thread) until `timeout` passes or `ended()` says no more will come: None."""
    deadline = time.monotonic() + timeout
    with cond:
        while True:
            for item in items[since:]:
                if accepts(item):
                    return item
            left = deadline - time.monotonic()
            if left <= 0 or ended():
                return None
            cond.wait(left)
