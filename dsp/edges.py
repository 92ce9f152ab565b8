"""Sample-accurate edges of a dual tone, from a fine two-frequency envelope.

The block detector knows *that* a key is pressed to within a 5 ms hop; this
module finds *where* it starts and ends.  Each of the two tone frequencies is
demodulated to baseband and smoothed by a triangular window (two cascaded 5 ms
moving averages via cumsum, sidelobes low enough that the other tone of the
pair does not leak in).  The tone is present where both envelopes are above
half of their steady amplitude; the half-amplitude crossing of a symmetric
window is the edge itself once shifted by the window's centre delay.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

PRESENT_FRACTION = 0.5


def _moving_average(z: np.ndarray, width: int) -> np.ndarray:
    c = np.concatenate([np.zeros(z.shape[:-1] + (1,), z.dtype), np.cumsum(z, axis=-1)], axis=-1)
    return (c[..., width:] - c[..., :-width]) / width


@lru_cache(maxsize=64)
def _phasor(freq: float, rate: int, n: int) -> np.ndarray:
    return np.exp(-2j * np.pi * freq / rate * np.arange(n))


def envelopes(seg: np.ndarray, freqs: tuple[float, float], rate: int) -> np.ndarray:
    """(2, len(seg)) amplitude envelopes centred on each sample (0 where undefined)."""
    half = rate // 200
    n = len(seg)
    size = max(rate, 1 << int(n - 1).bit_length())
    z = seg[None, :] * np.stack([_phasor(float(f), rate, size)[:n] for f in freqs])
    tri = _moving_average(_moving_average(z, half), half)
    env = np.zeros((2, len(seg)))
    if tri.shape[-1] > 0:
        env[:, half - 1 : half - 1 + tri.shape[-1]] = 2 * np.abs(tri)
    return env


def presence(
    seg: np.ndarray, freqs: tuple[float, float], rate: int, reference: np.ndarray | None = None
) -> np.ndarray:
    """Boolean per sample of `seg`: both tones at >= half their steady amplitude.

    `reference` gives the steady amplitudes (peak scale); by default the largest
    envelope value found in `seg`.  The last window-length samples are only
    decided by later samples and read False here.
    """
    env = envelopes(np.asarray(seg, float), freqs, rate)
    ref = env.max(axis=1) if reference is None else np.asarray(reference, float)
    ref = np.maximum(ref, 1e-9)
    return np.all(env >= PRESENT_FRACTION * ref[:, None], axis=0)


def run_around(present: np.ndarray, index: int) -> tuple[int, int] | None:
    """The [start, end) run of True in `present` that contains or is nearest `index`."""
    idx = np.flatnonzero(present)
    if idx.size == 0:
        return None
    nearest = idx[np.argmin(np.abs(idx - index))]
    falses = np.flatnonzero(~present)
    before = falses[falses < nearest]
    after = falses[falses > nearest]
    start = int(before[-1] + 1) if before.size else 0
    end = int(after[0]) if after.size else len(present)
    return start, end
