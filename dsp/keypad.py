"""The keypad's tones and the scale every level in dsp/ is measured on.

ITU-T Q.23 assigns each key one tone from the row (low) group and one from the
column (high) group.  Levels follow the G.711 convention: a 0 dBm0 sine peaks at
22,773 on the int16 scale (about 3.16 dB below digital full scale), for mu-law
and A-law alike, and DTMF levels are given per tone.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Keys in row-major order: key i is row i // 4, column i % 4.
KEYS = "123A456B789C*0#D"
ROW_HZ = (697.0, 770.0, 852.0, 941.0)
COL_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
#: Peak (int16 scale) of a 0 dBm0 sine.
DBM0_PEAK = 22773.0
INT16_MIN, INT16_MAX = -32768, 32767


def dbm0_to_peak(level_dbm0: float) -> float:
    """Peak amplitude of a sine at `level_dbm0`."""
    peak: float = DBM0_PEAK * 10.0 ** (level_dbm0 / 20.0)  # float ** float is Any to typeshed
    return peak


def key_frequencies(key: str) -> tuple[float, float]:
    """(row, column) frequencies in Hz of a keypad key (A-D in either case)."""
    i = KEYS.find(key.upper()) if len(key) == 1 else -1
    if i < 0:
        raise ValueError("not a keypad key")
    return ROW_HZ[i // 4], COL_HZ[i % 4]


def to_int16(x: ArrayLike) -> NDArray[np.int16]:
    """Samples rounded to the nearest integer and clipped to int16."""
    return np.clip(np.rint(x), INT16_MIN, INT16_MAX).astype(np.int16)


def samples_per_ms(rate: int) -> int:
    """Samples in one millisecond at `rate` (8 at 8 kHz, 16 at 16 kHz)."""
    return rate // 1000
