"""Short breaks inside a key (packet-loss concealment, a TV) do not split it.

ETSI ES 201 235-3 / ITU-T Q.24: an interruption of up to 10 ms does not end a
key; 20 ms of silence separates two presses of the same key.  Seeded keys of
150-300 ms with 1-3 dropouts of 4-10 ms each (silence, the tone resuming at
another phase), after a G.711 round trip.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsp import testsignals as tg
from dsp.detector import detect


def broken_keys(seed: int, law: str = "ulaw", rate: int = 8000) -> tuple[np.ndarray, str]:
    rng = np.random.default_rng(seed)
    keys = "".join(rng.permutation(list(tg.KEYS)))
    sig = tg.random_keys_signal(keys, rng, rate, on_ms=(150, 300), level_dbm0=(-22, -3))
    sig = tg.with_dropouts(sig, rng)
    x = sig.samples + tg.white_noise(len(sig.samples), -55.0, rng)
    return tg.g711_roundtrip(tg.to_int16(x), law), keys


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_keys_with_breaks_of_up_to_10_ms_are_one_digit_each(seed):
    pcm, keys = broken_keys(seed)
    assert "".join(e.digit for e in detect(pcm)) == keys


def test_keys_with_breaks_at_16_khz_are_one_digit_each():
    pcm, keys = broken_keys(4, rate=16000)
    assert "".join(e.digit for e in detect(pcm, 16000)) == keys


def test_a_bridged_key_spans_from_its_first_onset_to_its_last_end():
    rng = np.random.default_rng(5)
    sig = tg.with_dropouts(tg.keys_signal("5", on_ms=200, rng=rng), rng, per_key=(2, 2))
    (event,) = detect(tg.to_int16(sig.samples))
    tone = sig.tones[0]
    assert abs(event.start - tone.start) <= 16 and abs(event.end - tone.end) <= 16


def two_presses(gap_ms: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    key = tg.KEYS[seed % 16]
    level, twist = rng.uniform(-25, -3), rng.uniform(-4, 8)
    parts = [np.zeros(400)]
    for _ in range(2):
        n = tg.ms(rng.uniform(60, 150), 8000)
        parts += [tg.dtmf(key, n, 8000, level, twist, 0.0, tuple(rng.uniform(0, 6.3, 2)))]
        parts += [np.zeros(tg.ms(gap_ms, 8000))]
    x = np.concatenate(parts[:-1] + [np.zeros(400)])
    return tg.g711_roundtrip(tg.to_int16(x + tg.white_noise(len(x), -55.0, rng)))


@pytest.mark.parametrize("gap_ms", [4, 7, 10])
def test_same_key_after_a_break_of_at_most_10_ms_is_one_digit(gap_ms):
    assert [len(detect(two_presses(gap_ms, s))) for s in range(16)] == [1] * 16


@pytest.mark.parametrize("gap_ms", [20, 25, 30])
def test_same_key_after_20_ms_of_silence_or_more_is_two_digits(gap_ms):
    assert [len(detect(two_presses(gap_ms, s))) for s in range(16)] == [2] * 16


def test_a_held_press_is_reported_within_50_ms_of_its_end():
    sig = tg.keys_signal("7", on_ms=120, off_ms=300, lead_ms=100)
    pcm = sig.pcm16()
    from dsp.detector import DtmfDetector

    det = DtmfDetector()
    cut = sig.tones[0].end + 400  # 50 ms after the tone
    assert [e.digit for e in det.process(pcm[:cut])] == ["7"]
