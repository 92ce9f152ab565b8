"""The calls the media thread owns, and the commands that change them.

The SIP thread hands every change over as a command (masker.media.loop); these
are their bodies, run on the media thread: a call gets its masker slot, playout
buffer and socket handlers when it is added, its legs follow each SDP (which
also decides the payload types its telephone-events may use), its masking is
armed or disarmed, and closing it releases its sockets, ports and slot and folds
its counters into the engine's.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter

import numpy as np
import structlog

from masker.media.call_media import CallMedia
from masker.media.codecs import AUDIO_RATE
from masker.media.inbound import InboundAudio
from masker.media.law import SAMPLES_PER_MS, SILENCE
from masker.media.loop import MediaLoop
from masker.media.maskbank import MaskBank, SlotsExhausted
from masker.media.outbound import OutboundStream
from masker.media.playout import MIN_CUSHION, Playout
from masker.media.ports import PortSource
from masker.media.receive import PacketReceiver
from masker.media.timeouts import expects_rtp
from masker.media.transcode import AgentRelay, Transcoder
from masker.wire.sdp import Negotiated

#: A call's lane ticks at least this long after its packets arrive: room for their
#: jitter and for the receive handlers of a burst of other calls' packets.
LANE_MARGIN_S = 0.003

#: Counters a closed call's summary line carries: its packets, losses and repairs.
#: Never the digit counters, whose number and timing `cadence` mode hides.
SUMMARY_COUNTERS = (
    "caller_packets",
    "agent_packets",
    "masked_packets",
    "underruns",
    "concealed_frames",
    "concealed_by_tick_move",
    "send_errors",
    "ssrc_changes",
    "seq_jumps",
    "rtp_relatched",
)

log = structlog.get_logger("masker.media")


def media_summary(counters: Counter[str]) -> dict[str, int]:
    """What an operator reads at a call's end: its packet counts, and every drop."""
    summary = {name: counters[name] for name in SUMMARY_COUNTERS}
    summary.update((name, n) for name, n in counters.items() if name.startswith("drop_"))
    return summary


class CallTable:
    """`calls` by call id, shared read-only with the tick, timeouts and reports."""

    def __init__(
        self,
        loop: MediaLoop,
        ports: PortSource,
        bank: MaskBank,
        receiver: PacketReceiver,
        counters: Counter[str],
        jitter_ceiling: int,
    ) -> None:
        self.calls: dict[str, CallMedia] = {}
        #: the same calls by masker slot (the tick walks the bank's chunks by slot)
        self.by_slot: dict[int, CallMedia] = {}
        self.loop = loop
        self.ports = ports
        self.bank = bank
        self.receiver = receiver
        self.counters = counters  # closed calls' counters are added here
        self.jitter_ceiling = jitter_ceiling  # each call's playout cushion grows up to this

    def add(self, call: CallMedia) -> None:
        call.slot = self.bank.allocate()
        self.by_slot[call.slot] = call
        call.inbound = InboundAudio(silence=SILENCE["PCMU"], dtype=np.uint8)
        call.playout = Playout(cushion=MIN_CUSHION, floor=MIN_CUSHION, ceiling=self.jitter_ceiling)
        call.last_caller_packet = time.monotonic()
        self.calls[call.call_id] = call
        rx = self.receiver
        watch = self.loop.watch
        watch(call.caller.ports.rtp, rx.caller_rtp, call)
        watch(call.caller.ports.rtcp, rx.caller_rtcp, call)
        watch(call.agent.ports.rtp, rx.agent_rtp, call)
        watch(call.agent.ports.rtcp, rx.agent_rtcp, call)

    def caller_sdp(self, call: CallMedia, neg: Negotiated) -> None:
        if self._closed(call, neg):
            return
        held_before = call.caller.sdp is not None and not expects_rtp(call.caller.sdp)
        call.caller.set_sdp(neg)
        call.srtp = call.caller.srtp is not None or call.agent.srtp is not None
        if expects_rtp(neg) or not held_before:
            # the RTP timeout restarts on every offer; the hold timeout when the call
            # goes on hold, not on each re-offer that keeps it there (no call for ever)
            call.last_caller_packet = time.monotonic()
        self._event_pts(call)
        self._settle_rate(call)
        self._relay(call)

    def agent_sdp(self, call: CallMedia, neg: Negotiated) -> None:
        if self._closed(call, neg):
            return
        call.agent.set_sdp(neg)
        call.srtp = call.caller.srtp is not None or call.agent.srtp is not None
        self._event_pts(call)
        frame = SAMPLES_PER_MS * neg.ptime
        if call.outbound is None:
            call.outbound = OutboundStream(neg.codec_pt, frame)
        else:
            call.outbound.payload_type = neg.codec_pt
            call.outbound.frame = frame
        self._settle_rate(call)
        self._relay(call)

    def _settle_rate(self, call: CallMedia) -> None:
        """Until the caller's first audio, the call's masker rate follows the codec the
        caller will send (the one it was answered with, else its offer's first): a
        G.722 caller gets a slot in a 16 kHz chunk, its buffer holds 16 kHz pairs.
        Audio of another rate later is resampled into the call's (receive path)."""
        if call.last_caller_audio or call.slot < 0:
            return
        agent, caller = call.agent.sdp, call.caller.sdp
        if agent is not None and agent.peer is not None:
            codec = agent.peer[1]
        elif caller is not None:
            codec = caller.codec
        else:
            return
        rate = AUDIO_RATE.get(codec, 8000)
        if rate == call.rate:
            return
        try:
            self._reslot(call, rate, self.bank.lane_of(call.slot))
        except SlotsExhausted:  # no room for a chunk of that rate: G.722 resampled to 8 kHz
            call.counters["wideband_refused_no_slot"] += 1
            self._reforce(call)
            return
        call.rate = rate
        fed = call.inbound.fed
        if rate == 8000:
            call.law = None
            call.inbound = InboundAudio(silence=SILENCE["PCMU"], dtype=np.uint8)
        else:
            call.law = "G722"
            call.inbound = InboundAudio(silence=0, dtype=np.int32)
        call.inbound.fed = fed  # forced spans and presses keep their input indices
        self._reforce(call)

    def settle_lane(self, call: CallMedia, arrival: float) -> None:
        """At the caller's first audio: the call moves to the lane whose sub-tick comes
        next, LANE_MARGIN_S after its packets arrive, so a frame waits at most a
        quarter of one for its tick (masker.media.loop)."""
        if call.slot < 0 or call.closed:
            return
        lane = self.loop.lane_after(arrival, LANE_MARGIN_S)
        if lane == self.bank.lane_of(call.slot):
            return
        with contextlib.suppress(SlotsExhausted):  # stays in its lane
            self._reslot(call, self.bank.rate_of(call.slot), lane)
            call.counters["lane_moves"] += 1
        self._reforce(call)

    def _reslot(self, call: CallMedia, rate: int, lane: int) -> None:
        """Move a call that has had no audio yet to a fresh slot of `rate` and `lane`,
        armed as before (SlotsExhausted: it keeps a slot of its own rate and lane).
        The caller puts its forced spans back (`_reforce`) once its rate is set."""
        bank, old = self.bank, call.slot
        old_rate, old_lane = bank.rate_of(old), bank.lane_of(old)
        bank.release(old)
        del self.by_slot[old]
        try:
            call.slot = bank.allocate(rate, lane)
        except SlotsExhausted:
            call.slot = bank.allocate(old_rate, old_lane)  # the row just freed
            raise
        finally:
            self.by_slot[call.slot] = call
            if call.armed is not None:
                bank.arm(call.slot, call.armed)

    def _reforce(self, call: CallMedia) -> None:
        """A new slot starts unmasked: the forced spans still ahead go back on it."""
        if call.masked_until > call.inbound.fed:
            self.receiver.spans.force(call, call.inbound.fed, call.masked_until)

    @staticmethod
    def _relay(call: CallMedia) -> None:
        """Agent -> caller: byte for byte when the caller leg was answered with the
        agent's codec and event clock, else rewritten (masker.media.transcode)."""
        agent, caller = call.agent.sdp, call.caller.sdp
        if agent is None or caller is None:
            call.relay = None
            return
        target = agent.peer or (caller.codec_pt, caller.codec)
        clocks = dict(caller.event_clocks)
        caller_event = (
            (caller.event_pt, clocks.get(caller.event_pt, 8000))
            if caller.event_pt is not None
            else None
        )
        relay = AgentRelay(
            dict(agent.audio_pts),
            target,
            dict(agent.event_clocks),
            caller_event,
            call.relay.transcoder if call.relay is not None else Transcoder(),
        )
        call.relay = relay if relay.needed() else None

    @staticmethod
    def _closed(call: CallMedia, neg: Negotiated) -> bool:
        """An SDP for a call already closed changes nothing (its keys are wiped)."""
        if call.closed and neg.srtp is not None:
            neg.srtp.wipe()
        return call.closed

    @staticmethod
    def _event_pts(call: CallMedia) -> None:
        """The caller sends telephone-events with the type of the SDP it got from us
        (the PBX's numbering) or, often, of its own offer: both count, and any type
        learnt from its packets; never one of its audio types."""
        pts = set(call.event_pts)
        for neg in (call.caller.sdp, call.agent.sdp):
            if neg is not None and neg.event_pt is not None:
                pts.add(neg.event_pt)
        caller = call.caller.sdp
        if caller is not None:
            pts.discard(caller.codec_pt)
            pts.difference_update(pt for pt, _ in caller.audio_pts)
        call.event_pts = frozenset(pts)

    def arm(self, call: CallMedia, armed: bool) -> None:
        call.armed = armed
        if call.slot >= 0 and not call.closed:
            self.bank.arm(call.slot, armed)

    def close(self, call: CallMedia) -> None:
        if call.closed:
            return
        call.closed = True
        call.caller.rtp_latched = None  # receive.caller_rtp's fast path sees no source
        for s in (
            call.caller.ports.rtp,
            call.caller.ports.rtcp,
            call.agent.ports.rtp,
            call.agent.ports.rtcp,
        ):
            self.loop.unwatch(s)
        call.caller.close_srtp()
        call.agent.close_srtp()
        call.srtp = False
        self.ports.release(call.caller.ports)
        self.ports.release(call.agent.ports)
        if call.slot >= 0:
            self.bank.release(call.slot)
            if self.by_slot.get(call.slot) is call:
                del self.by_slot[call.slot]
        self.calls.pop(call.call_id, None)
        self.counters.update(call.counters)
        log.info("media.call_closed", call=call.call_id, **media_summary(call.counters))

    def close_all(self) -> None:
        for call in list(self.calls.values()):
            self.close(call)
