"""The tick's phase follows the callers' arrivals: as little wait as the margin allows,
never moved earlier past an arrival, left alone when the arrivals give no better phase."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from masker.media.phase import (
    DESCENT_S,
    EVERY_TICKS,
    MARGIN_S,
    SAMPLE_TICKS,
    SOON_TICKS,
    STEP_S,
    PhaseLock,
    best_move,
)

PERIOD = 0.020


def ages_ms(*values: float) -> np.ndarray:
    return np.array(values) / 1e3


def assert_a_margin_after(ages: np.ndarray, seconds: float) -> None:
    """The tick moved by `seconds` comes at least a margin after every arrival, and
    less than one candidate step more."""
    waits = np.mod(ages + seconds, PERIOD)
    assert MARGIN_S <= waits.min() < MARGIN_S + STEP_S


def test_arrivals_long_before_the_tick_move_it_earlier_to_a_margin_after_them():
    ages = ages_ms(10.2, 10.7, 11.1, 11.6)
    move = best_move(ages, PERIOD)
    assert move is not None and move.seconds < 0
    assert_a_margin_after(ages, move.seconds)
    assert move.crossed == 0
    assert move.wait_after < move.wait_before - 0.006


def test_arrivals_inside_the_margin_move_the_tick_later():
    ages = ages_ms(0.6, 1.1, 1.4)
    move = best_move(ages, PERIOD)
    assert move is not None and 0 < move.seconds < MARGIN_S
    assert_a_margin_after(ages, move.seconds)
    assert move.crossed == 0


def test_a_tick_held_up_by_a_burst_counts_its_packets_as_arriving_after_it():
    """Handled after the due time (negative ages): the tick moves later past them."""
    ages = ages_ms(-1.8, -1.4, -1.1)
    move = best_move(ages, PERIOD)
    assert move is not None and move.seconds > 0
    assert_a_margin_after(ages, move.seconds)


def test_the_tick_never_moves_earlier_past_an_arrival():
    """Most calls arrive 10 ms before the tick, a few 2 ms before (inside the margin):
    the best phase is after the many; moving earlier to it would pass the few, whose
    next frame would then be late, so it moves later to the same phase instead."""
    ages = ages_ms(*([10.2] * 20), 2.1, 2.1)
    move = best_move(ages, PERIOD)
    assert move is not None and move.seconds > 0
    assert_a_margin_after(ages, move.seconds)
    assert np.mod(ages[0] + move.seconds, PERIOD) < MARGIN_S + STEP_S
    assert move.crossed == 20


def test_arrivals_spread_over_the_whole_frame_leave_the_tick_where_it_is():
    ages = np.random.default_rng(7).uniform(0.0, PERIOD, 500)
    assert best_move(ages, PERIOD) is None


def test_a_gain_below_the_hysteresis_moves_nothing():
    assert best_move(ages_ms(MARGIN_S * 1e3 + 1.0), PERIOD) is None


def test_no_arrivals_move_nothing():
    assert best_move(np.array([]), PERIOD) is None


def call(active: bool, last: float) -> SimpleNamespace:
    return SimpleNamespace(active=active, last_caller_audio=last)


def run_look(lock: PhaseLock, ticks: int, calls: list[SimpleNamespace]) -> list:
    return [lock.tick(1.0, calls) for _ in range(ticks)]


def test_the_first_look_comes_soon_and_samples_only_playing_calls():
    lock = PhaseLock(PERIOD)
    moves = run_look(lock, SOON_TICKS, [call(True, 1.0 - 0.0122), call(False, 1.0 - 0.001)])
    assert all(m is None for m in moves[:-1])
    assert moves[-1] is not None
    assert_a_margin_after(np.array([0.0122]), moves[-1].seconds)


class CountedCalls:
    """The calls, noting each tick at which the lock reads them."""

    def __init__(self, calls: list[SimpleNamespace]) -> None:
        self.calls, self.read_at, self.tick = calls, [], 0

    def __iter__(self):
        self.read_at.append(self.tick)
        return iter(self.calls)


def test_looks_that_move_nothing_come_less_and_less_often():
    lock = PhaseLock(PERIOD)
    ages = np.linspace(0.0, PERIOD, 40, endpoint=False)  # a trunk of independent phones
    calls = CountedCalls([call(True, 1.0 - a) for a in ages])
    for tick in range(1, 5 * EVERY_TICKS + 1):
        calls.tick = tick
        assert lock.tick(1.0, calls) is None
    look_ends = [t for t in calls.read_at if t + 1 not in calls.read_at]
    assert np.diff([0, *look_ends]).tolist()[:5] == [
        SOON_TICKS,
        2 * SOON_TICKS,
        4 * SOON_TICKS,
        EVERY_TICKS,
        EVERY_TICKS,
    ]
    assert len(calls.read_at) == SAMPLE_TICKS * len(look_ends)


def test_a_few_arrivals_inside_the_margin_do_not_move_a_tick_that_loses_no_frames():
    """Between SAFE_SHARE and UNSAFE_SHARE of the arrivals near the tick: it stays."""
    ages = ages_ms(*([6.0] * 97), 1.0, 1.0, 1.0)
    assert best_move(ages, PERIOD) is None


def test_a_busy_media_thread_leaves_the_tick_where_it_is():
    """Its arrival times are its own queue, not the callers' phase."""
    clock = {"due": 0.0}
    lock = PhaseLock(PERIOD, cpu_clock=lambda: 0.7 * clock["due"])  # 70 % busy
    calls = [call(True, 0.0)]
    moves = []
    for k in range(1, 4 * EVERY_TICKS):
        clock["due"] = k * PERIOD
        calls[0].last_caller_audio = k * PERIOD - 0.0122  # far before each due tick
        moves.append(lock.tick(k * PERIOD, calls))
    assert all(m is None for m in moves)


def sampled(ages_by_tick: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Ages (ms) per sampled tick: the ages in seconds and each one's tick."""
    ages = [a / 1e3 for tick in ages_by_tick for a in tick]
    ticks = [k for k, tick in enumerate(ages_by_tick) for _ in tick]
    return np.array(ages), np.array(ticks)


def test_one_sampled_tick_of_late_arrivals_does_not_move_the_tick():
    """A sender's hiccup: moving off it would cost the calls it passes as much."""
    ages, ticks = sampled([[4.0] * 20] * (SAMPLE_TICKS - 1) + [[1.0] * 20])
    assert best_move(ages, PERIOD) is not None  # pooled, the late tick is 20 %
    assert best_move(ages, PERIOD, ticks=ticks) is None


def test_late_arrivals_at_two_sampled_ticks_move_the_tick():
    ages, ticks = sampled([[4.0] * 20] * (SAMPLE_TICKS - 2) + [[1.0] * 20] * 2)
    move = best_move(ages, PERIOD, ticks=ticks)
    assert move is not None and move.seconds > 0


def test_a_move_earlier_only_to_wait_less_must_be_safe_at_every_sampled_tick():
    """Else the tick dithers: earlier to gain, later again at the arrivals' next tail."""
    ages, ticks = sampled([[12.0] * 20] * (SAMPLE_TICKS - 1) + [[12.0] * 19 + [2.0]])
    assert best_move(ages, PERIOD, ticks=ticks) is None
    ages, ticks = sampled([[12.0] * 20] * SAMPLE_TICKS)
    move = best_move(ages, PERIOD, ticks=ticks)
    assert move is not None and move.seconds < 0


def test_arrivals_that_keep_creeping_up_on_the_tick_are_followed_later_every_time():
    """A caller whose clock runs slow against ours: its packets come later each frame,
    and each time they reach the tick's margin the tick moves later, past them (the
    outgoing timestamps move with it: masker.media.tick.FrameTick.moved), never
    earlier past them, whatever the moves add up to."""
    lock = PhaseLock(PERIOD, cpu_clock=lambda: 0.0)
    calls = [call(True, 0.0) for _ in range(10)]
    offset, total, moves = 0.004, 0.0, []
    for k in range(1, 200 * EVERY_TICKS):
        due = k * PERIOD + total
        offset -= 0.00002  # 1,000 ppm slow: 20 us a frame
        for c in calls:
            c.last_caller_audio = k * PERIOD - offset
        move = lock.tick(due, calls)
        if move is not None:
            total += move.seconds
            moves.append(move)
    assert len(moves) >= 5 and total > PERIOD  # followed past a whole frame
    assert all(m.crossed == 0 or m.seconds > 0 for m in moves)
    assert sum(m.stamps for m in moves) == pytest.approx(
        sum(m.seconds for m in moves if m.seconds > 0)
    )


def test_a_required_move_earlier_than_the_room_left_goes_later_round_the_frame():
    """Arrivals 1 ms after the last tick: 3 ms after them is 16 ms earlier."""
    ages = ages_ms(19.0, 19.2, 19.5)
    earlier = best_move(ages, PERIOD)
    assert earlier is not None and earlier.seconds < -DESCENT_S
    later = best_move(ages, PERIOD, room=DESCENT_S)
    assert later is not None and later.seconds == pytest.approx(PERIOD + earlier.seconds)
    assert later.crossed == 3  # each holds a frame of excess, shed in a quiet moment


def test_a_move_earlier_only_to_wait_less_is_not_made_beyond_the_room_left():
    ages = ages_ms(10.2, 10.7, 11.1, 11.6)  # 7 ms to gain
    assert best_move(ages, PERIOD, room=0.004) is None
    assert best_move(ages, PERIOD, room=0.010) is not None


def test_the_tick_goes_no_further_below_the_latest_phase_it_reached_than_the_descent():
    """A caller whose clock runs fast: its packets come earlier each frame.  The tick
    follows them earlier only DESCENT_S below the latest phase it reached (there our
    packets go out that much ahead of their timestamps), then later round the frame,
    and the timestamps move on by each move above that phase."""
    lock = PhaseLock(PERIOD, cpu_clock=lambda: 0.0)
    calls = [call(True, 0.0) for _ in range(10)]
    offset, total, stamps, moves = 0.004, 0.0, 0.0, 0
    for k in range(1, 400 * EVERY_TICKS):
        due = k * PERIOD + total
        offset += 0.00002  # 1,000 ppm fast: 20 us a frame
        for c in calls:  # its latest packet before the tick
            c.last_caller_audio = due - (due - (k * PERIOD - offset)) % PERIOD
        move = lock.tick(due, calls)
        if move is not None:
            total, stamps, moves = total + move.seconds, stamps + move.stamps, moves + 1
            assert lock.top is not None and lock.top - lock.phase <= DESCENT_S + 1e-9
    assert moves >= 10 and lock.top is not None
    first = total - lock.phase  # the free first move, then the rises above the top
    assert stamps == pytest.approx(max(0.0, first) + lock.top)
    assert lock.top > PERIOD  # it went round the frame, later, more than once


def test_once_no_call_is_left_the_next_calls_first_move_is_free_again():
    lock = PhaseLock(PERIOD, cpu_clock=lambda: 0.0)
    playing = [call(True, 1.0 - 0.0122)]
    first = run_look(lock, SOON_TICKS, playing)[-1]
    assert first is not None and first.seconds < -DESCENT_S  # free: no room asked
    assert lock.top == 0.0
    run_look(lock, SOON_TICKS, [])
    assert lock.top is None


def test_a_pause_of_every_stream_keeps_the_latest_phase():
    """A sender's stall brings no packets for a look, but the calls' streams (and
    their timestamps) go on: the room below the latest phase still holds."""
    lock = PhaseLock(PERIOD, cpu_clock=lambda: 0.0)
    assert run_look(lock, SOON_TICKS, [call(True, 1.0 - 0.0122)])[-1] is not None
    stalled = [call(True, 1.0 - 5 * PERIOD)]  # its last packet long before the look
    assert run_look(lock, SOON_TICKS, stalled)[-1] is None
    assert lock.top == 0.0
