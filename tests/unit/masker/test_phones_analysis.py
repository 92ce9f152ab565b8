"""Judging a recording against what was sent: alignment, leak, round trip, speech."""

from __future__ import annotations

import numpy as np
import pytest

from masker.phones.analysis import (
    find_marker,
    leaked_ms,
    round_trip_samples,
    speech_similarity,
)
from masker.phones.tones import keyed_signal


@pytest.fixture
def sent():
    return keyed_signal("4111#")


def received(sent, lag: int, noise: float = 30.0, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.concatenate([np.zeros(lag), sent.pcm.astype(np.float64), np.zeros(800)])
    return x + rng.normal(0, noise, len(x))


def test_marker_is_found_at_the_delay_it_arrived_with(sent):
    align = find_marker(received(sent, 1234), sent)
    assert align is not None
    assert align.lag == 1234


def concealed_gaps(x: np.ndarray, at: list[int], frame: int = 160) -> np.ndarray:
    """`x` with the frame before each index played again there (a receiver's concealment
    of a late packet): what follows comes a frame later."""
    parts, prev = [], 0
    for i in at:
        parts += [x[prev:i], x[i - frame : i]]
        prev = i
    return np.concatenate([*parts, x[prev:]])


def test_marker_split_by_concealed_gaps_is_found_at_its_start(sent):
    lag = 1234
    start = sent.marker_start + lag
    rec = concealed_gaps(received(sent, lag), [start + 300, start + 620])
    align = find_marker(rec, sent)
    assert align is not None
    assert align.lag == lag


def dropped_packets(x: np.ndarray, at: int, n: int, frame: int = 160) -> np.ndarray:
    """`x` with n packets from `at` lost and the one before them played in their place
    (a receiver that dropped a stalled sender's late packets): the rest stays in time."""
    y = x.copy()
    for k in range(n):
        y[at + k * frame : at + (k + 1) * frame] = x[at - frame : at]
    return y


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda rec, start: dropped_packets(rec, start, 2), id="first-two-dropped"),
        pytest.param(lambda rec, start: concealed_gaps(rec, [start + 480] * 12), id="stall-240ms"),
    ],
)
def test_marker_damaged_by_a_stall_is_found_at_its_start(sent, damage):
    lag = 1234
    rec = damage(received(sent, lag), sent.marker_start + lag)
    align = find_marker(rec, sent)
    assert align is not None
    assert align.lag == lag


def test_marker_with_half_its_packets_dropped_is_not_found(sent):
    lag = 1234
    start = sent.marker_start + lag
    rec = dropped_packets(received(sent, lag), start + 160, 3)
    assert find_marker(rec, sent) is None


def test_marker_pieces_out_of_order_are_not_found(sent):
    marker = sent.pcm[sent.marker_start : sent.marker_start + sent.marker_len]
    quarters = np.split(marker[: len(marker) // 4 * 4], 4)
    shuffled = np.concatenate([np.zeros(2000), *quarters[::-1], np.zeros(2000)])
    noise = np.random.default_rng(3).normal(0, 30, len(shuffled))
    assert find_marker(shuffled + noise, sent) is None


def test_missing_marker_is_reported_as_not_found(sent):
    assert find_marker(np.random.default_rng(1).normal(0, 500, 40000), sent) is None


def test_unmasked_tones_leak_their_whole_length(sent):
    leaks = leaked_ms(received(sent, 500), sent, 500)
    assert all(90 <= ms <= 105 for ms in leaks)


def test_tones_replaced_by_a_masking_tone_leak_nothing(sent):
    rec = received(sent, 500)
    for span in sent.spans:
        t = np.arange(span.end - span.start) / 8000
        rec[span.start + 500 : span.end + 500] = 2000 * np.sin(2 * np.pi * 500 * t)
    assert max(leaked_ms(rec, sent, 500)) == 0


def test_a_late_mask_leaks_about_its_lateness(sent):
    rec = received(sent, 0)
    for span in sent.spans:
        rec[span.start + 240 : span.end] = 0  # 30 ms of each tone got through
    assert all(20 <= ms <= 30 for ms in leaked_ms(rec, sent, 0))


def test_round_trip_is_the_distance_between_sent_and_echoed_marker():
    sig = keyed_signal("")
    x = sig.pcm.astype(np.float64)
    rec = np.concatenate([x, np.zeros(2000)])
    rec[700 : 700 + len(x)] += 0.7 * x
    assert round_trip_samples(rec, sig) == 700


def test_round_trip_without_echo_is_unknown():
    sig = keyed_signal("")
    assert round_trip_samples(sig.pcm, sig) is None


def test_identical_speech_scores_one():
    rng = np.random.default_rng(3)
    speech = rng.normal(0, 2000, 16000)
    rec = np.concatenate([np.zeros(321), speech, np.zeros(500)])
    assert speech_similarity(rec, speech) > 0.99


def test_speech_with_a_frame_slip_still_scores_high():
    rng = np.random.default_rng(4)
    speech = rng.normal(0, 2000, 24000)
    rec = np.concatenate([np.zeros(100), speech[:12000], np.zeros(160), speech[12000:]])
    assert speech_similarity(rec, speech) > 0.9


def test_unrelated_audio_scores_low():
    rng = np.random.default_rng(5)
    assert speech_similarity(rng.normal(0, 2000, 20000), rng.normal(0, 2000, 16000)) < 0.3
