"""A deliberately loose keypad receiver: the adversary the masker is tested against.

Not the production detector and sharing no code with it: plain Goertzel (DFT)
filters at the eight keypad frequencies over short blocks, the strongest row and
the strongest column of each block taken as a key as soon as both are above a
low level.  No twist, purity, group-dominance or duration checks, so it "hears"
keys in most voiced speech too; what matters is whether it hears a *keyed* tone:

    a key is recoverable from masked audio if, in some block lying mostly inside
    the key's tone, the receiver reports that key on the masked audio but not on
    the same audio with the key's unmasked remainder taken out (the reference:
    the masked audio inside masked spans, the key-free bed elsewhere).

So talk that happens to look like the key does not count, and any unmasked part
of the tone that tips the receiver towards the key does.  Inside band-stopped
spans (`dsp.bandstop`) the reference is the key-free bed put through the same
band-stop, so whatever is left of the key there counts too.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ROW_HZ = (697.0, 770.0, 852.0, 941.0)
COL_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = "123A456B789C*0#D"
#: Block lengths (ms): classic receivers' 102-106 samples at 8 kHz, and 20 ms.
BLOCKS_MS = (13.25, 20.0)
#: Per-tone floor, below the -25 dBm0 keys go down to and below any detector's.
LEVEL_DBM0 = -43.0
DBM0_PEAK = 22773.0


def block_keys(pcm: np.ndarray, rate: int, block_ms: float, hop_div: int = 4):
    """(key index per block or -1, block starts, block length) at a hop of block/hop_div."""
    n = int(round(block_ms * rate / 1000))
    hop = max(1, n // hop_div)
    x = np.asarray(pcm, np.float64)
    if len(x) < n:
        return np.zeros(0, int), np.zeros(0, int), n
    blocks = sliding_window_view(x, n)[::hop]
    freqs = np.array(ROW_HZ + COL_HZ)
    t = np.arange(n) / rate
    basis = np.exp(-2j * np.pi * freqs[:, None] * t[None, :])
    amp = 2.0 * np.abs(blocks @ basis.T) / n  # (blocks, 8) peak amplitude per tone
    row, col = amp[:, :4].argmax(axis=1), amp[:, 4:].argmax(axis=1)
    floor = DBM0_PEAK * 10 ** (LEVEL_DBM0 / 20)
    ok = (amp[:, :4].max(axis=1) >= floor) & (amp[:, 4:].max(axis=1) >= floor)
    return np.where(ok, row * 4 + col, -1), np.arange(len(blocks)) * hop, n


def recoverable_keys(out: np.ndarray, ref: np.ndarray, tones, rate: int) -> list[int]:
    """Indices of the tones ((key, start, end) with key a character) the loose receiver
    recovers from `out` that it does not hear in `ref`."""
    found = set()
    for block_ms in BLOCKS_MS:
        k_out, starts, n = block_keys(out, rate, block_ms)
        k_ref, _, _ = block_keys(ref, rate, block_ms)
        tipped = (k_out >= 0) & (k_out != k_ref)
        for i, (key, a, b) in enumerate(tones):
            inside = np.minimum(starts + n, b) - np.maximum(starts, a)
            mostly = inside >= n / 2
            if np.any(mostly & tipped & (k_out == KEYS.index(key))):
                found.add(i)
    return sorted(found)
