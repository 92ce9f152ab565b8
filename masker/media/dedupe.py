"""One key press, one digit: many phones send a digit both in-band and as an
RFC 4733 event (or SIP INFO), and the tokeniser must receive it once.

Reports from *different* sources of the same key whose sample spans overlap
(within a small tolerance) are the same press.  Two reports from the same source
are always two presses: the in-band detector reports each tone once, an RFC 4733
event is recognised by its timestamp, and a caller may well key "5555".
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

#: Spans this close (samples, 30 ms at 8 kHz) count as overlapping.
TOLERANCE = 240
#: Presses older than this (samples behind the newest) are forgotten.
HORIZON = 8000 * 5
#: Presses of one key remembered at most (the oldest is forgotten first).  A person
#: keys a given key a few times in the horizon; a flood of one key (SIP INFO) must not
#: make every report scan thousands of presses (issue 13: ~1 ms per INFO at 21k).
PER_KEY = 32


@dataclass(slots=True)
class _Press:
    digit: str = field(repr=False)
    start: int
    end: int
    sources: set[str] = field(default_factory=set)


class DigitDeduper:
    """Remembers recent presses of one call in masker input-sample indices, by key:
    a report is compared with the presses of its own key only, at most PER_KEY of
    them (so at most 16 x PER_KEY presses per call, whatever a caller sends)."""

    __slots__ = ("_by_key",)

    def __init__(self) -> None:
        self._by_key: dict[str, deque[_Press]] = {}

    def __len__(self) -> int:
        return sum(len(q) for q in self._by_key.values())

    def accept(self, digit: str, start: int, end: int, source: str) -> bool:
        """True when this is a new press; False when it is another source's report of
        a recent press (whose span is then widened to cover both reports)."""
        recent = self._by_key.get(digit)
        if recent is None:
            recent = self._by_key[digit] = deque(maxlen=PER_KEY)
        while recent and recent[0].end <= end - HORIZON:
            recent.popleft()
        for p in recent:
            if (
                source not in p.sources
                and p.end > end - HORIZON
                and start <= p.end + TOLERANCE
                and p.start <= end + TOLERANCE
            ):
                p.start, p.end = min(p.start, start), max(p.end, end)
                p.sources.add(source)
                return False
        recent.append(_Press(digit, start, end, {source}))
        return True

    def extend(self, digit: str, start: int, end: int) -> None:
        """A running RFC 4733 event grew: widen its press so a late in-band report matches."""
        for p in self._by_key.get(digit, ()):
            if p.start == start:
                p.end = max(p.end, end)
                return
