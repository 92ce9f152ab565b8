"""The 20 ms frame tick: one frame of every call's caller stream through the batch
masker, and the masked frames out to the agents.  It runs lane by lane (a lane's
calls once per frame, in its sub-tick: masker.media.loop).

Per chunk of the mask bank: each playing call's next frame comes from its
playout buffer (kept near its adaptive cushion, masker.media.playout: an
underrun is concealed with the previous frame, excess is shed while the audio
is quiet; the cushion itself grows when a late packet arrives, in
masker.media.receive), idle calls feed silence; all frames are decoded in one
table lookup per law, masked in one `process`, the in-band presses go to the
digit sink once, and the masked frames are encoded (one lookup per law) and
sent as each call's own RFC 3550 stream (masker.media.outbound).

A chunk runs at one audio rate (masker.media.maskbank): narrowband chunks decode
G.711 codes as above, wideband ones (G.722 callers) take 16 kHz samples straight
from the buffers.  On the way out each group of calls with the same rate and
agent codec is encoded together: G.711 in one lookup, G.722 per call (its coder
keeps state), resampled 16 <-> 8 kHz in one filter call where the caller's rate
and the agent codec's differ.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dsp import g711
from masker.media.call_media import CallMedia
from masker.media.codecs import AUDIO_RATE, CLOCK, downsample, upsample
from masker.media.digits import DigitReporter
from masker.media.forcing import ForcedSpans
from masker.media.inbound import InboundAudio
from masker.media.law import DECODE, SILENCE
from masker.media.maskbank import MaskBank, MaskOutcome
from masker.media.outbound import OutboundStream
from masker.media.playout import FRAME

#: A caller stream with no audio for this long stops being sent on (hold, silence suppression).
IDLE_S = 0.2
#: A frame is quiet (droppable, no keypad tone) below this mean |sample| (about -43 dBm0).
QUIET_MEAN_ABS = 100
#: Excess is shed only after this much quiet audio in a row (never between two tones).
QUIET_RUN = 5 * FRAME


class FrameTick:
    """Runs the masking tick over `by_slot` (the media thread's calls by masker slot,
    kept by masker.media.calltable; read only)."""

    def __init__(
        self,
        by_slot: dict[int, CallMedia],
        bank: MaskBank,
        spans: ForcedSpans,
        digits: DigitReporter,
    ) -> None:
        self.by_slot = by_slot
        self.bank = bank
        self.spans = spans
        self.digits = digits

    def run(self, now: float, lane: int | None = None) -> None:
        """One frame of every call in `lane` (of every call when None)."""
        bank = self.bank
        by_slot = self.by_slot
        for chunk in bank.active_chunks(lane):
            base, size = bank.first_slot(chunk), len(bank.used[chunk])
            wide = bank.rates[chunk] != 8000
            codes = (
                np.zeros((size, FRAME), np.int32)
                if wide
                else np.full((size, FRAME), SILENCE["PCMU"], dtype=np.uint8)
            )
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
            if wide:  # 16 kHz pairs: (size, 2 * FRAME) samples without a copy
                frames = codes.view(np.int16)
            else:
                frames = g711.ULAW_DECODE.take(codes)  # every call's frame in one lookup
                if alaw:
                    frames[alaw] = g711.ALAW_DECODE.take(codes[alaw])
            results = bank.process(chunk, frames)
            quiet = np.abs(frames.astype(np.int32)).sum(axis=1) < QUIET_MEAN_ABS * frames.shape[1]
            r_in = frames.shape[1] // FRAME  # masker samples per input (clock) sample
            sending = []
            for r, call in rows:
                call.quiet_run = call.quiet_run + FRAME if quiet[r] else 0
                res = results[r]
                for ev in res.digits:
                    start, end = ev.start // r_in, ev.end // r_in
                    if call.dedupe.accept(ev.digit, start, end, "inband"):
                        self.digits.report(call, ev.digit, "inband")
                if call.active and not call.priming:
                    sending.append((r, call))
            if sending:
                self._send_masked(sending, results)

    def skipped(self, frames: int) -> None:
        """The media clock skipped `frames` frames (a stall beyond what it catches up):
        every call's outgoing timestamps move on by them, as after a pause.  RFC 3550
        5.1: the timestamp follows the sampling clock, not the packets sent; kept
        behind it, every later packet would look late by the stall to the agent's
        jitter buffer, to the end of the call."""
        self._move_streams_on(frames * FRAME, keep_pending=False)

    def moved(self, stamps: float) -> None:
        """The tick moved (masker.media.phase): every call's next packet carries the
        marker bit, so the agent's jitter buffer sets its playout point again, and its
        timestamp moves on by `stamps` seconds (the part of a later move above the
        latest phase the tick reached: there our packets go out that much later, and
        their transit to the agent stays where it was)."""
        self._move_streams_on(round(stamps * CLOCK), keep_pending=True)

    def _move_streams_on(self, samples: int, *, keep_pending: bool) -> None:
        for call in self.by_slot.values():
            out = call.outbound
            if not call.active or call.priming or out is None:
                call.idle_samples += samples  # its next talkspurt's pause covers them too
            elif keep_pending:
                out.resync(samples)
            else:
                out.pause(samples)

    def _next_frame(self, call: CallMedia, inbound: InboundAudio, level: int) -> np.ndarray:
        """This tick's frame of a playing stream, keeping its delay near the cushion:
        an underrun is concealed with the previous frame (whether it was jitter, and
        grows the cushion, is up to the packet that comes next), excess is shed from
        the head of the buffer while the audio is quiet."""
        playout = call.playout
        if level < FRAME:
            call.counters["concealed_frames"] += 1
            frame = inbound.take(FRAME, call.last_frame)
            self.spans.audio_shifted(call, FRAME - level)
        else:
            playout.observe(level)
            excess = playout.excess
            if excess and call.quiet_run >= QUIET_RUN:
                dropped = inbound.drop_quiet(
                    min(excess, level - FRAME), QUIET_MEAN_ABS, DECODE.get(call.law or "PCMU")
                )
                if dropped:
                    playout.dropped(dropped)
                    call.counters["shed_samples"] += dropped
                    self.spans.audio_shifted(call, 0)
            frame = inbound.take(FRAME)
        call.last_frame = frame
        return frame

    def _send_masked(
        self, rows: list[tuple[int, CallMedia]], results: Sequence[MaskOutcome]
    ) -> None:
        """Encode the masked frames of a chunk (one table lookup per law) and send them."""
        by_law: dict[str, list[tuple[int, CallMedia, OutboundStream]]] = {}
        for r, call in rows:
            neg = call.agent.sdp
            out = call.outbound
            if out is None or neg is None:
                call.counters["masked_discarded_no_agent"] += 1
                continue
            by_law.setdefault(neg.codec, []).append((r, call, out))
        for law, members in by_law.items():
            audio = np.stack([results[r].audio for r, _, _ in members])
            codes = _encode(law, audio, [call for _, call, _ in members])
            blob = codes.tobytes()  # one copy; each row's payload is a bytes slice of it
            for i, (_, call, out) in enumerate(members):
                one = out.packet(blob[i * FRAME : (i + 1) * FRAME])
                pkts = out.packets_for(codes[i]) if one is None else (one,)
                dest = call.agent.rtp_dest()
                counters = call.counters
                if dest is None:  # the stream's clock ran on all the same (RFC 3550)
                    counters["drop_no_destination"] += len(pkts)
                    continue
                sock = call.agent.ports.rtp
                srtp = call.agent.srtp
                for pkt in pkts:
                    if srtp is not None:  # the one check a plain call pays
                        protected = srtp.protect(pkt, counters)
                        if protected is None:
                            continue
                        pkt = protected
                    try:
                        sock.sendto(pkt, dest)
                        counters["masked_packets"] += 1
                    except OSError:
                        counters["send_errors"] += 1


def _encode(codec: str, audio: np.ndarray, calls: list[CallMedia]) -> np.ndarray:
    """(calls x frame) masked audio at the chunk's rate -> (calls x FRAME) uint8 payload
    bytes of the agent codec (G.711 codes, or G.722 bytes: one per clock sample too).
    The rate changes 16 <-> 8 kHz in one filter call with each call's own state."""
    rate_in, rate_out = audio.shape[1] * 50, AUDIO_RATE[codec]
    if rate_in != rate_out:
        convert = downsample if rate_in > rate_out else upsample
        state = np.concatenate([c.outbound_codec.state for c in calls])
        audio, state = convert(audio, state)
        for i, c in enumerate(calls):
            c.outbound_codec.state = state[i : i + 1]
    if codec != "G722":
        return g711.encode(audio, "ulaw" if codec == "PCMU" else "alaw")
    blob = b"".join(c.outbound_codec.encode("G722", a) for c, a in zip(calls, audio, strict=True))
    return np.frombuffer(blob, np.uint8).reshape(len(calls), -1)
