"""G.722 and the 2:1 resampler of the media plane (masker.media.codecs, .transcode)."""

from __future__ import annotations

import numpy as np
from scipy import signal

from masker.media.codecs import (
    G722_DELAY,
    RESAMPLE_DELAY,
    G722Decoder,
    G722Encoder,
    downsample,
    new_state,
    pair_cells,
    upsample,
)
from masker.media.maskbank import MaskBank
from masker.media.transcode import Transcoder, rescale_events
from masker.wire.rfc4733 import TelephoneEvent, build_events, parse_events


def tone(freq: float, n: int, rate: int, amplitude: float = 8000.0) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.int16)


def band_noise(n16k: int, seed: int = 3) -> np.ndarray:
    """16 kHz noise below 3 kHz (no period to fool a lag search, no aliasing at 8 kHz)."""
    rng = np.random.default_rng(seed)
    x = signal.lfilter(signal.firwin(101, 3000, fs=16000), 1.0, rng.normal(0, 4000, n16k))
    return x.astype(np.int16)


def lag_of(sent: np.ndarray, got: np.ndarray, most: int = 64) -> int:
    x = sent[1000:-1000].astype(np.float64)
    return int(np.argmax([np.dot(x, got[1000 + k : len(got) - 1000 + k]) for k in range(most)]))


def test_g722_round_trip_keeps_a_keypad_tone_and_delays_it_by_the_codec_delay():
    pcm = tone(770, 16000, 16000) + tone(1336, 16000, 16000)
    back = G722Decoder().decode(G722Encoder().encode(pcm))
    lag = lag_of(pcm, back)
    assert lag == 2 * G722_DELAY
    err = pcm[1000:-1000].astype(float) - back[1000 + lag : len(back) - 1000 + lag]
    snr = 10 * np.log10(np.sum(pcm[1000:-1000].astype(float) ** 2) / np.sum(err**2))
    assert snr > 25


def test_g722_streams_keep_their_own_state_when_interleaved():
    rng = np.random.default_rng(7)
    a, b = rng.normal(0, 3000, 6400).astype(np.int16), rng.normal(0, 3000, 6400).astype(np.int16)
    alone = G722Encoder().encode(a)
    enc_a, enc_b = G722Encoder(), G722Encoder()
    mixed = b""
    for i in range(0, 6400, 320):
        mixed += enc_a.encode(a[i : i + 320])
        enc_b.encode(b[i : i + 320])
    assert mixed == alone and len(alone) == 3200


def test_downsample_in_frames_equals_one_pass_and_delays_by_the_resampler_delay():
    pcm = tone(1000, 16000, 16000)
    whole, _ = downsample(pcm[None, :], new_state())
    state, parts = new_state(), []
    for i in range(0, 16000, 320):
        part, state = downsample(pcm[None, i : i + 320], state)
        parts.append(part[0])
    assert np.array_equal(np.concatenate(parts), whole[0])
    assert abs(np.abs(whole[0][2000:]).max() - 8000) < 200
    noise = band_noise(32000)
    down, _ = downsample(noise[None, :], new_state())
    assert lag_of(noise[::2], down[0]) == RESAMPLE_DELAY


def test_upsample_keeps_level_and_delays_by_the_resampler_delay():
    up, _ = upsample(tone(1000, 8000, 8000)[None, :], new_state())
    assert abs(np.abs(up[0][4000:]).max() - 8000) < 200
    noise = band_noise(32000)
    up, _ = upsample(noise[None, ::2], new_state())
    assert lag_of(noise, up[0]) == 2 * RESAMPLE_DELAY


def test_resampler_runs_many_streams_each_with_its_own_state():
    a, b = tone(697, 3200, 16000), tone(1477, 3200, 16000)
    both, _ = downsample(np.stack([a, b]), new_state(2))
    alone, _ = downsample(b[None, :], new_state())
    assert np.array_equal(both[1], alone[0])


def test_pair_cells_hold_two_16khz_samples_per_clock_sample():
    pcm = np.arange(320, dtype=np.int16)
    cells = pair_cells(pcm)
    assert cells.dtype == np.int32 and len(cells) == 160
    assert np.array_equal(cells.view(np.int16), pcm)


def test_transcoder_turns_g722_into_pcmu_of_the_same_frame_length():
    payload = G722Encoder().encode(tone(1000, 320, 16000))
    assert len(Transcoder().convert(payload, "G722", "PCMU")) == len(payload) == 160


def test_event_durations_are_rescaled_between_clocks_blocks_kept():
    payload = build_events([TelephoneEvent(1, True, 10, 800), TelephoneEvent(2, False, 10, 400)])
    out = parse_events(rescale_events(payload, 8000, 16000))
    assert [(ev.event, ev.end, ev.duration) for _, ev in out] == [(1, True, 1600), (2, False, 800)]


def test_mask_bank_gives_each_rate_its_own_chunks():
    made: list[tuple[int, int]] = []

    class Stub:
        def __init__(self, n: int, rate: int = 8000) -> None:
            made.append((n, rate))

        def reset(self, row: int) -> None:
            pass

    bank = MaskBank(Stub, batch_size=2, max_slots=8)
    narrow = bank.allocate()
    wide = [bank.allocate(16000), bank.allocate(16000)]
    assert made == [(2, 8000), (2, 16000)]
    assert bank.rate_of(narrow) == 8000 and {bank.rate_of(s) for s in wide} == {16000}
    assert [bank.rates[c] for c in bank.active_chunks()] == [8000, 16000]
