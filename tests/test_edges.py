"""Fine envelope edges of a dual tone."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import edges
from dsp import tonegen as tg


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
