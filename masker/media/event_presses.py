"""RFC 4733 key presses of one caller stream: which packets are a new press.

A press is reported once, on its first packet (so a lost end never loses a
digit).  Real stacks send more shapes than the RFC's happy path; each one is
decided here, on the event blocks alone (the receive path, masker.media.receive,
maps timestamps to audio and masks):

- updates and end packets of the running event carry its (SSRC, timestamp,
  key): they extend it, whatever their order, duration (0 included) or
  sequence number (end packets often repeat one);
- an event nobody ends (its end packets lost) ends on its own when no update
  came for EVENT_TIMEOUT_S; a late end packet of it is an update, not a press;
- a straggler of an earlier event (its (SSRC, timestamp, key) was seen, or its
  timestamp is older than the running event's) is stale: never a press;
- a new timestamp is a new press, the same key included ("5555"), except the
  next segment of an event longer than the 16-bit duration (RFC 4733 2.5.1.3:
  timestamp advanced by exactly the last segment's duration);
- the same timestamp and key again, not ended, with a later sequence number and
  a shorter duration than already seen, is a stack that keeps its timestamp
  across presses: a new press;
- a change of SSRC in the middle of a press (same key, event still running) is
  the same press continuing on the new stream; end packets of a finished press
  repeated on a new SSRC are stale; anything else on a new SSRC is a new press.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from masker.wire.rfc4733 import TelephoneEvent
from masker.wire.rtp import seq_delta, ts_delta

#: A running event with no update for this long has ended (its end packets were
#: lost).  Senders update every 50 ms or faster (RFC 4733 2.5.1.2), so this is a
#: few missed updates.
EVENT_TIMEOUT_S = 0.25
#: A segment this long (samples) may be followed by the next segment of the same
#: long event (RFC 4733 2.5.1.3: segments are as long as the 16-bit duration allows).
LONG_SEGMENT = 0xFFFF - 8000
#: Timestamps this far (samples, 10 s) behind the running event count as stale
#: stragglers; further back is a sender that restarted its clock.
STALE_WINDOW = 80000

NEW, UPDATE, REBASED, STALE = "new", "update", "rebased", "stale"


@dataclass(slots=True)
class KeyPress:
    """One press being tracked; start/base/end/masked are the engine's (masker input
    sample indices of the press, of the current segment's timestamp, of the end of
    the event so far, and of the end of what has been force-masked)."""

    digit: str = field(repr=False)
    ssrc: int
    ts: int
    seq: int
    duration: int
    ended: bool
    last_at: float
    start: int = 0
    base: int = 0
    end: int = 0
    masked: int = 0

    def live(self, now: float) -> bool:
        return not self.ended and now - self.last_at <= EVENT_TIMEOUT_S


class KeyTracker:
    """Classifies each event block of one caller stream (NEW, UPDATE, REBASED, STALE)."""

    __slots__ = ("press", "_seen")

    def __init__(self) -> None:
        self.press: KeyPress | None = None
        #: (ssrc, timestamp, key) of recent events, for stragglers
        self._seen: deque[tuple[int, int, str]] = deque(maxlen=32)

    def block(
        self, ssrc: int, seq: int, ts: int, ev: TelephoneEvent, now: float, digit: str
    ) -> str:
        """Classify one keypad event block (timestamp already offset for packing)."""
        p = self.press
        if p is not None:
            if p.ts == ts and p.ssrc == ssrc and p.digit == digit:
                if not ev.end and ev.duration < p.duration and seq_delta(seq, p.seq) > 0:
                    return self._new(ssrc, seq, ts, ev, now, digit)  # same timestamp, new press
                if seq_delta(seq, p.seq) > 0:
                    p.seq = seq
                if ev.duration > p.duration:
                    p.duration = ev.duration
                if ev.end:
                    p.ended = True
                p.last_at = now
                return UPDATE
            key = (ssrc, ts, digit)
            if key in self._seen:
                return STALE
            if p.digit == digit:
                if p.ssrc != ssrc:
                    if p.live(now):  # the stream changed SSRC in the middle of the press
                        return self._rebase(p, ssrc, seq, ts, ev, now)
                    if ev.end and p.ended and now - p.last_at <= EVENT_TIMEOUT_S:
                        return STALE  # the end packets, repeated on the new stream
                elif (
                    p.live(now) and p.duration >= LONG_SEGMENT and ts_delta(ts, p.ts) == p.duration
                ):
                    return self._rebase(p, ssrc, seq, ts, ev, now)  # next segment
            if p.ssrc == ssrc and -STALE_WINDOW < ts_delta(ts, p.ts) < 0:
                return STALE  # an earlier event's packet, reordered
        return self._new(ssrc, seq, ts, ev, now, digit)

    def _new(self, ssrc: int, seq: int, ts: int, ev: TelephoneEvent, now: float, digit: str) -> str:
        self.press = KeyPress(digit, ssrc, ts, seq, ev.duration, ev.end, now)
        self._seen.append((ssrc, ts, digit))
        return NEW

    def _rebase(
        self, p: KeyPress, ssrc: int, seq: int, ts: int, ev: TelephoneEvent, now: float
    ) -> str:
        p.ssrc, p.ts, p.seq, p.duration, p.last_at = ssrc, ts, seq, ev.duration, now
        p.ended = ev.end
        self._seen.append((ssrc, ts, p.digit))
        return REBASED
