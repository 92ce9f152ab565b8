"""One key press, one digit: many phones send a digit both in-band and as an
RFC 4733 event (or SIP INFO), and the tokeniser must receive it once.

Reports from *different* sources of the same key whose sample spans overlap
(within a small tolerance) are the same press.  Two reports from the same source
are always two presses: the in-band detector reports each tone once, an RFC 4733
event is recognised by its timestamp, and a caller may well key "5555".
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Spans this close (samples, 30 ms at 8 kHz) count as overlapping.
TOLERANCE = 240
#: Presses older than this (samples behind the newest) are forgotten.
HORIZON = 8000 * 5


@dataclass
class _Press:
    digit: str = field(repr=False)
    start: int
    end: int
    sources: set[str] = field(default_factory=set)


class DigitDeduper:
    """Remembers recent presses of one call in masker input-sample indices."""

    def __init__(self) -> None:
        self._recent: list[_Press] = []

    def accept(self, digit: str, start: int, end: int, source: str) -> bool:
        """True when this is a new press; False when it is another source's report of
        a recent press (whose span is then widened to cover both reports)."""
        self._recent = [p for p in self._recent if p.end > end - HORIZON]
        for p in self._recent:
            if p.digit == digit and source not in p.sources and \
                    start <= p.end + TOLERANCE and p.start <= end + TOLERANCE:
                p.start, p.end = min(p.start, start), max(p.end, end)
                p.sources.add(source)
                return False
        self._recent.append(_Press(digit, start, end, {source}))
        return True

    def extend(self, digit: str, start: int, end: int) -> None:
        """A running RFC 4733 event grew: widen its press so a late in-band report matches."""
        for p in self._recent:
            if p.digit == digit and p.start == start:
                p.end = max(p.end, end)
                return
