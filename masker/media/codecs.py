"""The audio codecs of the media plane beyond the G.711 tables: G.722 and the 2:1
resampling between its 16 kHz audio and G.711's 8 kHz.

Every codec the masker anchors runs an 8,000 Hz RTP clock (G.722 too: RFC 3551
keeps its clock at 8,000 though it samples at 16,000), so a call's playout buffer,
RTP timestamps, RFC 4733 spans and digit spans all count clock samples; a G.722
call's buffer holds two 16 kHz samples per clock sample (one int32 cell, see
`pair_cells`).  Only the masker itself and the codec edges see 16 kHz samples.

G.722 is the `G722` package (sippy's libg722, the ITU-T bit-exact coder); one
encoder or decoder per stream, since ADPCM state follows the stream.  The
resampler is a linear-phase FIR (scipy) run with per-stream filter state, many
streams in one `lfilter` call.
"""

from __future__ import annotations

from typing import Final

import G722
import numpy as np
from scipy import signal

#: The RTP clock of every codec here (RFC 3551), samples a second.
CLOCK: Final = 8000
#: Audio samples a second per codec name (as the SDP names it).
AUDIO_RATE: Final[dict[str, int]] = {"PCMU": 8000, "PCMA": 8000, "G722": 16000}
#: G.722 at 64 kbit/s: one byte per clock sample (two 16 kHz samples).
G722_BITRATE: Final = 64000

#: Taps of the 2:1 low-pass (odd: linear phase with a whole-sample delay).
TAPS: Final = 33
#: What the resampler delays audio by, in clock samples (1 ms): (TAPS - 1) / 2 samples at 16 kHz.
RESAMPLE_DELAY: Final = (TAPS - 1) // 4
_LOWPASS = signal.firwin(TAPS, 3600, fs=16000)
#: What a G.722 encoder and decoder delay audio by together (their QMF filters), in
#: clock samples: 22 samples at 16 kHz.
G722_DELAY: Final = 11


def is_wideband(codec: str) -> bool:
    return AUDIO_RATE.get(codec, CLOCK) != CLOCK


def pair_cells(pcm16k: np.ndarray) -> np.ndarray:
    """16 kHz int16 samples as clock-rate cells (int32, two samples each), the form
    a wideband call's playout buffer holds; `.view(np.int16)` undoes it."""
    return np.ascontiguousarray(pcm16k, dtype=np.int16).view(np.int32)


class G722Decoder:
    """One stream's G.722 decoder: payload bytes -> 16 kHz int16 samples."""

    __slots__ = ("_codec",)

    def __init__(self) -> None:
        self._codec = G722.G722(16000, G722_BITRATE)

    def decode(self, payload: bytes) -> np.ndarray:
        return np.frombuffer(self._codec.decode(payload), dtype=np.int16)


class G722Encoder:
    """One stream's G.722 encoder: 16 kHz int16 samples -> payload bytes."""

    __slots__ = ("_codec",)

    def __init__(self) -> None:
        self._codec = G722.G722(16000, G722_BITRATE)

    def encode(self, pcm16k: np.ndarray) -> bytes:
        return bytes(self._codec.encode(np.ascontiguousarray(pcm16k, dtype=np.int16)))


def new_state(rows: int = 1) -> np.ndarray:
    """Filter state of `rows` streams (silence so far)."""
    return np.zeros((rows, TAPS - 1))


def downsample(pcm16k: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """16 kHz -> 8 kHz of (streams x samples) int16 with each stream's filter state:
    (8 kHz int16, the new state).  Delays by RESAMPLE_DELAY clock samples."""
    y, state = signal.lfilter(_LOWPASS, 1.0, pcm16k.astype(np.float64), axis=-1, zi=state)
    return _to_int16(y[..., ::2]), state


def upsample(pcm8k: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8 kHz -> 16 kHz of (streams x samples) int16 with each stream's filter state:
    (16 kHz int16, the new state).  Delays by RESAMPLE_DELAY clock samples."""
    stuffed = np.zeros(pcm8k.shape[:-1] + (2 * pcm8k.shape[-1],))
    stuffed[..., ::2] = 2.0 * pcm8k
    y, state = signal.lfilter(_LOWPASS, 1.0, stuffed, axis=-1, zi=state)
    return _to_int16(y), state


def _to_int16(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
    return out
