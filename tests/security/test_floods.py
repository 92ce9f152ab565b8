"""Floods a hostile caller can send (issue 13): SIP INFO digits faster than anyone
keys, more presses than the digits worker takes.  Each one must cost the media
thread microseconds, every table and queue stays bounded, and a press that is dropped
is never lost silently: it is counted and the call's capture is told."""

from __future__ import annotations

import threading

import pytest

from masker.calls.digit_queue import DigitQueue
from masker.media.dedupe import PER_KEY, DigitDeduper
from masker.sip.ua import InfoBucket

INFO_WINDOW = 2400  # samples either side of "now" an INFO digit is matched over (300 ms)


def _flood(d: DigitDeduper, n: int, span: int = 40_000) -> None:
    for i in range(n):
        now = i * span // n
        d.accept("0123456789"[i % 10], now - INFO_WINDOW, now + INFO_WINDOW, "info")


def test_the_press_table_of_a_call_is_bounded_whatever_it_is_sent():
    """21k INFO digits in the 5 s window used to make each further report scan them all
    (~1 ms each, on the media thread of every call); now a report meets at most PER_KEY
    presses of its own key (1,055 -> 1.2 us per INFO digit, measured outside the suite)."""
    d = DigitDeduper()
    _flood(d, 21_000)
    assert len(d) <= 16 * PER_KEY


def test_a_bounded_press_table_still_merges_one_press_reported_twice():
    d = DigitDeduper()
    _flood(d, 5_000)
    assert d.accept("5", 100_000, 100_640, "rfc4733")
    assert not d.accept("5", 100_040, 100_600, "inband")


@pytest.fixture
def blocked_queue():
    """A DigitQueue whose sink waits on `release`; records what reached sink and loss hook."""
    release = threading.Event()
    seen: list[tuple] = []

    def sink(call, digit, source):
        release.wait(5)
        seen.append(("digit", call, digit))

    def lost(call, count, source):
        seen.append(("lost", call, count, source))

    q = DigitQueue(sink, on_lost=lost, per_call=4, total=6)
    yield q, release, seen
    release.set()
    q.stop()


def test_a_full_digit_queue_drops_counts_and_reports_the_loss_after_the_queued_presses(
    blocked_queue,
):
    q, release, seen = blocked_queue
    results = [q.put("c1", d, "inband") for d in "123456789"]
    # the worker holds the first press; four more wait; the rest are dropped
    assert results.count(False) >= 4
    dropped = results.count(False)
    assert q.counters["digits_dropped"] == dropped
    release.set()
    q.stop()
    digits = [s[2] for s in seen if s[0] == "digit"]
    assert digits == list("123456789")[: len(digits)]
    assert seen[-1] == ("lost", "c1", dropped, "inband")  # after the presses it got


def test_the_digit_queue_is_bounded_across_calls(blocked_queue):
    q, release, seen = blocked_queue
    puts = [q.put(f"c{i}", "1", "inband") for i in range(20)]
    assert q.size <= 6
    assert puts.count(False) >= 13
    release.set()
    q.stop()
    lost = {s[1] for s in seen if s[0] == "lost"}
    assert lost == {f"c{i}" for i, ok in enumerate(puts) if not ok}


def test_presses_lost_upstream_are_reported_in_order():
    seen = []
    q = DigitQueue(lambda c, d, s: seen.append(d), on_lost=lambda c, n, s: seen.append((n, s)))
    q.put("c", "1", "info")
    q.lost("c", 3, "info")
    q.put("c", "2", "info")
    q.stop()
    assert seen == ["1", (3, "info"), "2"]


def test_the_info_budget_of_a_dialog_refills_at_its_rate_only():
    now = [0.0]
    b = InfoBucket(rate=20, burst=40, clock=lambda: now[0])
    assert sum(b.take(1) for _ in range(1000)) == 40
    now[0] += 0.5
    assert sum(b.take(1) for _ in range(1000)) == 10
    now[0] += 3600
    assert b.take(100) == 40  # never more than the burst
