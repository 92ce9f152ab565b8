"""The media thread: every call's RTP/RTCP sockets in one selector loop, and a
20 ms tick that runs the caller streams of all calls through the batch masker.

Caller -> agent: validate, decode G.711, playout buffer, mask (with look-ahead),
re-encode, send as our own RFC 3550 stream.  RFC 4733 events from the caller
are never forwarded, whatever their payload type: their span is force-masked and
each press goes to the registry once (masker.media.events decides what a press
is).  Agent -> caller: forwarded byte for byte as soon as it arrives.
Anything malformed or from an unexpected address is dropped and counted: each
leg accepts RTP and RTCP only from its SDP's addresses (masker.media.call.Leg;
`[media] latching = "symmetric"` lets the caller leg re-latch behind a NAT).

The SIP thread never touches call state directly: it submits commands that the
media thread runs between packets.
"""

from __future__ import annotations

import os
import queue
import select
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import structlog

from dsp import g711
from masker import metrics
from masker.media.call import CallMedia, Leg
from masker.media.events import NEW, REBASED, STALE, UPDATE
from masker.media.inbound import InboundAudio
from masker.media.maskbank import BatchFactory, MaskBank
from masker.media.outbound import OutboundStream
from masker.media.playout import MAX_CUSHION, MIN_CUSHION, Playout
from masker.media.ports import PortAllocator
from masker.media.reception import sender_report_stamp
from masker.rfc4733 import EventError, parse_events
from masker.rtp import RtpError, build_rtcp_rr, build_rtcp_sdes_cname, build_rtcp_sr, parse_rtp
from masker.sdp import Negotiated

log = structlog.get_logger()

TICK_S = 0.020
FRAME = 160
#: A caller stream with no audio for this long stops being sent on (hold, silence suppression).
IDLE_S = 0.2
#: Default playout cushion at the start of a talkspurt: a (re)starting caller stream
#: waits until one frame plus this many samples are buffered.  The cushion then adapts
#: (media.playout): it grows on underruns, shrinks back to MIN_CUSHION after a calm,
#: and excess buffered audio is shed in quiet moments so the delay converges.
JITTER_SAMPLES = 2 * FRAME
#: A frame is quiet (droppable, no keypad tone) below this mean |sample| (about -43 dBm0).
QUIET_MEAN_ABS = 100
#: Excess is shed only after this much quiet audio in a row (never between two tones).
QUIET_RUN = 5 * FRAME
#: Missed ticks are caught up (a burst of frames) up to this many; beyond, the clock
#: skips ahead and the playout buffers shed the backlog.
MAX_CATCH_UP = 50
#: Samples masked before an RFC 4733 event's timestamp and after its end (tone edges).
EVENT_GUARD = 160
#: A running (not yet ended) event is masked this far past its reported duration: the
#: tone goes on until the next update, and senders update every 50 ms at most.
EVENT_AHEAD = 3 * FRAME
#: Payload types a telephone-event may use without being in either SDP (learnt from
#: its packets): the unassigned and dynamic ranges (RFC 3551), never a static codec's.
LEARNABLE_PTS = frozenset(range(35, 72)) | frozenset(range(77, 128))
MAX_DATAGRAM = 2048
#: A SIP INFO digit matches an in-band press of the same key within this many ms.
INFO_WINDOW_MS = 300
SR_INTERVAL_S = 5.0
#: How often the calls are checked for an RTP timeout (not on every tick: it is a
#: loop over every call, and timeouts are tens of seconds).
TIMEOUT_CHECK_S = 0.5

_HDR = struct.Struct("!HII")  # sequence, timestamp, SSRC (after the first 2 header bytes)
_DECODE = {"PCMU": g711.ULAW_DECODE, "PCMA": g711.ALAW_DECODE}
#: The code of digital silence per law (what a gap in the caller's codes is filled with).
_SILENCE = {law: int(np.abs(t.astype(np.int32)).argmin()) for law, t in _DECODE.items()}
#: Code -> code tables for a caller that switches law mid-call (bytes.translate).
_TRANSCODE = {
    (a, b): g711.encode(_DECODE[a], "ulaw" if b == "PCMU" else "alaw").astype(np.uint8).tobytes()
    for a in _DECODE for b in _DECODE if a != b
}


DigitSink = Callable[[str, str, str], Any]  # (call_id, digit, source)
TimeoutSink = Callable[[str], Any]  # (call_id)


class MediaEngine:
    """Owns the media thread.  Public methods are safe to call from any thread."""

    def __init__(
        self,
        ports: PortAllocator,
        batch_factory: BatchFactory,
        *,
        batch_size: int = 32,
        max_calls: int = 500,
        on_digit: DigitSink | None = None,
        on_timeout: TimeoutSink | None = None,
        rtp_timeout_s: float = 0,
        jitter_samples: int = JITTER_SAMPLES,
        sr_interval_s: float = SR_INTERVAL_S,
        latching: str = "strict",
        latch_packets: int = 5,
    ) -> None:
        if latching not in ("strict", "symmetric"):
            raise ValueError("latching must be 'strict' or 'symmetric'")
        self.symmetric = latching == "symmetric"
        self.latch_packets = latch_packets
        self.cushion = jitter_samples  # each call's playout cushion starts here
        self.ports = ports
        self.bank = MaskBank(batch_factory, batch_size, max_calls, FRAME)
        self.on_digit = on_digit
        self.on_timeout = on_timeout
        self.rtp_timeout_s = rtp_timeout_s
        self.calls: dict[str, CallMedia] = {}
        self.counters: Counter = Counter()
        self._cmds: queue.SimpleQueue = queue.SimpleQueue()
        # epoll directly (not selectors): per event one dict lookup, no key objects
        self._epoll = select.epoll()
        self._handlers: dict[int, tuple[Callable[..., None], Any, socket.socket]] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._watch(self._wake_r, self._drain_wake, None)
        self._thread: threading.Thread | None = None
        self._running = False
        self.tick_seconds = 0.0  # CPU-ish wall time spent in ticks (for the benchmark)
        self.ticks = 0
        self.late_ticks = 0
        self._last_sr = 0.0
        self.sr_interval_s = sr_interval_s
        self._last_timeout_check = 0.0

    # --- lifecycle ----------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        """The media thread is running (readiness check)."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name="media", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for call in list(self.calls.values()):
            self._close(call)
        self._epoll.close()
        self._wake_r.close()
        self._wake_w.close()

    # --- commands from other threads ------------------------------------------------------
    def open_call(self, call_id: str) -> CallMedia:
        """Bind the call's four ports now (the SDP needs them); register it with the thread."""
        caller = Leg(self.ports.allocate(), symmetric=self.symmetric,
                     latch_packets=self.latch_packets)
        try:
            agent = Leg(self.ports.allocate())
        except Exception:
            self.ports.release(caller.ports)
            raise
        call = CallMedia(call_id=call_id, caller=caller, agent=agent)
        self._submit(self._add, call)
        return call

    def set_caller_sdp(self, call: CallMedia, neg: Negotiated) -> None:
        self._submit(self._caller_sdp, call, neg)

    def set_agent_sdp(self, call: CallMedia, neg: Negotiated) -> None:
        self._submit(self._agent_sdp, call, neg)

    def arm(self, call: CallMedia, armed: bool) -> None:
        self._submit(self._arm, call, armed)

    def external_digit(self, call: CallMedia, digit: str, source: str) -> None:
        """A digit that came by signalling (SIP INFO): deduplicate against the audio."""
        self._submit(self._external_digit, call, digit, source)

    def close_call(self, call: CallMedia) -> None:
        self._submit(self._close, call)

    def snapshot(self) -> dict[str, int]:
        """Totals of all counters (approximate while the thread runs)."""
        total = Counter(self.counters)
        for call in list(self.calls.values()):
            total.update(call.counters)
        total["calls"] = len(self.calls)
        total["ports_in_use"] = self.ports.in_use * 2
        total["late_ticks"] = self.late_ticks
        total["ticks"] = self.ticks
        total["tick_us_avg"] = int(1e6 * self.tick_seconds / self.ticks) if self.ticks else 0
        return dict(total)

    def run_in_thread(self, fn: Callable[[], Any]) -> None:
        self._submit(fn)

    def _submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._cmds.put((fn, args))
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass

    def _watch(self, sock: socket.socket, handler: Callable[..., None], call: Any) -> None:
        self._handlers[sock.fileno()] = (handler, call, sock)
        self._epoll.register(sock.fileno(), select.EPOLLIN)

    def _unwatch(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        if self._handlers.pop(fd, None) is not None:
            try:
                self._epoll.unregister(fd)
            except (OSError, ValueError):
                pass

    def _dispatch(self, timeout: float) -> int:
        """Run the handler of every readable socket (one datagram each); the count."""
        try:
            events = self._epoll.poll(timeout)
        except OSError:
            return 0
        self._run_commands()  # first: a packet may need the SDP that came with it
        handlers = self._handlers
        for fd, _ in events:
            h = handlers.get(fd)
            if h is None:
                continue
            try:
                h[0](h[1], h[2])
            except Exception:
                self.counters["handler_errors"] += 1
                log.exception("media handler failed")
        return len(events)

    def _drain_wake(self, _call: Any, sock: socket.socket) -> None:
        try:
            while sock.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    # --- the thread -----------------------------------------------------------------------
    def _run(self) -> None:
        next_tick = time.monotonic() + TICK_S
        catching_up = False
        while self._running:
            self._dispatch(max(0.0, next_tick - time.monotonic()))
            now = time.monotonic()
            if now >= next_tick:
                behind = int((now - next_tick) / TICK_S)
                if behind:  # a stall: catch up, tick by tick
                    self.late_ticks += 1
                    metrics.MEDIA_LATE_PACKETS.inc()
                    if not catching_up:  # the backlog of packets first, so frames are there
                        catching_up = True
                        for _ in range(min(behind, MAX_CATCH_UP) + 1):
                            if not self._dispatch(0):
                                break
                else:
                    catching_up = False
                try:
                    self._tick(now)
                except Exception:
                    self.counters["tick_errors"] += 1
                    log.exception("media tick failed")
                self.tick_seconds += time.monotonic() - now
                self.ticks += 1
                next_tick += TICK_S
                if now - next_tick > MAX_CATCH_UP * TICK_S:  # hopelessly behind: skip ahead
                    self.counters["ticks_skipped"] += int((now - next_tick) / TICK_S)
                    next_tick = now + TICK_S
        self._run_commands()

    def _run_commands(self) -> None:
        while True:
            try:
                fn, args = self._cmds.get_nowait()
            except queue.Empty:
                return
            try:
                fn(*args)
            except Exception:
                self.counters["command_errors"] += 1
                log.exception("media command failed")

    def _add(self, call: CallMedia) -> None:
        call.slot = self.bank.allocate()
        call.inbound = InboundAudio(silence=_SILENCE["PCMU"], dtype=np.uint8)
        call.playout = Playout(cushion=self.cushion, floor=min(self.cushion, MIN_CUSHION),
                               ceiling=max(self.cushion, MAX_CUSHION))
        now = time.monotonic()
        call.last_caller_packet = now
        self.calls[call.call_id] = call
        for sock, handler in (
            (call.caller.ports.rtp, self._caller_rtp),
            (call.caller.ports.rtcp, self._caller_rtcp),
            (call.agent.ports.rtp, self._agent_rtp),
            (call.agent.ports.rtcp, self._agent_rtcp),
        ):
            self._watch(sock, handler, call)

    def _caller_sdp(self, call: CallMedia, neg: Negotiated) -> None:
        call.caller.set_sdp(neg)
        call.last_caller_packet = time.monotonic()  # the RTP timeout restarts on every offer
        self._event_pts(call)

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

    def _agent_sdp(self, call: CallMedia, neg: Negotiated) -> None:
        call.agent.set_sdp(neg)
        self._event_pts(call)
        frame = 8 * neg.ptime
        if call.outbound is None:
            call.outbound = OutboundStream(neg.codec_pt, frame)
        else:
            call.outbound.payload_type = neg.codec_pt
            call.outbound.frame = frame

    def _arm(self, call: CallMedia, armed: bool) -> None:
        if call.slot >= 0 and not call.closed:
            self.bank.arm(call.slot, armed)

    def _close(self, call: CallMedia) -> None:
        if call.closed:
            return
        call.closed = True
        for s in (call.caller.ports.rtp, call.caller.ports.rtcp,
                  call.agent.ports.rtp, call.agent.ports.rtcp):
            self._unwatch(s)
        self.ports.release(call.caller.ports)
        self.ports.release(call.agent.ports)
        if call.slot >= 0:
            self.bank.release(call.slot)
        self.calls.pop(call.call_id, None)
        self.counters.update(call.counters)

    # --- packet handlers ----------------------------------------------------------------
    # One read per readiness event: the level-triggered epoll reports the socket
    # again while more are queued, and the usual single packet costs no EAGAIN
    # exception.  OSError also covers ICMP port unreachable (Linux).
    def _caller_rtp(self, call: CallMedia, sock: socket.socket) -> None:
        try:
            data, src = sock.recvfrom(MAX_DATAGRAM)
        except OSError:
            return
        c = call.counters
        caller = call.caller
        if call.closed:
            return
        if src != caller.rtp_latched:  # strict: dropped; symmetric: may re-latch
            relatches = caller.relatches
            if not caller.accepts(src, data, time.monotonic(), call.last_caller_packet):
                c["drop_unexpected_source"] += 1
                return
            if caller.relatches != relatches:
                c["rtp_relatched"] += 1
                log.info("media.relatched", call=call.call_id)
        if len(data) >= 12 and data[0] == 0x80:  # v2, no padding/extension/CSRC
            pt = data[1] & 0x7F
            seq, ts, ssrc = _HDR.unpack_from(data, 2)
            payload = data[12:]
        else:
            try:
                pkt = parse_rtp(data)
            except RtpError as exc:
                c["drop_" + str(exc).replace(" ", "_")] += 1
                return
            pt, seq, ts, ssrc, payload = (pkt.payload_type, pkt.sequence, pkt.timestamp,
                                          pkt.ssrc, pkt.payload)
        if 72 <= pt <= 76:
            c["drop_rtcp_on_rtp_port"] += 1
            return
        now = time.monotonic()
        call.last_caller_packet = now
        neg = caller.sdp
        if neg is None:
            c["drop_before_sdp"] += 1
            return
        call.reception.packet(ssrc, seq, ts, now)
        if pt == neg.codec_pt:
            law = neg.codec
        elif pt in call.event_pts:
            self._caller_event(call, ssrc, seq, ts, payload, now)
            return
        else:
            law = None
            for apt, codec in neg.audio_pts:
                if apt == pt:
                    law = codec
                    break
            if law is None:
                c["drop_unknown_pt"] += 1
                if pt in LEARNABLE_PTS:
                    self._probe_event_pt(call, pt, ssrc, seq, ts, payload, now)
                return
        if len(payload) == 0 or len(payload) > 960:
            c["drop_bad_length"] += 1
            return
        inbound = call.inbound
        if inbound.ssrc is not None and ssrc != inbound.ssrc:
            c["ssrc_changes"] += 1
        elif call.last_seq is not None and (seq - call.last_seq) & 0xFFFF != 1:
            c["seq_jumps"] += 1
        call.last_seq = seq
        if law != call.law:  # codes are buffered in one law; decoded per tick in a batch
            if call.law is None:
                call.law = law
                inbound.silence = _SILENCE[law]
            else:
                payload = payload.translate(_TRANSCODE[(law, call.law)])
        codes = np.frombuffer(payload, dtype=np.uint8)
        if not call.active:
            inbound.reset_clock()
        trimmed = inbound.trimmed_samples
        if inbound.push(ssrc, ts, codes):
            if inbound.trimmed_samples != trimmed:
                self._audio_shifted(call, 0)
            c["caller_packets"] += 1
            call.last_caller_audio = now
            if not call.active:
                call.active = True
                call.priming = True
                if call.outbound is not None:
                    call.outbound.pause(call.idle_samples)
                call.idle_samples = 0
        else:
            c["drop_late"] += 1

    def _probe_event_pt(self, call: CallMedia, pt: int, ssrc: int, seq: int, ts: int,
                        payload: bytes, now: float) -> None:
        """A packet of a type neither SDP has: telephone-events of a stack that does not
        use the negotiated number?  The type is learnt when two packets of it have the
        shape of one event's updates (event blocks of a keypad key, one SSRC and
        timestamp, later sequence number, duration growing or ended), which no audio
        codec's packets have; both then count as events.  Never forwarded either way."""
        n = len(payload)
        if n < 4 or n > 16 or n % 4 or payload[0] > 15:
            return
        duration = (payload[2] << 8) | payload[3]
        prev = call.pt_probe.get(pt)
        call.pt_probe[pt] = (ssrc, ts, duration, seq, payload)
        if prev is None or len(call.pt_probe) > 4:
            if len(call.pt_probe) > 4:
                call.pt_probe.clear()
            return
        pssrc, pts_, pdur, pseq, ppayload = prev
        if pssrc != ssrc or pts_ != ts or not 0 < (seq - pseq) & 0xFFFF < 16 or \
                not (duration > pdur or (payload[1] & 0x80 and duration == pdur)):
            return
        call.counters["event_pt_learnt"] += 1
        call.event_pts = call.event_pts | {pt}
        call.pt_probe.pop(pt, None)
        self._caller_event(call, pssrc, pseq, pts_, ppayload, now)
        self._caller_event(call, ssrc, seq, ts, payload, now)

    def _caller_event(self, call: CallMedia, ssrc: int, seq: int, ts: int, payload: bytes,
                      now: float) -> None:
        """One telephone-event packet of the caller: swallowed (never forwarded); each
        keypad press it starts is masked and reported once (masker.media.events)."""
        c = call.counters
        try:
            blocks = parse_events(payload)
        except EventError:
            c["drop_bad_event"] += 1
            return
        c["caller_events_swallowed"] += 1
        keys = call.keys
        prev_digit = None
        for offset, ev in blocks:
            digit = ev.digit
            if digit is None:  # not a keypad event (a tone, flash): nothing to mask or report
                prev_digit = None
                continue
            if offset and digit == prev_digit:
                continue  # packed after the same key with no pause: one tone, one press
            prev_digit = digit
            bts = (ts + offset) & 0xFFFFFFFF
            kind = keys.block(ssrc, seq, bts, ev, now, digit)
            press = keys.press
            if kind == STALE or press is None:
                c["caller_events_stale"] += 1
                continue
            tail = EVENT_GUARD if ev.end else EVENT_AHEAD
            if kind == NEW or kind == REBASED:
                base = call.inbound.index_of(bts)
                end = base + max(ev.duration, FRAME)
                press.base = base
                if kind == NEW:
                    press.start, press.end, press.masked = base, end, end + tail
                    self._force_mask(call, max(base - EVENT_GUARD, 0), end + tail)
                    if call.dedupe.accept(digit, base, end, "rfc4733"):
                        self._digit(call, digit, "rfc4733")
                    continue
                c["caller_event_ssrc_changes"] += 1
                start = min(press.start, base)
                press.end = max(press.end, end)
                press.masked = max(press.masked, end + tail)
                self._force_mask(call, max(start - EVENT_GUARD, 0), press.masked)
                call.dedupe.extend(digit, press.start, press.end)
                continue
            if kind == UPDATE:
                end = press.base + ev.duration
                if end > press.end:
                    press.end = end
                    call.dedupe.extend(digit, press.start, end)
                if end + tail > press.masked:
                    press.masked = end + tail
                    self._force_mask(call, max(press.start - EVENT_GUARD, 0), press.masked)

    def _force_mask(self, call: CallMedia, start: int, end: int) -> None:
        self.bank.force_mask(call.slot, start, end)
        if end > call.masked_until:
            call.masked_until = end

    def _audio_shifted(self, call: CallMedia, later: int) -> None:
        """Buffered audio moved (samples dropped, or `later` samples of padding put
        before it): a forced span placed on it before the move would now miss its
        tone, so everything from now to the end of the forced spans (plus the shift)
        is masked."""
        fed = call.inbound.fed
        if call.masked_until > fed:
            self._force_mask(call, fed, call.masked_until + later)

    def _digit(self, call: CallMedia, digit: str, source: str) -> None:
        call.counters["digits_" + source] += 1
        if self.on_digit is not None:
            try:
                self.on_digit(call.call_id, digit, source)
            except Exception:
                log.error("digit sink failed", call=call.call_id)

    def _external_digit(self, call: CallMedia, digit: str, source: str) -> None:
        if call.closed:
            return
        now = call.inbound.fed + call.inbound.buffered
        window = 8 * INFO_WINDOW_MS
        if call.dedupe.accept(digit, now - window, now + window, source):
            self._digit(call, digit, source)

    def _caller_rtcp(self, call: CallMedia, sock: socket.socket) -> None:
        # The caller's reports describe its SSRC, not ours: they stop here (its sender
        # reports time the round trip in our receiver reports back to it).
        try:
            data, src = sock.recvfrom(MAX_DATAGRAM)
        except OSError:
            return
        if not call.caller.accepts_rtcp(src):
            call.counters["drop_unexpected_source"] += 1
            return
        call.counters["caller_rtcp_absorbed"] += 1
        sr = sender_report_stamp(data)
        if sr is not None:
            call.reception.sender_report(*sr, time.monotonic())

    def _agent_rtp(self, call: CallMedia, sock: socket.socket) -> None:
        try:
            data, src = sock.recvfrom(MAX_DATAGRAM)
        except OSError:
            return
        c = call.counters
        if call.closed:
            return
        agent = call.agent
        if src != agent.rtp_latched and not agent.accepts(src):  # strict: the PBX's SDP
            c["drop_unexpected_source"] += 1
            return
        if len(data) < 12 or data[0] >> 6 != 2:
            c["drop_agent_invalid"] += 1
            return
        dest = call.caller.rtp_dest()
        if dest is None:
            c["drop_no_destination"] += 1
            return
        try:
            call.caller.ports.rtp.sendto(data, dest)
            c["agent_packets"] += 1
        except OSError:
            c["send_errors"] += 1

    def _agent_rtcp(self, call: CallMedia, sock: socket.socket) -> None:
        try:
            data, src = sock.recvfrom(MAX_DATAGRAM)
        except OSError:
            return
        c = call.counters
        if not call.agent.accepts_rtcp(src):
            c["drop_unexpected_source"] += 1
            return
        dest = call.caller.rtcp_dest()
        if dest is None:
            return
        try:
            call.caller.ports.rtcp.sendto(data, dest)
        except OSError:
            c["send_errors"] += 1

    # --- the tick -----------------------------------------------------------------------
    def _tick(self, now: float) -> None:
        bank = self.bank
        by_slot: dict[int, CallMedia] = {call.slot: call for call in self.calls.values()}
        for chunk in bank.active_chunks():
            base, size = bank.starts[chunk], len(bank.used[chunk])
            codes = np.full((size, FRAME), _SILENCE["PCMU"], dtype=np.uint8)
            alaw: list[int] = []  # rows holding A-law codes (the rest decode as mu-law)
            rows: list[tuple[int, CallMedia]] = []
            for r in range(size):
                call = by_slot.get(base + r)
                if call is None:
                    continue
                inbound = call.inbound
                level = inbound.buffered
                if call.active and level < FRAME and now - call.last_caller_audio > IDLE_S:
                    call.active = False  # the talkspurt ended (a partial frame is dropped)
                    inbound.take(level)
                    call.last_frame = None
                    level = 0
                if call.priming and level >= call.playout.prebuffer:
                    call.priming = False
                if call.active and not call.priming:
                    codes[r] = self._next_frame(call, inbound, level)
                    if call.law == "PCMA":
                        alaw.append(r)
                else:
                    inbound.skip(FRAME)
                    call.idle_samples += FRAME
                rows.append((r, call))
            frames = g711.ULAW_DECODE.take(codes)  # every call's frame in one lookup
            if alaw:
                frames[alaw] = g711.ALAW_DECODE.take(codes[alaw])
            results = bank.process(chunk, frames)
            quiet = np.abs(frames.astype(np.int32)).sum(axis=1) < QUIET_MEAN_ABS * FRAME
            sending = []
            for r, call in rows:
                call.quiet_run = call.quiet_run + FRAME if quiet[r] else 0
                res = results[r]
                for ev in res.digits:
                    if call.dedupe.accept(ev.digit, ev.start, ev.end, "inband"):
                        self._digit(call, ev.digit, "inband")
                if call.active and not call.priming:
                    sending.append((r, call))
            if sending:
                self._send_masked(sending, results)
        if self.rtp_timeout_s > 0 and now - self._last_timeout_check >= TIMEOUT_CHECK_S:
            self._last_timeout_check = now
            for call in list(self.calls.values()):
                neg = call.caller.sdp
                sends = neg is not None and neg.direction in ("sendrecv", "sendonly") and \
                    neg.address not in ("0.0.0.0", "::")
                if sends and not call.timed_out and \
                        now - call.last_caller_packet > self.rtp_timeout_s:
                    call.timed_out = True
                    if self.on_timeout is not None:
                        self.on_timeout(call.call_id)
        if now - self._last_sr >= self.sr_interval_s:
            self._last_sr = now
            self._send_reports(now)

    def _next_frame(self, call: CallMedia, inbound: Any, level: int) -> np.ndarray:
        """This tick's frame of a playing stream, keeping its delay near the cushion:
        an underrun grows the cushion (the gap is concealed with the previous frame),
        excess is shed from the head of the buffer while the audio is quiet."""
        playout = call.playout
        if level < FRAME:
            playout.underrun()
            call.counters["underruns"] += 1
            frame = inbound.take(FRAME, call.last_frame)
            self._audio_shifted(call, FRAME - level)
        else:
            playout.observe(level)
            excess = playout.excess
            if excess and call.quiet_run >= QUIET_RUN:
                dropped = inbound.drop_quiet(min(excess, level - FRAME), QUIET_MEAN_ABS,
                                             _DECODE[call.law or "PCMU"])
                if dropped:
                    playout.dropped(dropped)
                    call.counters["shed_samples"] += dropped
                    self._audio_shifted(call, 0)
            frame = inbound.take(FRAME)
        call.last_frame = frame
        return frame

    def _send_masked(self, rows: list[tuple[int, CallMedia]], results: list[Any]) -> None:
        """Encode the masked frames of a chunk (one table lookup per law) and send them."""
        by_law: dict[str, list[tuple[int, CallMedia]]] = {}
        for r, call in rows:
            neg = call.agent.sdp
            if call.outbound is None or neg is None:
                call.counters["masked_discarded_no_agent"] += 1
                continue
            by_law.setdefault(neg.codec, []).append((r, call))
        for law, members in by_law.items():
            audio = np.stack([results[r].audio for r, _ in members])
            codes = g711.encode(audio, law)
            blob = codes.tobytes()  # one copy; each row's payload is a bytes slice of it
            for i, (_, call) in enumerate(members):
                one = call.outbound.packet(blob[i * FRAME : (i + 1) * FRAME])
                pkts = call.outbound.packets_for(codes[i]) if one is None else (one,)
                dest = call.agent.rtp_dest()
                counters = call.counters
                if dest is None:  # the stream's clock ran on all the same (RFC 3550)
                    counters["drop_no_destination"] += len(pkts)
                    continue
                sock = call.agent.ports.rtp
                for pkt in pkts:
                    try:
                        sock.sendto(pkt, dest)
                        counters["masked_packets"] += 1
                    except OSError:
                        counters["send_errors"] += 1

    def _send_reports(self, now: float) -> None:
        """Our sender reports to the agent and receiver reports to the caller (RFC 3550
        6.4), each a compound packet with an SDES CNAME."""
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
            try:
                call.agent.ports.rtcp.sendto(sr, dest)
            except OSError:
                pass

    def _report_to_caller(self, call: CallMedia, now: float) -> None:
        rec = call.reception
        dest = call.caller.rtcp_dest()
        if rec.received == 0 or dest is None:
            return
        rr = build_rtcp_rr(rec.ssrc, [rec.report_block(now)])
        try:
            call.caller.ports.rtcp.sendto(rr + build_rtcp_sdes_cname(rec.ssrc, rec.cname), dest)
        except OSError:
            pass


def cpu_seconds() -> float:
    """Process CPU time (user+system), for the per-call measurement."""
    t = os.times()
    return t.user + t.system

