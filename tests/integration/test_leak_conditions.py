"""Masking criterion under hard conditions: nothing any receiver can decode is left.

The criterion: every stretch of a keyed tone from which spandsp's dtmf_rx,
multimon-ng or the deliberately loose receiver of tests/support/loose_receiver.py
(plain Goertzel row/column pair, no twist/purity/duration checks, low level)
can decode that key must be masked.  Receivers also "hear" digits in talk; a
digit counts as recovered only beyond what the receiver hears in the reference
(the masked output inside masked spans, the key-free bed elsewhere), so only
the keys' unmasked remainder can make one.

Conditions (seeded, after a G.711 round trip): keys 10 dB under to 5 dB over
real speech and synthetic music, keys in white noise, keys broken by 4-10 ms
dropouts, keys with line echo; 8 and 16 kHz; look-ahead 40 ms (today's media
plane) and 20 ms.  The cost, speech masked with no key present, is bounded in
tests/unit/dsp/test_talkoff.py.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest

from dsp import testsignals as tg
from dsp.tone_masker import mask_signal
from masker.offline.receivers import multimon_digits, spandsp_digits
from tests.support.harness import speech_clips
from tests.support.loose_receiver import recoverable_keys

#: Open gaps (issue 8, part 1), measured and kept visible as expected failures, per
#: (condition, look-ahead): keys 10 dB under talk or under music that no limit set
#: finds early enough (the look-ahead is gone before the key is found, or it is never
#: found) still leave their onset, or all of a short key, to the loose receiver; in
#: the windows that end within the look-ahead those keys look like talk (a single
#: `BURIED` hop is enough for the loose receiver, and taking one as a key masks
#: 5 s a minute of speech).  spandsp and multimon-ng recover nothing from any case.
OPEN = "open (issue 8): the onset of keys found late under louder talk/music is left"
LOOSE_OPEN = {
    ("speech-louder", 40.0),
    ("speech-louder", 20.0),
    ("speech-louder-b", 40.0),
    ("speech-louder-b", 20.0),
    ("music", 40.0),
    ("music", 20.0),
}


def marked(open_cases: set[tuple[str, float]]):
    return [
        pytest.param(
            c,
            la,
            id=f"{c.name}-{la:.0f}ms",
            marks=[pytest.mark.xfail(reason=OPEN, strict=False)]
            if (c.name, la) in open_cases
            else [],
        )
        for c in CONDITIONS
        for la in (40.0, 20.0)
    ]


@dataclass(frozen=True)
class Condition:
    name: str
    bed: str  # speech | music | noise | none
    seed: int
    rate: int = 8000
    ratio_db: tuple[float, float] = (-10.0, 5.0)
    dropouts: bool = False
    echo: bool = False


CONDITIONS = [
    Condition("speech-louder", "speech", 11),
    Condition("speech-louder-b", "speech", 12),
    Condition("speech-16k", "speech", 13, rate=16000),
    Condition("music", "music", 14),
    Condition("noise", "noise", 15, ratio_db=(10.0, 20.0)),
    Condition("fragmented", "speech", 16, ratio_db=(0.0, 10.0), dropouts=True),
    Condition("echo", "speech", 17, ratio_db=(-5.0, 5.0), echo=True),
]
IDS = [c.name for c in CONDITIONS]


@dataclass
class Case:
    pcm: np.ndarray
    bed: np.ndarray
    tones: list[tuple[str, int, int]]
    rate: int


@cache
def build(cond: Condition) -> Case:
    rng = np.random.default_rng(cond.seed)
    rate = cond.rate
    keys = "".join(rng.permutation(list(tg.KEYS)))
    n = rate * 8
    if cond.bed == "speech":
        bed = tg.talk_bed(speech_clips(40, rng), n, rate)
    elif cond.bed == "music":
        bed = tg.music_bed(n, rate, rng)
    else:
        bed = rng.standard_normal(n)
    bed = tg.scale_to_dbm0(bed, rng.uniform(-22.0, -12.0))
    if cond.dropouts:
        sig = tg.random_keys_signal(keys, rng, rate, on_ms=(150, 300), level_dbm0=(-20, -5))
        sig = tg.with_dropouts(sig, rng)
        full_bed = np.resize(bed, len(sig.samples)) * 10 ** (-abs(cond.ratio_db[0]) / 20)
        x, bed = sig.samples + full_bed, full_bed
    else:
        sig = tg.keys_under(bed, keys, rng, rate, ratio_db=cond.ratio_db)
        x = sig.samples
        bed = np.resize(bed, len(x))
    if cond.echo:
        x, bed = tg.line_echo(x, rate), tg.line_echo(bed, rate)
    x = x + tg.white_noise(len(x), -60.0, rng)
    pcm = tg.g711_roundtrip(tg.to_int16(x))
    ref = tg.g711_roundtrip(tg.to_int16(bed))
    return Case(pcm, ref, [(t.key, t.start, t.end) for t in sig.tones], rate)


@cache
def masked(cond: Condition, lookahead_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """(masked output, reference: output inside masked spans, key-free bed elsewhere)."""
    case = build(cond)
    out, _, spans = mask_signal(case.pcm, case.rate, lookahead_ms=lookahead_ms)
    covered = np.zeros(len(out), bool)
    for a, b in spans:
        covered[a:b] = True
    return out, np.where(covered, out, case.bed)


def recovered(receiver, cond: Condition, lookahead_ms: float) -> int:
    """Digits of the keyed sequence a receiver hears in the output beyond the reference."""
    out, ref = masked(cond, lookahead_ms)
    rate = build(cond).rate
    extra = Counter(receiver(out, rate)) - Counter(receiver(ref, rate))
    keyed = {k for k, _, _ in build(cond).tones}
    return sum(v for k, v in extra.items() if k in keyed)


@pytest.mark.parametrize("cond", CONDITIONS, ids=IDS)
def test_receivers_hear_the_keys_in_the_input(cond):
    case = build(cond)
    heard = len(multimon_digits(case.pcm, case.rate)) + len(spandsp_digits(case.pcm, case.rate))
    assert heard >= len(case.tones) // 2


@pytest.mark.parametrize("lookahead_ms", [40.0, 20.0])
@pytest.mark.parametrize("cond", CONDITIONS, ids=IDS)
def test_spandsp_recovers_no_key_after_masking(cond, lookahead_ms):
    assert recovered(spandsp_digits, cond, lookahead_ms) == 0


@pytest.mark.parametrize("lookahead_ms", [40.0, 20.0])
@pytest.mark.parametrize("cond", CONDITIONS, ids=IDS)
def test_multimon_recovers_no_key_after_masking(cond, lookahead_ms):
    assert recovered(multimon_digits, cond, lookahead_ms) == 0


@pytest.mark.parametrize(("cond", "lookahead_ms"), marked(LOOSE_OPEN))
def test_loose_receiver_recovers_no_key_after_masking(cond, lookahead_ms):
    case = build(cond)
    out, ref = masked(cond, lookahead_ms)
    assert recoverable_keys(out, ref, case.tones, case.rate) == []


def test_loose_receiver_does_recover_unmasked_keys():
    case = build(CONDITIONS[0])
    assert len(recoverable_keys(case.pcm, case.bed, case.tones, case.rate)) >= 12
