"""Test signals a phone plays into a call: keypad tones, a timing marker, silence.

Pure functions returning int16 PCM plus the exact sample schedule of what was
generated, so that what arrives at the far end can be compared against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dsp.keypad import key_frequencies, to_int16

RATE = 8000


def dual_tone(key: str, n: int, amplitude: float = 5000.0, rate: int = RATE) -> np.ndarray:
    """`n` samples of the key's two sines (float64, each sine at `amplitude`)."""
    lo, hi = key_frequencies(key)
    t = np.arange(n) / rate
    return amplitude * (np.sin(2 * np.pi * lo * t) + np.sin(2 * np.pi * hi * t))


def chirp_marker(ms: int = 120, rate: int = RATE, amplitude: float = 8000.0) -> np.ndarray:
    """A linear 400-2800 Hz sweep: sharp autocorrelation, nothing like a keypad tone."""
    n = rate * ms // 1000
    t = np.arange(n) / rate
    f0, f1 = 400.0, 2800.0
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * t[-1]))
    window = np.hanning(n)
    return (amplitude * window * np.sin(phase)).astype(np.int16)


@dataclass(frozen=True)
class ToneSpan:
    """Where one keyed tone sits in a generated signal (samples, end exclusive)."""

    key: str = field(repr=False)
    start: int
    end: int


@dataclass(frozen=True)
class KeyedSignal:
    """A generated signal and the schedule of what it contains."""

    pcm: np.ndarray
    spans: tuple[ToneSpan, ...]
    marker_start: int | None
    marker_len: int
    rate: int = RATE

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.rate


def keyed_signal(
    keys: str,
    tone_ms: int = 100,
    gap_ms: int = 100,
    lead_ms: int = 400,
    tail_ms: int = 400,
    marker: bool = True,
    rate: int = RATE,
) -> KeyedSignal:
    """Silence, an optional chirp marker, silence, then each key as a tone.

    The marker comes `lead_ms` after the start and the first tone 500 ms after
    the marker, so that delay measurement never overlaps a masked span.
    """
    per = rate // 1000
    parts: list[np.ndarray] = [np.zeros(lead_ms * per)]
    marker_start = None
    marker_len = 0
    if marker:
        m = chirp_marker(rate=rate)
        marker_start = lead_ms * per
        marker_len = len(m)
        parts += [m.astype(np.float64), np.zeros(500 * per)]
    pos = sum(len(p) for p in parts)
    spans = []
    for key in keys:
        tone = dual_tone(key, tone_ms * per, rate=rate)
        spans.append(ToneSpan(key, pos, pos + len(tone)))
        parts += [tone, np.zeros(gap_ms * per)]
        pos += len(tone) + gap_ms * per
    parts.append(np.zeros(tail_ms * per))
    pcm = to_int16(np.concatenate(parts))
    return KeyedSignal(
        pcm=pcm, spans=tuple(spans), marker_start=marker_start, marker_len=marker_len
    )
