"""Test-signal generation: levels, twist, truth and reproducibility."""

from __future__ import annotations

import numpy as np

from dsp import testsignals as tg


def level_dbm0(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.asarray(x, float) ** 2) / (tg.DBM0_PEAK**2 / 2))


def test_a_0_dbm0_sine_peaks_at_22773():
    x = tg.sine(1000, 8000, 8000, 0.0)
    assert abs(np.abs(x).max() - 22773) < 1 and abs(level_dbm0(x)) < 0.01


def test_twist_lowers_the_column_tone_for_normal_twist():
    x = tg.dtmf("1", 8000, level_dbm0=-10, twist_db=6)
    spectrum = np.abs(np.fft.rfft(x)) / 4000
    row, col = spectrum[697], spectrum[1209]
    assert abs(20 * np.log10(row / tg.DBM0_PEAK) + 10) < 0.1
    assert abs(20 * np.log10(row / col) - 6) < 0.1


def test_keys_signal_truth_marks_every_tone():
    s = tg.keys_signal("147", on_ms=50, off_ms=50, lead_ms=60)
    assert [(t.start, t.end) for t in s.tones] == [(480, 880), (1280, 1680), (2080, 2480)]
    assert s.keys == "147" and not s.samples[:480].any()


def test_random_keys_are_reproducible_from_the_seed():
    a = tg.random_keys_signal(tg.KEYS, np.random.default_rng(3))
    b = tg.random_keys_signal(tg.KEYS, np.random.default_rng(3))
    assert np.array_equal(a.samples, b.samples) and a.tones == b.tones


def test_noise_is_added_at_the_asked_snr():
    rng = np.random.default_rng(1)
    clean = tg.keys_signal("5", on_ms=2000, lead_ms=0, level_dbm0=-10)
    noisy = tg.add_noise_at_snr(clean, 15.0, rng)
    snr = 10 * np.log10(np.mean(clean.samples**2) / np.mean((noisy.samples - clean.samples) ** 2))
    assert abs(snr - 15) < 0.2


def test_dial_tone_is_two_tones_at_the_level_each():
    x = tg.dial_tone(8000, 8000, -20)
    assert abs(level_dbm0(x) - (-20 + 10 * np.log10(2))) < 0.05


def test_chord_carries_its_harmonics():
    x = tg.chord((69,), 8000, harmonics=(1.0, 0.5))
    spectrum = np.abs(np.fft.rfft(x))
    assert abs(spectrum[880] / spectrum[440] - 0.5) < 0.02


def test_g711_roundtrip_keeps_shape_and_dtype():
    pcm = tg.to_int16(tg.sine(1000, 160, 8000, -10))
    out = tg.g711_roundtrip(pcm, "alaw")
    assert out.dtype == np.int16 and out.shape == pcm.shape
