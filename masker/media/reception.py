"""The caller's stream as we receive it: the figures of an RTCP reception report.

We terminate the caller's RTP (the agent hears our re-originated, masked stream),
so the caller's only receiver is us; RFC 3550 expects a receiver to report loss,
jitter and the round trip of the sender's reports.  Sequence accounting follows
RFC 3550 A.1/A.3 (without the probation of new sources: a new SSRC restarts the
count), jitter A.8, and LSR/DLSR 6.4.1.
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass, field

_BLOCK = struct.Struct("!IB3sIIII")
_RTP_MOD = 1 << 32
_SEQ_MOD = 1 << 16


@dataclass(slots=True)
class ReceptionStats:
    """Counts for one received stream; `packet()` is called for every RTP packet."""

    clock_rate: int = 8000
    #: our own SSRC and CNAME as a receiver-only participant towards the caller
    ssrc: int = field(default_factory=lambda: secrets.randbits(32))
    cname: str = field(default_factory=lambda: secrets.token_hex(8))
    source: int | None = None  # the SSRC we report on
    base_seq: int = 0
    max_seq: int = 0
    cycles: int = 0
    received: int = 0
    expected_prior: int = 0
    received_prior: int = 0
    transit: int | None = None
    jitter: float = 0.0
    lsr: int = 0  # middle 32 bits of the NTP time of the last sender report
    lsr_at: float = 0.0  # when that report arrived (monotonic seconds)
    lsr_ssrc: int | None = None  # whose report it was (it may come before the RTP)

    def packet(self, ssrc: int, seq: int, ts: int, arrival: float) -> None:
        """Account one RTP packet that arrived at `arrival` (monotonic seconds)."""
        if ssrc != self.source:
            self.source, self.base_seq, self.max_seq, self.cycles = ssrc, seq, seq, 0
            self.received = self.expected_prior = self.received_prior = 0
            self.transit, self.jitter = None, 0.0
        elif (seq - self.max_seq) % _SEQ_MOD < 0x8000:  # in order, or a jump forward
            if seq < self.max_seq:
                self.cycles += _SEQ_MOD
            self.max_seq = seq
        self.received += 1
        transit = (int(arrival * self.clock_rate) - ts) % _RTP_MOD
        if self.transit is not None:
            d = (transit - self.transit) % _RTP_MOD
            if d >= _RTP_MOD // 2:
                d -= _RTP_MOD
            self.jitter += (abs(d) - self.jitter) / 16
        self.transit = transit

    def sender_report(self, ssrc: int, ntp_middle: int, arrival: float) -> None:
        """`ssrc` sent an SR whose NTP timestamp's middle 32 bits are `ntp_middle`."""
        self.lsr, self.lsr_at, self.lsr_ssrc = ntp_middle & 0xFFFFFFFF, arrival, ssrc

    def report_block(self, now: float) -> bytes:
        """A 24-octet reception report block; starts the next reporting interval."""
        extended = self.cycles + self.max_seq
        expected = extended - self.base_seq + 1
        lost = max(-(1 << 23), min(expected - self.received, (1 << 23) - 1))
        expected_interval = expected - self.expected_prior
        lost_interval = expected_interval - (self.received - self.received_prior)
        self.expected_prior, self.received_prior = expected, self.received
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        lsr = self.lsr if self.lsr_ssrc == self.source else 0
        dlsr = int((now - self.lsr_at) * 65536) & 0xFFFFFFFF if lsr else 0
        return _BLOCK.pack(
            self.source or 0,
            fraction,
            (lost % (1 << 24)).to_bytes(3, "big"),
            extended % _RTP_MOD,
            int(self.jitter),
            lsr,
            dlsr,
        )


def sender_report_stamp(data: bytes) -> tuple[int, int] | None:
    """(sender SSRC, middle 32 bits of the NTP timestamp) of a compound RTCP packet
    that starts with a sender report (RFC 3550 6.4.1), or None."""
    if len(data) < 28 or data[0] >> 6 != 2 or data[1] != 200:
        return None
    ssrc, _, middle = struct.unpack_from("!IHI", data, 4)
    return ssrc, middle
