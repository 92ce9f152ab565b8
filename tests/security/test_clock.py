"""A wall-clock jump (NTP step, operator, VM resume) must neither end calls early nor
keep them for ever: the media tick, the RTP and hold timeouts, the SIP INFO budget and
the payment session's field/session/hold timeouts run on the monotonic clock.  Shown
here by jumping `time.time` a day forward and back while they run; no faketime."""

from __future__ import annotations

import time
from collections import Counter

from masker.media.loop import TICK_S, MediaLoop
from masker.sip.ua import InfoBucket
from tokenizer.clock import SystemClock


class _JumpingWallClock:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        real = _REAL_TIME()
        return real + (86_400 if self.calls % 2 else -86_400)


_REAL_TIME = time.time


def test_a_wall_clock_jump_does_not_disturb_the_media_tick(monkeypatch):
    monkeypatch.setattr(time, "time", _JumpingWallClock())
    ticks: list[float] = []
    loop = MediaLoop(Counter(), lambda now, lane: ticks.append(now))
    loop.start()
    try:
        time.sleep(0.5)
    finally:
        loop.stop()
        loop.close()
    assert 0.5 / TICK_S * 0.6 <= len(ticks) <= 0.5 / TICK_S * 1.4
    steps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert max(steps) < 1.0 and min(steps) >= 0  # monotonic seconds, no day-long step
    assert abs(ticks[-1] - time.monotonic()) < 1.0


def test_the_info_budget_is_not_refilled_by_a_wall_clock_jump(monkeypatch):
    b = InfoBucket(rate=20, burst=40)
    assert b.take(40) == 40
    monkeypatch.setattr(time, "time", lambda: _REAL_TIME() + 86_400)
    assert b.take(40) <= 2


def test_payment_session_timeouts_use_the_monotonic_clock(monkeypatch):
    clock = SystemClock()
    before = clock.monotonic()
    monkeypatch.setattr(time, "time", lambda: _REAL_TIME() - 86_400)
    assert 0 <= clock.monotonic() - before < 1.0
