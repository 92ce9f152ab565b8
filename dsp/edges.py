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


def _moving_sum(z: np.ndarray, width: int) -> np.ndarray:
    """Sums of `width` consecutive samples along the last axis (len - width + 1 of them)."""
    c = np.cumsum(z, axis=-1)
    out = c[..., width - 1 :].copy()
    out[..., 1:] -= c[..., :-width]
    return out


def _moving_average(z: np.ndarray, width: int) -> np.ndarray:
    return _moving_sum(z, width) / width


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


@lru_cache(maxsize=8)
def _key_phasors(rate: int, n: int) -> np.ndarray:
    """(16, 2, n) complex64 demodulators of every key's row and column frequency."""
    from dsp.goertzel import COL_HZ, ROW_HZ

    keys = np.arange(16)
    freqs = np.stack([ROW_HZ[keys // 4], COL_HZ[keys % 4]], axis=1)
    return np.exp(-2j * np.pi * freqs[..., None] / rate * np.arange(n)).astype(np.complex64)


def presence_of_keys(
    segs: np.ndarray, keys: np.ndarray, rate: int, reference: np.ndarray
) -> np.ndarray:
    """`presence` for many (segment, key) pairs: segs (m, n), keys (m,), reference (m, 2)."""
    half = rate // 200
    n = segs.shape[1]
    z = segs[:, None, :].astype(np.float32) * _key_phasors(rate, n)[keys]
    tri = _moving_sum(_moving_sum(z, half), half)  # half**2 times the triangular average
    # amplitude = 2 |tri| / half**2; compare squared magnitudes to skip the square root
    floor = (PRESENT_FRACTION * np.maximum(reference, 1e-9) * half * half / 2) ** 2
    ok = np.all(tri.real**2 + tri.imag**2 >= floor[:, :, None].astype(np.float32), axis=1)
    present = np.zeros(segs.shape, bool)
    present[:, half - 1 : half - 1 + ok.shape[1]] = ok
    return present


def widen_to_grid(
    present: np.ndarray, base: np.ndarray, before: int, after: int, grid: int
) -> np.ndarray:
    """Rows of `present` with every run widened by guards and rounded out to an absolute grid.

    `base` (rows,) is the absolute index of each row's first sample.  Rounding to
    a grid makes a span depend on where a tone is, not on which key it is.
    """
    m, n = present.shape
    c = np.zeros((m, n + 1), np.int32)
    np.cumsum(present, axis=1, out=c[:, 1:])
    # widened[i] = any(present[i - after : i + before + 1])
    hi = np.concatenate([c[:, before + 1 :], np.repeat(c[:, -1:], min(before + 1, n + 1), 1)], 1)
    lo = np.concatenate([np.zeros((m, after), np.int32), c[:, : n + 1 - after]], 1) if after else c
    widened = (hi[:, :n] - lo[:, :n]) > 0
    phase = base % grid
    if np.all(phase == phase[0]):
        # every row on the same grid phase: cells are plain reshapes
        p = int(phase[0])
        cells = -(-(n + p) // grid)
        padded = np.zeros((m, cells * grid), bool)
        padded[:, p : p + n] = widened
        hit = padded.reshape(m, cells, grid).any(axis=2)
        return np.repeat(hit, grid, axis=1)[:, p : p + n]
    idx = np.arange(n)
    rows = np.arange(m)[:, None]
    cw = np.zeros((m, n + 1), np.int32)
    np.cumsum(widened, axis=1, out=cw[:, 1:])
    cell0 = (base[:, None] + idx) // grid * grid - base[:, None]
    return (cw[rows, np.clip(cell0 + grid, 0, n)] - cw[rows, np.clip(cell0, 0, n)]) > 0


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


def run_bounds(present: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise [start, end) of the run of True containing (or nearest) `index`; -1 if none.

    present (m, n) bool, index (m,) int.  Vectorised form of `run_around`.
    """
    m, n = present.shape
    idx = np.arange(n)
    rows = np.arange(m)
    index = np.clip(index, 0, n - 1)
    last_false = np.maximum.accumulate(np.where(present, -1, idx), axis=1)
    next_false = np.flip(np.minimum.accumulate(np.flip(np.where(present, n, idx), 1), axis=1), 1)
    last_true = np.maximum.accumulate(np.where(present, idx, -1), axis=1)
    next_true = np.flip(np.minimum.accumulate(np.flip(np.where(present, idx, n), 1), axis=1), 1)
    inside = present[rows, index]
    after = next_true[rows, index]
    before = last_true[rows, index]
    use_after = (after < n) & ((before < 0) | (after - index <= index - before))
    anchor = np.where(inside, index, np.where(use_after, after, before))
    found = inside | (after < n) | (before >= 0)
    anchor = np.where(found, anchor, 0)
    start = np.where(found, last_false[rows, anchor] + 1, -1)
    end = np.where(found, next_false[rows, anchor], -1)
    return start, end
