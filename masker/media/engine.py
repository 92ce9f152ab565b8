"""The media thread: every call's RTP/RTCP sockets in one selector loop, and a
20 ms tick that runs the caller streams of all calls through the batch masker.

Caller -> agent: validate, decode G.711, playout buffer, mask (with look-ahead),
re-encode, send as our own RFC 3550 stream.  RFC 4733 events from the caller
are never forwarded: their span is force-masked and the digit goes to the
registry once.  Agent -> caller: forwarded byte for byte as soon as it arrives.
Anything malformed or from an unexpected address is dropped and counted.

The SIP thread never touches call state directly: it submits commands that the
media thread runs between packets.
"""

from __future__ import annotations

import os
import queue
import selectors
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import structlog

from dsp import g711
from masker import metrics
from masker.media.call import CallMedia, Leg, RunningEvent
from masker.media.maskbank import BatchFactory, MaskBank
from masker.media.outbound import OutboundStream
from masker.media.ports import PortAllocator
from masker.rfc4733 import EventError, parse_event
from masker.rtp import RtpError, build_rtcp_sr, parse_rtp
from masker.sdp import Negotiated

log = structlog.get_logger()

TICK_S = 0.020
FRAME = 160
#: A caller stream with no audio for this long stops being sent on (hold, silence suppression).
IDLE_S = 0.2
#: Default playout cushion: a (re)starting caller stream waits until one frame plus
#: this many samples are buffered, so that a late packet does not put a silence gap
#: into a keypad tone (which could hide or split a press).  After an underrun the
#: buffer keeps the extra delay (it adapts to the jitter seen).
JITTER_SAMPLES = 2 * FRAME
#: Samples masked before an RFC 4733 event's timestamp and after its end (tone edges).
EVENT_GUARD = 160
MAX_DATAGRAM = 2048
#: A SIP INFO digit matches an in-band press of the same key within this many ms.
INFO_WINDOW_MS = 300
SR_INTERVAL_S = 5.0

_HDR = struct.Struct("!HII")  # sequence, timestamp, SSRC (after the first 2 header bytes)
_DECODE = {"PCMU": g711.ULAW_DECODE, "PCMA": g711.ALAW_DECODE}


class _Fast(NamedTuple):
    """The fields of a plain RTP packet (no CSRC/extension/padding) on the hot path."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


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
    ) -> None:
        self.prebuffer = FRAME + jitter_samples
        self.ports = ports
        self.bank = MaskBank(batch_factory, batch_size, max_calls, FRAME)
        self.on_digit = on_digit
        self.on_timeout = on_timeout
        self.rtp_timeout_s = rtp_timeout_s
        self.calls: dict[str, CallMedia] = {}
        self.counters: Counter = Counter()
        self._cmds: queue.SimpleQueue = queue.SimpleQueue()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, self._drain_wake)
        self._thread: threading.Thread | None = None
        self._running = False
        self._silence = np.zeros(FRAME, dtype=np.int16)
        self.tick_seconds = 0.0  # CPU-ish wall time spent in ticks (for the benchmark)
        self.ticks = 0
        self.late_ticks = 0
        self._last_sr = 0.0

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
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    # --- commands from other threads ------------------------------------------------------
    def open_call(self, call_id: str) -> CallMedia:
        """Bind the call's four ports now (the SDP needs them); register it with the thread."""
        caller = Leg(self.ports.allocate())
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

    def _drain_wake(self, sock: socket.socket) -> None:
        try:
            while sock.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    # --- the thread -----------------------------------------------------------------------
    def _run(self) -> None:
        next_tick = time.monotonic() + TICK_S
        while self._running:
            timeout = max(0.0, next_tick - time.monotonic())
            try:
                events = self._sel.select(timeout)
            except OSError:
                events = []
            self._run_commands()  # first: a packet may need the SDP that came with it
            for key, _ in events:
                try:
                    key.data(key.fileobj)
                except Exception:
                    self.counters["handler_errors"] += 1
                    log.exception("media handler failed")
            now = time.monotonic()
            if now >= next_tick:
                if now - next_tick > TICK_S:
                    self.late_ticks += 1
                    metrics.MEDIA_LATE_PACKETS.inc()
                try:
                    self._tick(now)
                except Exception:
                    self.counters["tick_errors"] += 1
                    log.exception("media tick failed")
                self.tick_seconds += time.monotonic() - now
                self.ticks += 1
                next_tick += TICK_S
                if now - next_tick > 5 * TICK_S:  # hopelessly behind: resynchronise the clock
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
        now = time.monotonic()
        call.last_caller_packet = now
        self.calls[call.call_id] = call
        for sock, handler in (
            (call.caller.ports.rtp, self._caller_rtp),
            (call.caller.ports.rtcp, self._caller_rtcp),
            (call.agent.ports.rtp, self._agent_rtp),
            (call.agent.ports.rtcp, self._agent_rtcp),
        ):
            self._sel.register(sock, selectors.EVENT_READ, _bind(handler, call))

    def _caller_sdp(self, call: CallMedia, neg: Negotiated) -> None:
        call.caller.set_sdp(neg)
        call.last_caller_packet = time.monotonic()  # the RTP timeout restarts on every offer

    def _agent_sdp(self, call: CallMedia, neg: Negotiated) -> None:
        call.agent.set_sdp(neg)
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
            try:
                self._sel.unregister(s)
            except (KeyError, ValueError):
                pass
        self.ports.release(call.caller.ports)
        self.ports.release(call.agent.ports)
        if call.slot >= 0:
            self.bank.release(call.slot)
        self.calls.pop(call.call_id, None)
        self.counters.update(call.counters)

    # --- packet handlers ----------------------------------------------------------------
    def _recv(self, sock: socket.socket):
        """The datagram that made the socket readable.  One read per readiness event:
        the level-triggered selector reports the socket again while more are queued,
        and the usual single packet costs no EAGAIN exception."""
        try:
            yield sock.recvfrom(MAX_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # ICMP port unreachable surfaces here on Linux
            return

    def _caller_rtp(self, call: CallMedia, sock: socket.socket) -> None:
        c = call.counters
        for data, src in self._recv(sock):
            if call.closed:
                return
            if not call.caller.accepts(src):
                c["drop_unexpected_source"] += 1
                continue
            if len(data) >= 12 and data[0] == 0x80:  # v2, no padding/extension/CSRC
                pkt = _Fast(data[1] & 0x7F, *_HDR.unpack_from(data, 2), data[12:])
            else:
                try:
                    pkt = parse_rtp(data)
                except RtpError as exc:
                    c["drop_" + str(exc).replace(" ", "_")] += 1
                    continue
                if 72 <= pkt.payload_type <= 76:
                    c["drop_rtcp_on_rtp_port"] += 1
                    continue
            now = time.monotonic()
            call.last_caller_packet = now
            neg = call.caller.sdp
            if neg is None:
                c["drop_before_sdp"] += 1
                continue
            if neg.event_pt is not None and pkt.payload_type == neg.event_pt:
                self._caller_event(call, pkt.timestamp, pkt.payload)
                continue
            law = None
            for pt, codec in neg.audio_pts:
                if pt == pkt.payload_type:
                    law = codec
                    break
            if law is None:
                c["drop_unknown_pt"] += 1
                continue
            if len(pkt.payload) == 0 or len(pkt.payload) > 960:
                c["drop_bad_length"] += 1
                continue
            if call.inbound.ssrc is not None and pkt.ssrc != call.inbound.ssrc:
                c["ssrc_changes"] += 1
            elif call.last_seq is not None and (pkt.sequence - call.last_seq) & 0xFFFF != 1:
                c["seq_jumps"] += 1
            call.last_seq = pkt.sequence
            pcm = _DECODE[law][np.frombuffer(pkt.payload, dtype=np.uint8)]
            if not call.active:
                call.inbound.reset_clock()
            if call.inbound.push(pkt.ssrc, pkt.timestamp, pcm):
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

    def _caller_event(self, call: CallMedia, ts: int, payload: bytes) -> None:
        c = call.counters
        try:
            ev = parse_event(payload)
        except EventError:
            c["drop_bad_event"] += 1
            return
        c["caller_events_swallowed"] += 1
        digit = ev.digit
        if digit is None:
            return
        run = call.event
        if run is None or run.ts != ts:
            start = call.inbound.index_of(ts)
            end = start + max(ev.duration, FRAME)
            call.event = run = RunningEvent(ts, digit, start, end)
            self.bank.force_mask(call.slot, max(start - EVENT_GUARD, 0), end + EVENT_GUARD)
            if call.dedupe.accept(digit, start, end, "rfc4733"):
                self._digit(call, digit, "rfc4733")
        else:
            end = run.start + ev.duration
            if end > run.end:
                run.end = end
                self.bank.force_mask(call.slot, max(run.start - EVENT_GUARD, 0), end + EVENT_GUARD)
                call.dedupe.extend(digit, run.start, end)

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
        # The caller's reports describe its SSRC, not ours: they stop here.
        for _data, src in self._recv(sock):
            if call.caller.accepts(src, rtcp=True):
                call.counters["caller_rtcp_absorbed"] += 1
            else:
                call.counters["drop_unexpected_source"] += 1

    def _agent_rtp(self, call: CallMedia, sock: socket.socket) -> None:
        c = call.counters
        out = call.caller.ports.rtp
        for data, src in self._recv(sock):
            if call.closed:
                return
            if not call.agent.accepts(src):
                c["drop_unexpected_source"] += 1
                continue
            if len(data) < 12 or data[0] >> 6 != 2:
                c["drop_agent_invalid"] += 1
                continue
            dest = call.caller.rtp_dest()
            if dest is None:
                c["drop_no_destination"] += 1
                continue
            try:
                out.sendto(data, dest)
                c["agent_packets"] += 1
            except OSError:
                c["send_errors"] += 1

    def _agent_rtcp(self, call: CallMedia, sock: socket.socket) -> None:
        c = call.counters
        for data, src in self._recv(sock):
            if not call.agent.accepts(src, rtcp=True):
                c["drop_unexpected_source"] += 1
                continue
            dest = call.caller.rtcp_dest()
            if dest is None:
                continue
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
            frames = np.zeros((size, FRAME), dtype=np.int16)
            rows: list[tuple[int, CallMedia]] = []
            for r in range(size):
                call = by_slot.get(base + r)
                if call is None:
                    continue
                if call.active and call.inbound.buffered == 0 and \
                        now - call.last_caller_audio > IDLE_S:
                    call.active = False
                if call.priming and call.inbound.buffered >= self.prebuffer:
                    call.priming = False
                if call.active and not call.priming:
                    frames[r] = call.inbound.take(FRAME)
                else:
                    call.inbound.skip(FRAME)
                    call.idle_samples += FRAME
                rows.append((r, call))
            results = bank.process(chunk, frames)
            sending = []
            for r, call in rows:
                res = results[r]
                for ev in res.digits:
                    if call.dedupe.accept(ev.digit, ev.start, ev.end, "inband"):
                        self._digit(call, ev.digit, "inband")
                if call.active and not call.priming:
                    sending.append((r, call))
            if sending:
                self._send_masked(sending, results)
        if self.rtp_timeout_s > 0:
            for call in list(self.calls.values()):
                neg = call.caller.sdp
                sends = neg is not None and neg.direction in ("sendrecv", "sendonly") and \
                    neg.address not in ("0.0.0.0", "::")
                if sends and not call.timed_out and \
                        now - call.last_caller_packet > self.rtp_timeout_s:
                    call.timed_out = True
                    if self.on_timeout is not None:
                        self.on_timeout(call.call_id)
        if now - self._last_sr >= SR_INTERVAL_S:
            self._last_sr = now
            self._send_reports()

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
            for i, (_, call) in enumerate(members):
                dest = call.agent.rtp_dest()
                counters = call.counters
                for pkt in call.outbound.packets_for(codes[i]):
                    if dest is None:
                        counters["drop_no_destination"] += 1
                        continue
                    try:
                        call.agent.ports.rtp.sendto(pkt, dest)
                        counters["masked_packets"] += 1
                    except OSError:
                        counters["send_errors"] += 1

    def _send_reports(self) -> None:
        wall = time.time()
        for call in self.calls.values():
            out = call.outbound
            if out is None or out.packets == 0:
                continue
            dest = call.agent.rtcp_dest()
            if dest is None:
                continue
            sr = build_rtcp_sr(out.ssrc, wall, out.ts, out.packets, out.octets)
            try:
                call.agent.ports.rtcp.sendto(sr, dest)
            except OSError:
                pass


def cpu_seconds() -> float:
    """Process CPU time (user+system), for the per-call measurement."""
    t = os.times()
    return t.user + t.system


def _bind(handler: Callable[[CallMedia, socket.socket], None], call: CallMedia):
    """A selector callback for one socket of one call."""
    return lambda sock: handler(call, sock)
