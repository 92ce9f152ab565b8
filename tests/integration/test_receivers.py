"""The independent receivers really decode DTMF, so "zero digits recovered" means something."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.testsignals import KEYS, random_keys_signal, white_noise
from masker.errors import UserError
from masker.offline import receivers
from masker.offline.receivers import ReceiverUnavailable, multimon_digits, spandsp_digits

RECEIVERS = [spandsp_digits, multimon_digits]


def clean_keys(rate: int, seed: int = 7, keys: str = KEYS) -> np.ndarray:
    """All keys at comfortable levels, durations and twists, after a mu-law round trip."""
    rng = np.random.default_rng(seed)
    seq = random_keys_signal(
        keys, rng, rate, on_ms=(60, 120), off_ms=(80, 150), level_dbm0=(-20, -3), twist_db=(0, 3)
    )
    return seq.pcm16("ulaw")


@pytest.mark.parametrize("receiver", RECEIVERS)
@pytest.mark.parametrize("rate", [8000, 16000])
def test_receiver_decodes_all_sixteen_keys(receiver, rate):
    assert receiver(clean_keys(rate), rate) == KEYS


@pytest.mark.parametrize("receiver", RECEIVERS)
def test_receiver_decodes_keys_in_a_different_order(receiver):
    keys = KEYS[::-1] + "5550123"
    assert receiver(clean_keys(8000, seed=11, keys=keys), 8000) == keys


@pytest.mark.parametrize("receiver", RECEIVERS)
def test_receiver_hears_nothing_in_noise(receiver):
    rng = np.random.default_rng(3)
    noise = np.rint(white_noise(8000 * 3, -30.0, rng)).astype(np.int16)
    assert receiver(noise, 8000) == ""


@pytest.mark.parametrize("receiver", RECEIVERS)
def test_receiver_hears_nothing_in_silence(receiver):
    assert receiver(np.zeros(8000, dtype=np.int16), 8000) == ""


@pytest.mark.parametrize("receiver", RECEIVERS)
def test_receiver_rejects_multichannel_arrays(receiver):
    with pytest.raises(ValueError):
        receiver(np.zeros((160, 2), dtype=np.int16), 8000)


def test_missing_spandsp_library_is_a_clear_user_error(monkeypatch):
    monkeypatch.setattr(receivers.ctypes.util, "find_library", lambda name: None)
    receivers._spandsp.cache_clear()
    try:
        with pytest.raises(ReceiverUnavailable, match="spandsp library not found"):
            spandsp_digits(np.zeros(160, dtype=np.int16))
    finally:
        receivers._spandsp.cache_clear()


def test_missing_multimon_program_is_a_clear_user_error(monkeypatch):
    monkeypatch.setattr(receivers.shutil, "which", lambda name: None)
    with pytest.raises(ReceiverUnavailable, match="multimon-ng not found"):
        multimon_digits(np.zeros(160, dtype=np.int16))


def test_receiver_unavailable_is_a_user_error():
    assert issubclass(ReceiverUnavailable, UserError)
