"""Goertzel filter bank over many calls at once, as one matrix product per tick.

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

import numpy as np

ROW_HZ = np.array([697.0, 770.0, 852.0, 941.0])
COL_HZ = np.array([1209.0, 1336.0, 1477.0, 1633.0])
KEYS = "123A456B789C*0#D"
SUBBLOCKS_PER_WINDOW = 4
#: Precise dial tone, measured so that it does not count against a key's purity.
DIAL_HZ = np.array([350.0, 440.0])
#: Measured on every hop of every call: the eight keypad tones.
_KEY_HZ = np.concatenate([ROW_HZ, COL_HZ])
#: Measured on gated hops only: dial tone (purity) and column second harmonics.
_EXTRA_HZ = np.concatenate([DIAL_HZ, 2 * COL_HZ])
#: Whole-hertz tones advance by whole turns every 200 sub-blocks (1 s): the
#: rotated sub-block bases repeat with that period.
_PHASE_PERIOD = 200


@lru_cache(maxsize=8)
def _rotated_bases(sub: int, rate: int) -> np.ndarray:
    """(period, 28, sub) float32 rows for sub-block k: cos and -sin of the keypad
    tones, then cos and -sin of the extra tones.

    Sub-block k starts at sample sub * k of the stream; its rows carry that
    phase so that the DFTs of consecutive sub-blocks add up to a window's DFT.
    """
    k = np.arange(_PHASE_PERIOD)[:, None, None]
    n = np.arange(sub)[None, None, :]
    rows = []
    for hz in (_KEY_HZ, _EXTRA_HZ):
        phase = 2 * np.pi * hz[None, :, None] / rate * (n + sub * k)
        rows += [np.cos(phase), -np.sin(phase)]
    bases = np.concatenate(rows, axis=1).astype(np.float32)
    bases.flags.writeable = False
    return bases


@dataclass
class HopFeatures:
    """Measurements of the hops worth a closer look.

    `window_end` covers every hop, shaped (calls, hops).  Only hops passing a
    cheap gate (some energy in a row and a column filter) are measured further;
    `calls`/`hops` index them and every other array has one entry per such hop.
    """

    window_end: np.ndarray  # (calls, hops) input-sample index one past the window
    calls: np.ndarray
    hops: np.ndarray
    row: np.ndarray  # index 0..3 of the strongest row filter
    col: np.ndarray  # index 0..3 of the strongest column filter
    row_energy: np.ndarray  # offset-corrected energy of that row tone in the window
    col_energy: np.ndarray
    row_error: np.ndarray  # relative frequency error of the row tone
    col_error: np.ndarray
    row_runner_up: np.ndarray  # energy of the second strongest row filter
    col_runner_up: np.ndarray
    col_harmonic: np.ndarray  # energy at twice the column frequency
    total: np.ndarray  # total energy of the window, less any dial tone in it

    @property
    def shape(self) -> tuple[int, int]:
        return self.window_end.shape


#: Gate: the weakest level (dBm0 per tone) and tone share any limit set may accept.
GATE_LEVEL_DBM0 = -48.0
GATE_SHARE = 0.2
_ZERO_DBM0_PEAK = 22773.0


def _nothing_gated(ends: np.ndarray) -> HopFeatures:
    none_i = np.zeros(0, np.int64)
    none_f = np.zeros(0)
    return HopFeatures(ends, none_i, none_i, none_i, none_i, *([none_f] * 8))


class GoertzelBank:
    """Streaming 8-tone (+ column second harmonics) filter bank over `n_calls` channels."""

    def __init__(self, n_calls: int, sample_rate: int = 8000) -> None:
        if sample_rate % 200:
            raise ValueError("sample rate must be a multiple of 200 Hz")
        self.n_calls = n_calls
        self.rate = sample_rate
        self.sub = sample_rate // 200  # 5 ms sub-block
        self.window = self.sub * SUBBLOCKS_PER_WINDOW
        self._bases = _rotated_bases(self.sub, sample_rate)
        # sub-blocks so far, modulo the phase period (shared: every call gets the same
        # samples per tick)
        self._count = 0
        self._ends_cache: dict[int, np.ndarray] = {}
        self._half_seconds = 2 * self.sub / sample_rate
        self._scale = np.float32(2.0 / self.window)
        gate_peak = _ZERO_DBM0_PEAK * 10 ** (GATE_LEVEL_DBM0 / 20)
        self._gate_floor = gate_peak**2 / 2 * self.window
        keep = SUBBLOCKS_PER_WINDOW - 1
        self._hist = np.zeros((keep, 2 * (len(_KEY_HZ) + len(_EXTRA_HZ)), n_calls), np.float32)
        self._hist_energy = np.zeros((keep, n_calls), np.float32)
        self._rest = np.zeros((n_calls, 0), np.float32)
        self.samples_in = np.zeros(n_calls, np.int64)

    def reset(self, call: int) -> None:
        """Forget a call's state (slot reuse)."""
        self._hist[:, :, call] = 0
        self._hist_energy[:, call] = 0
        self.samples_in[call] = 0
        if self._rest.shape[1]:
            self._rest[call] = 0

    def process(self, frames: np.ndarray) -> HopFeatures:
        """Feed (calls, n) samples; returns features of the hops they complete."""
        frames = np.asarray(frames, dtype=np.float32)
        keep = SUBBLOCKS_PER_WINDOW - 1
        end0 = self.samples_in - self._rest.shape[1]
        x = np.concatenate([self._rest, frames], axis=1) if self._rest.shape[1] else frames
        n_sub = x.shape[1] // self.sub
        used = n_sub * self.sub
        if used < x.shape[1] or self._rest.shape[1]:
            self._rest = x[:, used:].copy()
        self.samples_in = self.samples_in + frames.shape[1]
        ends = end0[:, None] + self._sub_ends(n_sub)
        if n_sub == 0:
            return _nothing_gated(ends)
        blocks = x[:, :used].reshape(self.n_calls, n_sub, self.sub)
        bases = self._bases_from(self._count, n_sub)
        self._count = (self._count + n_sub) % _PHASE_PERIOD
        spec = np.empty((keep + n_sub,) + self._hist.shape[1:], np.float32)
        spec[:keep] = self._hist
        np.matmul(bases, blocks.transpose(1, 2, 0), out=spec[keep:])
        energy = np.empty((keep + n_sub, self.n_calls), np.float32)
        energy[:keep] = self._hist_energy
        np.einsum("cbs,cbs->bc", blocks, blocks, out=energy[keep:])
        self._hist = spec[-keep:]
        self._hist_energy = energy[-keep:]
        return self._features(spec, energy, n_sub, ends)

    def _sub_ends(self, n_sub: int) -> np.ndarray:
        """Offsets of the ends of the next `n_sub` sub-blocks (cached: ticks repeat)."""
        if n_sub not in self._ends_cache:
            self._ends_cache[n_sub] = self.sub * np.arange(1, n_sub + 1)
        return self._ends_cache[n_sub]

    def _bases_from(self, k0: int, n_sub: int) -> np.ndarray:
        """Rotated bases of sub-blocks k0 .. k0 + n_sub - 1 (a view when they do not wrap)."""
        if k0 + n_sub <= _PHASE_PERIOD:
            return self._bases[k0 : k0 + n_sub]
        return self._bases[(k0 + np.arange(n_sub)) % _PHASE_PERIOD]

    def _features(self, spec, energy, n_sub, ends) -> HopFeatures:
        keypad = spec[:, : 2 * len(_KEY_HZ)]
        pairs = keypad[:-1] + keypad[1:]  # pairs[j] = sub-blocks j, j+1
        first, second = pairs[:n_sub], pairs[2 : n_sub + 2]
        coherent = first + second
        coherent *= coherent
        power = coherent[:, :8] + coherent[:, 8:]  # (hops, 8 tones, calls)
        power *= self._scale
        e2 = energy[:-1] + energy[1:]
        total = e2[:n_sub] + e2[2 : n_sub + 2]  # (hops, calls)
        r_max = power[:, :4].max(axis=1)
        c_max = power[:, 4:].max(axis=1)
        both = r_max + c_max
        # Superset of the gate below (the dial tone removes at most half of the total).
        maybe = (np.minimum(r_max, c_max) >= self._gate_floor) & (both >= 0.099 * total)
        ci, hi = np.nonzero(maybe.T)
        if ci.size == 0:
            return _nothing_gated(ends)
        extra = self._extra_power(spec, ci, hi)
        total = total[hi, ci].astype(np.float64)
        total = np.maximum(total - extra[:, 0] - extra[:, 1], 0.5 * total)
        gate = (np.minimum(r_max[hi, ci], c_max[hi, ci]) >= self._gate_floor) & (
            both[hi, ci] >= GATE_SHARE * total
        )
        if not gate.all():
            ci, hi, extra, total = ci[gate], hi[gate], extra[gate], total[gate]
            if ci.size == 0:
                return _nothing_gated(ends)
        p = power[hi, :, ci].astype(np.float64)  # (m, 4 rows then 4 columns)
        m = len(ci)
        k = np.arange(m)[:, None]
        tones = np.stack([p[:, :4].argmax(-1), 4 + p[:, 4:].argmax(-1)], axis=1)  # (m, 2)
        hz = self._advance_hz(first[hi, :, ci], second[hi, :, ci], k, tones)
        energy = p[k, tones] / self._window_gain(hz)
        error = hz / _KEY_HZ[tones]
        runner_up = np.partition(p.reshape(m, 2, 4), 2, axis=-1)[..., 2]
        return HopFeatures(
            window_end=ends,
            calls=ci,
            hops=hi,
            row=tones[:, 0],
            col=tones[:, 1] - 4,
            row_energy=energy[:, 0],
            col_energy=energy[:, 1],
            row_error=error[:, 0],
            col_error=error[:, 1],
            row_runner_up=runner_up[:, 0],
            col_runner_up=runner_up[:, 1],
            col_harmonic=extra[k[:, 0], tones[:, 1] - 2].astype(np.float64),
            total=total,
        )

    def _extra_power(self, spec, ci, hi) -> np.ndarray:
        """(m, 6) window energies of dial tone and column harmonics at (call, hop) pairs."""
        rows = slice(2 * len(_KEY_HZ), None)
        z = spec[hi, rows, ci] + spec[hi + 1, rows, ci]
        z += spec[hi + 2, rows, ci]
        z += spec[hi + 3, rows, ci]
        z *= z
        n = len(_EXTRA_HZ)
        return (z[:, :n] + z[:, n:]) * self._scale

    def _advance_hz(self, first, second, k, tone) -> np.ndarray:
        """Frequency offset of `tone` (row k of first/second: real parts, then imaginary)
        from the phase advance between the window's halves."""
        f_re, f_im = first[k, tone], first[k, 8 + tone]
        s_re, s_im = second[k, tone], second[k, 8 + tone]
        angle = np.arctan2(s_im * f_re - s_re * f_im, s_re * f_re + s_im * f_im)
        return angle / (2 * np.pi * self._half_seconds)

    def _window_gain(self, offset_hz: np.ndarray) -> np.ndarray:
        """Energy response of the rectangular window to a tone `offset_hz` off the bin."""
        x = np.clip(np.abs(offset_hz), 1e-6, 60.0) / self.rate
        g = np.sin(np.pi * x * self.window) / (self.window * np.sin(np.pi * x))
        return np.maximum(g * g, 0.25)
