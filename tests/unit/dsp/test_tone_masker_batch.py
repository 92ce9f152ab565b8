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
