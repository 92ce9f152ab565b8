"""Sample-accurate edges of a dual tone, from a fine two-frequency envelope.

The block detector knows *that* a key is pressed to within a 5 ms hop; this
module finds *where* it starts and ends.  Each of the two tone frequencies is
demodulated to baseband and smoothed by a triangular window (two cascaded 5 ms
moving averages, built by doubling sums; sidelobes low enough that the other tone of the
pair does not leak in).  The tone is present where both envelopes are above
half of their steady amplitude; the half-amplitude crossing of a symmetric
window is the edge itself once shifted by the window's centre delay.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TypeAlias, TypeVar, cast

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view
from numpy.typing import ArrayLike, NDArray

PRESENT_FRACTION = 0.5

#: Rows of audio samples: int16 from the detector's history and the masker's buffer,
#: float from tests and tools.
Samples: TypeAlias = NDArray[np.int16] | NDArray[np.float64]
#: `cut(rows, starts, length)`: (len(rows), length) samples of rows `rows` from `starts` on.
Cut: TypeAlias = Callable[[NDArray[np.int64], NDArray[np.int64], int], Samples]
#: What the moving sums run over: float32 key demodulations, complex128 baseband.
_Z = TypeVar("_Z", np.float32, np.complex128)
_S = TypeVar("_S", np.int16, np.float64)


def _moving_sum(z: NDArray[_Z], width: int) -> NDArray[_Z]:
    """Sums of `width` consecutive samples along the last axis (len - width + 1 of them).

    Built by doubling (sums of 2, 4, 8, ... samples, then the binary digits of
    `width` added at their offsets): a handful of vectorised adds instead of a
    sequential running sum, and no rounding error growing along the row.
    """
    out_len = z.shape[-1] - width + 1
    if out_len <= 0:
        return np.zeros(z.shape[:-1] + (0,), z.dtype)
    result: NDArray[_Z] | None = None
    owned = False  # whether `result` is an array of our own (not a view of `sums`)
    offset = 0
    span = 1
    sums = z  # sums[..., i] = z[..., i : i + span].sum(-1)
    bits = width
    while True:
        if bits & 1:
            part = sums[..., offset : offset + out_len]
            if result is None:
                result = part
            elif owned:
                result += part
            else:
                result = result + part
                owned = True
            offset += span
        bits >>= 1
        if not bits:
            # width >= 1 (a sub-block), so some bit of it has set `result`
            result = cast("NDArray[_Z]", result)
            return result if owned or result is not z else result.copy()
        sums = sums[..., :-span] + sums[..., span:]
        span *= 2


def _moving_average(z: NDArray[np.complex128], width: int) -> NDArray[np.complex128]:
    average: NDArray[np.complex128] = _moving_sum(z, width) / width
    return average


@lru_cache(maxsize=64)
def _phasor(freq: float, rate: int, n: int) -> NDArray[np.complex128]:
    phasor: NDArray[np.complex128] = np.exp(-2j * np.pi * freq / rate * np.arange(n))
    return phasor


def envelopes(
    seg: NDArray[np.float64], freqs: tuple[float, float], rate: int
) -> NDArray[np.float64]:
    """(2, len(seg)) amplitude envelopes centred on each sample (0 where undefined)."""
    half = rate // 200
    n = len(seg)
    size = max(rate, 1 << int(n - 1).bit_length())
    # (numpy's stubs type real (1, n) times complex (2, n) as real)
    z = cast(
        "NDArray[np.complex128]",
        seg[None, :] * np.stack([_phasor(float(f), rate, size)[:n] for f in freqs]),
    )
    tri = _moving_average(_moving_average(z, half), half)
    env = np.zeros((2, len(seg)))
    if tri.shape[-1] > 0:
        env[:, half - 1 : half - 1 + tri.shape[-1]] = 2 * np.abs(tri)
    return env


def presence(
    seg: ArrayLike, freqs: tuple[float, float], rate: int, reference: ArrayLike | None = None
) -> NDArray[np.bool_]:
    """Boolean per sample of `seg`: both tones at >= half their steady amplitude.

    `reference` gives the steady amplitudes (peak scale); by default the largest
    envelope value found in `seg`.  The last window-length samples are only
    decided by later samples and read False here.
    """
    env = envelopes(np.asarray(seg, float), freqs, rate)
    ref = env.max(axis=1) if reference is None else np.asarray(reference, float)
    ref = np.maximum(ref, 1e-9)
    both: NDArray[np.bool_] = np.all(env >= PRESENT_FRACTION * ref[:, None], axis=0)
    return both


@lru_cache(maxsize=8)
def _key_phasors(rate: int, n: int) -> NDArray[np.float32]:
    """(16, 4, n) float32 demodulators of every key: cos and -sin of its row
    frequency, then of its column frequency."""
    from dsp.goertzel import COL_HZ, ROW_HZ

    keys = np.arange(16)
    freqs = np.stack([ROW_HZ[keys // 4], COL_HZ[keys % 4]], axis=1)
    phase = 2 * np.pi * freqs[..., None] / rate * np.arange(n)
    table = np.stack([np.cos(phase), -np.sin(phase)], axis=2).reshape(16, 4, n)
    table = table.astype(np.float32)
    table.flags.writeable = False
    return table


#: Samples (rows x row length) of `presence_of_keys` done together: few enough for
#: every temporary to stay in cache (the work is a few dozen passes over each row).
SAMPLES_PER_PASS = 16384


def presence_of_keys(
    segs: Samples,
    keys: NDArray[np.int64],
    rate: int,
    reference: NDArray[np.float64],
    phase0: NDArray[np.int64] | None = None,
    rows_len: int | None = None,
    fraction: float = PRESENT_FRACTION,
    low: NDArray[np.bool_] | None = None,
    low_fraction: float = PRESENT_FRACTION,
) -> NDArray[np.bool_]:
    """`presence` for many (segment, key) pairs: segs (m, n), keys (m,), reference (m, 2).

    `fraction` replaces `PRESENT_FRACTION`; with `low` ((m, n) bool, False), the
    rows where `low` has any True there also get presence at `low_fraction` written
    into it from the same envelopes.

    With `phase0` (m,), each segment is a cut at that offset from a row of
    `rows_len` samples, and it is demodulated with that row's phase, so that the
    result is bit for bit the row's result there.
    """
    half = rate // 200
    m, n = segs.shape
    present = np.zeros(segs.shape, bool)
    if n < 2 * half - 1:
        return present
    if phase0 is None:
        table = _key_phasors(rate, n)
    else:
        # rows_len comes with phase0
        table = sliding_window_view(_key_phasors(rate, cast(int, rows_len)), n, axis=2)
    # amplitude = 2 |tri| / half**2; compare squared magnitudes to skip the square root
    floor = (fraction * np.maximum(reference, 1e-9) * half * half / 2) ** 2
    floor = floor.astype(np.float32)
    decided = present[:, half - 1 : n - half + 1]
    if low is not None:
        wanted = cast("NDArray[np.bool_]", low.any(axis=1))  # one per row of (m, n)
        low[:] = False
        low_floor = (floor * np.float32((low_fraction / fraction) ** 2)).astype(np.float32)
        low_decided = low[:, half - 1 : n - half + 1]
    per_pass = max(1, SAMPLES_PER_PASS // n)
    width = n - 2 * (half - 1)  # samples with a whole envelope window
    for i in range(0, m, per_pass):
        rows = slice(i, i + per_pass)
        z = table[keys[rows]] if phase0 is None else table[keys[rows], :, phase0[rows]]
        z *= segs[rows, None, :]
        # Rows laid end to end: the moving sums run over one contiguous array (much
        # faster than row by row); sums straddling two rows only land on the last
        # samples of a row, which have no whole window and are dropped.
        tri = _moving_sum(_moving_sum(z.reshape(-1), half), half)  # half**2 x triangular
        tri *= tri
        power = tri[:-n] + tri[n:]  # row k*4 (k*4 + 2): row (column) tone of key k
        power = as_strided(
            power,
            (len(z), 2, width),
            (4 * n * power.itemsize, 2 * n * power.itemsize, power.itemsize),
        )
        ok = decided[rows]
        np.greater_equal(power[:, 0], floor[rows, :1], out=ok)
        ok &= power[:, 1] >= floor[rows, 1:]
        if low is not None:
            ok = low_decided[rows]
            np.greater_equal(power[:, 0], low_floor[rows, :1], out=ok)
            ok &= power[:, 1] >= low_floor[rows, 1:]
            ok &= wanted[rows, None]
    return present


def key_run_edges(
    segs: NDArray[_S],
    keys: NDArray[np.int64],
    rate: int,
    reference: NDArray[np.float64],
    index: NDArray[np.int64],
    onset: NDArray[np.bool_],
    reach: int,
    beyond: int | None = None,
) -> NDArray[np.int64]:
    """Row-wise start (where `onset`) or end (elsewhere) of the run of the key's tone
    around `index`: the same as `run_bounds(presence_of_keys(...), index)`."""
    m, n = segs.shape

    def cut(rows: NDArray[np.int64], starts: NDArray[np.int64], length: int) -> NDArray[_S]:
        piece: NDArray[_S] = sliding_window_view(segs, length, axis=1)[rows, starts]
        return piece

    return key_run_edges_in(cut, n, keys, rate, reference, index, onset, reach, beyond)


def key_run_edges_in(
    cut: Cut,
    n: int,
    keys: NDArray[np.int64],
    rate: int,
    reference: NDArray[np.float64],
    index: NDArray[np.int64],
    onset: NDArray[np.bool_],
    reach: int,
    beyond: int | None = None,
) -> NDArray[np.int64]:
    """`key_run_edges` over rows of `n` samples that `cut(rows, starts, length)` hands out
    in (len(rows), length) pieces: only the samples looked at are ever fetched.

    Presence is first worked out only from `reach` samples before `index` to
    `beyond` after it (onset; by default half a sub-block), or the other way
    round (end), which settles nearly every row for a fraction of the work;
    rows whose answer could depend on samples outside that stretch are redone
    on the whole row.
    """
    half = rate // 200
    beyond = half if beyond is None else beyond
    m = len(keys)
    lo_valid, hi_valid = half - 1, n - half + 1  # presence can be True only in between
    length = reach + beyond + 1
    index = _clamp(index, 0, n - 1)
    result = np.full(m, -1, np.int64)
    settled = np.zeros(m, bool)
    if hi_valid - lo_valid > length:
        lo = np.where(onset, index - reach, index - beyond)
        lo = _clamp(lo, lo_valid, hi_valid - length)
        result, settled = _settle_in_region(
            cut,
            keys,
            rate,
            reference,
            index,
            onset,
            lo,
            length,
            lo == lo_valid,
            lo + length == hi_valid,
            n,
        )
    redo = np.flatnonzero(~settled)
    if redo.size:
        whole = cut(redo, np.zeros(len(redo), np.int64), n)
        present = presence_of_keys(whole, keys[redo], rate, reference[redo])
        start, end = run_bounds(present, index[redo])
        result[redo] = np.where(onset[redo], start, end)
    return result


def _settle_in_region(
    cut: Cut,
    keys: NDArray[np.int64],
    rate: int,
    reference: NDArray[np.float64],
    index: NDArray[np.int64],
    onset: NDArray[np.bool_],
    lo: NDArray[np.int64],
    length: int,
    first_seen: NDArray[np.bool_],
    last_seen: NDArray[np.bool_],
    n: int,
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Edges found in the stretch [lo, lo + length) of each row, and whether they are
    settled there (nothing outside the stretch could change them)."""
    ctx = rate // 200 - 1
    samples = cut(np.arange(len(keys)), lo - ctx, length + 2 * ctx)
    present = presence_of_keys(samples, keys, rate, reference, lo - ctx, n)
    present = present[:, ctx : ctx + length]
    at = index - lo
    seen = (at >= 0) & (at < length)
    at = _clamp(at, 0, length - 1)
    start, end, anchor = _region_run(present, at)
    far = np.abs(anchor - at)  # nothing nearer may hide outside the stretch
    settled = seen & (anchor >= 0) & ((at >= far) | first_seen)
    settled &= (at + far < length) | last_seen
    settled &= np.where(onset, (start > 0) | first_seen, (end < length) | last_seen)
    return np.where(onset, lo + start, lo + end), settled


def _clamp(x: NDArray[np.int64], low: int, high: int) -> NDArray[np.int64]:
    """np.clip for integer arrays, without its per-call overhead."""
    clamped: NDArray[np.int64] = np.minimum(np.maximum(x, low), high)
    return clamped


def _region_run(
    present: NDArray[np.bool_], at: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """`run_bounds` within rows of `present`, also giving the run's anchor (-1: none)."""
    n = present.shape[1]
    span = np.arange(n)
    anchor = at
    inside = present[np.arange(len(at)), at]
    if not inside.all():  # rows whose index is outside a run: take the nearest run
        odd = np.flatnonzero(~inside)
        rows, index = present[odd], at[odd]
        after = _first_true(rows & (span >= index[:, None]))
        before = _last_true(rows & (span <= index[:, None]))
        use_after = (after < n) & ((before < 0) | (after - index <= index - before))
        anchor = at.copy()
        anchor[odd] = np.where(use_after, after, before)
    gaps = ~present
    start = _last_true(gaps & (span < anchor[:, None])) + 1
    end = _first_true(gaps & (span > anchor[:, None]))
    return start, end, anchor


def widen_to_grid(
    present: NDArray[np.bool_], base: NDArray[np.int64], before: int, after: int, grid: int
) -> NDArray[np.bool_]:
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
    widened_cells: NDArray[np.bool_] = (
        cw[rows, np.clip(cell0 + grid, 0, n)] - cw[rows, np.clip(cell0, 0, n)]
    ) > 0
    return widened_cells


def run_around(present: NDArray[np.bool_], index: int) -> tuple[int, int] | None:
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


def _first_true(mask: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Row-wise index of the first True, or the row length where there is none."""
    pos = mask.argmax(axis=1)
    first: NDArray[np.int64] = np.where(mask[np.arange(len(mask)), pos], pos, mask.shape[1])
    return first


def _last_true(mask: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Row-wise index of the last True, or -1 where there is none."""
    pos = mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1)
    return np.where(mask[np.arange(len(mask)), pos], pos, -1)


def run_bounds(
    present: NDArray[np.bool_], index: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Row-wise [start, end) of the run of True containing (or nearest) `index`; -1 if none.

    present (m, n) bool, index (m,) int.  Vectorised form of `run_around`.
    """
    m, n = present.shape
    idx = np.arange(n)
    index = np.clip(index, 0, n - 1)
    inside = present[np.arange(m), index]
    after = _first_true(present & (idx >= index[:, None]))
    before = _last_true(present & (idx <= index[:, None]))
    use_after = (after < n) & ((before < 0) | (after - index <= index - before))
    found = inside | (after < n) | (before >= 0)
    anchor = np.where(inside, index, np.where(use_after, after, before))
    anchor = np.where(found, anchor, 0)
    absent = ~present
    start = _last_true(absent & (idx < anchor[:, None])) + 1
    end = _first_true(absent & (idx > anchor[:, None]))
    return np.where(found, start, -1), np.where(found, end, -1)


def fill_holes(present: NDArray[np.bool_], max_gap: int) -> NDArray[np.bool_]:
    """Rows of `present` with every run of False shorter than `max_gap` that has True
    on both sides set True (a tone broken up by louder talk is one tone)."""
    m, n = present.shape
    idx = np.arange(n)
    before = np.maximum.accumulate(np.where(present, idx, -1), axis=1)
    after = np.minimum.accumulate(np.where(present, idx, n)[:, ::-1], axis=1)[:, ::-1]
    hole = (before >= 0) & (after < n) & (after - before - 1 < max_gap)
    filled: NDArray[np.bool_] = present | hole
    return filled


def hysteresis(
    high: NDArray[np.bool_], low: NDArray[np.bool_], max_gap: int = 0
) -> NDArray[np.bool_]:
    """Rows of `low | high`, holes shorter than `max_gap` filled as by `fill_holes`,
    keeping only the runs of True that hold some True of `high`.

    Works on the list of runs (a handful per row), not sample by sample.
    """
    m, n = low.shape
    flat = np.zeros((m, n + 1), bool)  # a False after every row: runs end inside it
    np.logical_or(low, high, out=flat[:, :n])
    flat = flat.reshape(-1)
    edge = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    if flat[0]:
        edge = np.concatenate([[0], edge])
    starts, ends = edge[::2], edge[1::2]
    out = np.zeros(m * (n + 1) + 1, np.int8)
    if starts.size:
        merge = (starts[1:] - ends[:-1] < max_gap) & (starts[1:] // (n + 1) == ends[:-1] // (n + 1))
        first = np.concatenate([[True], ~merge])
        g_start = starts[first]
        g_end = ends[np.concatenate([~merge, [True]])]
        count = np.zeros(m * (n + 1) + 1, np.int32)
        np.cumsum(np.pad(high, ((0, 0), (0, 1))).reshape(-1), out=count[1:])
        kept = count[g_end] > count[g_start]
        out[g_start[kept]] = 1
        out[g_end[kept]] = -1
    kept_runs: NDArray[np.bool_] = (np.cumsum(out[:-1]) > 0).reshape(m, n + 1)[:, :n]
    return kept_runs
