"""The media plane's public face: every call's RTP/RTCP anchored on the media thread,
the caller's keypad masked towards the agent, its presses sent to the digit sink.

Caller -> agent: validate, decode G.711, playout buffer, mask (with look-ahead),
re-encode, send as our own RFC 3550 stream.  RFC 4733 events from the caller are
never forwarded.  Agent -> caller: forwarded byte for byte as soon as it arrives.
SRTP per leg (masker.media.srtp): unprotected on receipt, protected on sending,
each leg with its own keys (the agent's packets are re-protected for the caller).
Each leg accepts RTP and RTCP only from its SDP's addresses (masker.media.call_media.Leg;
`[media] latching = "symmetric"` lets the caller leg re-latch behind a NAT).

`MediaEngine` composes the parts, one job each:
- masker.media.loop: the thread, epoll, wake pipe, command queue, tick clock (a
  frame's sub-ticks, one per lane of calls whose packets arrive at that phase);
- masker.media.calltable: the calls and the commands that add, change, close them;
- masker.media.receive: the socket handlers (RTP, RTCP, telephone-events);
- masker.media.tick: the 20 ms batch masking tick and the masked stream out;
- masker.media.timeouts, masker.media.rtcp: the RTP timeout and our RTCP reports,
  run after each tick;
- masker.media.phase: a single-lane tick moves to just after the callers' arrivals;
- masker.media.digits, masker.media.forcing: presses to the sink, forced spans.

The SIP thread never touches call state directly: the public methods submit
commands that the media thread runs between packets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import structlog

from masker.media.call_media import CallMedia, Leg
from masker.media.calltable import CallTable
from masker.media.digits import INFO_WINDOW_MS, DigitReporter, DigitSink, LostSink
from masker.media.forcing import ForcedSpans
from masker.media.loop import TICK_S, MediaLoop
from masker.media.maskbank import BatchFactory, MaskBank
from masker.media.phase import PhaseLock, PhaseMove
from masker.media.playout import FRAME, MAX_CUSHION
from masker.media.ports import PortPair, PortSource, allocate_legs
from masker.media.receive import EVENT_AHEAD, EVENT_GUARD, PacketReceiver
from masker.media.rtcp import SR_INTERVAL_S, RtcpReports
from masker.media.stalls import STALL_S
from masker.media.tick import FrameTick
from masker.media.timeouts import RtpTimeouts, TimeoutSink
from masker.wire.sdp import Negotiated

log = structlog.get_logger()

__all__ = [
    "EVENT_AHEAD",
    "EVENT_GUARD",
    "FRAME",
    "INFO_WINDOW_MS",
    "JITTER_SAMPLES",
    "SR_INTERVAL_S",
    "TICK_S",
    "DigitSink",
    "MediaEngine",
    "TimeoutSink",
]

#: Default ceiling of the playout cushion (`[media] jitter_ms`): every call starts
#: with none (a frame plays as soon as it is whole); the cushion grows on late packets
#: up to this, shrinks back to none after a calm (media.playout), and excess buffered
#: audio is shed in quiet moments so the delay converges.
JITTER_SAMPLES = MAX_CUSHION


class MediaEngine:
    """Owns the media thread.  Public methods are safe to call from any thread."""

    def __init__(
        self,
        ports: PortSource,
        batch_factory: BatchFactory,
        *,
        batch_size: int = 32,
        max_calls: int = 500,
        on_digit: DigitSink | None = None,
        on_timeout: TimeoutSink | None = None,
        rtp_timeout_s: float = 0,
        hold_timeout_s: float = 0,
        on_hold_timeout: TimeoutSink | None = None,
        on_lost: LostSink | None = None,
        jitter_samples: int = JITTER_SAMPLES,
        sr_interval_s: float = SR_INTERVAL_S,
        latching: str = "strict",
        latch_packets: int = 5,
        lanes: int = 1,
        stall_log_s: float = STALL_S,
    ) -> None:
        if latching not in ("strict", "symmetric"):
            raise ValueError("latching must be 'strict' or 'symmetric'")
        self.symmetric = latching == "symmetric"
        self.latch_packets = latch_packets
        self.ports = ports
        self.counters: Counter[str] = Counter()
        self.bank = MaskBank(batch_factory, batch_size, max_calls, FRAME)
        self.reporter = DigitReporter(on_digit, on_lost)
        spans = ForcedSpans(self.bank)
        self.loop = MediaLoop(self.counters, self._tick, lanes, stall_s=stall_log_s)
        self.table = CallTable(
            self.loop,
            ports,
            self.bank,
            PacketReceiver(spans, self.reporter),
            self.counters,
            jitter_samples,
        )
        self.table.receiver.on_first_audio = self.table.settle_lane
        self.calls = self.table.calls
        self.frames = FrameTick(self.table.by_slot, self.bank, spans, self.reporter)
        self.loop.on_skip = self.frames.skipped  # the streams' timestamps move on too
        self.rtp_timeouts = RtpTimeouts(
            self.calls,
            rtp_timeout_s,
            on_timeout,
            hold_timeout_s=hold_timeout_s,
            on_hold_timeout=on_hold_timeout,
        )
        self.reports = RtcpReports(self.calls, sr_interval_s)
        #: a single-lane loop follows the callers' arrival phase (masker.media.phase)
        self.phase = PhaseLock(TICK_S) if lanes == 1 else None

    def _tick(self, now: float, lane: int | None = None) -> None:
        """One lane's sub-tick (masker.media.loop); the timeouts and RTCP reports run
        once a frame, in lane 0, and a single-lane loop's phase follows the callers'
        arrivals (masker.media.phase).  `lane=None` runs every lane at once (benchmarks
        and tests that drive the engine without its thread)."""
        self.frames.run(now, lane)
        if not lane:
            self.rtp_timeouts.check(now)
            self.reports.due(now)
        if self.phase is not None and lane is not None:
            move = self.phase.tick(self.loop.next_tick, self.calls.values())
            if move is not None:
                self._move_tick(move)

    def _move_tick(self, move: PhaseMove) -> None:
        """The tick follows the callers' arrivals (masker.media.phase), and the streams'
        timestamps follow the tick (FrameTick.moved).  A move earlier that passes calls'
        packets (those of a sampled tick's hiccup) costs each of them one concealed
        frame, which is not their jitter: for the next two frames a late packet grows
        no cushion."""
        if move.seconds < 0 and move.crossed:
            self.table.receiver.tick_moved_until = self.loop.next_tick + 2 * TICK_S
        self.loop.move_tick(move.seconds)
        self.frames.moved(move.stamps)
        self.counters["tick_phase_moves"] += 1
        log.info(
            "media.tick_moved",
            by_ms=round(move.seconds * 1e3, 1),
            wait_before_ms=round(move.wait_before * 1e3, 1),
            wait_after_ms=round(move.wait_after * 1e3, 1),
            crossed=move.crossed,
        )

    # --- lifecycle ----------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        """The media thread is running (readiness check)."""
        return self.loop.alive

    def start(self) -> None:
        """Start the media thread, the dsp's shared tables built first (MaskBank.warm_up)."""
        self.bank.warm_up()
        self.loop.start()

    def stop(self) -> None:
        self.loop.stop()
        self.table.close_all()
        self.loop.close()

    # --- commands from other threads ------------------------------------------------------
    def open_call(self, call_id: str) -> CallMedia:
        """Bind the call's four ports now (the SDP needs them); register it with the thread."""
        return self.adopt(call_id, *allocate_legs(self.ports))

    def adopt(self, call_id: str, caller: PortPair, agent: PortPair) -> CallMedia:
        """Register a call on port pairs bound elsewhere (a media worker's, bound by the
        service); they go back to `ports` when the call closes."""
        call = CallMedia(
            call_id=call_id,
            caller=Leg(caller, symmetric=self.symmetric, latch_packets=self.latch_packets),
            agent=Leg(agent),
        )
        self.loop.submit(self.table.add, call)
        return call

    def set_caller_sdp(self, call: CallMedia, neg: Negotiated) -> None:
        self.loop.submit(self.table.caller_sdp, call, neg)

    def set_agent_sdp(self, call: CallMedia, neg: Negotiated) -> None:
        self.loop.submit(self.table.agent_sdp, call, neg)

    def arm(self, call: CallMedia, armed: bool) -> None:
        self.loop.submit(self.table.arm, call, armed)

    def external_digit(self, call: CallMedia, digit: str, source: str) -> None:
        """A digit that came by signalling (SIP INFO): deduplicate against the audio."""
        self.loop.submit(self.reporter.external, call, digit, source)

    def lost_digits(self, call: CallMedia, count: int, source: str) -> None:
        """Digits of the call dropped by signalling (SIP INFO over its rate limit)."""
        self.loop.submit(self.reporter.lost, call, count, source)

    def close_call(self, call: CallMedia) -> None:
        self.loop.submit(self.table.close, call)

    def run_in_thread(self, fn: Callable[[], object]) -> None:
        self.loop.submit(fn)

    def snapshot(self) -> dict[str, int]:
        """Totals of all counters (approximate while the thread runs)."""
        loop = self.loop
        total = Counter(self.counters)
        for call in list(self.calls.values()):
            total.update(call.counters)
        total["calls"] = len(self.calls)
        total["ports_in_use"] = self.ports.in_use * 2
        total["late_ticks"] = loop.late_ticks
        total["ticks"] = loop.ticks
        total["tick_us_avg"] = int(1e6 * loop.tick_seconds / loop.ticks) if loop.ticks else 0
        return dict(total)
