"""Independent check of every output: can any keypad digit still be recovered?

The receiver is Debian's spandsp `dtmf_rx` (no code shared with dsp/), loaded
through `masker.offline.receivers`, fed straight from int16 blocks so that a check
costs a few per cent of the scrub.  Audio at another rate is brought to 8 kHz
first.  `--multimon` adds multimon-ng (`masker.offline.receivers.multimon_digits`),
which is slower.  Only counts leave this module, never digits.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from masker.offline import receivers

_CHUNK = 8000
_TAIL = np.zeros(800, np.int16)


def spandsp_count(pcm16: np.ndarray, rate: int = 8000) -> int:
    """How many digits spandsp's dtmf_rx hears in one channel."""
    from masker.scrub.audio import resample

    lib = receivers._spandsp()
    x = resample(pcm16, rate, 8000) if rate != 8000 else np.asarray(pcm16, np.int16)
    x = np.ascontiguousarray(np.concatenate([x, _TAIL]))
    state = lib.dtmf_rx_init(None, None, None)
    if not state:
        raise receivers.ReceiverUnavailable("spandsp dtmf_rx_init failed")
    buf = ctypes.create_string_buffer(129)
    found = 0
    try:
        for s in range(0, len(x), _CHUNK):
            chunk = x[s : s + _CHUNK]
            lib.dtmf_rx(state, chunk.ctypes.data, len(chunk))
            found += int(lib.dtmf_rx_get(state, buf, 128))
    finally:
        lib.dtmf_rx_free(state)
    return found


def multimon_count(pcm16: np.ndarray, rate: int = 8000) -> int:
    return len(receivers.multimon_digits(np.asarray(pcm16, np.int16), rate))


def audio_file_digits(path: str, multimon: bool = False) -> dict[str, Any]:
    """Read an output back with soundfile (not our reader) and count recoverable digits."""
    import soundfile as sf

    data, rate = sf.read(path, dtype="int16", always_2d=True)
    counts = {"spandsp": sum(spandsp_count(data[:, c], rate) for c in range(data.shape[1]))}
    if multimon:
        counts["multimon"] = sum(multimon_count(data[:, c], rate) for c in range(data.shape[1]))
    return counts
