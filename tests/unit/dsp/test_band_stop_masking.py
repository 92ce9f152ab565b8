"""The masker's band-stop (dsp.bandstop in dsp.tone_masker): spans that only may hold
a key lose their keypad bands, the rest leaves untouched, and the spans are reported."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from dsp import testsignals as tg
from dsp.bandstop import bandstopped
from dsp.tone_masker import BatchMasker, StreamingMasker, mask_signal_detail
from tests.support.harness import speech_clips


@cache
def keys_under_talk(seed: int = 21) -> np.ndarray:
    """16 keys 10 dB under to level with real talk, after a G.711 round trip."""
    rng = np.random.default_rng(seed)
    bed = tg.scale_to_dbm0(tg.talk_bed(speech_clips(20, rng), 8000 * 4), -16.0)
    sig = tg.keys_under(bed, tg.KEYS, rng, ratio_db=(-10.0, 0.0))
    x = sig.samples + tg.white_noise(len(sig.samples), -60.0, rng)
    return tg.g711_roundtrip(tg.to_int16(x))


def covered(spans: list[tuple[int, int]], n: int) -> np.ndarray:
    m = np.zeros(n, bool)
    for a, b in spans:
        m[a:b] = True
    return m


def test_talk_over_keys_is_band_stopped_where_it_is_not_masked():
    pcm = keys_under_talk()
    res = mask_signal_detail(pcm)
    stopped, masked = covered(res.stopped, len(pcm)), covered(res.masked, len(pcm))
    assert stopped.sum() > 0.05 * len(pcm)
    assert not (stopped & masked).any()
    assert np.array_equal(res.stop_gain > 0, stopped)


def test_band_stopped_samples_are_the_input_through_the_band_stop():
    pcm = keys_under_talk()
    res = mask_signal_detail(pcm)
    full = res.stop_gain == 1.0
    assert full.sum() > 0.05 * len(pcm)
    expected = tg.to_int16(bandstopped(pcm, 8000))
    assert np.abs(res.audio[full].astype(int) - expected[full]).max() <= 1


def test_audio_neither_masked_nor_band_stopped_is_bit_exact():
    pcm = keys_under_talk()
    res = mask_signal_detail(pcm)
    keep = ~covered(res.masked, len(pcm)) & ~covered(res.stopped, len(pcm))
    assert keep.sum() > 0.3 * len(pcm)
    assert np.array_equal(res.audio[keep], pcm[keep])


def test_line_noise_around_keys_is_never_band_stopped():
    # the keypad bands of -50 dBm0 noise are too quiet for any receiver to hear a key
    sig = tg.random_keys_signal(tg.KEYS, np.random.default_rng(6))
    noise = tg.white_noise(len(sig.samples), -50, np.random.default_rng(1))
    res = mask_signal_detail(sig.pcm16("alaw") + tg.to_int16(noise))
    assert len(res.digits) == 16
    assert res.stopped == []


@pytest.mark.parametrize("lookahead_ms", [10.0, 20.0])
def test_short_look_ahead_band_stops_with_the_same_filter(lookahead_ms):
    pcm = keys_under_talk()
    res = mask_signal_detail(pcm, lookahead_ms=lookahead_ms)
    full = res.stop_gain == 1.0
    assert full.any()
    expected = tg.to_int16(bandstopped(pcm, 8000))
    assert np.abs(res.audio[full].astype(int) - expected[full]).max() <= 1


def test_disarmed_call_is_never_band_stopped():
    pcm = keys_under_talk()
    res = mask_signal_detail(pcm, armed=False)
    assert res.stopped == [] and not res.stop_gain.any()
    assert np.array_equal(res.audio, pcm)


def test_band_stop_can_be_left_off():
    pcm = keys_under_talk()
    res = mask_signal_detail(pcm, band_stop=False)
    assert res.stopped == []
    keep = ~covered(res.masked, len(pcm))
    assert np.array_equal(res.audio[keep], pcm[keep])


def test_batch_band_stops_each_call_as_one_masker_per_call():
    n = min(len(keys_under_talk(21)), len(keys_under_talk(22))) // 160 * 160
    calls = np.stack([keys_under_talk(21)[:n], keys_under_talk(22)[:n]])
    batch = BatchMasker(2, band_stop=True)
    ticks = [batch.process(calls[:, i : i + 160]) for i in range(0, calls.shape[1], 160)]
    ticks.append(batch.flush())
    for call in range(2):
        single = StreamingMasker()
        alone = [single.process(calls[call, i : i + 160]) for i in range(0, calls.shape[1], 160)]
        alone.append(single.flush())
        assert [s for t in ticks for s in t[call].stopped] == [s for r in alone for s in r.stopped]
        assert np.array_equal(
            np.concatenate([t[call].audio for t in ticks]),
            np.concatenate([r.audio for r in alone]),
        )


def test_reset_forgets_a_band_stopped_key():
    pcm = keys_under_talk()[: 8000 * 2]
    m = BatchMasker(1, band_stop=True)
    for i in range(0, len(pcm), 160):
        m.process(pcm[None, i : i + 160])
    m.reset(0)
    quiet = np.zeros((1, 160), np.int16)
    results = [m.process(quiet) for _ in range(10)] + [m.flush()]
    assert all(r[0].stopped == [] and r[0].stop_gain is None for r in results)
