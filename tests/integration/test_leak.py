"""Leak tests: after `masker mask`, no keypad digit is recoverable and nothing else changed.

For generated keypad sequences (all 16 keys, 40-200 ms tones and pauses, levels
0 to -25 dBm0 per tone, twist -4 to +8 dB as ITU-T Q.24 allows, seeded, after a
G.711 round trip), the real `masker mask` console script writes OUT and:

- spandsp's dtmf_rx and multimon-ng (independent receivers) recover zero digits
  from OUT, although they recover most of them from IN;
- the unmasked part of each tone in OUT is at most 5 ms;
- the audio masked outside the tones is at most 10 ms per tone (median);
- outside the reported masked spans, OUT is bit-exact (PCM16) or code-exact
  (mu-law, A-law) with IN.

Cases: PCM16, mu-law and A-law at 8 kHz, PCM16 at 16 kHz, and a caller+agent
stereo file with speech right up to the tones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest

from dsp.testsignals import KEYS, dtmf, g711_roundtrip, ms, to_int16, white_noise
from masker.offline.receivers import multimon_digits, spandsp_digits
from tests.support.harness import masker, read_wav, speech_clips, write_wav

MAX_LEAK_MS = 5.0
MAX_MEDIAN_OVERMASK_MS = 10.0
NOISE_DBM0 = -55.0


@dataclass(frozen=True)
class Case:
    name: str
    encoding: str
    rate: int
    seed: int
    stereo: bool = False


CASES = [
    Case("pcm16-8k", "pcm16", 8000, 1),
    Case("pcm16-8k-b", "pcm16", 8000, 2),
    Case("ulaw-8k", "ulaw", 8000, 3),
    Case("alaw-8k", "alaw", 8000, 4),
    Case("pcm16-16k", "pcm16", 16000, 5),
    Case("stereo-speech-8k", "pcm16", 8000, 6, stereo=True),
]


def speech_stream(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Real speech, its silent edges trimmed, clip after clip (8 kHz float)."""
    out, total = [], 0
    while total < seconds * 8000:
        for clip in speech_clips(8, rng):
            voiced = np.flatnonzero(np.abs(clip) > 300)
            if len(voiced):
                seg = clip[voiced[0] : voiced[-1] + 1].astype(np.float64)
                out.append(seg)
                total += len(seg)
    return np.concatenate(out)


def keypad_channel(rng: np.random.Generator, rate: int, speech: np.ndarray | None):
    """All 16 keys in random order with Q.24-range durations, levels and twists.

    Both tones of a key lie within 0 to -25 dBm0; at the top of the range the
    pair clips, as it would on a real G.711 channel.

    Pauses hold low noise, or speech right up to the tone edges when `speech`
    is given.  Returns float samples and [(start, end)] of every tone.
    """
    keys = "".join(rng.permutation(list(KEYS)))
    parts = [np.zeros(ms(120, rate))]
    tones = []
    pos = len(parts[0])
    talk = 0
    for key in keys:
        n_on = ms(rng.uniform(40, 200), rate)
        twist = rng.uniform(-4, 8)
        level = rng.uniform(-25 + abs(twist), 0)  # louder tone; the other |twist| lower
        phases = tuple(rng.uniform(0, 2 * np.pi, 2))
        parts.append(dtmf(key, n_on, rate, level, twist, 0.0, phases))
        tones.append((pos, pos + n_on))
        n_off = ms(rng.uniform(40, 200), rate)
        if speech is not None:
            parts.append(speech[talk : talk + n_off])
            talk += n_off
        else:
            parts.append(np.zeros(n_off))
        pos += n_on + n_off
    parts.append(np.zeros(ms(150, rate)))
    x = np.concatenate(parts)
    return x + white_noise(len(x), NOISE_DBM0, rng), tones


def build(case: Case) -> tuple[np.ndarray, list[list[tuple[int, int]]]]:
    """int16 (frames, channels) after the G.711 round trip, and each channel's tones."""
    rng = np.random.default_rng(case.seed)
    law = case.encoding if case.encoding in ("ulaw", "alaw") else "ulaw"
    if not case.stereo:
        x, tones = keypad_channel(rng, case.rate, None)
        return g711_roundtrip(to_int16(x), law).reshape(-1, 1), [tones]
    talk = speech_stream(rng, 6.0)
    caller, tones = keypad_channel(rng, case.rate, talk * 0.5)
    agent = speech_stream(rng, len(caller) / case.rate + 1)[: len(caller)]
    agent = agent + white_noise(len(caller), NOISE_DBM0, rng)
    pcm = np.stack([to_int16(caller), to_int16(agent)], axis=1)
    return g711_roundtrip(pcm, law), [tones, []]


@dataclass
class Outcome:
    case: Case
    pcm_in: np.ndarray
    native_in: np.ndarray
    native_out: np.ndarray
    pcm_out: np.ndarray
    tones: list[list[tuple[int, int]]]
    covered: np.ndarray  # (frames, channels) True inside a reported masked span
    report: dict
    stopped: np.ndarray  # (frames, channels) True inside a reported band-stopped span

    @property
    def touched(self) -> np.ndarray:
        """Masked or band-stopped: the samples the masker may change."""
        return self.covered | self.stopped


@cache
def outcome(case: Case, workdir: str) -> Outcome:
    pcm, tones = build(case)
    src, dst = f"{workdir}/{case.name}-in.wav", f"{workdir}/{case.name}-out.wav"
    write_wav(src, pcm, case.rate, case.encoding)
    proc = masker("mask", src, dst, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    native_in, pcm_in, _ = read_wav(src)
    native_out, pcm_out, _ = read_wav(dst)
    covered, stopped = (
        _span_mask(report[k], pcm.shape, case.rate) for k in ("masked", "band_stopped")
    )
    return Outcome(case, pcm_in, native_in, native_out, pcm_out, tones, covered, report, stopped)


def _span_mask(spans: list[dict], shape: tuple[int, ...], rate: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for s in spans:
        a = int(round(s["start_ms"] * rate / 1000))
        b = int(round(s["end_ms"] * rate / 1000))
        mask[a:b, s["channel"]] = True
    return mask


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("leak"))


def per_tone_ms(o: Outcome) -> tuple[list[float], list[float]]:
    """(unmasked ms inside each tone, masked ms outside the tones attributed to each tone).

    Every masked sample outside the tones counts against the nearest tone, so
    stray masking far from any tone is counted too.
    """
    to_ms = 1000.0 / o.case.rate
    leaks, over = [], []
    for ch, tones in enumerate(o.tones):
        if not tones:
            continue
        cov = o.covered[:, ch]
        in_tone = np.zeros(len(cov), dtype=bool)
        for a, b in tones:
            in_tone[a:b] = True
            leaks.append(float((~cov[a:b]).sum()) * to_ms)
        outside = np.flatnonzero(cov & ~in_tone)
        centres = np.array([(a + b) / 2 for a, b in tones])
        edges = np.array(tones)
        dist = np.minimum(
            np.abs(outside[:, None] - edges[None, :, 0]),
            np.abs(outside[:, None] - edges[None, :, 1]),
        )
        nearest = np.argmin(dist, axis=1) if len(outside) else np.array([], dtype=int)
        counts = np.bincount(nearest, minlength=len(centres))
        over.extend(float(c) * to_ms for c in counts)
    return leaks, over


IDS = [c.name for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_receivers_recover_most_digits_from_the_input(case, workdir):
    o = outcome(case, workdir)
    for ch, tones in enumerate(o.tones):
        if tones:
            assert len(spandsp_digits(o.pcm_in[:, ch], case.rate)) >= len(tones) // 2


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_spandsp_recovers_no_digit_from_the_output(case, workdir):
    o = outcome(case, workdir)
    for ch in range(o.pcm_out.shape[1]):
        assert spandsp_digits(o.pcm_out[:, ch], case.rate) == ""


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_multimon_recovers_no_digit_from_the_output(case, workdir):
    o = outcome(case, workdir)
    for ch in range(o.pcm_out.shape[1]):
        assert multimon_digits(o.pcm_out[:, ch], case.rate) == ""


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_no_tone_leaks_more_than_5_ms_unmasked(case, workdir):
    leaks, _ = per_tone_ms(outcome(case, workdir))
    assert max(leaks) <= MAX_LEAK_MS


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_median_audio_masked_outside_a_tone_is_at_most_10_ms(case, workdir):
    _, over = per_tone_ms(outcome(case, workdir))
    assert float(np.median(over)) <= MAX_MEDIAN_OVERMASK_MS


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_output_outside_masked_and_band_stopped_spans_is_exactly_the_input(case, workdir):
    o = outcome(case, workdir)
    assert o.native_out.dtype == o.native_in.dtype
    assert np.array_equal(o.native_out[~o.touched], o.native_in[~o.touched])


@pytest.mark.parametrize(
    "case",
    CASES,
    ids=IDS,
)
def test_every_key_press_is_counted(case, workdir):
    o = outcome(case, workdir)
    assert o.report["digits_masked"] == sum(len(t) for t in o.tones)


def test_agent_channel_of_a_stereo_call_has_at_most_2_s_a_minute_masked_and_speech_kept(workdir):
    # no key there: only the speech-masking budget (issue 8) may be spent
    o = outcome(CASES[-1], workdir)
    assert o.covered[:, 1].sum() <= 2 / 60 * len(o.covered)
    # band-stopped (speech kept, keypad bands removed): one 4.6 s clip, so a looser
    # bound than the 10 s a minute tests/unit/dsp/test_talkoff.py holds over many clips
    assert o.stopped[:, 1].sum() <= 0.25 * len(o.stopped)
    keep = ~o.touched[:, 1]
    assert np.array_equal(o.native_out[keep, 1], o.native_in[keep, 1])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_audio_inside_masked_spans_is_really_replaced(case, workdir):
    # the leak figures trust the reported spans; check the spans hold new audio
    o = outcome(case, workdir)
    changed = o.pcm_out[o.covered] != o.pcm_in[o.covered]
    assert changed.mean() > 0.95
