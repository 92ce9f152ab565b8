"""Talk-off: speech and music must never be taken for a key press.

Speech is real (fixtures/audio/speech, see its ATTRIBUTION.md); music is
generated: single notes and 3-4 note chords in many voicings over three and a
half octaves (G3..C7, which covers every DTMF frequency and puts notes within
0.2 % of some of them), with four harmonic series from flute-like to bright,
after a G.711 round trip.  Many calls run side by side in the batch detector.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dsp import testsignals as tg
from dsp.bandstop import bandstopped
from dsp.detector import BatchDtmfDetector
from dsp.tone_masker import MaskedSignal, mask_signal_detail
from tests.support.paths import PROJECT_ROOT

SPEECH = PROJECT_ROOT / "fixtures" / "audio" / "speech"
TIMBRES = {
    "bright": (1.0, 0.5, 0.33, 0.25, 0.2, 0.17),
    "flute": (1.0, 0.25, 0.11, 0.06),
    "brass": (1.0, 0.6, 0.4, 0.3, 0.2),
    "soft": (1.0, 0.3, 0.2, 0.1, 0.05),
}
VOICINGS = [
    (0,),
    (0, 4, 7),
    (0, 3, 7),
    (0, 4, 7, 11),
    (0, 3, 7, 10),
    (0, 4, 7, 10),
    (0, 5, 9),
    (0, 3, 8),
    (0, 7, 16),
    (0, 7, 15),
    (0, 4, 7, 12),
    (0, 7, 12, 16),
    (0, 4, 7, 14),
    (0, 10, 16),
]


def batch_digit_count(signals: list[np.ndarray], rate: int = 8000) -> list[int]:
    """Digits found in each signal, all run as one batch of calls."""
    length = max(len(s) for s in signals)
    pcm = np.zeros((len(signals), length), np.int16)
    for i, s in enumerate(signals):
        pcm[i, : len(s)] = s
    det = BatchDtmfDetector(len(signals), rate)
    counts = [0] * len(signals)
    step = rate // 50
    for i in range(0, length, step):
        for call, events in enumerate(det.process(pcm[:, i : i + step])):
            counts[call] += len(events)
    for call, events in enumerate(det.flush()):
        counts[call] += len(events)
    return counts


def speech_files() -> list[Path]:
    return sorted(SPEECH.glob("*.wav"))


def test_speech_fixtures_cover_every_speaker_and_digit():
    names = [p.stem.split("_") for p in speech_files()]
    assert len(names) >= 300
    assert {n[1] for n in names} == {"george", "jackson", "lucas", "nicolas", "theo", "yweweler"}
    assert {n[0] for n in names} == set("0123456789")
    assert (SPEECH / "ATTRIBUTION.md").read_text().count("CC BY-SA 4.0") >= 1


def test_real_speech_gives_no_digit():
    signals = [sf.read(p, dtype="int16")[0] for p in speech_files()]
    # 300 short files as 30 calls of 10 files each
    calls = [np.concatenate(signals[i::30]) for i in range(30)]
    assert sum(batch_digit_count(calls)) == 0


def test_real_speech_after_g711_gives_no_digit():
    signals = [tg.g711_roundtrip(sf.read(p, dtype="int16")[0], "alaw") for p in speech_files()]
    calls = [np.concatenate(signals[i::30]) for i in range(30)]
    assert sum(batch_digit_count(calls)) == 0


def music(timbre: tuple[float, ...], seed: int, law: str, note_ms: float = 150) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = tg.ms(note_ms, 8000)
    parts = []
    for root in range(55, 97):
        for voicing in VOICINGS:
            notes = tuple(root + i for i in voicing)
            parts.append(tg.chord(notes, n, 8000, -12.0, timbre, rng.uniform(0, 2 * np.pi, 64)))
    return tg.g711_roundtrip(tg.to_int16(np.concatenate(parts)), law)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_generated_music_gives_no_digit(law):
    pieces = [music(t, seed, law) for seed, t in enumerate(TIMBRES.values())]
    # each piece cut into 8 calls so the batch runs them side by side
    calls = [chunk for p in pieces for chunk in np.array_split(p, 8)]
    assert sum(batch_digit_count(calls)) == 0


def test_loud_music_gives_no_digit():
    rng = np.random.default_rng(11)
    parts = [
        tg.chord(
            (root, root + 4, root + 7), 1200, 8000, -3.0, TIMBRES["bright"], rng.uniform(0, 6, 64)
        )
        for root in range(60, 90)
    ]
    assert batch_digit_count([tg.g711_roundtrip(tg.to_int16(np.concatenate(parts)))]) == [0]


@cache
def masked_speech() -> tuple[np.ndarray, MaskedSignal]:
    """A fifth of the speech files end to end, and the masker's output of them."""
    pcm = np.concatenate([sf.read(p, dtype="int16")[0] for p in speech_files()[::5]])
    return pcm, mask_signal_detail(pcm)


def test_masker_masks_at_most_2_s_per_minute_of_speech():
    # the price of masking keys buried under talk (issue 8): bits of speech that
    # look like a key under talk are masked too, at most 2 s a minute
    pcm, res = masked_speech()
    assert res.digits == []
    assert sum(end - start for start, end in res.masked) <= 2 / 60 * len(pcm)


def test_masker_band_stops_at_most_10_s_per_minute_of_speech_keeping_its_energy():
    # the price of band-stopping whatever only may hold a key (issue 8): speech loses
    # its keypad bands (623-1740 Hz) for at most 10 s a minute (7.1 measured) and at
    # most 1 dB of its energy overall (0.6 measured)
    pcm, res = masked_speech()
    assert sum(end - start for start, end in res.stopped) <= 10 / 60 * len(pcm)
    x = pcm.astype(np.float64)
    out = x + res.stop_gain * (bandstopped(x, 8000) - x)
    assert tg.power_dbm0(x) - tg.power_dbm0(out) <= 1.0


def test_the_batch_harness_does_count_real_keys():
    keys = tg.keys_signal(tg.KEYS, level_dbm0=-20).pcm16()
    assert batch_digit_count([keys, np.zeros(800, np.int16)]) == [16, 0]
