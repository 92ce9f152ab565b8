"""Codec conversion for one stream of one call, where the two legs differ.

`Transcoder` turns payloads of one codec into another (G.711 by table, G.722 by
its stream coder, 8 <-> 16 kHz by the stateful resampler of masker.media.codecs);
it keeps the state a stream needs, so one instance serves one direction of one
call.  `AgentRelay` is the agent -> caller relay of a call whose legs negotiated
different codecs or telephone-event clocks: it rewrites each packet's payload and
payload type and leaves its sequence number, timestamp and SSRC as they were
(every codec here runs the same 8,000 Hz RTP clock).  Legs with the same codec
never get one: their packets are relayed byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp import g711
from masker.media.codecs import (
    AUDIO_RATE,
    CLOCK,
    G722Decoder,
    G722Encoder,
    downsample,
    new_state,
    upsample,
)
from masker.media.law import DECODE, G711_LAW
from masker.wire.rfc4733 import EventError, TelephoneEvent, build_events, parse_events
from masker.wire.rtp import RtpError, build_rtp_fast, parse_rtp_fast


class Transcoder:
    """One stream's codec state: a G.722 decoder and encoder and a resampler state,
    each made on first use."""

    __slots__ = ("_dec", "_enc", "state")

    def __init__(self) -> None:
        self._dec: G722Decoder | None = None
        self._enc: G722Encoder | None = None
        self.state = new_state()  # the resampler's (1 x taps) filter state

    def decode(self, codec: str, payload: bytes) -> np.ndarray:
        """Linear int16 samples at the codec's audio rate."""
        if codec == "G722":
            if self._dec is None:
                self._dec = G722Decoder()
            return self._dec.decode(payload)
        return DECODE[codec].take(np.frombuffer(payload, np.uint8))

    def encode(self, codec: str, pcm: np.ndarray) -> bytes:
        """Payload of linear int16 samples at the codec's audio rate."""
        if codec == "G722":
            if self._enc is None:
                self._enc = G722Encoder()
            return self._enc.encode(pcm)
        return g711.encode(pcm, G711_LAW[codec]).astype(np.uint8).tobytes()

    def resample(self, pcm: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
        if rate_in == rate_out:
            return pcm
        convert = downsample if rate_in > rate_out else upsample
        out, self.state = convert(pcm[None, :], self.state)
        return np.asarray(out[0])

    def convert(self, payload: bytes, src: str, dst: str) -> bytes:
        pcm = self.resample(self.decode(src, payload), AUDIO_RATE[src], AUDIO_RATE[dst])
        return self.encode(dst, pcm)


@dataclass(slots=True)
class AgentRelay:
    """How the agent's packets are rewritten for the caller leg."""

    #: the agent's audio payload types -> codec
    agent_audio: dict[int, str]
    #: (payload type, codec) the caller leg was answered with
    caller: tuple[int, str]
    #: the agent's telephone-event payload types -> clock
    agent_events: dict[int, int]
    #: (payload type, clock) of the caller leg's telephone-events, None: none negotiated
    caller_event: tuple[int, int] | None
    transcoder: Transcoder

    def needed(self) -> bool:
        """False when every packet would pass unchanged (same codec, same event clock)."""
        same_audio = all(c == self.caller[1] for c in self.agent_audio.values())
        ev = self.caller_event
        same_events = ev is None or all(
            pt == ev[0] and clock == ev[1] for pt, clock in self.agent_events.items()
        )
        return not (same_audio and same_events)

    def packet(self, data: bytes) -> bytes | None:
        """The packet for the caller, or None (not RTP, or a type neither side has)."""
        try:
            pt, seq, ts, ssrc, payload = parse_rtp_fast(data)
        except RtpError:
            return None
        marker = bool(data[1] & 0x80)
        codec = self.agent_audio.get(pt)
        if codec is not None:
            out_pt, out_codec = self.caller
            if codec != out_codec:
                payload = self.transcoder.convert(payload, codec, out_codec)
            return build_rtp_fast(out_pt, seq, ts, ssrc, payload, marker)
        clock = self.agent_events.get(pt)
        if clock is None or self.caller_event is None:
            return None
        out_pt, out_clock = self.caller_event
        if out_clock != clock:
            payload = rescale_events(payload, clock, out_clock)
            if not payload:
                return None
        return build_rtp_fast(out_pt, seq, ts, ssrc, payload, marker)


def rescale_events(payload: bytes, clock_in: int, clock_out: int) -> bytes:
    """RFC 4733 event blocks with durations moved from one clock to another (b"" when
    the payload is not events)."""
    try:
        blocks = parse_events(payload)
    except EventError:
        return b""
    return build_events(
        [
            TelephoneEvent(
                ev.event, ev.end, ev.volume, min(ev.duration * clock_out // clock_in, 0xFFFF)
            )
            for _, ev in blocks
        ]
    )


def to_clock(duration: int, clock: int) -> int:
    """An RFC 4733 duration in units of `clock` as RTP clock samples (CLOCK)."""
    return duration if clock == CLOCK else duration * CLOCK // clock
