"""Where the media thread's time went between two marks: its own work, a wait for a
CPU, or neither (blocked)."""

from __future__ import annotations

import time

from masker.media.stalls import StallWatch


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_time_spent_working_counts_as_the_threads_own_cpu():
    watch = StallWatch()
    watch.mark(time.monotonic())
    _spin(0.06)
    stall = watch.since_mark(time.monotonic())
    watch.close()
    assert stall.cpu_ms >= 55 and stall.wall_ms >= stall.cpu_ms


def test_time_spent_blocked_counts_as_neither_work_nor_a_wait_for_a_cpu():
    watch = StallWatch()
    watch.mark(time.monotonic())
    time.sleep(0.15)
    stall = watch.since_mark(time.monotonic())
    watch.close()
    assert stall.other_ms >= 140 and stall.cpu_ms < 20


def test_the_split_adds_up_to_the_wall_time():
    watch = StallWatch()
    watch.mark(time.monotonic())
    _spin(0.02)
    time.sleep(0.03)
    stall = watch.since_mark(time.monotonic())
    watch.close()
    assert abs(stall.cpu_ms + stall.waited_ms + stall.other_ms - stall.wall_ms) < 1.0
