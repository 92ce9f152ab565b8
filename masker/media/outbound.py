"""The masked stream towards the agent: our own SSRC, continuous sequence
numbers, timestamps in step with the audio (RFC 3550 5.1), one packet per
`frame` samples.  After a pause, or when the tick that sends it moves later, the
timestamp jumps by the time passed and the marker bit is set, as a talkspurt start."""

from __future__ import annotations

import secrets

import numpy as np

from masker.wire.rtp import build_rtp_fast


class OutboundStream:
    """Packetiser for one call's agent-side stream."""

    __slots__ = (
        "ssrc",
        "cname",
        "seq",
        "ts",
        "payload_type",
        "frame",
        "_pending",
        "_marker",
        "packets",
        "octets",
    )

    def __init__(self, payload_type: int, frame: int = 160) -> None:
        self.ssrc = secrets.randbits(32)
        self.cname = secrets.token_hex(8)  # random per stream (RFC 7022): no host names leak
        self.seq = secrets.randbits(16)
        self.ts = secrets.randbits(32)
        self.payload_type = payload_type
        self.frame = frame
        self._pending = np.zeros(0, dtype=np.uint8)
        self._marker = True
        self.packets = 0
        self.octets = 0

    def pause(self, samples: int) -> None:
        """The stream stopped; when it resumes its timestamp has moved on by `samples`."""
        self.resync(samples + len(self._pending))
        self._pending = np.zeros(0, dtype=np.uint8)

    def resync(self, samples: int) -> None:
        """The next packet goes out `samples` later on the sampling clock than the
        last one's timestamp says (0: it goes out earlier, or on time after a gap):
        its timestamp jumps by them, and its marker bit tells the agent's jitter
        buffer to set its playout point again, as at a talkspurt (RFC 3551 4.1)."""
        self.ts = (self.ts + samples) & 0xFFFFFFFF
        self._marker = True

    def packet(self, payload: bytes) -> bytes | None:
        """The usual case in one step: exactly one frame of codes in, one packet out
        (None when a partial frame is pending or the frame size differs)."""
        n = self.frame
        if len(self._pending) or len(payload) != n:
            return None
        pkt = build_rtp_fast(self.payload_type, self.seq, self.ts, self.ssrc, payload, self._marker)
        self._marker = False
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + n) & 0xFFFFFFFF
        self.packets += 1
        self.octets += n
        return pkt

    def packets_for(self, codes: np.ndarray) -> list[bytes]:
        """Append encoded samples; return every complete packet."""
        n = self.frame
        if len(self._pending) == 0 and len(codes) == n:  # the usual 20 ms in, 20 ms out
            pkt = build_rtp_fast(
                self.payload_type, self.seq, self.ts, self.ssrc, codes.tobytes(), self._marker
            )
            self._marker = False
            self.seq = (self.seq + 1) & 0xFFFF
            self.ts = (self.ts + n) & 0xFFFFFFFF
            self.packets += 1
            self.octets += n
            return [pkt]
        buf = np.concatenate([self._pending, codes]) if len(self._pending) else codes
        out = []
        pos = 0
        while len(buf) - pos >= n:
            payload = buf[pos : pos + n].tobytes()
            pt, seq, ts = self.payload_type, self.seq, self.ts
            out.append(build_rtp_fast(pt, seq, ts, self.ssrc, payload, self._marker))
            self._marker = False
            self.seq = (self.seq + 1) & 0xFFFF
            self.ts = (self.ts + n) & 0xFFFFFFFF
            pos += n
            self.packets += 1
            self.octets += n
        self._pending = buf[pos:]
        return out
