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
from tests.support.loose_receiver import recoverable_keys


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


def talk_alone(seed: int) -> np.ndarray:
    """Real talk with no key, after a G.711 round trip."""
    rng = np.random.default_rng(seed)
    bed = tg.scale_to_dbm0(tg.talk_bed(speech_clips(20, rng), 8000 * 4), -16.0)
    return tg.g711_roundtrip(tg.to_int16(bed + tg.white_noise(len(bed), -60.0, rng)))


def test_batch_band_stops_each_call_as_one_masker_per_call():
    # calls that band-stop beside calls that never do (talk alone, digital silence):
    # one call's band-stop must not reach into another's
    signals = [keys_under_talk(21), talk_alone(5), np.zeros(8000 * 30, np.int16)]
    signals.append(keys_under_talk(22))
    n = min(len(s) for s in signals) // 160 * 160
    calls = np.stack([s[:n] for s in signals])
    batch = BatchMasker(len(signals))
    ticks = [batch.process(calls[:, i : i + 160]) for i in range(0, n, 160)]
    ticks.append(batch.flush())
    assert all(any(t[c].stopped for t in ticks) for c in (0, 1, 3))
    for call in range(len(signals)):
        single = StreamingMasker()
        alone = [single.process(calls[call, i : i + 160]) for i in range(0, n, 160)]
        alone.append(single.flush())
        assert [s for t in ticks for s in t[call].stopped] == [s for r in alone for s in r.stopped]
        assert np.array_equal(
            np.concatenate([t[call].audio for t in ticks]),
            np.concatenate([r.audio for r in alone]),
        )


def test_reset_forgets_a_band_stopped_key():
    pcm = keys_under_talk()[: 8000 * 2]
    m = BatchMasker(1)
    for i in range(0, len(pcm), 160):
        m.process(pcm[None, i : i + 160])
    m.reset(0)
    quiet = np.zeros((1, 160), np.int16)
    results = [m.process(quiet) for _ in range(10)] + [m.flush()]
    assert all(r[0].stopped == [] and r[0].stop_gain is None for r in results)


def off_frequency_keys(rate: int, level_dbm0: float, offset: tuple[float, float]):
    """All 16 keys, 80 ms each, `offset` (row, column) off their frequencies, over line
    noise; returns (recording, its noise alone, tones)."""
    sig = tg.keys_signal(
        tg.KEYS, rate, 80, 80, level_dbm0, freq_error=offset, rng=np.random.default_rng(3)
    )
    noise = tg.to_int16(tg.white_noise(len(sig.samples), -55, np.random.default_rng(2)))
    tones = [(t.key, t.start, t.end) for t in sig.tones]
    return tg.to_int16(sig.samples + noise), noise, tones


#: Frequency errors up to which a receiver may still take a tone for a key (ITU-T Q.24
#: asks receivers to reject beyond 3.5 %), on both tones or on the column alone (a
#: column 3.5 % off is 57 Hz off at 1633 Hz: outside the 20 ms window's main lobe).
OFF_FREQUENCY = [(e, e) for e in (-0.035, -0.03, 0.03, 0.035)]
OFF_FREQUENCY += [(0.0, e) for e in (-0.035, -0.03, 0.03, 0.035)]


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("lookahead_ms", [20.0, 40.0])
def test_keys_up_to_3_5_percent_off_frequency_leave_nothing_for_the_loose_receiver(
    rate, lookahead_ms
):
    for level in (-25.0, -10.0, 0.0):
        for offset in OFF_FREQUENCY:
            pcm, noise, tones = off_frequency_keys(rate, level, offset)
            res = mask_signal_detail(pcm, rate, lookahead_ms=lookahead_ms)
            ref = noise + res.stop_gain * (bandstopped(noise, rate) - noise)
            ref = np.where(covered(res.masked, len(pcm)), res.audio, ref)
            heard = recoverable_keys(res.audio.astype(np.float64), ref, tones, rate)
            assert heard == [], (level, offset)


def test_the_loose_receiver_hears_off_frequency_keys_unmasked():
    pcm, noise, tones = off_frequency_keys(8000, -10.0, (0.0, 0.035))
    assert len(recoverable_keys(pcm.astype(np.float64), noise, tones, 8000)) >= 12
