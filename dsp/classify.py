"""Which hops of the filter bank look like a keypad tone, under a set of limits.

Limit sets: `STRICT` decides digits (ITU-T Q.24 acceptance with margins
towards the rejection side); `CANDIDATE` and `BURIED` decide what the masker
hides, so that anything an outside receiver could take for a digit is masked.
`CANDIDATE` is a looser `STRICT`; `BURIED` is for keys under louder talk or
music, where the two tones hold only a small share of the window: it gives up
purity and asks instead what receivers that judge each group on its own
(multimon-ng, a plain Goertzel pair) rely on, that the key's row and column
clearly dominate their groups (runner-up at least 5 dB down) at an accurate
frequency (2 %).  `STABLE` (no runner-up margin) is the masker's blind start:
a key counts only when the same pair passes it several hops in a row.  With the
masker's tracking and hysteresis, the shared speech set gets 1.6 s a minute
masked.  `UNCERTAIN` decides what the masker band-stops (`dsp.bandstop`, its
cheaper action for what only may be a key): the strongest row and column with one
of them at an accurate frequency (1.5 %), the other within 8 % (talk over a key
pulls one tone's measured frequency off).  `candidate_codes` gives the hops
passing `CANDIDATE` or `BURIED`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from dsp.goertzel import HopFeatures
from dsp.keypad import DBM0_PEAK

#: Relative distance from an exact octave below which a row/column pair is a harmonic.
OCTAVE_TOLERANCE = 0.008


@dataclass(frozen=True)
class Limits:
    min_level_dbm0: float  # per tone
    max_normal_twist_db: float  # row louder
    max_reverse_twist_db: float  # column louder
    max_freq_error: float  # relative
    min_purity: float  # share of the window energy in the two tones
    max_runner_up_db: float  # second strongest filter of a group, relative to the strongest
    max_harmonic_db: float  # column second harmonic relative to the column tone
    # Near full scale the two tones' sum clips in G.711 and spreads energy into
    # distortion products, so loud windows get a lower purity floor.
    loud_dbm0: float = -3.0
    loud_min_purity: float = 0.7
    loud_runner_up_db: float = -8.0
    #: Frequency error allowed the less accurate of the two tones (relative); by default
    #: `max_freq_error`, as for the more accurate one.
    max_worse_freq_error: float | None = None


STRICT = Limits(
    min_level_dbm0=-38.0,
    max_normal_twist_db=10.0,
    max_reverse_twist_db=6.0,
    max_freq_error=0.025,
    min_purity=0.8,
    max_runner_up_db=-8.0,
    max_harmonic_db=-12.0,
)

CANDIDATE = Limits(
    min_level_dbm0=-42.0,
    max_normal_twist_db=14.0,
    max_reverse_twist_db=10.0,
    max_freq_error=0.032,
    min_purity=0.6,
    max_runner_up_db=-5.0,
    max_harmonic_db=-6.0,
    loud_min_purity=0.25,
    loud_runner_up_db=-1.0,
)

BURIED = Limits(
    min_level_dbm0=-42.0,
    max_normal_twist_db=14.0,
    max_reverse_twist_db=10.0,
    max_freq_error=0.02,
    min_purity=0.05,
    max_runner_up_db=-5.0,
    max_harmonic_db=10.0,
    loud_min_purity=0.05,
    loud_runner_up_db=-1.0,
)


#: The masker's blind start under louder talk or music: the strongest row and column
#: at an accurate frequency (2 %), whatever the runner-up; the masker counts a key
#: only when the same pair holds over `dsp.tone_masker.STABLE_HOPS` hops in a row,
#: which keys do and talk seldom does (a voice's harmonics glide).
STABLE = Limits(
    min_level_dbm0=-42.0,
    max_normal_twist_db=14.0,
    max_reverse_twist_db=10.0,
    max_freq_error=0.02,
    min_purity=0.05,
    max_runner_up_db=0.0,
    max_harmonic_db=10.0,
    loud_min_purity=0.05,
    loud_runner_up_db=-1.0,
)


#: The band-stop's trigger (`dsp.bandstop`): hops that only *may* hold a key under talk or
#: music, where the talk pulls one tone's measured frequency off: the strongest row and
#: column, one of them at an accurate frequency.
UNCERTAIN = replace(STABLE, max_freq_error=0.015, loud_runner_up_db=0.0, max_worse_freq_error=0.08)


def candidate_codes(f: HopFeatures, window: int) -> NDArray[np.int64]:
    """(calls, hops) key index where a hop passes `CANDIDATE` or `BURIED`, else -1."""
    codes = classify(f, CANDIDATE, window)
    buried = classify(f, BURIED, window)
    return np.where(codes >= 0, codes, buried)


def classify(f: HopFeatures, limits: Limits, window: int) -> NDArray[np.int64]:
    """(calls, hops) key index 0..15 where the hop passes every limit, else -1."""
    codes: NDArray[np.int64] = np.full(f.shape, -1)
    if f.calls.size == 0:
        return codes
    zero_dbm0 = DBM0_PEAK**2 / 2 * window
    row, col = f.energy
    weaker = np.minimum(row, col)
    ok = weaker >= zero_dbm0 * 10 ** (limits.min_level_dbm0 / 10)
    ok &= row <= col * 10 ** (limits.max_normal_twist_db / 10)
    ok &= col <= row * 10 ** (limits.max_reverse_twist_db / 10)
    if limits.max_worse_freq_error is None:
        ok &= np.abs(f.error[0]) <= limits.max_freq_error
        ok &= np.abs(f.error[1]) <= limits.max_freq_error
    else:
        error = np.abs(f.error)
        ok &= error.min(axis=0) <= limits.max_freq_error
        ok &= error.max(axis=0) <= limits.max_worse_freq_error
    both = row + col
    loud = f.total >= zero_dbm0 * 10 ** (limits.loud_dbm0 / 10)
    purity: NDArray[np.float64] | float
    runner: NDArray[np.float64] | float
    if loud.any():
        purity = np.where(loud, limits.loud_min_purity, limits.min_purity)
        runner = np.where(loud, 10 ** (limits.loud_runner_up_db / 10), _RUNNER[limits])
    else:
        purity, runner = limits.min_purity, _RUNNER[limits]
    ok &= both >= purity * f.total
    ok &= f.runner_up[0] <= runner * row
    ok &= f.runner_up[1] <= runner * col
    ok &= f.col_harmonic <= col * 10 ** (limits.max_harmonic_db / 10)
    # No DTMF pair is an octave (column/row ratios are 1.28..2.34 but never near 2):
    # a voiced sound and its own second harmonic is.
    ok &= np.abs(f.freq[1] / f.freq[0] - 2.0) > 2.0 * OCTAVE_TOLERANCE
    codes[f.calls, f.hops] = np.where(ok, f.tones[0] * 4 + f.tones[1], -1)
    return codes


class _RunnerUp(dict[Limits, float]):
    """Runner-up limit (power ratio) of a limit set, worked out once per set."""

    def __missing__(self, limits: Limits) -> float:
        self[limits] = value = 10 ** (limits.max_runner_up_db / 10)
        return value


_RUNNER = _RunnerUp()


def amplitudes(f: HopFeatures, window: int) -> NDArray[np.float64]:
    """(calls, hops, 2) peak amplitudes of the strongest row and column tone (0 if ungated)."""
    amps = np.zeros((2,) + f.shape)
    amps[:, f.calls, f.hops] = np.sqrt(2.0 / window * f.energy)
    return amps.transpose(1, 2, 0)
