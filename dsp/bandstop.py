"""Keypad band-stop: the masker's second, cheaper action, for spans that only *may* hold a key.

Under louder talk or music a key can be found too late (or never) for the masking
tone, yet a loose receiver (a plain Goertzel pair at a low level) still hears it.
Replacing every such uncertain span with the tone would cost seconds of speech a
minute; removing only the keypad bands keeps the talk intelligible and leaves no
row or column tone any receiver could take for a key (every receiver needs both).

The stop band covers both groups at once: 697 Hz less 3.5 % to 1633 Hz plus 3.5 %
(the frequency error up to which any receiver may still accept a tone), widened by
`LOBE_HZ` for a short-block receiver's main lobe, at least `DEPTH_DB` deep, so that
a key at 0 dBm0 comes out far below a loose receiver's floor (-43 dBm0) and under
a line's noise (multimon-ng has no level floor: in digital silence it hears a
key's remainder at any depth; a key alone there is confirmed and gets the tone).

The filter is a linear-phase FIR (scipy.signal.firwin, Kaiser window) applied
centred, on samples the masker's look-ahead still holds (`HALF_SECONDS` either
side, the masker's shortest look-ahead).  A causal IIR band-stop this deep rings:
an elliptic design started every band-stopped 0 dBm0 key with 60 ms of ringing
that multimon-ng decoded (9 of 48 keys); the centred FIR leaves only the key's own
switch-on and switch-off clicks (their splatter outside the stop band, which a
plain Goertzel block hears through its sidelobes about 38 dB under the key), and
it has no state, so it is only computed for the calls being band-stopped.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from dsp.keypad import COL_HZ, ROW_HZ

#: Relative frequency error up to which some receiver may still take a tone for a key
#: (ITU-T Q.24 asks receivers to reject beyond 3.5 %).
FREQ_TOLERANCE = 0.035
#: Half width of a short-block receiver's main lobe worth covering as well (Hz).
LOBE_HZ = 50.0
#: Stop band (Hz): every keypad tone within `FREQ_TOLERANCE`, widened by `LOBE_HZ`.
STOP_HZ = (
    ROW_HZ[0] * (1 - FREQ_TOLERANCE) - LOBE_HZ,
    COL_HZ[-1] * (1 + FREQ_TOLERANCE) + LOBE_HZ,
)
DEPTH_DB = 60.0
#: Half length of the band-stop FIR: the masker's shortest look-ahead.
HALF_SECONDS = 0.010
#: Half length of the short FIR band-pass that measures what the keypad bands hold
#: (`band_power`): short, so that a loud key's edges reach only a few ms around it.
GATE_HALF_SECONDS = 0.0015


@lru_cache(maxsize=4)
def keypad_bandstop_fir(rate: int) -> NDArray[np.float64]:
    """Taps (2 x half + 1, symmetric) of the keypad band-stop at `rate` (read-only).

    The Kaiser design's transition width follows from its length and depth; the
    cut-offs sit half a transition outside `STOP_HZ`, so the whole stop band is at
    least `DEPTH_DB` down."""
    half = int(round(HALF_SECONDS * rate))
    width = (DEPTH_DB - 7.95) / (14.36 * 2 * half / rate)  # Kaiser's estimate (Hz)
    lo, hi = STOP_HZ
    taps: NDArray[np.float64] = signal.firwin(
        2 * half + 1,
        [lo - width / 2, hi + width / 2],
        window=("kaiser", signal.kaiser_beta(DEPTH_DB)),
        pass_zero=True,
        fs=rate,
    )
    taps.flags.writeable = False
    return taps


@lru_cache(maxsize=4)
def keypad_band_fir(rate: int) -> NDArray[np.float64]:
    """Taps of the short band-pass over `STOP_HZ` that `band_power` measures with."""
    half = int(round(GATE_HALF_SECONDS * rate))
    taps: NDArray[np.float64] = signal.firwin(2 * half + 1, STOP_HZ, pass_zero=False, fs=rate)
    taps.flags.writeable = False
    return taps


def centred(x: NDArray[np.generic], taps: NDArray[np.float64]) -> NDArray[np.float64]:
    """`x` (1-D, or rows x samples) through the symmetric FIR `taps`: output k is
    centred on sample k + len(taps) // 2 (the samples nearer either end have no
    value).  By FFT: over rows, scipy's direct convolution is 20-50 times slower."""
    x = np.asarray(x, np.float64)
    kernel = taps.reshape((1,) * (x.ndim - 1) + (-1,))
    out: NDArray[np.float64] = signal.convolve(x, kernel, mode="valid", method="fft")
    return out


def bandstopped(x: NDArray[np.generic], rate: int) -> NDArray[np.float64]:
    """`x` (1-D, or rows x samples) band-stopped as the masker does it, zeros taken
    beyond either end; same length as `x`."""
    taps = keypad_bandstop_fir(rate)
    half = len(taps) // 2
    pad = [(0, 0)] * (np.ndim(x) - 1) + [(half, half)]
    return centred(np.pad(np.asarray(x, np.float64), pad), taps)


def band_power(x: NDArray[np.generic], rate: int, half: int) -> NDArray[np.float64]:
    """Mean power of the keypad bands of `x` (rows x samples) over the 2 x `half`
    samples around each sample; output k is sample k + `half` + the band-pass's half
    length (the samples nearer either end have no value)."""
    band = centred(x, keypad_band_fir(rate))
    energy = np.cumsum(band * band, axis=-1)
    power: NDArray[np.float64] = (energy[..., 2 * half :] - energy[..., : -2 * half]) / (2 * half)
    return power
