"""Independent DTMF receivers: Debian's spandsp and multimon-ng.

They are the second opinion on our own detector.  Tests use them to prove that
no keypad digit can be recovered from masked audio, and `masker probe` uses them
on live audio.  Neither shares any code with dsp/, so a bug in our detector does
not hide itself.  The returned strings hold keyed digits: callers must never log
them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import shutil
import subprocess
from functools import lru_cache

import numpy as np

from dsp.keypad import to_int16
from masker.errors import UserError

#: spandsp's receiver runs at 8 kHz; multimon-ng's DTMF demodulator at 22,050 Hz.
SPANDSP_RATE = 8000
MULTIMON_RATE = 22050

#: spandsp keeps at most 128 digits (MAX_DTMF_DIGITS) until they are fetched, and
#: a keypad sends at most ~12 a second, so fetching once a second never overflows.
_SPANDSP_CHUNK = SPANDSP_RATE
_SPANDSP_DIGIT_BUFFER = 128

#: Trailing silence so that both receivers see the end of a tone at the very end.
_TAIL_MS = 100

_MULTIMON_LINE = re.compile(r"^DTMF:\s*([0-9A-D*#])\s*$", re.MULTILINE)


class ReceiverUnavailable(UserError):
    """The independent receiver (library or program) is not installed."""


@lru_cache(maxsize=1)
def _spandsp() -> ctypes.CDLL:
    name = ctypes.util.find_library("spandsp")
    if name is None:
        raise ReceiverUnavailable(
            "spandsp library not found (install Debian package libspandsp2 / libspandsp-dev)"
        )
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise ReceiverUnavailable(f"cannot load spandsp library {name}: {exc}") from None
    lib.dtmf_rx_init.restype = ctypes.c_void_p
    lib.dtmf_rx_init.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.dtmf_rx.restype = ctypes.c_int
    lib.dtmf_rx.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.dtmf_rx_get.restype = ctypes.c_size_t
    lib.dtmf_rx_get.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.dtmf_rx_free.restype = ctypes.c_int
    lib.dtmf_rx_free.argtypes = [ctypes.c_void_p]
    return lib


def _to_rate(pcm16: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Mono int16 at `target` Hz, with a short silent tail appended."""
    x = np.asarray(pcm16)
    if x.ndim != 1:
        raise ValueError("receivers take one channel (1-D samples)")
    if rate <= 0:
        raise ValueError("sample rate must be positive")
    if rate == target and x.dtype == np.int16:
        # Nothing to resample: the int16 samples as they are (the float64 round
        # trip below gives the same values and was most of spandsp_digits' time).
        return np.concatenate([x, np.zeros(rate * _TAIL_MS // 1000, np.int16)])
    tail = np.zeros(rate * _TAIL_MS // 1000, dtype=np.float64)
    x = np.concatenate([x.astype(np.float64), tail])
    if rate != target:
        from scipy.signal import resample_poly  # slow import; only when resampling

        g = np.gcd(rate, target)
        x = resample_poly(x, target // g, rate // g)
    return to_int16(x)


def spandsp_digits(pcm16: np.ndarray, rate: int = 8000) -> str:
    """Digits spandsp's dtmf_rx (default Q.24 settings) hears in `pcm16`."""
    lib = _spandsp()
    samples = np.ascontiguousarray(_to_rate(pcm16, rate, SPANDSP_RATE))
    state = lib.dtmf_rx_init(None, None, None)
    if not state:
        raise ReceiverUnavailable("spandsp dtmf_rx_init failed")
    found: list[bytes] = []
    buf = ctypes.create_string_buffer(_SPANDSP_DIGIT_BUFFER + 1)
    try:
        for start in range(0, len(samples), _SPANDSP_CHUNK):
            chunk = samples[start : start + _SPANDSP_CHUNK]
            lib.dtmf_rx(state, chunk.ctypes.data, len(chunk))
            n = lib.dtmf_rx_get(state, buf, _SPANDSP_DIGIT_BUFFER)
            found.append(buf.raw[:n])
    finally:
        lib.dtmf_rx_free(state)
    return b"".join(found).decode("ascii")


def _multimon_path() -> str:
    path = shutil.which("multimon-ng")
    if path is None:
        raise ReceiverUnavailable("multimon-ng not found (install Debian package multimon-ng)")
    return path


def multimon_digits(pcm16: np.ndarray, rate: int = 8000) -> str:
    """Digits multimon-ng's DTMF demodulator hears in `pcm16`.

    multimon-ng reads raw input as mono, signed 16-bit, native-endian samples at
    its demodulator's rate (22,050 Hz), so the audio is resampled first.
    """
    exe = _multimon_path()
    raw = _to_rate(pcm16, rate, MULTIMON_RATE).astype(np.dtype("=i2")).tobytes()
    try:
        proc = subprocess.run(
            [exe, "-q", "-c", "-a", "DTMF", "-t", "raw", "-"],
            input=raw,
            capture_output=True,
            timeout=max(30.0, len(raw) / MULTIMON_RATE / 2 / 10),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReceiverUnavailable(f"multimon-ng failed to run: {type(exc).__name__}") from None
    if proc.returncode != 0:
        raise ReceiverUnavailable(f"multimon-ng exited with status {proc.returncode}")
    return "".join(_MULTIMON_LINE.findall(proc.stdout.decode("ascii", "replace")))
