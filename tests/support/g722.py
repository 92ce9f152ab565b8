"""G.722 RTP for media tests: packetise 16 kHz PCM, lay a received stream out again.

G.722 runs an 8,000 Hz RTP clock (RFC 3551): a 20 ms packet carries 320 samples
as 160 bytes and advances the timestamp by 160.
"""

from __future__ import annotations

import numpy as np

from masker.media.codecs import G722Decoder, G722Encoder
from masker.wire.rtp import RtpPacket
from tests.support.media import packetise

G722_PT = 9
FRAME_BYTES = 160  # 20 ms


def g722_packets(
    pcm16k: np.ndarray, pt: int = G722_PT, ssrc: int = 0x1234, seq0: int = 100, ts0: int = 5000
) -> list[bytes]:
    """One packet per 20 ms of `pcm16k` (a partial last frame is left out)."""
    payload = G722Encoder().encode(pcm16k[: len(pcm16k) // 320 * 320])
    return packetise(payload, FRAME_BYTES, pt, ssrc, seq0, ts0)


def decode_g722_stream(packets: list[RtpPacket]) -> np.ndarray:
    """16 kHz audio of a G.722 stream laid out by timestamp (gaps: silence), decoded
    in sequence as a receiving phone would."""
    if not packets:
        return np.zeros(0, np.int16)
    t0 = packets[0].timestamp
    pkts = sorted(packets, key=lambda p: (p.timestamp - t0) & 0xFFFFFFFF)
    t0 = pkts[0].timestamp
    end = max(((p.timestamp - t0) & 0xFFFFFFFF) + len(p.payload) for p in pkts)
    out = np.zeros(2 * end, np.int16)
    dec = G722Decoder()
    for p in pkts:
        off = 2 * ((p.timestamp - t0) & 0xFFFFFFFF)
        pcm = dec.decode(p.payload)
        out[off : off + len(pcm)] = pcm
    return out
