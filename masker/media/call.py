"""One call's media state: the two anchored legs and the caller stream's masking state.

Touched only by the media thread once registered (the SIP thread hands changes
over as commands), so it needs no locks.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from masker.media.dedupe import DigitDeduper
from masker.media.inbound import InboundAudio
from masker.media.outbound import OutboundStream
from masker.media.playout import Playout
from masker.media.ports import PortPair
from masker.media.reception import ReceptionStats
from masker.sdp import Negotiated

Address = tuple[str, int]


@dataclass
class Leg:
    """One side of the anchor: our sockets, what its SDP says, where it really sends from."""

    ports: PortPair
    sdp: Negotiated | None = None
    rtp_latched: Address | None = None
    rtcp_latched: Address | None = None

    def set_sdp(self, neg: Negotiated) -> None:
        old = self.sdp
        self.sdp = neg
        if old is None or (old.address, old.port) != (neg.address, neg.port):
            self.rtp_latched = None
            self.rtcp_latched = None

    def accepts(self, src: Address, rtcp: bool = False) -> bool:
        """Symmetric latching: the first source wins; later packets from elsewhere are dropped."""
        latched = self.rtcp_latched if rtcp else self.rtp_latched
        if latched is None:
            if rtcp:
                self.rtcp_latched = src
            else:
                self.rtp_latched = src
            return True
        return latched == src

    def rtp_dest(self) -> Address | None:
        if self.rtp_latched is not None:
            return self.rtp_latched
        if self.sdp is None or self.sdp.port == 0 or self.sdp.address in ("0.0.0.0", "::"):
            return None
        return (self.sdp.address, self.sdp.port)

    def rtcp_dest(self) -> Address | None:
        if self.rtcp_latched is not None:
            return self.rtcp_latched
        rtp = self.rtp_latched or self.rtp_dest()
        return None if rtp is None else (rtp[0], rtp[1] + 1)


@dataclass
class RunningEvent:
    """An RFC 4733 event of the caller being masked ((timestamp, digit) identifies it)."""

    ts: int
    digit: str = field(repr=False)
    start: int
    end: int


@dataclass
class CallMedia:
    """Everything the media thread keeps for one call."""

    call_id: str
    caller: Leg
    agent: Leg
    slot: int = -1
    inbound: InboundAudio = field(default_factory=InboundAudio)
    outbound: OutboundStream | None = None
    dedupe: DigitDeduper = field(default_factory=DigitDeduper)
    event: RunningEvent | None = None
    #: (timestamp, digit) of recent events: a reordered end packet of an earlier
    #: event must not count as a new press.
    seen_events: deque = field(default_factory=lambda: deque(maxlen=8), repr=False)
    #: End (masker input index) of the last force-masked span.
    masked_until: int = 0
    playout: Playout = field(default_factory=Playout)
    law: str | None = None  # G.711 law of the buffered caller codes (first audio packet's)
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
    counters: Counter = field(default_factory=Counter)
    #: the caller's stream as we receive it (our RTCP receiver reports to the caller)
    reception: ReceptionStats = field(default_factory=ReceptionStats, repr=False)

    @property
    def caller_port(self) -> int:
        return self.caller.ports.port

    @property
    def agent_port(self) -> int:
        return self.agent.ports.port
