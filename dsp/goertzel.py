"""Goertzel filter bank over many calls at once, as one matrix product per tick.

A Goertzel filter run over a block of samples returns the block's DFT at one
frequency; evaluating that DFT directly (samples @ cos/sin basis) is the same
number and lets numpy/BLAS process (calls x blocks) in one product.  The bank
works on 5 ms sub-blocks and combines four consecutive sub-blocks coherently
into a 20 ms analysis window every 5 ms (a "hop"), so state across frames is
just the last three sub-blocks and the samples not yet filling a sub-block.

Per hop it reports, for the strongest row and column filter: the tone energy
(corrected for the frequency-offset loss of the window), the relative frequency
error (from the phase advance between the window's halves), the energy at the
column's second harmonic, the energy of the runner-up row and column and the
total energy of the window.  Classification is up to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROW_HZ = np.array([697.0, 770.0, 852.0, 941.0])
COL_HZ = np.array([1209.0, 1336.0, 1477.0, 1633.0])
KEYS = "123A456B789C*0#D"
SUBBLOCKS_PER_WINDOW = 4
#: Precise dial tone, measured so that it does not count against a key's purity.
DIAL_HZ = np.array([350.0, 440.0])
_FREQS = np.concatenate([ROW_HZ, COL_HZ, 2 * COL_HZ, DIAL_HZ])
_N_FREQS = len(_FREQS)


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
        n = np.arange(self.sub)
        w = 2 * np.pi * _FREQS / sample_rate
        basis = np.concatenate([np.cos(np.outer(n, w)), -np.sin(np.outer(n, w))], axis=1)
        self._basis = basis.astype(np.float32)
        # Sub-block k of the stream is rotated by exp(-j w sub k): its DFT then shares one
        # phase reference with its neighbours and a window is a plain sum of sub-blocks.
        self._phase_step = w * self.sub
        self._count = 0  # sub-blocks so far (shared: every call gets the same samples per tick)
        self._half_seconds = 2 * self.sub / sample_rate
        gate_peak = _ZERO_DBM0_PEAK * 10 ** (GATE_LEVEL_DBM0 / 20)
        self._gate_floor = gate_peak**2 / 2 * self.window
        self._hist = np.zeros((n_calls, SUBBLOCKS_PER_WINDOW - 1, _N_FREQS), np.complex64)
        self._hist_energy = np.zeros((n_calls, SUBBLOCKS_PER_WINDOW - 1), np.float32)
        self._rest = np.zeros((n_calls, 0), np.float32)
        self.samples_in = np.zeros(n_calls, np.int64)

    def reset(self, call: int) -> None:
        """Forget a call's state (slot reuse)."""
        self._hist[call] = 0
        self._hist_energy[call] = 0
        self.samples_in[call] = 0
        if self._rest.shape[1]:
            self._rest[call] = 0

    def process(self, frames: np.ndarray) -> HopFeatures:
        """Feed (calls, n) samples; returns features of the hops they complete."""
        frames = np.asarray(frames, dtype=np.float32)
        end0 = self.samples_in - self._rest.shape[1]
        x = np.concatenate([self._rest, frames], axis=1) if self._rest.shape[1] else frames
        n_sub = x.shape[1] // self.sub
        used = n_sub * self.sub
        self._rest = x[:, used:].copy()
        self.samples_in = self.samples_in + frames.shape[1]
        blocks = x[:, :used].reshape(self.n_calls, n_sub, self.sub)
        prod = blocks @ self._basis
        k = self._count + np.arange(n_sub)
        self._count += n_sub
        turn = np.exp(-1j * np.outer(k, self._phase_step)).astype(np.complex64)
        spec = (prod[..., :_N_FREQS] + 1j * prod[..., _N_FREQS:]) * turn
        energy = np.einsum("cbs,cbs->cb", blocks, blocks)
        spec = np.concatenate([self._hist, spec], axis=1)
        energy = np.concatenate([self._hist_energy, energy], axis=1)
        self._hist = spec[:, -(SUBBLOCKS_PER_WINDOW - 1) :].copy()
        self._hist_energy = energy[:, -(SUBBLOCKS_PER_WINDOW - 1) :].copy()
        ends = end0[:, None] + self.sub * (1 + np.arange(n_sub))[None, :]
        return self._features(spec, energy, n_sub, ends)

    def _features(self, spec, energy, n_sub, ends) -> HopFeatures:
        pairs = spec[:, :-1] + spec[:, 1:]  # pairs[j] = sub-blocks j, j+1
        first, second = pairs[:, :n_sub], pairs[:, 2 : n_sub + 2]
        coherent = first + second
        e2 = energy[:, :-1] + energy[:, 1:]
        total = (e2[:, :n_sub] + e2[:, 2 : n_sub + 2]).astype(np.float64)
        power = (coherent.real**2 + coherent.imag**2) * np.float32(2.0 / self.window)
        total = np.maximum(total - power[..., 12] - power[..., 13], 0.5 * total)
        r_max = power[..., :4].max(-1)
        c_max = power[..., 4:8].max(-1)
        gate = (np.minimum(r_max, c_max) >= self._gate_floor) & (
            r_max + c_max >= GATE_SHARE * total
        )
        ci, hi = np.nonzero(gate)
        if ci.size == 0:
            return _nothing_gated(ends)
        p = power[ci, hi].astype(np.float64)
        rows, cols = p[:, :4], p[:, 4:8]
        r = rows.argmax(-1)
        c = cols.argmax(-1)
        k = np.arange(len(ci))
        adv = second[ci, hi] * np.conj(first[ci, hi])
        r_hz = np.angle(adv[k, r]) / (2 * np.pi * self._half_seconds)
        c_hz = np.angle(adv[k, 4 + c]) / (2 * np.pi * self._half_seconds)
        return HopFeatures(
            window_end=ends,
            calls=ci,
            hops=hi,
            row=r,
            col=c,
            row_energy=rows[k, r] / self._window_gain(r_hz),
            col_energy=cols[k, c] / self._window_gain(c_hz),
            row_error=r_hz / ROW_HZ[r],
            col_error=c_hz / COL_HZ[c],
            row_runner_up=np.partition(rows, 2, axis=-1)[:, 2],
            col_runner_up=np.partition(cols, 2, axis=-1)[:, 2],
            col_harmonic=p[k, 8 + c],
            total=total[ci, hi],
        )

    def _window_gain(self, offset_hz: np.ndarray) -> np.ndarray:
        """Energy response of the rectangular window to a tone `offset_hz` off the bin."""
        x = np.clip(np.abs(offset_hz), 1e-6, 60.0) / self.rate
        g = np.sin(np.pi * x * self.window) / (self.window * np.sin(np.pi * x))
        return np.maximum(g * g, 0.25)
