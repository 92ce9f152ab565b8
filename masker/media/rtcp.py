"""Our RTCP reports (RFC 3550 6.4), every `interval_s` from the tick: a sender report
to the agent for the masked stream we originate, and a receiver report to the
caller on the stream we terminate (loss, jitter, LSR/DLSR from
masker.media.reception); each a compound packet with an SDES CNAME (6.1).  The
RTCP we receive is handled by masker.media.receive.
"""

from __future__ import annotations

import contextlib
import time

from masker.media.call_media import CallMedia
from masker.wire.rtp import build_rtcp_rr, build_rtcp_sdes_cname, build_rtcp_sr

SR_INTERVAL_S = 5.0


class RtcpReports:
    """Sends every call's reports when the interval has passed."""

    def __init__(self, calls: dict[str, CallMedia], interval_s: float = SR_INTERVAL_S) -> None:
        self.calls = calls
        self.interval_s = interval_s
        self._last = 0.0

    def due(self, now: float) -> None:
        if now - self._last >= self.interval_s:
            self._last = now
            self.send(now)

    def send(self, now: float) -> None:
        """Our sender reports to the agent and receiver reports to the caller."""
        wall = time.time()
        for call in self.calls.values():
            self._report_to_caller(call, now)
            out = call.outbound
            if out is None or out.packets == 0:
                continue
            dest = call.agent.rtcp_dest()
            if dest is None:
                continue
            sr = build_rtcp_sr(out.ssrc, wall, out.ts, out.packets, out.octets)
            sr += build_rtcp_sdes_cname(out.ssrc, out.cname)  # a compound packet (RFC 3550 6.1)
            srtp = call.agent.srtp
            if srtp is not None:  # SRTCP (RFC 3711 3.4) with our key for the agent leg
                protected = srtp.protect_rtcp(sr, call.counters)
                if protected is None:
                    continue
                sr = protected
            with contextlib.suppress(OSError):
                call.agent.ports.rtcp.sendto(sr, dest)

    @staticmethod
    def _report_to_caller(call: CallMedia, now: float) -> None:
        rec = call.reception
        dest = call.caller.rtcp_dest()
        if rec.received == 0 or dest is None:
            return
        rr = build_rtcp_rr(rec.ssrc, [rec.report_block(now)])
        rr += build_rtcp_sdes_cname(rec.ssrc, rec.cname)
        srtp = call.caller.srtp
        if srtp is not None:  # SRTCP with our key for the caller leg
            protected = srtp.protect_rtcp(rr, call.counters)
            if protected is None:
                return
            rr = protected
        with contextlib.suppress(OSError):
            call.caller.ports.rtcp.sendto(rr, dest)
