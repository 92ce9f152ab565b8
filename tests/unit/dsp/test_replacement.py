"""Replacement signals: flat, smooth, digit-independent, never a DTMF pair."""

from __future__ import annotations

import numpy as np

from dsp import replacement
from dsp import testsignals as tg


def test_masking_tone_is_phase_continuous_in_absolute_position():
    a = replacement.masking_tone(np.arange(1000, 1160), 8000)
    b = replacement.masking_tone(np.arange(0, 2000), 8000)[1000:1160]
    assert np.allclose(a, b)


def test_masking_tone_frequency_is_outside_both_dtmf_groups():
    f = replacement.MASK_TONE_HZ
    for dtmf in tg.ROW_HZ + tg.COL_HZ:
        assert abs(f - dtmf) / dtmf > 0.1


def test_raised_cosine_rises_from_zero_to_one():
    g = replacement.raised_cosine(np.arange(40), 32)
    assert g[0] < 0.01 and np.all(np.diff(g) >= 0) and g[-1] == 1.0


def test_run_distances_measure_both_ends_of_each_run():
    mask = np.array([0, 1, 1, 1, 0, 1, 1], bool)
    since, until = replacement.run_distances(mask, before=0)
    assert since[1:4].tolist() == [0, 1, 2] and until[1:4].tolist() == [2, 1, 0]
    assert since[5:].tolist() == [0, 1] and until[6] > 1000  # open run
    since, _ = replacement.run_distances(np.ones(3, bool), before=10)
    assert since.tolist() == [10, 11, 12]


def test_comfort_noise_has_the_asked_rms_within_limits():
    rng = np.random.default_rng(0)
    rms = tg.dbm0_to_peak(-40) / np.sqrt(2)
    noise = replacement.comfort_noise(80000, rms, rng)
    assert abs(np.sqrt(np.mean(noise**2)) / rms - 1) < 0.02
    loud = replacement.comfort_noise(8000, 30000.0, rng)
    assert np.sqrt(np.mean(loud**2)) < tg.dbm0_to_peak(replacement.NOISE_CEILING_DBM0)
