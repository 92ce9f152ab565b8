"""The keypad-digit event every detector and signalling path produces."""

from __future__ import annotations

from dataclasses import dataclass, field

SOURCES = ("inband", "rfc4733", "info")


@dataclass(frozen=True, slots=True)
class DigitEvent:
    """One key press: which key, where it starts and ends, and how it arrived.

    `start`/`end` are sample indices of the stream the detector ran on (end is
    exclusive).  The digit is excluded from repr() so that a list of events in a
    log line or a traceback never spells out a card number.
    """

    digit: str = field(repr=False)
    start: int
    end: int
    source: str = "inband"

    @property
    def duration(self) -> int:
        return self.end - self.start
