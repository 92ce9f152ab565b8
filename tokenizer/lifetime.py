"""Where clear card digits still live: a weak register of every capture, by count only.

Every ``CaptureSession`` (the only owner of keyed card digits) registers itself
here when it is made. The register holds weak references, so it keeps nothing
alive, and it answers only with counts: how many digits the live captures
still hold, and how many captures were garbage-collected while still holding
digits (a capture dropped without ``wipe()``; its ``__del__`` wipes it as a
last resort and records the drop here). It never returns or logs a digit.

Tests use it to prove the card-data lifetime rules (tests/integration/test_card_data_lifetime.py)::

    since = lifetime.mark()
    ...                                    # run a call
    assert lifetime.held_digit_count(since) == 0
    gc.collect()
    assert lifetime.dropped_holding_digits(since) == 0

``since`` scopes a question to the captures made after ``mark()``, so captures
left over by other code in the same process do not count.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import Protocol


class DigitHolder(Protocol):
    def held_digits(self) -> int:
        """How many clear digits this object holds right now (never the digits)."""


_lock = threading.Lock()
_sequence = itertools.count(1)
_live: weakref.WeakValueDictionary[int, DigitHolder] = weakref.WeakValueDictionary()
_dropped: list[int] = []  # sequence numbers of holders collected while holding digits
_MAX_DROPPED = 10_000


def track(holder: DigitHolder) -> int:
    """Register ``holder``; returns its sequence number (for ``dropped``)."""
    with _lock:
        seq = next(_sequence)
        _live[seq] = holder
        return seq


def mark() -> int:
    """A point in time: captures registered from now on have a sequence >= the mark."""
    with _lock:
        seq = next(_sequence)
    return seq + 1


def dropped(seq: int) -> None:
    """A holder with sequence ``seq`` was collected still holding digits."""
    with _lock:
        _dropped.append(seq)
        del _dropped[:-_MAX_DROPPED]


def held_digit_count(since: int = 0) -> int:
    """Clear digits held by the live captures registered at or after ``since``."""
    with _lock:
        holders = [h for seq, h in list(_live.items()) if seq >= since]
    total = 0
    for holder in holders:
        try:
            total += holder.held_digits()
        except Exception:  # a half-built holder counts as nothing, never as an error
            continue
    return total


def holders_with_digits(since: int = 0) -> int:
    """How many live captures registered at or after ``since`` still hold any digit."""
    with _lock:
        holders = [h for seq, h in list(_live.items()) if seq >= since]
    return sum(1 for h in holders if _held(h))


def dropped_holding_digits(since: int = 0) -> int:
    """How many captures registered at or after ``since`` were garbage-collected while
    still holding digits (each was wiped by its finaliser, but it was never closed)."""
    with _lock:
        return sum(1 for seq in _dropped if seq >= since)


def _held(holder: DigitHolder) -> bool:
    try:
        return holder.held_digits() > 0
    except Exception:
        return False
