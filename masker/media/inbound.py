"""The caller's audio on its way into the masker: a small adaptive playout buffer.

It holds samples of any one dtype: the media engine keeps G.711 codes (uint8, so
that the tick decodes every call's frame in one numpy call; `silence` is then the
law's silence code) or, for a G.722 caller, 16 kHz PCM two samples to an int32
cell (one cell per RTP clock sample); tests and tools may keep linear PCM.

Packets are appended in timestamp order; lost packets become silence, late or
duplicated ones are dropped, a new SSRC or a large timestamp jump resynchronises.
The media tick takes exactly one frame per call, concealing an underrun with
the previous frame (which grows the delay by that much; media.playout sheds the
excess again).  Whether the underrun was jitter shows only later: the packet that
continues the stream in order after a concealment came `late_by` that much, and
grows the cushion; one after a gap (a lost packet) or after idle (a pause in the
stream: silence suppression, hold, the end of the call) does not.  The buffer also
maps the caller's RTP timestamps to the masker's input-sample index, which is how
an RFC 4733 event finds the audio it must mask.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from masker.wire.rtp import ts_delta

#: Gaps up to this many samples are filled with silence; larger ones resync.
MAX_GAP = 8000
#: Above this many buffered samples the oldest are discarded down to TRIM_TO.  A
#: second and a bit: the media engine catches up to a second of missed ticks after a
#: stall (its backlog must survive) and sheds smaller excess itself, in quiet audio.
MAX_BUFFER = 8000 + 480
TRIM_TO = 480


class InboundAudio:
    """Playout buffer of linear PCM for one caller stream."""

    __slots__ = (
        "silence",
        "dtype",
        "_chunks",
        "_count",
        "fed",
        "ssrc",
        "_next_ts",
        "_offset",
        "_ext_base",
        "_last_ts32",
        "_expect32",
        "lost_samples",
        "late_packets",
        "resyncs",
        "trimmed_samples",
        "underrun_samples",
        "_concealed",
        "late_by",
    )

    def __init__(self, silence: int = 0, dtype: type = np.int16) -> None:
        self.silence = silence
        self.dtype = dtype
        self._chunks: deque[np.ndarray] = deque()
        self._count = 0
        self.fed = 0  # masker input index of the next sample take() returns
        self.ssrc: int | None = None
        self._next_ts: int | None = None
        self._offset: int | None = None  # input index - extended timestamp
        self._ext_base = 0  # extension of 32-bit timestamps
        self._last_ts32: int | None = None
        self._expect32 = -1  # 32-bit timestamp of the packet that would follow in order
        self.lost_samples = 0
        self.late_packets = 0
        self.resyncs = 0
        self.trimmed_samples = 0
        self.underrun_samples = 0
        self._concealed = 0  # samples take() padded since the last stored packet
        #: samples of concealment the last stored packet came too late for: it
        #: continued the stream in order after them (0: it was on time, or after a gap)
        self.late_by = 0

    @property
    def buffered(self) -> int:
        return self._count

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
        if ts == self._expect32 and ssrc == self.ssrc and self._next_ts is not None:
            ext = self._next_ts  # the usual packet: the next one, in order, same stream
            self._last_ts32 = ts
            self._ext_base = ext - ts
            self.late_by = self._concealed
            return self._store(ts, ext, 0, pcm)
        self.late_by = 0
        if ssrc != self.ssrc or self._next_ts is None:
            if self.ssrc is not None:
                self.resyncs += 1
            self.ssrc = ssrc
            self._last_ts32 = None
            self._ext_base = 0
            self._next_ts = None
        ext = self._extend(ts)
        fill = 0
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
                fill = gap
        return self._store(ts, ext, fill, pcm)

    def _store(self, ts: int, ext: int, fill: int, pcm: np.ndarray) -> bool:
        """Append a packet (after `fill` samples of silence for lost ones) at extended
        timestamp `ext`; keeps the timestamp -> input index mapping."""
        # input index of this packet's first sample minus its (extended) timestamp
        self._offset = self.fed + self._count + fill - ext
        self._concealed = 0
        if fill:
            self._append(np.full(fill, self.silence, dtype=self.dtype))
        self._append(pcm.astype(self.dtype, copy=False))
        self._next_ts = ext + len(pcm)
        self._expect32 = (ts + len(pcm)) & 0xFFFFFFFF
        if self._count > MAX_BUFFER:
            cut = self._count - TRIM_TO
            self._drop(cut)
            self.trimmed_samples += cut
            self._offset -= cut
        return True

    def _append(self, pcm: np.ndarray) -> None:
        self._chunks.append(pcm)
        self._count += len(pcm)

    def _drop(self, n: int) -> None:
        while n > 0:
            head = self._chunks[0]
            if len(head) <= n:
                self._chunks.popleft()
                n -= len(head)
                self._count -= len(head)
            else:
                self._chunks[0] = head[n:]
                self._count -= n
                n = 0

    def take(self, n: int, conceal: np.ndarray | None = None) -> np.ndarray:
        """Exactly n samples for the masker.  On underrun the rest is the tail of
        `conceal` (the previous frame: a late packet must not cut a silence gap into
        a keypad tone, which would split one press into two) or silence."""
        chunks = self._chunks
        self.fed += n
        if chunks and len(chunks[0]) == n:
            self._count -= n
            return chunks.popleft()
        out: np.ndarray = np.full(n, self.silence, dtype=self.dtype)
        pos = 0
        while pos < n and chunks:
            head = chunks[0]
            k = min(n - pos, len(head))
            out[pos : pos + k] = head[:k]
            pos += k
            if k == len(head):
                chunks.popleft()
            else:
                chunks[0] = head[k:]
        self._count -= pos
        if pos < n:
            self.underrun_samples += n - pos
            self._concealed += n - pos
            if conceal is not None and len(conceal) >= n - pos:
                out[pos:] = conceal[len(conceal) - (n - pos) :]
            if self._offset is not None:  # the buffered audio moved on by the padding
                self._offset += n - pos
        return out

    def drop_quiet(self, n: int, quiet_mean_abs: float, decode: np.ndarray | None = None) -> int:
        """Discard up to n samples from the head when they are quiet (mean |x| below
        the level: no keypad tone), to shed delay; returns how many were dropped.
        `decode` maps stored codes to linear samples.  Later audio's input indices
        shift down by that much (the mapping follows)."""
        n = min(n, self._count)
        if n <= 0:
            return 0
        head = self._chunks[0]
        if len(head) < n:
            head = np.concatenate(list(self._chunks))
        head = head[:n] if decode is None else decode.take(head[:n])
        if head.dtype == np.int32:  # a wideband buffer: two 16 kHz samples per cell
            head = head.view(np.int16)
        if np.abs(head.astype(np.int32)).mean() >= quiet_mean_abs:
            return 0
        self._drop(n)
        self.trimmed_samples += n
        if self._offset is not None:
            self._offset -= n
        return n

    def skip(self, n: int) -> None:
        """The masker consumed n samples of a stream with nothing to play (idle)."""
        self.fed += n

    def index_of(self, ts: int) -> int:
        """Masker input index of the sample with RTP timestamp ts (same SSRC clock).

        Without a current mapping (no audio yet, or the stream paused), or when the
        timestamp is implausibly far from now, the answer is "now": the end of the
        buffer, which is where the sender's next audio will go.
        """
        now = self.fed + self._count
        if self._offset is None or self._last_ts32 is None:
            return now
        ext = self._ext_base + self._last_ts32 + ts_delta(ts, self._last_ts32)
        index = ext + self._offset
        return index if abs(index - now) <= MAX_GAP else now

    def reset_clock(self) -> None:
        """Forget timestamps (after idle): the next packet starts a fresh mapping."""
        self._next_ts = None
        self._expect32 = -1
        self.ssrc = None
        self._offset = None
        self._last_ts32 = None
        self._ext_base = 0
        self._concealed = 0
