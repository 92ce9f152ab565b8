"""The Goertzel bank measures level, frequency error and purity of each 5 ms hop."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import testsignals as tg
from dsp.goertzel import GoertzelBank

ZERO_DBM0 = tg.DBM0_PEAK**2 / 2 * 160  # energy of a 0 dBm0 sine over the 20 ms window


def steady_hop(key: str, **kwargs):
    """Features of one hop well inside a 100 ms tone."""
    signal = tg.keys_signal(key, on_ms=100, lead_ms=0, **kwargs)
    f = GoertzelBank(1).process(signal.pcm16(None)[None, :800])
    i = int(np.flatnonzero(f.hops == 10)[0])
    return f, i


@pytest.mark.parametrize("key", tg.KEYS)
def test_strongest_filters_are_the_keys_row_and_column(key):
    f, i = steady_hop(key)
    assert tg.KEYS[f.row[i] * 4 + f.col[i]] == key


@pytest.mark.parametrize("level", [-3, -15, -30])
def test_tone_energy_reads_the_level_per_tone(level):
    f, i = steady_hop("5", level_dbm0=level)
    for energy in (f.row_energy[i], f.col_energy[i]):
        assert abs(10 * np.log10(energy / ZERO_DBM0) - level) < 0.5


@pytest.mark.parametrize("error", [-0.02, -0.01, 0.01, 0.02])
def test_frequency_error_is_measured(error):
    f, i = steady_hop("D", freq_error=error)
    assert abs(f.row_error[i] - error) < 0.002 and abs(f.col_error[i] - error) < 0.002


def test_offset_tone_energy_is_corrected_for_the_window_loss():
    f, i = steady_hop("D", level_dbm0=-10, freq_error=0.015)
    assert abs(10 * np.log10(f.col_energy[i] / ZERO_DBM0) + 10) < 0.7


def test_a_clean_key_puts_nearly_all_energy_in_its_two_tones():
    f, i = steady_hop("0")
    assert (f.row_energy[i] + f.col_energy[i]) / f.total[i] > 0.97


def test_dial_tone_does_not_count_against_purity():
    signal = tg.keys_signal("0", on_ms=100, lead_ms=0, level_dbm0=-15)
    x = signal.samples + tg.dial_tone(len(signal.samples), 8000, -15)
    f = GoertzelBank(1).process(tg.to_int16(x)[None, :800])
    i = int(np.flatnonzero(f.hops == 10)[0])
    assert (f.row_energy[i] + f.col_energy[i]) / f.total[i] > 0.9


def test_silence_is_not_measured_further():
    f = GoertzelBank(3).process(np.zeros((3, 160), np.int16))
    assert f.calls.size == 0 and f.window_end.shape == (3, 4)


def test_window_ends_count_input_samples_across_odd_frames():
    bank = GoertzelBank(2)
    ends = [bank.process(np.zeros((2, n))).window_end for n in (50, 50, 100)]
    assert [e[0].tolist() for e in ends] == [[40], [80], [120, 160, 200]]


def test_16_khz_uses_the_same_20_ms_window():
    bank = GoertzelBank(1, 16000)
    assert bank.sub == 80 and bank.window == 320


def test_a_key_seconds_into_the_stream_reads_like_one_at_its_start():
    lead = tg.keys_signal("7", on_ms=100, lead_ms=0, level_dbm0=-12).pcm16(None)[:800]
    late = np.concatenate([np.zeros(8000 * 3 + 40, np.int16), lead])  # past the phase period
    f0 = GoertzelBank(1).process(lead[None, :])
    f1 = GoertzelBank(1).process(late[None, :])
    i0 = int(np.flatnonzero(f0.hops == 10)[0])
    i1 = int(np.flatnonzero(f1.hops == 10 + (8000 * 3 + 40) // 40)[0])
    assert (f0.row[i0], f0.col[i0]) == (f1.row[i1], f1.col[i1])
    assert np.isclose(f0.row_energy[i0], f1.row_energy[i1], rtol=1e-3)
    assert abs(f0.col_error[i0] - f1.col_error[i1]) < 1e-4


def test_frames_of_any_length_give_the_features_of_one_block():
    x = tg.keys_signal("B", on_ms=100, lead_ms=10, level_dbm0=-8).pcm16(None)[None, :960]
    whole = GoertzelBank(1).process(x)
    bank = GoertzelBank(1)
    parts = [bank.process(x[:, i : i + 70]) for i in range(0, 960, 70)]
    energies = np.concatenate([p.row_energy for p in parts])
    assert np.concatenate([p.calls for p in parts]).size == whole.calls.size
    assert np.allclose(energies, whole.row_energy, rtol=1e-4)


def test_pair_names_the_strongest_row_and_column_of_every_hop():
    quiet = tg.keys_signal("9", on_ms=100, lead_ms=0, level_dbm0=-40).pcm16(None)
    loud_talk = tg.scale_to_dbm0(tg.white_noise(800, 0.0, np.random.default_rng(1)), -15)
    x = np.concatenate([quiet[:800], np.zeros(800)]) + np.concatenate([np.zeros(800), loud_talk])
    f = GoertzelBank(1).process(tg.to_int16(x)[None])
    assert f.pair.shape == f.window_end.shape
    assert (f.pair[0, 4:20] == tg.KEYS.index("9")).all()  # heard though not gated further
    assert f.pair[0, 36] != tg.KEYS.index("9")


def test_pair_is_minus_one_below_the_floor():
    f = GoertzelBank(1).process(np.zeros((1, 800), np.int16))
    assert (f.pair == -1).all()
