"""RFC 3550 RTP packets: strict parse and build; the one place RTP headers are read.

The media plane forwards what it cannot understand nowhere: a datagram that
fails `parse_rtp` is dropped and counted, so a malformed packet never reaches
the masker or the agent.  Parsing is a pure function over bytes.  The receive
path uses `parse_rtp_fast` (the same checks, a plain tuple and no object per
packet for the usual header); `is_rtp` and `rtp_fixed_header` look at the fixed
header only (relaying, source latching).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
HEADER_LEN = 12
_HEADER = struct.Struct("!BBHII")
_AFTER_B0 = struct.Struct("!xBHII")  # marker/payload type, sequence, timestamp, SSRC
#: The first octet of the usual packet: version 2, no padding, extension or CSRC.
_PLAIN_B0 = RTP_VERSION << 6


class RtpError(ValueError):
    """A datagram that is not a valid RTP packet (the reason is safe to log)."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet; `payload` excludes header, CSRCs, extension and padding."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None

    def __repr__(self) -> str:  # payload may carry audio of key presses: keep it out
        return (
            f"RtpPacket(pt={self.payload_type}, seq={self.sequence}, ts={self.timestamp}, "
            f"ssrc={self.ssrc:#010x}, len={len(self.payload)}, marker={self.marker})"
        )


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one datagram; raise RtpError when it is not valid RTP version 2."""
    n = len(data)
    if n < HEADER_LEN:
        raise RtpError("short packet")
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != RTP_VERSION:
        raise RtpError("wrong version")
    padding = bool(b0 & 0x20)
    has_ext = bool(b0 & 0x10)
    cc = b0 & 0x0F
    pt = b1 & 0x7F
    if 72 <= pt <= 76:
        raise RtpError("RTCP packet on RTP port")
    pos = HEADER_LEN + 4 * cc
    if pos > n:
        raise RtpError("truncated CSRC list")
    csrcs = struct.unpack_from(f"!{cc}I", data, HEADER_LEN) if cc else ()
    extension = None
    if has_ext:
        if pos + 4 > n:
            raise RtpError("truncated extension header")
        profile, words = struct.unpack_from("!HH", data, pos)
        end = pos + 4 + 4 * words
        if end > n:
            raise RtpError("truncated extension")
        extension = (profile, bytes(data[pos + 4 : end]))
        pos = end
    end = n
    if padding:
        pad = data[-1]
        if pad == 0 or pos + pad > n:
            raise RtpError("bad padding")
        end = n - pad
    return RtpPacket(
        payload_type=pt,
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=bytes(data[pos:end]),
        marker=bool(b1 & 0x80),
        csrcs=tuple(csrcs),
        extension=extension,
    )


def parse_rtp_fast(data: bytes) -> tuple[int, int, int, int, bytes]:
    """`parse_rtp` for the hot path: (payload type, sequence, timestamp, SSRC, payload)
    as one tuple; raises RtpError as parse_rtp does.  The usual packet (no padding,
    extension or CSRC) is read in one unpack; any other goes through parse_rtp.
    Unlike parse_rtp, the usual packet's payload type is returned even when it is
    72-76 (RTCP's packet types on the RTP port): that check is the caller's."""
    if len(data) >= HEADER_LEN and data[0] == _PLAIN_B0:
        b1, seq, ts, ssrc = _AFTER_B0.unpack_from(data)
        return b1 & 0x7F, seq, ts, ssrc, data[HEADER_LEN:]
    pkt = parse_rtp(data)
    return pkt.payload_type, pkt.sequence, pkt.timestamp, pkt.ssrc, pkt.payload


def is_rtp(data: bytes) -> bool:
    """True when a datagram has a fixed RTP header of version 2 (nothing else checked)."""
    return len(data) >= HEADER_LEN and data[0] >> 6 == RTP_VERSION


def rtp_fixed_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(payload type, sequence, timestamp, SSRC) of a version-2 fixed header, or None;
    the rest of the packet is not looked at."""
    if not is_rtp(data):
        return None
    b1, seq, ts, ssrc = _AFTER_B0.unpack_from(data)
    return b1 & 0x7F, seq, ts, ssrc


def build_rtp(packet: RtpPacket) -> bytes:
    """Serialise a packet (no padding); the inverse of parse_rtp."""
    if len(packet.csrcs) > 15:
        raise RtpError("too many CSRCs")
    b0 = (RTP_VERSION << 6) | len(packet.csrcs)
    ext = b""
    if packet.extension is not None:
        profile, body = packet.extension
        if len(body) % 4:
            raise RtpError("extension length must be a multiple of 4")
        b0 |= 0x10
        ext = struct.pack("!HH", profile, len(body) // 4) + body
    b1 = (0x80 if packet.marker else 0) | (packet.payload_type & 0x7F)
    head = _HEADER.pack(
        b0, b1, packet.sequence & 0xFFFF, packet.timestamp & 0xFFFFFFFF, packet.ssrc & 0xFFFFFFFF
    )
    csrc = struct.pack(f"!{len(packet.csrcs)}I", *packet.csrcs) if packet.csrcs else b""
    return head + csrc + ext + packet.payload


def build_rtp_fast(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool) -> bytes:
    """Hot-path builder for the masked stream: no CSRC, no extension."""
    b1 = (0x80 if marker else 0) | pt
    return _HEADER.pack(0x80, b1, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def seq_delta(new: int, old: int) -> int:
    """Signed distance between two 16-bit sequence numbers (new - old)."""
    d = (new - old) & 0xFFFF
    return d - 0x10000 if d >= 0x8000 else d


def ts_delta(new: int, old: int) -> int:
    """Signed distance between two 32-bit RTP timestamps (new - old)."""
    d = (new - old) & 0xFFFFFFFF
    return d - 0x100000000 if d >= 0x80000000 else d


def is_rtcp(data: bytes) -> bool:
    """True when a datagram looks like RTCP (version 2, packet type 200-204)."""
    return len(data) >= 8 and data[0] >> 6 == RTP_VERSION and 200 <= data[1] <= 204


def build_rtcp_sdes_cname(ssrc: int, cname: str) -> bytes:
    """An SDES packet with one chunk: the source's CNAME (RFC 3550 6.5).  Every
    compound RTCP packet must carry one (6.1)."""
    text = cname.encode("ascii")[:255]
    chunk = struct.pack("!IBB", ssrc & 0xFFFFFFFF, 1, len(text)) + text + b"\0"
    chunk += b"\0" * (-len(chunk) % 4)  # the item list ends with null octets to a word
    return struct.pack("!BBH", 0x81, 202, len(chunk) // 4) + chunk


def build_rtcp_rr(ssrc: int, blocks: list[bytes]) -> bytes:
    """A receiver report from `ssrc` carrying 24-octet report blocks (RFC 3550 6.4.2)."""
    body = struct.pack("!I", ssrc & 0xFFFFFFFF) + b"".join(blocks)
    return struct.pack("!BBH", 0x80 | len(blocks), 201, len(body) // 4) + body


def build_rtcp_sr(ssrc: int, ntp: float, rtp_ts: int, packets: int, octets: int) -> bytes:
    """An RTCP sender report without report blocks (RFC 3550 6.4.1)."""
    secs = int(ntp) + 2208988800
    frac = int((ntp % 1.0) * (1 << 32)) & 0xFFFFFFFF
    return struct.pack(
        "!BBHIIIIII",
        0x80,
        200,
        6,
        ssrc,
        secs & 0xFFFFFFFF,
        frac,
        rtp_ts & 0xFFFFFFFF,
        packets & 0xFFFFFFFF,
        octets & 0xFFFFFFFF,
    )
