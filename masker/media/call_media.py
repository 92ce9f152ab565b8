"""One call's media state: the two anchored legs and the caller stream's masking state.

Touched only by the media thread once registered (the SIP thread hands changes
over as commands), so it needs no locks.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from masker.media.dedupe import DigitDeduper
from masker.media.event_presses import KeyTracker
from masker.media.inbound import InboundAudio
from masker.media.outbound import OutboundStream
from masker.media.playout import Playout
from masker.media.ports import PortPair
from masker.media.reception import ReceptionStats
from masker.media.srtp import LegSrtp
from masker.media.transcode import AgentRelay, Transcoder
from masker.wire.rtp import rtp_fixed_header
from masker.wire.sdp import Negotiated

Address = tuple[str, int]


#: Symmetric latching: candidate sources tracked at once (a spray evicts the oldest).
MAX_CANDIDATES = 8


def _host(address: str) -> str:
    """The textual form recvfrom() reports for an address (IPv6 compressed)."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).compressed
    except ValueError:
        return address  # a host name: never equal to a packet's source


def _unspecified(address: str) -> bool:
    return address in ("", "0.0.0.0", "::")


@dataclass(slots=True)
class _Candidate:
    ssrc: int
    seq: int
    count: int
    first_at: float


@dataclass(slots=True)
class Leg:
    """One side of the anchor: our sockets, what its SDP says, whom we accept media from.

    Strict (the default): RTP is accepted only from the address and port of the
    leg's SDP, RTCP only from its a=rtcp (or RTP port + 1), and that is where we
    send.  Symmetric (`[media] latching = "symmetric"`, the caller leg only, for
    callers behind NAT): the SDP's address is accepted at once; another source
    takes over only after `latch_packets` packets in a row from it with one SSRC
    and consecutive sequence numbers while the current source is silent, and
    then receives the leg's media.  Nothing ever latches to the first sender.
    """

    ports: PortPair
    sdp: Negotiated | None = None
    symmetric: bool = False
    latch_packets: int = 5
    #: the one RTP source accepted (the hot path compares a packet's source with it)
    rtp_latched: Address | None = None
    rtcp_latched: Address | None = None
    #: what the current SDP says (None when it says "don't send to me")
    sdp_rtp: Address | None = None
    sdp_rtcp: Address | None = None
    candidates: dict[Address, _Candidate] = field(default_factory=dict, repr=False)
    relatches: int = 0
    #: SRTP/SRTCP of the leg (masker.media.srtp), None = plain RTP (the hot paths'
    #: one check); rebuilt only when the SDP's suite or keys change
    srtp: LegSrtp | None = field(default=None, repr=False)

    def set_sdp(self, neg: Negotiated) -> None:
        self.sdp = neg
        self._set_srtp(neg)
        if _unspecified(neg.address) or neg.port == 0:
            self.sdp_rtp = self.sdp_rtcp = None  # hold: keep accepting the last source
            return
        host = _host(neg.address)
        rtp = (host, neg.port)
        rtcp_at = getattr(neg, "rtcp", None)
        rtcp = (
            (_host(rtcp_at[0]) if rtcp_at[0] else host, rtcp_at[1])
            if rtcp_at
            else (host, neg.port + 1)
        )
        if rtp != self.sdp_rtp or rtcp != self.sdp_rtcp:  # moved (not a refresh)
            self.rtp_latched = rtp
            self.rtcp_latched = rtcp
            self.candidates.clear()
        self.sdp_rtp, self.sdp_rtcp = rtp, rtcp

    def _set_srtp(self, neg: Negotiated) -> None:
        keys, old = neg.srtp, self.srtp
        if keys is not None and old is not None and old.keys.same(keys):
            keys.wipe()  # a refresh with the same keys: the running contexts stay
            return
        self.srtp = None if keys is None else LegSrtp(keys)
        if old is not None:
            old.close()

    def close_srtp(self) -> None:
        """The call ended: the leg's SRTP keys are overwritten and dropped."""
        if self.srtp is not None:
            self.srtp.close()
            self.srtp = None
        if self.sdp is not None and self.sdp.srtp is not None:
            self.sdp.srtp.wipe()

    def accepts(
        self, src: Address, data: bytes = b"", now: float = 0.0, quiet_since: float = 0.0
    ) -> bool:
        """An RTP packet from `src`, which is not `rtp_latched` as given: True when it
        is the accepted source after all (IPv6 socket addresses carry flow and scope)
        or, symmetric, when it completes a re-latch.  `quiet_since`: when the current
        source last sent (a source that is still sending is never replaced)."""
        latched = self.rtp_latched
        if latched is not None and src[:2] == latched[:2]:
            self.rtp_latched = src  # the form recvfrom gives, for the fast comparison
            return True
        if not self.symmetric:
            return False
        if self.sdp_rtp is not None and src[:2] == self.sdp_rtp:
            self._latch(src)  # the SDP's own address: no proof needed
            return True
        header = rtp_fixed_header(data)
        if header is None:
            return False
        _, seq, _, ssrc = header
        cand = self.candidates.get(src)
        if cand is None or cand.ssrc != ssrc or not 1 <= (seq - cand.seq) & 0xFFFF <= 2:
            if cand is None and len(self.candidates) >= MAX_CANDIDATES:
                del self.candidates[next(iter(self.candidates))]
            self.candidates[src] = _Candidate(ssrc, seq, 1, now)
            return False
        cand.seq = seq
        cand.count += 1
        if quiet_since >= cand.first_at:  # the current source spoke since: start over
            cand.count, cand.first_at = 1, now
            return False
        if cand.count < self.latch_packets:
            return False
        self._latch(src)
        return True

    def _latch(self, src: Address) -> None:
        if self.rtp_latched is not None and src[:2] != self.rtp_latched[:2]:
            self.relatches += 1
        self.rtp_latched = src
        self.rtcp_latched = None  # learnt again from the new source's host
        self.candidates.clear()

    def accepts_rtcp(self, src: Address) -> bool:
        """RTCP only from the SDP's RTCP address (strict) or, symmetric, from the host
        the RTP is latched to (a NAT maps the RTCP port as it likes)."""
        latched = self.rtcp_latched
        if latched is not None and src[:2] == latched[:2]:
            return True
        if self.symmetric and self.rtp_latched is not None and src[0] == self.rtp_latched[0]:
            self.rtcp_latched = src
            return True
        return False

    def rtp_dest(self) -> Address | None:
        if self.sdp_rtp is None:
            return None
        return self.rtp_latched

    def rtcp_dest(self) -> Address | None:
        if self.sdp_rtp is None:
            return None
        if self.rtcp_latched is not None:
            return self.rtcp_latched
        rtp = self.rtp_latched
        return None if rtp is None else (rtp[0], rtp[1] + 1)


@dataclass(slots=True)
class CallMedia:
    """Everything the media thread keeps for one call."""

    call_id: str
    caller: Leg
    agent: Leg
    slot: int = -1
    inbound: InboundAudio = field(default_factory=InboundAudio)
    outbound: OutboundStream | None = None
    dedupe: DigitDeduper = field(default_factory=DigitDeduper)
    keys: KeyTracker = field(default_factory=KeyTracker, repr=False)
    #: payload types the caller's telephone-events arrive with (both SDPs' and learnt)
    event_pts: frozenset[int] = frozenset()
    #: an unknown payload type that looked like a telephone-event: pt -> (ssrc, ts,
    #: duration, seq, payload) of its last packet (two of one event teach the type)
    pt_probe: dict[int, tuple[int, int, int, int, bytes]] = field(default_factory=dict, repr=False)
    #: End (masker input index) of the last force-masked span.
    masked_until: int = 0
    playout: Playout = field(default_factory=Playout)
    #: what the playout buffer holds: G.711 codes of one law (the first audio packet's)
    #: or, "G722", 16 kHz samples in pairs (masker.media.codecs.pair_cells)
    law: str | None = None
    #: the masker's audio rate for the call (its slot's chunk): 8000, or 16000 when the
    #: caller speaks G.722; input indices (spans, presses) count 8,000 Hz clock samples
    rate: int = 8000
    #: caller packets of another codec than the buffer's, into the buffer's form
    inbound_codec: Transcoder = field(default_factory=Transcoder, repr=False)
    #: the masked stream into the agent's codec (G.722 encoder, resampler state)
    outbound_codec: Transcoder = field(default_factory=Transcoder, repr=False)
    #: agent -> caller rewriting when the legs' codecs differ, None: byte for byte
    relay: AgentRelay | None = field(default=None, repr=False)
    #: the last arm/disarm of the call's slot (re-applied if the slot moves)
    armed: bool | None = None
    quiet_run: int = 0  # samples of quiet audio fed to the masker in a row
    last_frame: np.ndarray | None = field(default=None, repr=False)
    last_caller_audio: float = 0.0
    last_caller_packet: float = 0.0
    active: bool = False
    priming: bool = False
    last_seq: int | None = None
    idle_samples: int = 0
    closed: bool = False
    timed_out: bool = False
    counters: Counter[str] = field(default_factory=Counter)
    #: the caller's stream as we receive it (our RTCP receiver reports to the caller)
    reception: ReceptionStats = field(default_factory=ReceptionStats, repr=False)
    #: either leg uses SRTP: the agent -> caller relay unprotects/re-protects
    srtp: bool = False

    @property
    def ratio(self) -> int:
        """Masker samples per input (clock) sample: 1, or 2 for a wideband call."""
        return self.rate // 8000

    @property
    def caller_port(self) -> int:
        return self.caller.ports.port

    @property
    def agent_port(self) -> int:
        return self.agent.ports.port
