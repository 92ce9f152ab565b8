"""The batch masker: many calls per tick, the same output as one masker per call."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import testsignals as tg
from dsp.tone_masker import BatchMasker, StreamingMasker


def keys_calls(n: int) -> np.ndarray:
    signals = [tg.random_keys_signal(tg.KEYS, np.random.default_rng(s)).pcm16() for s in range(n)]
    length = max(len(s) for s in signals)
    length += -length % 160
    return np.stack([np.pad(s, (0, length - len(s))) for s in signals])


def run(masker, pcm: np.ndarray):
    """(audio, digits, spans) per call for a batch masker over (calls, samples)."""
    n = pcm.shape[0]
    audio: list[list] = [[] for _ in range(n)]
    digits: list[list] = [[] for _ in range(n)]
    spans: list[list] = [[] for _ in range(n)]
    results = [masker.process(pcm[:, i : i + 160]) for i in range(0, pcm.shape[1], 160)]
    results.append(masker.flush())
    for tick in results:
        for call, r in enumerate(tick):
            audio[call].append(r.audio)
            digits[call] += r.digits
            spans[call] += r.masked
    return [np.concatenate(a) for a in audio], digits, spans


def run_single(pcm: np.ndarray, **kwargs):
    m = StreamingMasker(**kwargs)
    results = [m.process(pcm[i : i + 160]) for i in range(0, len(pcm), 160)] + [m.flush()]
    return (
        np.concatenate([r.audio for r in results]),
        [d for r in results for d in r.digits],
        [s for r in results for s in r.masked],
    )


@pytest.mark.parametrize("mode", ["tone", "silence"])
def test_batch_output_equals_one_masker_per_call(mode):
    pcm = keys_calls(4)
    audio, digits, spans = run(BatchMasker(4, mode=mode), pcm)
    for call in range(4):
        a, d, s = run_single(pcm[call], mode=mode)
        assert np.array_equal(audio[call], a)
        assert digits[call] == d and spans[call] == s
    assert all(len(d) == 16 for d in digits)


def test_batch_cadence_masks_the_same_spans_as_one_masker_per_call():
    pcm = keys_calls(3)
    audio, digits, spans = run(BatchMasker(3, mode="cadence"), pcm)
    for call in range(3):
        a, d, s = run_single(pcm[call], mode="cadence")
        assert digits[call] == d and spans[call] == s
    # call 0 shares the single masker's comfort-noise seed, so even its audio is equal
    assert np.array_equal(audio[0], run_single(pcm[0], mode="cadence")[0])


def test_force_mask_touches_only_its_call():
    pcm = tg.to_int16(tg.white_noise(2 * 4000, -20, np.random.default_rng(1))).reshape(2, 4000)
    m = BatchMasker(2, mode="silence")
    m.force_mask(1, 1000, 2000)
    audio, _, spans = run(m, pcm)
    assert spans == [[], [(1000, 2000)]]
    # (loud noise may have bits band-stopped: call 0 is what it is without the force)
    untouched, _, _ = run(BatchMasker(2, mode="silence"), pcm)
    assert np.array_equal(audio[0], untouched[0])


def test_arm_and_disarm_are_per_call():
    pcm = keys_calls(2)
    m = BatchMasker(2)
    m.disarm(0)
    audio, digits, spans = run(m, pcm)
    assert spans[0] == [] and len(spans[1]) == 16
    assert np.array_equal(audio[0][m.delay :], pcm[0])
    assert len(digits[0]) == len(digits[1]) == 16


def test_reset_reuses_a_slot_for_a_new_call():
    pcm = keys_calls(2)
    m = BatchMasker(2)
    for i in range(0, 4000, 160):
        m.process(pcm[:, i : i + 160])
    m.reset(1)
    rest = np.stack([pcm[0, 4000:], pcm[1, : pcm.shape[1] - 4000]])
    _, digits, _ = run(m, rest)
    _, expected, _ = run_single(pcm[1, : rest.shape[1]])
    assert digits[1] == expected


def test_frames_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError):
        BatchMasker(2).process(np.zeros((3, 160), np.int16))


def test_reset_restores_the_default_arming_of_a_reused_slot():
    m = BatchMasker(2, armed=True)
    m.disarm(1)
    m.reset(1)
    pcm = keys_calls(2)
    out, _, _ = run(m, pcm)
    fresh, _, _ = run(BatchMasker(2, armed=True), pcm)
    assert np.array_equal(out[1], fresh[1])


def grown_run(pcm: np.ndarray, first: int, at_tick: int, rate: int = 8000, **kwargs):
    """(audio, digits, spans) per call, each call's stream and the frames run after the
    growth: a batch of `first` calls grown to all of them after `at_tick` frames; the
    new calls' streams start then (rows reset, as the media plane's mask bank does)."""
    frame = rate // 50
    n = pcm.shape[0]
    masker = BatchMasker(first, sample_rate=rate, **kwargs)
    results: list[list] = [[] for _ in range(n)]
    for t in range(at_tick):
        for call, r in enumerate(masker.process(pcm[:first, t * frame : (t + 1) * frame])):
            results[call].append(r)
    masker.grow(n)
    for call in range(first, n):
        masker.reset(call)
    streams = list(pcm)  # each call's stream from its own start
    skip = [0 if c >= first else at_tick for c in range(n)]  # frames each has played
    ticks = pcm.shape[1] // frame - at_tick
    for t in range(ticks):
        frames = np.stack(
            [s[(k + t) * frame : (k + t + 1) * frame] for s, k in zip(streams, skip, strict=True)]
        )
        for call, r in enumerate(masker.process(frames)):
            results[call].append(r)
    return (
        [
            (
                np.concatenate([r.audio for r in res]),
                [d for r in res for d in r.digits],
                [s for r in res for s in r.masked],
            )
            for res in results
        ],
        streams,
        ticks,
    )


@pytest.mark.parametrize("rate", [8000, 16000])
def test_a_grown_batch_goes_on_as_one_masker_per_call(rate):
    pcm = np.tile(keys_calls(5), 2)  # 32 keys a call: the late ones still get 16
    if rate != 8000:
        pcm = np.repeat(pcm, 2, axis=1)  # a 16 kHz stream with the same keys
    at_tick = 137  # inside the first calls' key presses, not on a frame boundary of one
    grown, streams, ticks = grown_run(pcm, 2, at_tick, rate=rate)
    frame = rate // 50
    for call in range(5):
        length = (ticks + (at_tick if call < 2 else 0)) * frame
        m = StreamingMasker(sample_rate=rate)
        single = [m.process(streams[call][i : i + frame]) for i in range(0, length, frame)]
        assert np.array_equal(grown[call][0], np.concatenate([r.audio for r in single]))
        assert grown[call][1] == [d for r in single for d in r.digits]
        assert grown[call][2] == [s for r in single for s in r.masked]
    assert min(len(g[1]) for g in grown) >= 16  # keys found before and after growing


def test_a_forced_span_across_the_growth_is_still_masked():
    pcm = keys_calls(3) // 8  # quiet keys: the forced span, not detection, masks them
    masker = BatchMasker(1, lookahead_ms=20)
    masker.force_mask(0, 20 * 160, 60 * 160)
    out = [masker.process(pcm[:1, t * 160 : (t + 1) * 160])[0].audio for t in range(40)]
    masker.grow(3)
    out += [masker.process(pcm[:, t * 160 : (t + 1) * 160])[0].audio for t in range(40, 80)]
    reference = StreamingMasker(lookahead_ms=20)
    reference.force_mask(20 * 160, 60 * 160)
    expected = [reference.process(pcm[0, t * 160 : (t + 1) * 160]).audio for t in range(80)]
    assert np.array_equal(np.concatenate(out), np.concatenate(expected))


def test_a_batch_never_shrinks():
    with pytest.raises(ValueError):
        BatchMasker(4).grow(2)
