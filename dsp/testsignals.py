"""Deterministic signal generation for detector and masker specifications.

Level convention: a 0 dBm0 sine has a peak of 22,773 on the int16 scale (the
G.711 convention, about 3.16 dB below digital full scale), the same for mu-law
and A-law.  DTMF levels are given per tone.  Twist is row level minus column
level in dB: positive = normal twist (row louder), negative = reverse twist.
Every random choice comes from a seeded numpy Generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dsp import g711
from dsp.keypad import (  # noqa: F401 - re-exported: tests and benches build on them here
    COL_HZ,
    DBM0_PEAK,
    KEYS,
    ROW_HZ,
    dbm0_to_peak,
    key_frequencies,
    to_int16,
)


def sine(
    freq: float, n: int, rate: int, level_dbm0: float, phase: float = 0.0
) -> NDArray[np.float64]:
    """`n` float samples of a sine at `level_dbm0`."""
    t = np.arange(n) / rate
    return dbm0_to_peak(level_dbm0) * np.sin(2 * np.pi * freq * t + phase)


def dtmf(
    key: str,
    n: int,
    rate: int = 8000,
    level_dbm0: float = -10.0,
    twist_db: float = 0.0,
    freq_error: tuple[float, float] | float = 0.0,
    phases: tuple[float, float] = (0.0, 0.0),
) -> NDArray[np.float64]:
    """Float samples of one key's dual tone.

    The louder tone sits at `level_dbm0`, the other `abs(twist_db)` lower.
    `freq_error` is relative (0.015 = +1.5 %), for both tones or (row, col).
    """
    row, col = key_frequencies(key)
    err_r, err_c = freq_error if isinstance(freq_error, tuple) else (freq_error, freq_error)
    row_level = level_dbm0 - max(0.0, -twist_db)
    col_level = level_dbm0 - max(0.0, twist_db)
    return sine(row * (1 + err_r), n, rate, row_level, phases[0]) + sine(
        col * (1 + err_c), n, rate, col_level, phases[1]
    )


def ms(duration_ms: float, rate: int) -> int:
    """Samples in `duration_ms`."""
    return int(round(duration_ms * rate / 1000.0))


@dataclass(frozen=True)
class ToneTruth:
    """Ground truth of one generated key press (end exclusive)."""

    key: str = field(repr=False)
    start: int
    end: int


@dataclass
class Signal:
    """Generated float samples with the truth of the tones they contain."""

    samples: NDArray[np.float64]
    tones: list[ToneTruth]
    rate: int

    @property
    def keys(self) -> str:
        return "".join(t.key for t in self.tones)

    def pcm16(self, law: str | None = "ulaw") -> NDArray[np.int16]:
        """int16 samples, after a G.711 round trip unless `law` is None."""
        x = to_int16(self.samples)
        return g711_roundtrip(x, law) if law else x


def keys_signal(
    keys: str,
    rate: int = 8000,
    on_ms: float = 50.0,
    off_ms: float = 50.0,
    level_dbm0: float = -10.0,
    twist_db: float = 0.0,
    freq_error: tuple[float, float] | float = 0.0,
    lead_ms: float = 60.0,
    rng: np.random.Generator | None = None,
) -> Signal:
    """Keys at fixed on/off times, level, twist and frequency error.

    With `rng`, every tone starts at random phases.
    """
    n_on, n_off, lead = ms(on_ms, rate), ms(off_ms, rate), ms(lead_ms, rate)
    total = lead + len(keys) * (n_on + n_off)
    x = np.zeros(total)
    tones = []
    pos = lead
    for key in keys:
        phases = tuple(rng.uniform(0, 2 * np.pi, 2)) if rng is not None else (0.0, 0.0)
        x[pos : pos + n_on] = dtmf(key, n_on, rate, level_dbm0, twist_db, freq_error, phases)
        tones.append(ToneTruth(key, pos, pos + n_on))
        pos += n_on + n_off
    return Signal(x, tones, rate)


def random_keys_signal(
    keys: str,
    rng: np.random.Generator,
    rate: int = 8000,
    on_ms: tuple[float, float] = (40.0, 200.0),
    off_ms: tuple[float, float] = (40.0, 200.0),
    level_dbm0: tuple[float, float] = (-25.0, 0.0),
    twist_db: tuple[float, float] = (-4.0, 8.0),
    lead_ms: float = 80.0,
) -> Signal:
    """Keys with durations, pauses, levels (of the louder tone) and twists drawn at random."""
    parts = [np.zeros(ms(lead_ms, rate))]
    tones = []
    pos = len(parts[0])
    for key in keys:
        n_on = ms(rng.uniform(*on_ms), rate)
        n_off = ms(rng.uniform(*off_ms), rate)
        phases = tuple(rng.uniform(0, 2 * np.pi, 2))
        tone = dtmf(key, n_on, rate, rng.uniform(*level_dbm0), rng.uniform(*twist_db), 0.0, phases)
        parts += [tone, np.zeros(n_off)]
        tones.append(ToneTruth(key, pos, pos + n_on))
        pos += n_on + n_off
    return Signal(np.concatenate(parts), tones, rate)


def white_noise(n: int, level_dbm0: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """Gaussian noise with the power of a sine at `level_dbm0`."""
    noise: NDArray[np.float64] = rng.standard_normal(n) * dbm0_to_peak(level_dbm0) / np.sqrt(2.0)
    return noise


def add_noise_at_snr(signal: Signal, snr_db: float, rng: np.random.Generator) -> Signal:
    """White noise whose power is `snr_db` below the power of one key press (both tones)."""
    t = signal.tones[0]
    tone_power = np.mean(signal.samples[t.start : t.end] ** 2)
    noise = rng.standard_normal(len(signal.samples)) * np.sqrt(tone_power / 10 ** (snr_db / 10))
    return Signal(signal.samples + noise, signal.tones, signal.rate)


def dial_tone(n: int, rate: int, level_dbm0: float) -> NDArray[np.float64]:
    """Precise dial tone: 350 + 440 Hz, each at `level_dbm0`."""
    return sine(350.0, n, rate, level_dbm0) + sine(440.0, n, rate, level_dbm0)


#: Equal-tempered note frequencies, A4 = 440 Hz, MIDI note numbering.
def note_hz(midi: int) -> float:
    hz: float = 440.0 * 2.0 ** ((midi - 69) / 12.0)
    return hz


def chord(
    midi_notes: tuple[int, ...],
    n: int,
    rate: int = 8000,
    level_dbm0: float = -15.0,
    harmonics: tuple[float, ...] = (1.0, 0.5, 0.33, 0.25),
    phases: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Notes with a harmonic series (relative amplitudes), each note's fundamental at `level_dbm0`.

    A short attack/release keeps it musical; harmonics above Nyquist are dropped.
    """
    x = np.zeros(n)
    t = np.arange(n) / rate
    k = 0
    for note in midi_notes:
        f0 = note_hz(note)
        for h, rel in enumerate(harmonics, start=1):
            if h * f0 >= rate / 2 - 100:
                break
            ph = phases[k % len(phases)] if phases is not None else 0.0
            x += rel * dbm0_to_peak(level_dbm0) * np.sin(2 * np.pi * h * f0 * t + ph)
            k += 1
    ramp = min(n // 4, ms(10, rate))
    env = np.ones(n)
    env[:ramp] = np.linspace(0, 1, ramp)
    env[n - ramp :] = np.linspace(1, 0, ramp)
    return x * env


def g711_roundtrip(pcm16: NDArray[np.int16], law: str = "ulaw") -> NDArray[np.int16]:
    """What a G.711 channel delivers: encode then decode."""
    return g711.decode(g711.encode(pcm16, law), law)


# -- harder conditions: keys under speech, music, noise, echo and dropouts -------------


def power_dbm0(x: ArrayLike) -> float:
    """Mean power of `x` in dBm0 (a 0 dBm0 sine has power DBM0_PEAK**2 / 2)."""
    p = float(np.mean(np.asarray(x, np.float64) ** 2))
    db: float = 10.0 * np.log10(max(p, 1e-12) / (DBM0_PEAK**2 / 2))
    return db


def talk_bed(clips: Sequence[ArrayLike], n: int, rate: int = 8000) -> NDArray[np.float64]:
    """`n` samples of continuous talk: speech clips (8 kHz), their quiet edges
    trimmed, laid end to end (cycled) and resampled to `rate`; float, unscaled."""
    parts, total = [], 0
    i = 0
    need = -(-n * 8000 // rate) + 1
    while total < need:
        clip = np.asarray(clips[i % len(clips)], np.float64)
        i += 1
        loud = np.flatnonzero(np.abs(clip) > 0.02 * np.abs(clip).max() + 1)
        if len(loud) > 80:
            seg = clip[loud[0] : loud[-1] + 1]
            parts.append(seg)
            total += len(seg)
        elif i > 4 * len(clips):
            raise ValueError("no usable speech in the clips")
    x = np.concatenate(parts)
    if rate != 8000:
        from scipy.signal import resample_poly

        g = np.gcd(rate, 8000)
        x = resample_poly(x, rate // g, 8000 // g)
    return x[:n]


def music_bed(n: int, rate: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """`n` samples of synthetic music (float, unscaled, seeded): a melody of harmonic
    notes with vibrato over sustained chords and a drum track (kick, snare, hi-hat)."""
    t = np.arange(n) / rate
    x = np.zeros(n)
    beat = ms(rng.uniform(110, 180), rate)  # eighth notes
    # chords: four beats each, 3-4 notes, four harmonics, slow vibrato
    for start in range(0, n, 4 * beat):
        stop = min(n, start + 4 * beat)
        root = int(rng.integers(48, 72))
        for iv in rng.choice([0, 3, 4, 7, 10, 12], size=int(rng.integers(3, 5)), replace=False):
            f0 = note_hz(root + int(iv))
            vib = 1 + 0.004 * np.sin(2 * np.pi * rng.uniform(4, 6) * t[start:stop])
            for h, rel in enumerate((1.0, 0.5, 0.3, 0.2), start=1):
                if h * f0 < rate / 2 - 200:
                    ph = 2 * np.pi * h * f0 * np.cumsum(vib) / rate + rng.uniform(0, 6.3)
                    x[start:stop] += 0.25 * rel * np.sin(ph)
    # melody: one note per beat, bright timbre, deeper vibrato, decaying
    for start in range(0, n, beat):
        stop = min(n, start + beat)
        f0 = note_hz(int(rng.integers(60, 96)))
        tt = t[start:stop] - t[start]
        vib = 1 + 0.01 * np.sin(2 * np.pi * 5.5 * tt) * np.minimum(tt / 0.08, 1)
        env = np.exp(-tt * rng.uniform(2, 8)) * np.minimum(tt / 0.01, 1)
        for h, rel in enumerate((1.0, 0.6, 0.4, 0.25, 0.15), start=1):
            if h * f0 < rate / 2 - 200:
                phase = 2 * np.pi * h * f0 * np.cumsum(vib) / rate
                x[start:stop] += 0.6 * rel * env * np.sin(phase)
    # drums: kick on beats 1 and 5, snare on 3 and 7, hi-hat on every beat
    for k, start in enumerate(range(0, n, beat)):
        m = min(ms(120, rate), n - start)
        tt = np.arange(m) / rate
        if k % 4 == 0:
            sweep = 2 * np.pi * (50 + 90 * np.exp(-tt * 40)) * tt
            x[start : start + m] += 1.2 * np.exp(-tt * 30) * np.sin(sweep)
        elif k % 4 == 2:
            x[start : start + m] += 0.5 * np.exp(-tt * 25) * rng.standard_normal(m)
        hat = min(ms(30, rate), m)
        decay = np.exp(-np.arange(hat) / rate * 150)
        x[start : start + hat] += 0.15 * decay * rng.standard_normal(hat)
    return x


def scale_to_dbm0(x: NDArray[np.float64], level_dbm0: float) -> NDArray[np.float64]:
    """`x` scaled to a mean power of `level_dbm0`."""
    return x * 10 ** ((level_dbm0 - power_dbm0(x)) / 20)


def keys_under(
    bed: NDArray[np.float64],
    keys: str,
    rng: np.random.Generator,
    rate: int = 8000,
    ratio_db: tuple[float, float] = (-10.0, 5.0),
    on_ms: tuple[float, float] = (40.0, 200.0),
    off_ms: tuple[float, float] = (60.0, 250.0),
    twist_db: tuple[float, float] = (-4.0, 8.0),
    lead_ms: float = 150.0,
) -> Signal:
    """Keys added over a bed (speech, music, noise): each key's power (both tones) is
    `ratio_db` (drawn per key) above the bed's mean power.  The bed is cycled or cut
    to the keys' length (plus `lead_ms` at each end)."""
    bed_db = power_dbm0(bed)
    lead = ms(lead_ms, rate)
    parts, tones, pos = [np.zeros(lead)], [], lead
    for key in keys:
        n_on, n_off = ms(rng.uniform(*on_ms), rate), ms(rng.uniform(*off_ms), rate)
        twist = rng.uniform(*twist_db)
        # louder tone L, weaker L - |twist|: total power = L + 10 log10(1 + 10^(-|t|/10))
        louder = bed_db + rng.uniform(*ratio_db) - 10 * np.log10(1 + 10 ** (-abs(twist) / 10))
        phases = tuple(rng.uniform(0, 2 * np.pi, 2))
        parts += [dtmf(key, n_on, rate, louder, twist, 0.0, phases), np.zeros(n_off)]
        tones.append(ToneTruth(key, pos, pos + n_on))
        pos += n_on + n_off
    parts.append(np.zeros(lead))
    x = np.concatenate(parts)
    return Signal(x + np.resize(bed, len(x)), tones, rate)


def with_dropouts(
    signal: Signal,
    rng: np.random.Generator,
    gap_ms: tuple[float, float] = (4.0, 10.0),
    per_key: tuple[int, int] = (1, 3),
    min_part_ms: float = 25.0,
    phase_jump: bool = True,
) -> Signal:
    """Short interruptions inside every tone of a keys-only signal (packet-loss
    concealment, a TV): each key gets `per_key` dropouts of `gap_ms` (silence), with
    at least `min_part_ms` of tone between them and from the edges; with `phase_jump`
    the tone resumes a few samples late (another phase).  The truth keeps one press
    per key."""
    x = signal.samples.copy()
    rate = signal.rate
    part = ms(min_part_ms, rate)
    for tone in signal.tones:
        k = int(rng.integers(per_key[0], per_key[1] + 1))
        gaps = [ms(rng.uniform(*gap_ms), rate) for _ in range(k)]
        room = tone.end - tone.start - part * (k + 1) - sum(gaps)
        while room < 0 and gaps:
            gaps.pop()
            room = tone.end - tone.start - part * (len(gaps) + 1) - sum(gaps)
        cuts = np.diff(np.concatenate([[0], np.sort(rng.integers(0, room + 1, len(gaps)))]))
        a = tone.start
        for extra, g in zip(cuts.tolist(), gaps, strict=True):
            a += part + extra
            x[a : a + g] = 0.0
            if phase_jump:
                d = int(rng.integers(1, max(2, rate // 1000)))
                rest = x[a + g : tone.end].copy()
                x[a + g : tone.end] = np.concatenate([np.zeros(d), rest[: len(rest) - d]])
            a += g
    return Signal(x, signal.tones, rate)


def line_echo(
    x: NDArray[np.float64], rate: int, delay_ms: float = 12.0, loss_db: float = 12.0
) -> NDArray[np.float64]:
    """`x` plus a hybrid echo of itself, `delay_ms` later and `loss_db` weaker."""
    d = ms(delay_ms, rate)
    out = np.asarray(x, np.float64).copy()
    out[d:] += x[: len(x) - d] * 10 ** (-loss_db / 20)
    return out
