"""Goertzel filter bank over many calls at once, as matrix products per tick.

A Goertzel filter run over a block of samples returns the block's DFT at one
frequency; evaluating that DFT directly (samples @ cos/sin basis) is the same
number and lets numpy/BLAS process (calls x blocks) in one product.  The bank
works on 5 ms sub-blocks and combines four consecutive sub-blocks coherently
into a 20 ms analysis window every 5 ms (a "hop"), so state across frames is
just the last three sub-blocks and the samples not yet filling a sub-block.
Each sub-block's basis is pre-rotated to the stream's common phase reference
(a sliding DFT), so the window's DFT is a plain sum of four sub-block terms.

Only the eight keypad tones are combined into windows on every hop of every
call.  A cheap gate (some energy in a row and a column filter, and a fair share
of the window) picks the hops worth a closer look; for those alone the dial
tone and the column second harmonics are combined and everything else is
measured.  Arrays are laid out (hops, frequencies, calls) so that every per-hop
reduction runs over contiguous rows of calls.

Per hop it reports, for the strongest row and column filter: the tone energy
(corrected for the frequency-offset loss of the window), the relative frequency
error (from the phase advance between the window's halves), the energy at the
column's second harmonic, the energy of the runner-up row and column and the
total energy of the window.  Classification is up to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dsp import keypad

ROW_HZ = np.array(keypad.ROW_HZ)
COL_HZ = np.array(keypad.COL_HZ)
SUBBLOCKS_PER_WINDOW = 4
#: Precise dial tone, measured so that it does not count against a key's purity.
DIAL_HZ = np.array([350.0, 440.0])
#: Measured on every hop of every call: the eight keypad tones.
_KEY_HZ = np.concatenate([ROW_HZ, COL_HZ])
#: Measured on gated hops only: dial tone (purity) and column second harmonics.
_EXTRA_HZ = np.concatenate([DIAL_HZ, 2 * COL_HZ])
#: Index in _KEY_HZ of the first row and the first column tone, as a column.
_GROUP_FIRST = np.array([[0], [len(ROW_HZ)]])
#: Rank bits of the four filters of a group (see `GoertzelBank._measure`).
_RANK = np.array([3, 2, 1, 0], np.int32)[:, None]
#: Whole-hertz tones advance by whole turns every 200 sub-blocks (1 s): the
#: rotated sub-block bases repeat with that period.
_PHASE_PERIOD = 200
#: Three float32 work arrays (see `GoertzelBank._new_buffers` and `GoertzelBank._work`).
_Buffers: TypeAlias = tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]


@lru_cache(maxsize=8)
def _rotated_bases(sub: int, rate: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Rotated DFT rows of sub-block k (k = 0 .. period - 1), as float32:

    - (period, 16, sub): cos and -sin of the keypad tones, for `bases @ samples`;
    - (period, sub, 12): cos and -sin of the extra tones, for `samples @ bases`.

    Sub-block k starts at sample sub * k of the stream; its rows carry that
    phase so that the DFTs of consecutive sub-blocks add up to a window's DFT.
    """
    k = np.arange(_PHASE_PERIOD)[:, None, None]
    n = np.arange(sub)[None, None, :]
    out = []
    for hz in (_KEY_HZ, _EXTRA_HZ):
        phase = 2 * np.pi * hz[None, :, None] / rate * (n + sub * k)
        out.append(np.concatenate([np.cos(phase), -np.sin(phase)], axis=1).astype(np.float32))
    keypad, extra = out[0], np.ascontiguousarray(out[1].transpose(0, 2, 1))
    keypad.flags.writeable = extra.flags.writeable = False
    return keypad, extra


@dataclass
class HopFeatures:
    """Measurements of the hops worth a closer look.

    `window_end` covers every hop, shaped (calls, hops).  Only hops passing a
    cheap gate (some energy in a row and a column filter) are measured further;
    `calls`/`hops` index them and every other array has one entry per such hop.
    Row and column measurements are kept stacked, (2, hops): row 0 for the row
    tone, row 1 for the column tone, so that limits apply to both in one step.
    """

    window_end: NDArray[np.int64]  # (calls, hops) input-sample index one past the window
    calls: NDArray[np.int64]
    hops: NDArray[np.int64]
    tones: NDArray[np.int64]  # (2, m) index 0..3 of the strongest row and column filter
    energy: NDArray[np.float64]  # (2, m) offset-corrected energy of those tones in the window
    error: NDArray[np.float64]  # (2, m) relative frequency error of those tones
    runner_up: NDArray[np.float64]  # (2, m) energy of the second strongest row/column filter
    col_harmonic: NDArray[np.float64]  # energy at twice the column frequency
    total: NDArray[np.float64]  # total energy of the window, less any dial tone in it
    freq: NDArray[np.float64]  # (2, m) measured frequencies (Hz) of the row and column tones
    #: (calls, hops) key index of the strongest row and strongest column filter of
    #: every hop where both are above `PAIR_LEVEL_DBM0`, else -1: what a receiver
    #: without any other check would take the window for (the masker tracks keys
    #: it has found with it).
    pair: NDArray[np.int8] | None = None
    #: The same over the window's newest 10 ms (its second half): a short block's
    #: main lobe (+-100 Hz) still holds a tone 3.5 % off its frequency (57 Hz at
    #: 1633 Hz), where the 20 ms window's (+-50 Hz) has lost it or wavers between two
    #: columns, while a receiver with 10-13 ms blocks hears it as the key.
    short_pair: NDArray[np.int8] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.window_end.shape

    @property
    def row(self) -> NDArray[np.int64]:
        row: NDArray[np.int64] = self.tones[0]
        return row

    @property
    def col(self) -> NDArray[np.int64]:
        col: NDArray[np.int64] = self.tones[1]
        return col

    @property
    def row_energy(self) -> NDArray[np.float64]:
        row_energy: NDArray[np.float64] = self.energy[0]
        return row_energy

    @property
    def col_energy(self) -> NDArray[np.float64]:
        col_energy: NDArray[np.float64] = self.energy[1]
        return col_energy

    @property
    def row_error(self) -> NDArray[np.float64]:
        row_error: NDArray[np.float64] = self.error[0]
        return row_error

    @property
    def col_error(self) -> NDArray[np.float64]:
        col_error: NDArray[np.float64] = self.error[1]
        return col_error

    @property
    def row_runner_up(self) -> NDArray[np.float64]:
        row_runner_up: NDArray[np.float64] = self.runner_up[0]
        return row_runner_up

    @property
    def col_runner_up(self) -> NDArray[np.float64]:
        col_runner_up: NDArray[np.float64] = self.runner_up[1]
        return col_runner_up


#: Gate: the weakest level (dBm0 per tone) and tone share any limit set may accept
#: (`dsp.classify.BURIED` looks at keys 10 dB and more under talk).
GATE_LEVEL_DBM0 = -48.0
GATE_SHARE = 0.05
#: Per-tone floor of `HopFeatures.pair`, a little under the loosest receiver's.
PAIR_LEVEL_DBM0 = -46.0
#: Share of a 10 ms window's energy its strongest row and column must hold for
#: `HopFeatures.short_pair`.
SHORT_PAIR_SHARE = 0.3


def _nothing_gated(ends: NDArray[np.int64]) -> HopFeatures:
    none_i = np.zeros(0, np.int64)
    none_f = np.zeros((2, 0))
    return HopFeatures(
        ends,
        none_i,
        none_i,
        np.zeros((2, 0), np.int64),
        none_f,
        none_f,
        none_f,
        none_f[0],
        none_f[0],
        none_f,
    )


class GoertzelBank:
    """Streaming 8-tone (+ column second harmonics) filter bank over `n_calls` channels."""

    def __init__(self, n_calls: int, sample_rate: int = 8000) -> None:
        if sample_rate % 200:
            raise ValueError("sample rate must be a multiple of 200 Hz")
        self.n_calls = n_calls
        self.rate = sample_rate
        self.sub = sample_rate // 200  # 5 ms sub-block
        self.window = self.sub * SUBBLOCKS_PER_WINDOW
        self._key_bases, self._extra_bases = _rotated_bases(self.sub, sample_rate)
        # sub-blocks so far, modulo the phase period (shared: every call gets the same
        # samples per tick)
        self._count = 0
        self._ends_cache: dict[int, NDArray[np.int64]] = {}
        self._half_seconds = 2 * self.sub / sample_rate
        self._scale = 2.0 / self.window
        gate_peak = keypad.dbm0_to_peak(GATE_LEVEL_DBM0)
        self._gate_floor = gate_peak**2 / 2 * self.window
        # the cheap all-calls pre-gate works on unscaled keypad powers
        self._maybe_floor = np.float32(self._gate_floor / self._scale)
        pair_peak = keypad.dbm0_to_peak(PAIR_LEVEL_DBM0)
        self._pair_floor = np.float32(pair_peak**2 / 2 * self.window / self._scale)
        self._maybe_share = np.float32(GATE_SHARE / 2.01 / self._scale)
        # Per tick: sub-block DFTs of the keypad tones (subs, 16, calls), of the
        # extra tones (subs, calls, 12) and sub-block energies (subs, calls), the
        # first `keep` sub-blocks carried over from the last tick.  One set of
        # buffers per sub-blocks-per-tick count (ticks repeat).
        self._buffers: dict[int, _Buffers] = {}
        self._last = self._new_buffers(0)
        self._scratch: dict[int, _Buffers] = {}
        #: flat offsets of the 8 tones' powers of one (hop, call) in (hops, 16, calls)
        self._tone_offsets = np.arange(8)[:, None] * n_calls
        #: ... and of the column group's first filter
        self._group_offsets = np.array([[0], [4 * n_calls]])
        #: flat offsets of the sub-blocks of a window in (sub-blocks, calls, ...)
        self._sub_offsets = np.arange(SUBBLOCKS_PER_WINDOW)[:, None] * n_calls
        #: ... and of a tone's real and imaginary parts in the first and second half
        #: of a window in (sub-block pairs, 16, calls)
        im, later = 8 * n_calls, 2 * 16 * n_calls
        self._half_offsets = np.array([0, im, later, later + im])[:, None, None]
        self._rest = np.zeros((n_calls, 0), np.float32)
        self.samples_in = np.zeros(n_calls, np.int64)

    def _new_buffers(self, n_sub: int) -> _Buffers:
        subs = SUBBLOCKS_PER_WINDOW - 1 + n_sub
        return (
            np.zeros((subs, 2 * len(_KEY_HZ), self.n_calls), np.float32),
            np.zeros((subs, self.n_calls, 2 * len(_EXTRA_HZ)), np.float32),
            np.zeros((subs, self.n_calls), np.float32),
        )

    def reset(self, call: int) -> None:
        """Forget a call's state (slot reuse)."""
        keep = SUBBLOCKS_PER_WINDOW - 1
        spec, extra, energy = self._last
        spec[-keep:, :, call] = 0
        extra[-keep:, call] = 0
        energy[-keep:, call] = 0
        self.samples_in[call] = 0
        if self._rest.shape[1]:
            self._rest[call] = 0

    def process(self, frames: ArrayLike) -> HopFeatures:
        """Feed (calls, n) samples; returns features of the hops they complete."""
        frames = np.asarray(frames)
        keep = SUBBLOCKS_PER_WINDOW - 1
        n_rest = self._rest.shape[1]
        end0 = self.samples_in - n_rest
        if n_rest:
            x = np.concatenate([self._rest, frames.astype(np.float32, copy=False)], axis=1)
        else:
            x = frames
        n_sub = x.shape[1] // self.sub
        used = n_sub * self.sub
        if used < x.shape[1] or n_rest:
            self._rest = x[:, used:].astype(np.float32)
        self.samples_in = self.samples_in + frames.shape[1]
        ends = end0[:, None] + self._sub_ends(n_sub)
        if n_sub == 0:
            return _nothing_gated(ends)
        blocks = x[:, :used].astype(np.float32).reshape(self.n_calls, n_sub, self.sub)
        if n_sub not in self._buffers:
            self._buffers[n_sub] = self._new_buffers(n_sub)
        bufs = self._buffers[n_sub]
        for new, old in zip(bufs, self._last, strict=True):
            new[:keep] = old[len(old) - keep :]
        self._last = bufs
        spec, extra, energy = bufs
        keypad_bases, extra_bases = self._bases_from(self._count, n_sub)
        self._count = (self._count + n_sub) % _PHASE_PERIOD
        np.matmul(keypad_bases, blocks.transpose(1, 2, 0), out=spec[keep:])
        np.matmul(blocks.transpose(1, 0, 2), extra_bases, out=extra[keep:])
        np.einsum("cbs,cbs->bc", blocks, blocks, out=energy[keep:])
        return self._features(spec, extra, energy, n_sub, ends)

    def _sub_ends(self, n_sub: int) -> NDArray[np.int64]:
        """Offsets of the ends of the next `n_sub` sub-blocks (cached: ticks repeat)."""
        if n_sub not in self._ends_cache:
            self._ends_cache[n_sub] = self.sub * np.arange(1, n_sub + 1)
        return self._ends_cache[n_sub]

    def _bases_from(self, k0: int, n_sub: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Rotated bases of sub-blocks k0 .. k0 + n_sub - 1 (views when they do not wrap)."""
        if k0 + n_sub <= _PHASE_PERIOD:
            k: slice | NDArray[np.int64] = slice(k0, k0 + n_sub)
        else:
            k = (k0 + np.arange(n_sub)) % _PHASE_PERIOD
        return self._key_bases[k], self._extra_bases[k]

    def _features(
        self,
        spec: NDArray[np.float32],
        extra: NDArray[np.float32],
        energy: NDArray[np.float32],
        n_sub: int,
        ends: NDArray[np.int64],
    ) -> HopFeatures:
        """Pre-gate every hop of every call on the keypad tones; measure the rest.

        The all-calls part works in place on per-tick work buffers; the gated
        (call, hop) pairs are gathered with flat indices (np.take), which is
        several times cheaper than mixed fancy indexing.
        """
        pairs, coherent, total = self._work(n_sub)
        np.add(spec[:-1], spec[1:], out=pairs)  # pairs[j] = sub-blocks j, j+1
        np.add(pairs[:n_sub], pairs[2 : n_sub + 2], out=coherent)  # first + second half
        np.multiply(coherent, coherent, out=coherent)
        power = coherent[:, :8]  # (hops, 8 tones, calls), unscaled
        power += coherent[:, 8:]
        np.add(energy[:-1][:n_sub], energy[1:][:n_sub], out=total)
        total += energy[2:-1]
        total += energy[3:]  # (hops, calls)
        r_max = power[:, :4].max(axis=1)
        c_max = power[:, 4:].max(axis=1)
        pair = self._pairs(power, r_max, c_max)
        short_pair = self._short_pairs(
            pairs[2 : n_sub + 2], energy[2 : n_sub + 2] + energy[3 : n_sub + 3]
        )
        # Superset of the gate below (the dial tone removes at most half of the total).
        maybe = np.minimum(r_max, c_max) >= self._maybe_floor
        r_max += c_max
        maybe &= r_max >= total * self._maybe_share
        # hop-major order: the gathers below then sweep each hop's block of calls
        hop_call = np.flatnonzero(maybe)
        if hop_call.size == 0:
            f = _nothing_gated(ends)
        else:
            f = self._measure(hop_call, pairs, coherent, total, extra, ends)
        f.pair = pair
        f.short_pair = short_pair
        return f

    def _pairs(
        self, power: NDArray[np.float32], r_max: NDArray[np.float32], c_max: NDArray[np.float32]
    ) -> NDArray[np.int8]:
        """(calls, hops) strongest row x 4 + strongest column where both clear the pair
        floor, else -1 (power: (hops, 8, calls), unscaled)."""
        code = power[:, :4].argmax(axis=1).astype(np.int8)
        code *= 4
        code += power[:, 4:].argmax(axis=1).astype(np.int8)
        loud = np.minimum(r_max, c_max) >= self._pair_floor
        return np.where(loud, code, np.int8(-1)).T

    def _short_pairs(
        self, halves: NDArray[np.float32], totals: NDArray[np.float32]
    ) -> NDArray[np.int8]:
        """`HopFeatures.short_pair` from the sums of the two newest sub-blocks of each
        hop's window ((hops, 16, calls): real parts, then imaginary) and their energy
        (hops, calls): only where the two tones hold `SHORT_PAIR_SHARE` of it (a key;
        talk spreads over the band and keeps its pair for 30 ms too often)."""
        power = halves[:, :8] * halves[:, :8]
        power += halves[:, 8:] * halves[:, 8:]
        power *= 4.0  # a 10 ms window's energy, on the 20 ms window's scale
        r_max, c_max = power[:, :4].max(axis=1), power[:, 4:].max(axis=1)
        pair = self._pairs(power, r_max, c_max)
        # tone energy in sample-energy units: power / window
        tonal = (r_max + c_max) >= totals * (SHORT_PAIR_SHARE * self.window)
        return np.where(tonal.T, pair, np.int8(-1))

    def _measure(
        self,
        hop_call: NDArray[np.int64],
        pairs: NDArray[np.float32],
        power: NDArray[np.float32],
        total: NDArray[np.float32],
        extra: NDArray[np.float32],
        ends: NDArray[np.int64],
    ) -> HopFeatures:
        """Features of the pre-gated (hop, call) pairs `hop_call` (flat, hop-major).

        Works on (2 groups, 4 filters, m) and (2, m) arrays so that each step is
        one numpy operation over all pairs; pairs failing the full gate are
        dropped just before the costlier frequency measurement.
        """
        c = self.n_calls
        scale = self._scale
        at = hop_call  # flat index into (hops, calls) arrays
        hi, ci = np.divmod(at, c)
        base = at + hi * (15 * c)  # flat index of the first filter in (hops, 16, calls)
        p = power.reshape(-1).take(base + self._tone_offsets).reshape(2, 4, -1)
        # Strongest and runner-up filter of each group in three reductions: powers
        # are non-negative float32, ordered like their bit patterns as int32, and
        # the two lowest bits (a relative change below 4e-7) carry the filter's
        # rank, so that the maximum also names the first strongest filter.
        bits = p.view(np.int32)
        bits &= ~3
        bits |= _RANK
        top = bits.max(axis=1)  # (2, m)
        tone = 3 - (top & 3)
        runner_up = np.where(bits == top[:, None], 0, bits).max(axis=1).view(np.float32)
        strongest = (top & ~3).view(np.float32)
        z = extra.reshape(-1, extra.shape[2]).take(at + self._sub_offsets, axis=0).sum(axis=0)
        z *= z
        n = len(_EXTRA_HZ)
        z = z[:, :n] + z[:, n:]  # (m, 6): dial tone, then column harmonics (unscaled)
        window_total = total.reshape(-1).take(at)
        total = np.maximum(window_total - (z[:, 0] + z[:, 1]) * scale, 0.5 * window_total)
        gate = (np.minimum(strongest[0], strongest[1]) >= self._gate_floor / scale) & (
            strongest[0] + strongest[1] >= GATE_SHARE / scale * total
        )
        harmonic = z[np.arange(len(ci)), tone[1] + 2]
        # one array, so that dropping the pairs the gate refuses is one operation
        table = np.concatenate(
            [
                tone,
                [ci, hi],
                base + tone * c + self._group_offsets,  # exact in float64
                strongest,
                runner_up,
                [harmonic, total],
            ]
        )
        if not gate.all():
            table = table[:, gate]
            if table.shape[1] == 0:
                return _nothing_gated(ends)
        ints = table[:6].astype(np.int64)
        floats = table[6:]
        floats[:5] *= scale
        hz = self._advance_hz(pairs, ints[4:6])
        tone = ints[:2]
        floats[:2] /= self._window_gain(hz)  # tone energies
        nominal = _KEY_HZ[tone + _GROUP_FIRST]
        return HopFeatures(
            window_end=ends,
            calls=ints[2],
            hops=ints[3],
            tones=tone,
            energy=floats[:2],
            error=hz / nominal,
            runner_up=floats[2:4],
            col_harmonic=floats[4],
            total=floats[5],
            freq=nominal + hz,
        )

    def _work(self, n_sub: int) -> _Buffers:
        """Per-tick scratch arrays (pairs, coherent sums, window energies), kept so that
        large temporaries are not allocated (and page-faulted in) on every tick."""
        if n_sub not in self._scratch:
            subs = SUBBLOCKS_PER_WINDOW - 1 + n_sub
            rows = 2 * len(_KEY_HZ)
            self._scratch[n_sub] = (
                np.empty((subs - 1, rows, self.n_calls), np.float32),
                np.empty((n_sub, rows, self.n_calls), np.float32),
                np.empty((n_sub, self.n_calls), np.float32),
            )
        return self._scratch[n_sub]

    def _advance_hz(self, pairs: NDArray[np.float32], at: NDArray[np.int64]) -> NDArray[np.float64]:
        """Frequency offset of the tones at flat indices `at` of the first half-window sums
        (the imaginary part 8 rows on, the second half two sub-blocks on), from the phase
        advance between the window's halves."""
        f_re, f_im, s_re, s_im = pairs.reshape(-1).take(at + self._half_offsets)
        angle = np.arctan2(s_im * f_re - s_re * f_im, s_re * f_re + s_im * f_im)
        hz: NDArray[np.float64] = angle.astype(np.float64) * (1 / (2 * np.pi * self._half_seconds))
        return hz

    def _window_gain(self, offset_hz: NDArray[np.float64]) -> NDArray[np.float64]:
        """Energy response of the rectangular window to a tone `offset_hz` off the bin,
        from a table every 1/_GAIN_STEPS_PER_HZ Hz (to within about 1e-5)."""
        table = _window_gain_table(self.rate, self.window)
        at = np.abs(offset_hz) * _GAIN_STEPS_PER_HZ
        gain: NDArray[np.float64] = table.take(at.astype(np.intp), mode="clip")
        return gain


_GAIN_STEPS_PER_HZ = 1000
_GAIN_MAX_HZ = 60.0


@lru_cache(maxsize=8)
def _window_gain_table(rate: int, window: int) -> NDArray[np.float64]:
    """Energy response of the window to offsets from 0 to 60 Hz, one entry per step of
    1/_GAIN_STEPS_PER_HZ Hz taken at the middle of the step; past 60 Hz it is held."""
    hz = (np.arange(int(_GAIN_MAX_HZ * _GAIN_STEPS_PER_HZ) + 1) + 0.5) / _GAIN_STEPS_PER_HZ
    x = np.clip(hz, 1e-6, _GAIN_MAX_HZ) / rate
    g = np.sin(np.pi * x * window) / (window * np.sin(np.pi * x))
    table: NDArray[np.float64] = np.maximum(g * g, 0.25)
    table.flags.writeable = False
    return table
