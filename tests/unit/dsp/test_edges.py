"""Fine envelope edges of a dual tone."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import edges
from dsp import testsignals as tg


@pytest.mark.parametrize("key", tg.KEYS)
def test_presence_covers_the_tone_to_within_half_a_millisecond(key):
    signal = tg.keys_signal(key, on_ms=60, lead_ms=30, level_dbm0=-10)
    present = edges.presence(signal.pcm16().astype(float), tg.key_frequencies(key), 8000)
    start, end = edges.run_around(present, 400)
    truth = signal.tones[0]
    assert abs(start - truth.start) <= 4 and abs(end - truth.end) <= 4


def test_presence_ignores_a_louder_earlier_tone_sharing_a_frequency():
    # '9' (852 + 1477 Hz) loud, then 'C' (852 + 1633 Hz) quiet
    x = np.concatenate(
        [
            tg.dtmf("9", 480, level_dbm0=-3),
            np.zeros(400),
            tg.dtmf("C", 480, level_dbm0=-20),
            np.zeros(200),
        ]
    )
    ref = np.array([tg.dbm0_to_peak(-20)] * 2)
    present = edges.presence(x, tg.key_frequencies("C"), 8000, ref)
    start, end = edges.run_around(present, 1100)
    assert abs(start - 880) <= 3 and abs(end - 1360) <= 3


def test_envelope_reads_the_tone_amplitude():
    x = tg.dtmf("1", 800, level_dbm0=-6)
    env = edges.envelopes(x, tg.key_frequencies("1"), 8000)
    assert np.allclose(env[:, 200:600], tg.dbm0_to_peak(-6), rtol=0.05)


def test_run_around_picks_the_run_nearest_the_index():
    present = np.array([0, 1, 1, 0, 0, 1, 1, 1, 0], bool)
    assert edges.run_around(present, 7) == (5, 8)
    assert edges.run_around(present, 0) == (1, 3)
    assert edges.run_around(np.zeros(4, bool), 2) is None


def test_run_bounds_agrees_with_run_around_row_by_row():
    rng = np.random.default_rng(5)
    present = rng.random((60, 30)) < 0.6
    index = rng.integers(0, 30, 60)
    inside = present[np.arange(60), index]
    start, end = edges.run_bounds(present[inside], index[inside])
    for row, i, s, e in zip(present[inside], index[inside], start, end, strict=True):
        assert edges.run_around(row, int(i)) == (s, e)


def test_run_bounds_takes_the_nearest_run_and_the_later_one_on_a_tie():
    present = np.array([[0, 1, 1, 0, 0, 0, 1, 1, 0]] * 3, bool)
    start, end = edges.run_bounds(present, np.array([3, 5, 4]))
    assert start.tolist() == [1, 6, 6] and end.tolist() == [3, 8, 8]


def test_run_bounds_reports_minus_one_for_rows_without_a_run():
    start, end = edges.run_bounds(np.zeros((2, 5), bool), np.array([0, 4]))
    assert start.tolist() == [-1, -1] and end.tolist() == [-1, -1]


def tone_segments(n_rows: int, seed: int):
    """Seeded 640-sample cuts of noisy key presses, with their keys and levels."""
    rng = np.random.default_rng(seed)
    segs, keys = [], []
    for _ in range(n_rows):
        key = tg.KEYS[rng.integers(16)]
        signal = tg.keys_signal(key, on_ms=int(rng.integers(30, 120)), lead_ms=40)
        x = np.concatenate([signal.pcm16(), np.zeros(700, np.int16)])
        x = tg.to_int16(x + rng.standard_normal(len(x)) * 100)
        cut = int(rng.integers(0, len(x) - 640))
        segs.append(x[cut : cut + 640])
        keys.append(tg.KEYS.index(key))
    reference = np.full((n_rows, 2), tg.dbm0_to_peak(-10))
    return np.stack(segs), np.array(keys), reference, rng


def test_key_run_edges_equal_the_edges_of_the_whole_segment():
    segs, keys, reference, rng = tone_segments(60, seed=11)
    index = rng.integers(0, 640, len(keys))
    onset = rng.random(len(keys)) < 0.5
    start, end = edges.run_bounds(edges.presence_of_keys(segs, keys, 8000, reference), index)
    found = edges.key_run_edges(segs, keys, 8000, reference, index, onset, 160)
    assert found.tolist() == np.where(onset, start, end).tolist()


@pytest.mark.parametrize(("reach", "beyond"), [(96, 16), (40, 2), (8, 0)])
def test_key_run_edges_over_a_short_stretch_equal_the_edges_of_the_whole_segment(reach, beyond):
    segs, keys, reference, rng = tone_segments(60, seed=13)
    index = rng.integers(0, 640, len(keys))
    onset = rng.random(len(keys)) < 0.5
    start, end = edges.run_bounds(edges.presence_of_keys(segs, keys, 8000, reference), index)
    found = edges.key_run_edges(segs, keys, 8000, reference, index, onset, reach, beyond)
    assert found.tolist() == np.where(onset, start, end).tolist()


def test_presence_of_a_cut_equals_presence_of_the_row_there():
    segs, keys, reference, _ = tone_segments(8, seed=12)
    whole = edges.presence_of_keys(segs, keys, 8000, reference)
    offsets = np.arange(8) * 40
    cuts = np.stack([row[o : o + 300] for row, o in zip(segs, offsets, strict=True)])
    part = edges.presence_of_keys(cuts, keys, 8000, reference, offsets, 640)
    for row, o in enumerate(offsets):
        assert (part[row, 39:-39] == whole[row, o + 39 : o + 300 - 39]).all()


def test_hysteresis_keeps_the_low_runs_that_hold_a_high_sample():
    low = np.array([[0, 1, 1, 1, 0, 1, 1, 0, 1, 1], [1, 1, 0, 0, 0, 0, 0, 0, 1, 1]], bool)
    high = np.zeros_like(low)
    high[0, 2] = high[1, 9] = True
    want = np.array([[0, 1, 1, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 1, 1]], bool)
    assert np.array_equal(edges.hysteresis(high, low), want)


def test_lower_presence_fraction_reaches_a_weaker_echo():
    rate = 8000
    tone = tg.keys_signal("5", rate, on_ms=100, off_ms=100, level_dbm0=-10, lead_ms=50)
    x = tg.line_echo(tone.samples, rate)  # 12 dB down, 12 ms later
    amp = np.full((1, 2), tg.dbm0_to_peak(-10.0))
    half = edges.presence_of_keys(x[None], np.array([5]), rate, amp)[0]
    low = edges.presence_of_keys(x[None], np.array([5]), rate, amp, fraction=0.2)[0]
    end = tone.tones[0].end
    assert not half[end + 7 * rate // 1000]
    assert low[end + 7 * rate // 1000]
