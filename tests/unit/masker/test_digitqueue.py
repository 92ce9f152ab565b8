"""Digits leave the media thread through a queue, in order, on one worker."""

from __future__ import annotations

import threading
import time

from masker.calls.digit_queue import DigitQueue


def test_digits_reach_the_sink_in_order_on_another_thread():
    got, threads = [], set()

    def sink(call, digit, source):
        got.append((call, digit, source))
        threads.add(threading.current_thread().name)

    q = DigitQueue(sink)
    for d in "4111":
        q.put("c1", d, "inband")
    q.stop()
    assert got == [("c1", d, "inband") for d in "4111"]
    assert threads == {"digits"}


def test_a_slow_sink_does_not_block_the_producer():
    q = DigitQueue(lambda *a: time.sleep(0.2))
    t0 = time.monotonic()
    for _ in range(5):
        q.put("c", "1", "inband")
    assert time.monotonic() - t0 < 0.05
    q.stop()


def test_a_failing_sink_does_not_stop_the_worker():
    got = []

    def sink(call, digit, source):
        if digit == "x":
            raise RuntimeError("boom")
        got.append(digit)

    q = DigitQueue(sink)
    for d in "1x2":
        q.put("c", d, "inband")
    q.stop()
    assert got == ["1", "2"]
