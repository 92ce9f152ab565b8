"""Deterministic signal generation for detector and masker specifications.

Level convention: a 0 dBm0 sine has a peak of 22,773 on the int16 scale (the
G.711 convention, about 3.16 dB below digital full scale), the same for mu-law
and A-law.  DTMF levels are given per tone.  Twist is row level minus column
level in dB: positive = normal twist (row louder), negative = reverse twist.
Every random choice comes from a seeded numpy Generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dsp import g711

KEYS = "123A456B789C*0#D"
ROW_HZ = (697.0, 770.0, 852.0, 941.0)
COL_HZ = (1209.0, 1336.0, 1477.0, 1633.0)

#: Peak (int16 scale) of a 0 dBm0 sine.
DBM0_PEAK = 22773.0


def dbm0_to_peak(level_dbm0: float) -> float:
    """Peak amplitude of a sine at `level_dbm0`."""
    return DBM0_PEAK * 10.0 ** (level_dbm0 / 20.0)


def key_frequencies(key: str) -> tuple[float, float]:
    """(row, column) frequencies in Hz of a keypad key."""
    i = KEYS.index(key)
    return ROW_HZ[i // 4], COL_HZ[i % 4]


def sine(freq: float, n: int, rate: int, level_dbm0: float, phase: float = 0.0) -> np.ndarray:
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
) -> np.ndarray:
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

    samples: np.ndarray
    tones: list[ToneTruth]
    rate: int

    @property
    def keys(self) -> str:
        return "".join(t.key for t in self.tones)

    def pcm16(self, law: str | None = "ulaw") -> np.ndarray:
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


def white_noise(n: int, level_dbm0: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with the power of a sine at `level_dbm0`."""
    return rng.standard_normal(n) * dbm0_to_peak(level_dbm0) / np.sqrt(2.0)


def add_noise_at_snr(signal: Signal, snr_db: float, rng: np.random.Generator) -> Signal:
    """White noise whose power is `snr_db` below the power of one key press (both tones)."""
    t = signal.tones[0]
    tone_power = np.mean(signal.samples[t.start : t.end] ** 2)
    noise = rng.standard_normal(len(signal.samples)) * np.sqrt(tone_power / 10 ** (snr_db / 10))
    return Signal(signal.samples + noise, signal.tones, signal.rate)


def dial_tone(n: int, rate: int, level_dbm0: float) -> np.ndarray:
    """Precise dial tone: 350 + 440 Hz, each at `level_dbm0`."""
    return sine(350.0, n, rate, level_dbm0) + sine(440.0, n, rate, level_dbm0)


#: Equal-tempered note frequencies, A4 = 440 Hz, MIDI note numbering.
def note_hz(midi: int) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12.0)


def chord(
    midi_notes: tuple[int, ...],
    n: int,
    rate: int = 8000,
    level_dbm0: float = -15.0,
    harmonics: tuple[float, ...] = (1.0, 0.5, 0.33, 0.25),
    phases: np.ndarray | None = None,
) -> np.ndarray:
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


def to_int16(x: np.ndarray) -> np.ndarray:
    """Round and saturate float samples to int16."""
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def g711_roundtrip(pcm16: np.ndarray, law: str = "ulaw") -> np.ndarray:
    """What a G.711 channel delivers: encode then decode."""
    return g711.decode(g711.encode(pcm16, law), law)
