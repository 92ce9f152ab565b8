"""What the agent hears instead of a keypad tone.

Everything here is a pure function of absolute sample positions (and, for
noise, of a seeded generator and a level), never of the digit, so two different
keys masked over the same span sound identical.  The masking tone is a single
500 Hz sine at -20 dBm0: one sine is never a DTMF pair and 500 Hz lies outside
both DTMF groups, so no keypad receiver can decode it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from dsp.keypad import dbm0_to_peak

MASK_TONE_HZ = 500.0
MASK_TONE_DBM0 = -20.0
RAMP_SECONDS = 0.004
NOISE_FLOOR_DBM0 = -70.0
NOISE_CEILING_DBM0 = -30.0


def masking_tone(positions: NDArray[np.int64], rate: int) -> NDArray[np.float64]:
    """The flat masking tone at absolute output sample `positions` (phase-continuous)."""
    tone: NDArray[np.float64] = _tone_table(rate)[positions % rate]
    return tone


@lru_cache(maxsize=4)
def _tone_table(rate: int) -> NDArray[np.float64]:
    """One second of the masking tone: it repeats every second, so a lookup suffices."""
    phase = 2 * np.pi * MASK_TONE_HZ * np.arange(rate) / rate
    table = dbm0_to_peak(MASK_TONE_DBM0) * np.sin(phase)
    table.flags.writeable = False
    return table


def raised_cosine(distance: NDArray[np.int64], ramp: int) -> NDArray[np.float64]:
    """Gain 0..1 for samples `distance` samples inside a span edge (smooth on/off).

    Looked up in a table of the `ramp` + 2 distinct values (0 outside, 1 from `ramp`
    in): a cosine per sample cost more than the rest of the masker's ramps."""
    at = np.clip(np.asarray(distance), -1, ramp)
    at += 1
    gains: NDArray[np.float64] = _ramp_table(ramp).take(at)
    return gains


@lru_cache(maxsize=16)
def _ramp_table(ramp: int) -> NDArray[np.float64]:
    """Gains for distances -1 .. `ramp` (read-only)."""
    x = np.clip((np.arange(-1, ramp + 1, dtype=float) + 0.5) / ramp, 0.0, 1.0)
    table: NDArray[np.float64] = 0.5 - 0.5 * np.cos(np.pi * x)
    table.flags.writeable = False
    return table


def run_distances(
    mask: NDArray[np.bool_], before: NDArray[np.int64] | int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """For each True in `mask` (1-D, or 2-D row-wise): samples since its run began and
    samples until it ends.

    `before` is how many masked samples directly precede each row's first sample.
    A run that reaches the end of the row counts as open-ended.
    """
    n = mask.shape[-1]
    idx = np.arange(n)
    last_false = np.maximum.accumulate(np.where(~mask, idx, -1), axis=-1)
    before = np.asarray(before)[..., None] if mask.ndim > 1 else before
    since = np.where(last_false >= 0, idx - last_false - 1, idx + before)
    next_false = np.flip(
        np.minimum.accumulate(np.flip(np.where(~mask, idx, n + 10**6), -1), axis=-1), -1
    )
    until = next_false - idx - 1
    return since, until


def comfort_noise(n: int, rms: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """White comfort noise with the given RMS, kept between floor and ceiling."""
    lo = dbm0_to_peak(NOISE_FLOOR_DBM0) / np.sqrt(2)
    hi = dbm0_to_peak(NOISE_CEILING_DBM0) / np.sqrt(2)
    return rng.standard_normal(n) * float(np.clip(rms, lo, hi))
