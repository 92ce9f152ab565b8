"""The adaptive jitter cushion: grows on underruns, relaxes after a calm, and names
the excess buffered audio that can be shed without running dry."""

from __future__ import annotations

from masker.media.playout import FRAME, MIN_EXCESS, RELAX_TICKS, WINDOW_TICKS, Playout


def observe(p: Playout, level: int, ticks: int) -> None:
    for _ in range(ticks):
        p.observe(level)


def test_a_talkspurt_starts_once_a_frame_and_the_cushion_are_buffered():
    assert Playout(cushion=160).prebuffer == FRAME + 160


def test_an_underrun_grows_the_cushion_by_half_a_frame():
    p = Playout(cushion=160)
    p.underrun()
    assert p.cushion == 240 and p.underruns == 1


def test_the_cushion_never_grows_past_its_ceiling():
    p = Playout(cushion=160, ceiling=320)
    for _ in range(10):
        p.underrun()
    assert p.cushion == 320


def test_the_cushion_relaxes_back_to_its_floor_after_a_calm():
    p = Playout(cushion=320, floor=160)
    observe(p, 480, RELAX_TICKS * 10)
    assert p.cushion == 160


def test_after_a_window_the_level_above_frame_and_cushion_is_excess():
    p = Playout(cushion=160)
    observe(p, FRAME + 160 + 400, WINDOW_TICKS)
    assert p.excess == 400


def test_the_lowest_level_of_the_window_bounds_the_excess():
    p = Playout(cushion=160)
    observe(p, FRAME + 160 + 400, WINDOW_TICKS - 1)
    p.observe(FRAME + 160 + 100)
    assert p.excess == 100


def test_a_few_samples_of_excess_are_not_worth_a_drop():
    p = Playout(cushion=160)
    observe(p, FRAME + 160 + MIN_EXCESS - 1, WINDOW_TICKS)
    assert p.excess == 0


def test_an_underrun_cancels_pending_excess():
    p = Playout(cushion=160)
    observe(p, FRAME + 160 + 400, WINDOW_TICKS)
    p.underrun()
    assert p.excess == 0


def test_shed_samples_reduce_the_excess():
    p = Playout(cushion=160)
    observe(p, FRAME + 160 + 400, WINDOW_TICKS)
    p.dropped(300)
    assert p.excess == 100


def test_a_call_starts_with_no_cushion_and_plays_a_frame_once_it_is_whole():
    p = Playout()
    assert p.cushion == 0 and p.prebuffer == FRAME


def test_the_cushion_grows_from_nothing_only_on_underruns_and_relaxes_back_to_nothing():
    p = Playout(ceiling=2 * FRAME)
    p.underrun()
    assert p.cushion == FRAME // 2
    observe(p, FRAME + FRAME // 2, RELAX_TICKS * 4)
    assert p.cushion == 0
