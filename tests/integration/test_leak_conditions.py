"""Masking criterion under hard conditions: nothing any receiver can decode is left.

The criterion: every stretch of a keyed tone from which spandsp's dtmf_rx,
multimon-ng or the deliberately loose receiver of tests/support/loose_receiver.py
(plain Goertzel row/column pair, no twist/purity/duration checks, low level)
can decode that key must be masked or band-stopped (`dsp.bandstop`, the masker's
action for spans that only may hold a key).  Receivers also "hear" digits in
talk; a digit counts as recovered only beyond what the receiver hears in the
reference (the masked output inside masked spans, the key-free bed put through
the same band-stop inside band-stopped spans, the key-free bed elsewhere), so
only what is left of the keys can make one.

Conditions (seeded, after a G.711 round trip): keys 10 dB under to 5 dB over
real speech and synthetic music, keys in white noise, keys broken by 4-10 ms
dropouts, keys with line echo; 8 and 16 kHz; look-ahead 40 ms (today's media
plane) and 20 ms; and keys under talk from the shared speech set (other speakers
than the bundled clips; skipped where it is not installed).  The cost, speech
masked and band-stopped with no key present, is bounded in
tests/unit/dsp/test_talkoff.py.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest
import soundfile as sf

from dsp import testsignals as tg
from dsp.bandstop import bandstopped
from dsp.tone_masker import mask_signal_detail
from masker.offline.receivers import multimon_digits, spandsp_digits
from tests.support.harness import speech_clips
from tests.support.loose_receiver import recoverable_keys
from tests.support.paths import PROJECT_ROOT

#: The shared speech set beside the project (3,000 FSDD recordings, not committed; the
#: set `make bench` measures talk-off on).
SHARED_SPEECH = PROJECT_ROOT.parent / "shared" / "fixtures" / "speech"
SHARED_FILES = sorted(SHARED_SPEECH.glob("*.wav"))


@dataclass(frozen=True)
class Condition:
    name: str
    bed: str  # speech | shared-speech | music | noise
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
    Condition("shared-speech-louder", "shared-speech", 18),
    Condition("shared-speech-louder-b", "shared-speech", 19),
]
IDS = [c.name for c in CONDITIONS]


def shared_clips(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`n` recordings drawn (seeded) from the shared speech set, other speakers and
    words than the bundled clips."""
    if not SHARED_FILES:
        pytest.skip(f"no shared speech set at {SHARED_SPEECH}")
    picks = rng.choice(len(SHARED_FILES), size=n, replace=False)
    return [sf.read(SHARED_FILES[i], dtype="int16")[0] for i in picks]


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
    elif cond.bed == "shared-speech":
        bed = tg.talk_bed(shared_clips(40, rng), n, rate)
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
    """(masked output, reference: output inside masked spans, key-free bed elsewhere,
    put through the same band-stop where the output was band-stopped)."""
    case = build(cond)
    res = mask_signal_detail(case.pcm, case.rate, lookahead_ms=lookahead_ms)
    covered = np.zeros(len(res.audio), bool)
    for a, b in res.masked:
        covered[a:b] = True
    bed = case.bed.astype(np.float64)
    bed_out = tg.to_int16(bed + res.stop_gain * (bandstopped(bed, case.rate) - bed))
    return res.audio, np.where(covered, res.audio, bed_out)


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


@pytest.mark.parametrize("lookahead_ms", [40.0, 20.0])
@pytest.mark.parametrize("cond", CONDITIONS, ids=IDS)
def test_loose_receiver_recovers_no_key_after_masking(cond, lookahead_ms):
    case = build(cond)
    out, ref = masked(cond, lookahead_ms)
    assert recoverable_keys(out, ref, case.tones, case.rate) == []


def test_loose_receiver_does_recover_unmasked_keys():
    case = build(CONDITIONS[0])
    assert len(recoverable_keys(case.pcm, case.bed, case.tones, case.rate)) >= 12


def test_band_stop_reference_is_the_bed_through_the_same_action():
    # the reference inside band-stopped spans is the bed band-stopped with the output's
    # own gains: away from the keys it matches the output up to the line noise and
    # G.711 rounding (a misaligned gain or filter would leave the talk's keypad bands)
    case = build(CONDITIONS[0])
    res = mask_signal_detail(case.pcm, case.rate)
    out, ref = masked(CONDITIONS[0], 40.0)
    away = res.stop_gain == 1.0
    for _, a, b in case.tones:
        away[max(a - case.rate // 20, 0) : b + case.rate // 20] = False
    assert away.sum() > case.rate // 50
    diff = out[away].astype(np.float64) - ref[away]
    assert tg.power_dbm0(diff) <= tg.power_dbm0(out[away]) - 25.0
