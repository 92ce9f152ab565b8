"""RFC 4733 telephone-event payloads (named events 0-15 are the keypad).

Only the parse/build of the 4-byte payload lives here; what to do with an
event (mask the audio, feed the tokeniser once) is the media plane's job.
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


def build_event(ev: TelephoneEvent) -> bytes:
    """Serialise one event block."""
    if not 0 <= ev.event <= 255 or not 0 <= ev.volume <= 63 or not 0 <= ev.duration <= 0xFFFF:
        raise EventError("telephone-event field out of range")
    return struct.pack("!BBH", ev.event, (0x80 if ev.end else 0) | ev.volume, ev.duration)


def digit_event(digit: str) -> int:
    """The event code of a keypad key."""
    idx = KEYPAD.find(digit.upper())
    if idx < 0 or len(digit) != 1:
        raise EventError("not a keypad key")
    return idx
