"""Every datagram the media plane receives, one handler per socket.

Caller RTP: accepted only from the leg's source (masker.media.call_media.Leg; symmetric
latching may re-latch), parsed by masker.wire.rtp, accounted for the receiver reports,
and then either audio (G.711 codes into the call's playout buffer, in one law) or
an RFC 4733 event.  Events are never forwarded, whatever their payload type:
their span is force-masked and each press goes to the digit sink once
(masker.media.event_presses decides what a press is); an unknown dynamic payload type
whose packets have the shape of one event's updates is learnt as an event type.
Caller RTCP: absorbed (its sender reports time our receiver reports' round trip).
Agent RTP and RTCP: relayed to the caller byte for byte as soon as they arrive, or,
when the legs negotiated different codecs (or telephone-event clocks), with the
payload transcoded (masker.media.transcode).  A G.722 caller's audio is decoded
here into the 16 kHz buffer of its call; audio of another rate than the call's
is resampled into it; telephone-event durations (and packed-block offsets) at a
16,000 Hz event clock are counted in the stream's 8,000 Hz clock, their timestamps
are taken as the stream's own (one SSRC, one timestamp line with its audio).
SRTP (masker.media.srtp): a leg that negotiated it has its packets unprotected here
before anything reads them (failures and replays dropped and counted); what is
relayed to an SRTP caller leg is protected with that leg's own key.
Anything malformed or from an unexpected address is dropped and counted.

One read per readiness event: the level-triggered epoll reports the socket again
while more are queued, and the usual single packet costs no EAGAIN exception.
OSError also covers ICMP port unreachable (Linux).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import replace
from time import monotonic

import numpy as np
import structlog

from masker.media.call_media import Address, CallMedia, Leg
from masker.media.codecs import AUDIO_RATE, pair_cells
from masker.media.digits import DigitReporter
from masker.media.event_presses import NEW, REBASED, STALE, UPDATE
from masker.media.forcing import ForcedSpans
from masker.media.law import DECODE, SILENCE, TRANSCODE
from masker.media.playout import FRAME
from masker.media.reception import sender_report_stamp
from masker.media.transcode import to_clock
from masker.wire.rfc4733 import EventError, parse_events
from masker.wire.rtp import RtpError, is_rtp, parse_rtp_fast

log = structlog.get_logger()

MAX_DATAGRAM = 2048
#: Samples masked before an RFC 4733 event's timestamp and after its end (tone edges).
EVENT_GUARD = 160
#: A running (not yet ended) event is masked this far past its reported duration: the
#: tone goes on until the next update, and senders update every 50 ms at most.
EVENT_AHEAD = 3 * FRAME
#: Payload types a telephone-event may use without being in either SDP (learnt from
#: its packets): the unassigned and dynamic ranges (RFC 3551), never a static codec's.
LEARNABLE_PTS = frozenset(range(35, 72)) | frozenset(range(77, 128))
_CODES = np.dtype(np.uint8)  # the caller's G.711 codes as buffered


class PacketReceiver:
    """The socket handlers of both legs (`loop.Handler`s: (call, socket))."""

    def __init__(self, spans: ForcedSpans, digits: DigitReporter) -> None:
        self.spans = spans
        self.digits = digits
        #: told of each call's first audio and its arrival time (picks the call's lane)
        self.on_first_audio: Callable[[CallMedia, float], None] | None = None
        #: until then (monotonic), a packet late for its tick was passed by the tick
        #: itself (it moved earlier: masker.media.phase), not by the caller's jitter
        self.tick_moved_until = 0.0

    # --- caller -------------------------------------------------------------------------
    def caller_rtp(self, call: CallMedia, sock: socket.socket) -> None:
        try:
            data, src = sock.recvfrom(MAX_DATAGRAM)
        except OSError:
            return
        c = call.counters
        caller = call.caller
        # a closed call has no latched source; SRTP is the one check a plain call pays
        if src != caller.rtp_latched or caller.srtp is not None:
            admitted = self._admit(call, src, data)
            if admitted is None:
                return
            data = admitted
        try:
            pt, seq, ts, ssrc, payload = parse_rtp_fast(data)
        except RtpError as exc:
            c["drop_" + str(exc).replace(" ", "_")] += 1
            return
        if 72 <= pt <= 76:
            c["drop_rtcp_on_rtp_port"] += 1
            return
        now = monotonic()
        call.last_caller_packet = now
        neg = caller.sdp
        if neg is None:
            c["drop_before_sdp"] += 1
            return
        call.reception.packet(ssrc, seq, ts, now)
        law: str | None
        if pt == neg.codec_pt:
            law = neg.codec
        elif pt in call.event_pts:
            call.last_seq = seq  # events share the stream's sequence numbers (RFC 4733)
            self._caller_event(call, ssrc, seq, ts, payload, now, pt)
            return
        else:
            law = self._other_audio_pt(call, pt, ssrc, seq, ts, payload, now)
            if law is None:
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
        if law == call.law and law != "G722":
            codes = np.frombuffer(payload, _CODES)  # positional dtype: half the call's cost
        else:  # codes are buffered in one form; decoded per tick in a batch
            codes = self._buffer_form(call, law, payload)
        if not call.active:
            inbound.reset_clock()
        trimmed = inbound.trimmed_samples
        if inbound.push(ssrc, ts, codes):
            if inbound.trimmed_samples != trimmed:
                self.spans.audio_shifted(call, 0)
            if inbound.late_by:  # it continued the stream after a concealed underrun
                self._came_late(call, now)
            c["caller_packets"] += 1
            if not call.last_caller_audio and self.on_first_audio is not None:
                self.on_first_audio(call, now)
            call.last_caller_audio = now
            if not call.active:
                self._talkspurt_starts(call)
        else:
            c["drop_late"] += 1

    # Rare branches of caller_rtp, kept out of the per-packet path.
    def _came_late(self, call: CallMedia, now: float) -> None:
        """A packet came after the tick that needed its frame (concealed): the caller's
        jitter grows the call's cushion; the tick moving earlier past it does not."""
        if now < self.tick_moved_until:
            call.counters["concealed_by_tick_move"] += 1
            return
        call.playout.underrun()
        call.counters["underruns"] += 1

    @staticmethod
    def _buffer_form(call: CallMedia, law: str, payload: bytes) -> np.ndarray:
        """A packet of another codec than the buffered one (or G.722, which is decoded
        here) in the buffer's form: G.711 codes of the call's law, or 16 kHz pairs."""
        if call.law is None and law in DECODE:
            call.law = law  # the first audio of a narrowband call sets the law
            call.inbound.silence = SILENCE[law]
            return np.frombuffer(payload, _CODES)
        if call.law is None:
            call.law = "PCMU"  # G.722 into a narrowband call: buffered as mu-law
            call.inbound.silence = SILENCE["PCMU"]
        if law in DECODE and call.law in DECODE:
            return np.frombuffer(payload.translate(TRANSCODE[(law, call.law)]), _CODES)
        codec = call.inbound_codec
        pcm = codec.resample(codec.decode(law, payload), AUDIO_RATE[law], call.rate)
        if call.law == "G722":
            return pair_cells(pcm)
        return np.frombuffer(codec.encode(call.law, pcm), _CODES)

    def _admit(self, call: CallMedia, src: Address, data: bytes) -> bytes | None:
        """A packet that is not plain RTP from the latched source: None when the call
        is closed, the source is not accepted, or SRTP authentication or the replay
        check fails (dropped and counted); else the (unprotected) packet."""
        if call.closed:
            return None
        if src != call.caller.rtp_latched and not self._other_source(call, src, data):
            return None
        srtp = call.caller.srtp
        return data if srtp is None else srtp.unprotect(data, call.counters)

    @staticmethod
    def _other_source(call: CallMedia, src: Address, data: bytes) -> bool:
        """A packet from another address than the latched one: dropped (strict), or
        the start of a re-latch (symmetric).  True when it may be used."""
        caller = call.caller
        relatches = caller.relatches
        if not caller.accepts(src, data, monotonic(), call.last_caller_packet):
            call.counters["drop_unexpected_source"] += 1
            return False
        if caller.relatches != relatches:
            call.counters["rtp_relatched"] += 1
            log.info("media.relatched", call=call.call_id)
        return True

    def _other_audio_pt(
        self, call: CallMedia, pt: int, ssrc: int, seq: int, ts: int, payload: bytes, now: float
    ) -> str | None:
        """The codec of a payload type other than the negotiated one, or None (dropped;
        an unknown dynamic type may turn out to be telephone-events)."""
        neg = call.caller.sdp
        assert neg is not None  # checked by the caller
        for apt, codec in neg.audio_pts:
            if apt == pt:
                return codec
        call.counters["drop_unknown_pt"] += 1
        if pt in LEARNABLE_PTS:
            self._probe_event_pt(call, pt, ssrc, seq, ts, payload, now)
        return None

    @staticmethod
    def _talkspurt_starts(call: CallMedia) -> None:
        """The first audio after silence: the tick primes the playout buffer again."""
        call.active = True
        call.priming = True
        if call.outbound is not None:
            call.outbound.pause(call.idle_samples)
        call.idle_samples = 0

    def caller_rtcp(self, call: CallMedia, sock: socket.socket) -> None:
        # The caller's reports describe its SSRC, not ours: they stop here (its sender
        # reports time the round trip in our receiver reports back to it).
        try:
            data, src = sock.recvfrom(MAX_DATAGRAM)
        except OSError:
            return
        if not call.caller.accepts_rtcp(src):
            call.counters["drop_unexpected_source"] += 1
            return
        srtp = call.caller.srtp
        if srtp is not None:
            plain = srtp.unprotect_rtcp(data, call.counters)
            if plain is None:
                return
            data = plain
        call.counters["caller_rtcp_absorbed"] += 1
        sr = sender_report_stamp(data)
        if sr is not None:
            call.reception.sender_report(*sr, monotonic())

    # --- caller telephone-events ------------------------------------------------------------
    def _probe_event_pt(
        self, call: CallMedia, pt: int, ssrc: int, seq: int, ts: int, payload: bytes, now: float
    ) -> None:
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
        if (
            pssrc != ssrc
            or pts_ != ts
            or not 0 < (seq - pseq) & 0xFFFF < 16
            or not (duration > pdur or (payload[1] & 0x80 and duration == pdur))
        ):
            return
        call.counters["event_pt_learnt"] += 1
        call.event_pts = call.event_pts | {pt}
        call.pt_probe.pop(pt, None)
        self._caller_event(call, pssrc, pseq, pts_, ppayload, now, pt)
        self._caller_event(call, ssrc, seq, ts, payload, now, pt)

    def _caller_event(
        self,
        call: CallMedia,
        ssrc: int,
        seq: int,
        ts: int,
        payload: bytes,
        now: float,
        pt: int = -1,
    ) -> None:
        """One telephone-event packet of the caller: swallowed (never forwarded); each
        keypad press it starts is masked and reported once (masker.media.event_presses)."""
        c = call.counters
        try:
            blocks = parse_events(payload)
        except EventError:
            c["drop_bad_event"] += 1
            return
        c["caller_events_swallowed"] += 1
        neg = call.caller.sdp
        clock = 8000
        if neg is not None and neg.event_clocks:
            clock = dict(neg.event_clocks).get(pt, 8000)
        keys = call.keys
        force = self.spans.force
        prev_digit = None
        for offset, ev in blocks:
            digit = ev.digit
            if digit is None:  # not a keypad event (a tone, flash): nothing to mask or report
                prev_digit = None
                continue
            if offset and digit == prev_digit:
                continue  # packed after the same key with no pause: one tone, one press
            prev_digit = digit
            if clock != 8000:  # a 16,000 Hz event clock: durations in the stream's clock
                ev = replace(ev, duration=to_clock(ev.duration, clock))
                offset = to_clock(offset, clock)
            bts = (ts + offset) & 0xFFFFFFFF
            kind = keys.block(ssrc, seq, bts, ev, now, digit)
            press = keys.press
            if kind == STALE or press is None:
                c["caller_events_stale"] += 1
                continue
            tail = EVENT_GUARD if ev.end else EVENT_AHEAD
            if kind in (NEW, REBASED):
                base = call.inbound.index_of(bts)
                end = base + max(ev.duration, FRAME)
                press.base = base
                if kind == NEW:
                    press.start, press.end, press.masked = base, end, end + tail
                    force(call, max(base - EVENT_GUARD, 0), end + tail)
                    if call.dedupe.accept(digit, base, end, "rfc4733"):
                        self.digits.report(call, digit, "rfc4733")
                    continue
                c["caller_event_ssrc_changes"] += 1
                start = min(press.start, base)
                press.end = max(press.end, end)
                press.masked = max(press.masked, end + tail)
                force(call, max(start - EVENT_GUARD, 0), press.masked)
                call.dedupe.extend(digit, press.start, press.end)
                continue
            if kind == UPDATE:
                end = press.base + ev.duration
                if end > press.end:
                    press.end = end
                    call.dedupe.extend(digit, press.start, end)
                if end + tail > press.masked:
                    press.masked = end + tail
                    force(call, max(press.start - EVENT_GUARD, 0), press.masked)

    # --- agent --------------------------------------------------------------------------
    def agent_rtp(self, call: CallMedia, sock: socket.socket) -> None:
        try:
            data, src = sock.recvfrom(MAX_DATAGRAM)
        except OSError:
            return
        c = call.counters
        if call.closed:
            return
        agent = call.agent
        if src != agent.rtp_latched and not agent.accepts(src):  # strict: the PBX's SDP
            c[_unaccepted(agent)] += 1
            return
        if not is_rtp(data):
            c["drop_agent_invalid"] += 1
            return
        dest = call.caller.rtp_dest()
        if dest is None:
            c["drop_no_destination"] += 1
            return
        if call.srtp or call.relay is not None:  # the one check a plain call pays
            relayed = self._relay_changed(call, data)
            if relayed is None:
                return
            data = relayed
        try:
            call.caller.ports.rtp.sendto(data, dest)
            c["agent_packets"] += 1
        except OSError:
            c["send_errors"] += 1

    def agent_rtcp(self, call: CallMedia, sock: socket.socket) -> None:
        try:
            data, src = sock.recvfrom(MAX_DATAGRAM)
        except OSError:
            return
        c = call.counters
        if not call.agent.accepts_rtcp(src):
            c[_unaccepted(call.agent)] += 1
            return
        dest = call.caller.rtcp_dest()
        if dest is None:
            return
        if call.srtp:
            relayed = self._relay_srtp(call, data, rtcp=True)
            if relayed is None:
                return
            data = relayed
        try:
            call.caller.ports.rtcp.sendto(data, dest)
        except OSError:
            c["send_errors"] += 1

    def _relay_changed(self, call: CallMedia, data: bytes) -> bytes | None:
        """The agent's RTP packet for the caller when the legs differ: SRTP keys
        (`_relay_srtp`) and/or codecs (`CallMedia.relay`).  None: dropped (counted)."""
        relay = call.relay
        if relay is None:
            return self._relay_srtp(call, data, rtcp=False)
        c = call.counters
        agent, caller = call.agent.srtp, call.caller.srtp
        out: bytes | None = data if agent is None else agent.unprotect(data, c)
        if out is None:
            return None
        out = relay.packet(out)
        if out is None:
            c["drop_agent_unknown_pt"] += 1
            return None
        c["agent_transcoded"] += 1
        return out if caller is None else caller.protect(out, c)

    @staticmethod
    def _relay_srtp(call: CallMedia, data: bytes, rtcp: bool) -> bytes | None:
        """The agent's packet for the caller, each leg with its own keys: unprotected
        with the agent's (SRTP agent leg), protected with ours for the caller (SRTP
        caller leg); the RTP header is unchanged.  None: dropped (and counted)."""
        c = call.counters
        agent, caller = call.agent.srtp, call.caller.srtp
        out: bytes | None = data
        if agent is not None:
            out = agent.unprotect_rtcp(data, c) if rtcp else agent.unprotect(data, c)
        if out is not None and caller is not None:
            out = caller.protect_rtcp(out, c) if rtcp else caller.protect(out, c)
        return out


def _unaccepted(leg: Leg) -> str:
    """The drop counter of a packet from a source a strict leg does not accept: before
    the leg's SDP is here (the PBX's first packets race ahead of its answer) there is
    no source to match, which is not a stranger's packet."""
    return "drop_unexpected_source" if leg.sdp is not None else "drop_before_sdp"
