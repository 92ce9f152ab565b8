"""RFC 4733 telephone-event payloads (named events 0-15 are the keypad).

Only the parse/build of the 4-byte event blocks lives here; what to do with an
event (mask the audio, feed the tokeniser once) is the media plane's job
(masker.media.event_presses).

A payload longer than one block is read as RFC 4733 2.5.1.5 packing: several
events back to back in one packet, each starting where the previous one ended
(the packet's timestamp plus the durations before it); all but the last are
complete (E bit).  A payload whose extra bytes are not such blocks (trailing
padding or garbage, a partial block) is read as its first block only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

KEYPAD = "0123456789*#ABCD"
PAYLOAD_LEN = 4


class EventError(ValueError):
    """A telephone-event payload that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One telephone-event payload; `event` is excluded from repr (it is a digit)."""

    event: int = field(repr=False)
    end: bool
    volume: int
    duration: int

    @property
    def digit(self) -> str | None:
        """The keypad key for events 0-15, None for other events (tones, flash...)."""
        return KEYPAD[self.event] if self.event < len(KEYPAD) else None


def parse_event(payload: bytes) -> TelephoneEvent:
    """Parse the first event block of a payload (redundant blocks are ignored)."""
    if len(payload) < PAYLOAD_LEN:
        raise EventError("short telephone-event payload")
    event, flags, duration = struct.unpack_from("!BBH", payload)
    return TelephoneEvent(
        event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration
    )


def parse_events(payload: bytes) -> list[tuple[int, TelephoneEvent]]:
    """Every event block of a payload as (timestamp offset, event).

    One block for a 4-byte payload.  Longer payloads are packed events
    (RFC 4733 2.5.1.5) only when their shape says so: whole blocks, every block
    but the last ended (E bit), every block of non-zero duration with the reserved
    bit clear.  Anything else longer
    than 4 bytes (zero padding, a partial block, redundancy we did not negotiate)
    yields its first block alone, so a stray trailer never becomes a key press."""
    n = len(payload)
    if n < PAYLOAD_LEN:
        raise EventError("short telephone-event payload")
    first = parse_event(payload)
    if n < 2 * PAYLOAD_LEN or n % PAYLOAD_LEN:
        return [(0, first)]
    out = [(0, first)]
    offset = 0
    for pos in range(PAYLOAD_LEN, n, PAYLOAD_LEN):
        prev = out[-1][1]
        ev = parse_event(payload[pos:])
        if not prev.end or prev.duration == 0 or ev.duration == 0 or payload[pos + 1] & 0x40:
            return [(0, first)]  # not a packing: the extra bytes are ignored
        offset += prev.duration
        out.append((offset, ev))
    return out


def build_event(ev: TelephoneEvent) -> bytes:
    """Serialise one event block."""
    if not 0 <= ev.event <= 255 or not 0 <= ev.volume <= 63 or not 0 <= ev.duration <= 0xFFFF:
        raise EventError("telephone-event field out of range")
    return struct.pack("!BBH", ev.event, (0x80 if ev.end else 0) | ev.volume, ev.duration)


def build_events(events: list[TelephoneEvent]) -> bytes:
    """Serialise several packed event blocks (RFC 4733 2.5.1.5)."""
    return b"".join(build_event(ev) for ev in events)


def digit_event(digit: str) -> int:
    """The event code of a keypad key."""
    idx = KEYPAD.find(digit.upper())
    if idx < 0 or len(digit) != 1:
        raise EventError("not a keypad key")
    return idx
