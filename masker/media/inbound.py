"""The caller's audio on its way into the masker: a small adaptive playout buffer.

Packets are appended in timestamp order; lost packets become silence, late or
duplicated ones are dropped, a new SSRC or a large timestamp jump resynchronises.
The media tick takes exactly one frame per call, padding with silence when the
buffer runs dry (which grows the delay by that much: the buffer adapts to the
sender's jitter).  The buffer also maps the caller's RTP timestamps to the
masker's input-sample index, which is how an RFC 4733 event finds the audio it
must mask.
"""

from __future__ import annotations

import numpy as np

from masker.rtp import ts_delta

#: Gaps up to this many samples are filled with silence; larger ones resync.
MAX_GAP = 8000
#: Above this many buffered samples the oldest are discarded down to TRIM_TO.
MAX_BUFFER = 1600
TRIM_TO = 480


class InboundAudio:
    """Playout buffer of linear PCM for one caller stream."""

    def __init__(self) -> None:
        self._buf = np.zeros(0, dtype=np.int16)
        self.fed = 0  # masker input index of the next sample take() returns
        self.ssrc: int | None = None
        self._next_ts: int | None = None
        self._offset: int | None = None  # input index - extended timestamp
        self._ext_base = 0  # extension of 32-bit timestamps
        self._last_ts32: int | None = None
        self.lost_samples = 0
        self.late_packets = 0
        self.resyncs = 0
        self.trimmed_samples = 0
        self.underrun_samples = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def _extend(self, ts: int) -> int:
        if self._last_ts32 is None:
            self._last_ts32 = ts
            return ts
        ext = self._ext_base + self._last_ts32 + ts_delta(ts, self._last_ts32)
        if ts_delta(ts, self._last_ts32) > 0:
            self._ext_base = ext - ts
            self._last_ts32 = ts
        return ext

    def push(self, ssrc: int, ts: int, pcm: np.ndarray) -> bool:
        """Add one packet's samples; False when the packet was dropped as late."""
        if ssrc != self.ssrc or self._next_ts is None:
            if self.ssrc is not None:
                self.resyncs += 1
            self.ssrc = ssrc
            self._last_ts32 = None
            self._ext_base = 0
            self._next_ts = None
        ext = self._extend(ts)
        if self._next_ts is not None:
            gap = ext - self._next_ts
            if gap < 0:
                if gap > -MAX_GAP:
                    self.late_packets += 1
                    return False
                gap = MAX_GAP + 1  # far in the past: sender restarted its clock
            if gap > MAX_GAP:
                self.resyncs += 1
                self._last_ts32 = ts
                self._ext_base = 0
                ext = ts
            elif gap > 0:
                self.lost_samples += gap
                pcm = np.concatenate([np.zeros(gap, dtype=np.int16), pcm])
                ext -= gap
        self._offset = self.fed + len(self._buf) - ext
        self._next_ts = ext + len(pcm)
        self._buf = np.concatenate([self._buf, pcm.astype(np.int16, copy=False)])
        if len(self._buf) > MAX_BUFFER:
            cut = len(self._buf) - TRIM_TO
            self._buf = self._buf[cut:]
            self.trimmed_samples += cut
            self._offset -= cut
        return True

    def take(self, n: int) -> np.ndarray:
        """Exactly n samples for the masker, silence-padded on underrun."""
        out = self._buf[:n]
        self._buf = self._buf[n:]
        if len(out) < n:
            self.underrun_samples += n - len(out)
            out = np.concatenate([out, np.zeros(n - len(out), dtype=np.int16)])
        self.fed += n
        return out

    def skip(self, n: int) -> None:
        """The masker consumed n samples of a stream with nothing to play (idle)."""
        self.fed += n

    def index_of(self, ts: int) -> int:
        """Masker input index of the sample with RTP timestamp ts (same SSRC clock)."""
        if self._offset is None or self._last_ts32 is None:
            return self.fed + len(self._buf)
        ext = self._ext_base + self._last_ts32 + ts_delta(ts, self._last_ts32)
        return ext + self._offset

    def reset_clock(self) -> None:
        """Forget timestamps (after idle): the next packet starts a fresh mapping."""
        self._next_ts = None
        self.ssrc = None
