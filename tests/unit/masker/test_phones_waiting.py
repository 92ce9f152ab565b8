"""first_match: the first matching item a reader thread appends, or None in time."""

from __future__ import annotations

import threading
import time

from masker.phones.waiting import first_match


def appended_later(cond: threading.Condition, items: list, values: list, delay: float) -> None:
    def run() -> None:
        time.sleep(delay)
        for v in values:
            with cond:
                items.append(v)
                cond.notify_all()

    threading.Thread(target=run, daemon=True).start()


def test_an_item_appended_later_is_returned():
    cond, items = threading.Condition(), []
    appended_later(cond, items, [1, 2, 3], delay=0.05)
    assert first_match(cond, items, lambda x: x > 1, timeout=5) == 2


def test_items_before_since_are_not_considered():
    cond, items = threading.Condition(), [5, 1]
    assert first_match(cond, items, lambda x: x == 5, timeout=0.05, since=1) is None


def test_nothing_matching_in_time_is_none():
    cond, items = threading.Condition(), [1]
    t0 = time.monotonic()
    assert first_match(cond, items, lambda x: x == 2, timeout=0.1) is None
    assert time.monotonic() - t0 >= 0.1


def test_an_ended_list_stops_the_wait_at_once():
    cond, items = threading.Condition(), [1]
    t0 = time.monotonic()
    assert first_match(cond, items, lambda x: x == 2, timeout=5, ended=lambda: True) is None
    assert time.monotonic() - t0 < 1.0


def test_an_ended_list_is_still_searched():
    cond, items = threading.Condition(), [1, 2]
    assert first_match(cond, items, lambda x: x == 2, timeout=5, ended=lambda: True) == 2
