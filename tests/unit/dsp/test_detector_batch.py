"""The batch detector: many calls per tick, the same events as one detector per call."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import testsignals as tg
from dsp.detector import BatchDtmfDetector, detect


def run_batch(det: BatchDtmfDetector, pcm: np.ndarray, frame: int = 160) -> list[list]:
    found: list[list] = [[] for _ in range(pcm.shape[0])]
    for i in range(0, pcm.shape[1], frame):
        for call, events in enumerate(det.process(pcm[:, i : i + frame])):
            found[call] += events
    for call, events in enumerate(det.flush()):
        found[call] += events
    return found


def calls(n: int, rate: int = 8000) -> np.ndarray:
    signals = [
        tg.random_keys_signal(tg.KEYS, np.random.default_rng(s), rate, level_dbm0=(-25, -3)).pcm16()
        for s in range(n)
    ]
    length = max(len(s) for s in signals)
    return np.stack([np.pad(s, (0, length - len(s))) for s in signals])


@pytest.mark.parametrize("rate", [8000, 16000])
def test_batch_events_equal_one_detector_per_call(rate):
    pcm = calls(6, rate)
    batch = run_batch(BatchDtmfDetector(6, rate), pcm, rate // 50)
    assert batch == [detect(row, rate) for row in pcm]
    assert all(len(events) == 16 for events in batch)


def test_silent_calls_next_to_busy_ones_stay_silent():
    pcm = calls(3)
    pcm[1] = 0
    found = run_batch(BatchDtmfDetector(3), pcm)
    assert found[1] == [] and len(found[0]) == len(found[2]) == 16


def test_reset_call_restarts_its_sample_count_and_state():
    pcm = calls(2)
    det = BatchDtmfDetector(2)
    half = 8000 + 37  # mid-tone for some call, not on a frame boundary
    for i in range(0, half, 160):
        det.process(pcm[:, i : min(i + 160, half)])
    det.reset(1)
    rest = pcm[:, half:]
    fresh = pcm[1, half:]
    found = run_batch(det, np.stack([rest[0], fresh]))
    expected = detect(fresh)
    assert [e.digit for e in found[1]] == [e.digit for e in expected]
    # the old call's partial 5 ms block shifts the analysis grid by a few samples at most
    for got, want in zip(found[1], expected, strict=True):
        assert abs(got.start - want.start) <= 2 and abs(got.end - want.end) <= 2


def test_a_reused_slot_times_its_first_press_on_the_new_stream():
    old = tg.keys_signal("9", on_ms=300, lead_ms=500).pcm16()[:12000]
    new = tg.keys_signal("4", on_ms=60, lead_ms=100).pcm16()
    det = BatchDtmfDetector(1)
    run_batch(det, old[None, :])
    det.reset(0)
    found = run_batch(det, new[None, :])[0]
    assert [(e.digit, e.start, e.end) for e in found] == [
        (e.digit, e.start, e.end) for e in detect(new)
    ]


def test_frames_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError):
        BatchDtmfDetector(4).process(np.zeros((3, 160), np.int16))


def test_a_thousand_calls_per_tick_run_and_find_their_keys():
    key = tg.keys_signal("5", on_ms=60, lead_ms=20).pcm16()
    pcm = np.zeros((1000, 1600), np.int16)
    pcm[::10, : len(key)] = key
    found = run_batch(BatchDtmfDetector(1000), pcm)
    assert sum(len(f) for f in found) == 100
    assert all(len(f) == (1 if c % 10 == 0 else 0) for c, f in enumerate(found))
