"""The keypad band-stop (dsp.bandstop): deep over every keypad tone a receiver may
accept, transparent to the rest of the voice band, and no receiver hears a key
through it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from dsp import testsignals as tg
from dsp.bandstop import bandstopped, centred, keypad_bandstop_fir
from masker.offline.receivers import multimon_digits, spandsp_digits
from tests.support.loose_receiver import BLOCKS_MS, block_keys

RATES = [8000, 16000]
#: Every frequency error a receiver may still accept (ITU-T Q.24: reject beyond 3.5 %).
OFFSETS = np.linspace(-0.035, 0.035, 8)


def keys_alone(rate: int, level_dbm0: float, offset: float, noise_dbm0: float = -60.0):
    """All 16 keys, 120 ms each, `offset` off their frequencies, 100 ms between, over
    line noise at `noise_dbm0` (seeded)."""
    gap = np.zeros(tg.ms(100, rate))
    parts = [gap]
    for key in tg.KEYS:
        parts += [tg.dtmf(key, tg.ms(120, rate), rate, level_dbm0, 0.0, offset, (0.3, 1.1)), gap]
    x = np.concatenate(parts)
    return x + tg.white_noise(len(x), noise_dbm0, np.random.default_rng(1))


@pytest.mark.parametrize("rate", RATES)
def test_stop_band_is_at_least_45_db_deep_over_every_keypad_tone_within_3_5_percent(rate):
    freqs = [f * (1 + e) for f in tg.ROW_HZ + tg.COL_HZ for e in np.linspace(-0.035, 0.035, 29)]
    _, response = signal.freqz(keypad_bandstop_fir(rate), worN=freqs, fs=rate)
    assert 20 * np.log10(np.abs(response).max()) <= -45.0


@pytest.mark.parametrize("rate", RATES)
def test_voice_band_outside_the_keypad_bands_passes_within_a_tenth_of_a_db(rate):
    _, response = signal.freqz(
        keypad_bandstop_fir(rate), worN=[100, 300, 450, 2000, 2500, 3000, 3400], fs=rate
    )
    assert np.abs(20 * np.log10(np.abs(response))).max() <= 0.1


@pytest.mark.parametrize("rate", RATES)
def test_band_stopped_keys_are_inaudible_to_the_loose_receiver_at_every_offset(rate):
    # keys up to -7 dBm0: a key's abrupt switch-on and -off spread outside the stop
    # band, and a plain Goertzel block hears that through its sidelobes at about 38 dB
    # under the key (keys louder than that pass CANDIDATE at once and get the tone)
    for offset in OFFSETS:
        out = bandstopped(keys_alone(rate, -7.0, offset), rate)
        for block_ms in BLOCKS_MS:
            heard, _, _ = block_keys(out, rate, block_ms)
            assert (heard < 0).all(), (offset, block_ms)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("offset", [-0.035, 0.0, 0.035])
def test_band_stopped_keys_at_0_dbm0_give_spandsp_and_multimon_no_digit(rate, offset):
    # over -60 dBm0 line noise: multimon-ng has no level floor, and hears what is left
    # of a key 65 dB down in digital silence (a key alone there gets the masking tone)
    pcm = tg.to_int16(bandstopped(keys_alone(rate, 0.0, offset), rate))
    assert spandsp_digits(pcm, rate) == ""
    assert multimon_digits(pcm, rate) == ""


def test_the_receivers_do_hear_the_keys_before_the_band_stop():
    pcm = tg.to_int16(keys_alone(8000, -7.0, 0.0))
    assert spandsp_digits(pcm, 8000) == tg.KEYS
    heard, _, _ = block_keys(pcm, 8000, BLOCKS_MS[0])
    assert len(set(heard[heard >= 0].tolist())) == 16


def test_band_stop_of_rows_is_each_row_band_stopped():
    rng = np.random.default_rng(3)
    rows = rng.standard_normal((3, 2000)) * 3000
    assert np.allclose(bandstopped(rows, 8000), [bandstopped(r, 8000) for r in rows])


def test_centred_fir_output_lines_up_with_the_input():
    # a symmetric FIR adds no delay: an impulse comes out centred where it went in
    taps = keypad_bandstop_fir(8000)
    x = np.zeros(1000)
    x[500] = 1.0
    out = bandstopped(x, 8000)
    assert int(np.argmax(np.abs(out))) == 500
    assert np.allclose(centred(x[None, :], taps)[0], out[len(taps) // 2 : -(len(taps) // 2)])
