"""How much of the caller's audio to keep buffered before the masker: an adaptive
jitter cushion.

The media tick takes one frame per call.  Whatever sits in the playout buffer
beyond that frame is added delay; some of it (the cushion) absorbs the sender's
jitter, anything more is excess to shed.  The cushion starts small, grows by
half a frame whenever a packet comes too late for its frame (the buffer ran dry
and the tick concealed the gap; a pause in the stream, a lost packet or the tick
moving earlier past the packet is not jitter, and grows nothing), and shrinks
back slowly (a quarter frame per 2 s) after a calm.  Once per window the lowest
level seen says how much could have been dropped without running dry: that
excess is shed at the next quiet moment (the engine drops only quiet samples,
never a keypad tone).
"""

from __future__ import annotations

from dataclasses import dataclass

FRAME = 160
#: Cushion at the start of a call, and its floor: none until the caller's jitter
#: needs one (an underrun).
MIN_CUSHION = 0
#: Default ceiling of the cushion (40 ms, `[media] jitter_ms`): jitter beyond it
#: costs underruns (concealed frames), not delay.
MAX_CUSHION = 2 * FRAME
#: Ticks per observation window (1 s at 20 ms).
WINDOW_TICKS = 50
#: Ticks without an underrun before the cushion shrinks one step (2 s).
RELAX_TICKS = 100
#: Excess below this (samples, 5 ms) is not worth a drop.
MIN_EXCESS = 40


@dataclass(slots=True)
class Playout:
    """Cushion and excess of one caller stream, updated once per tick.  The cushion
    stays within [floor, ceiling] (samples beyond the frame being taken)."""

    cushion: int = MIN_CUSHION
    floor: int = MIN_CUSHION
    ceiling: int = MAX_CUSHION
    excess: int = 0
    low: int = 1 << 30
    ticks: int = 0
    calm: int = 0
    underruns: int = 0

    @property
    def prebuffer(self) -> int:
        """Samples to hold before a (re)starting stream plays its first frame."""
        return FRAME + self.cushion

    def underrun(self) -> None:
        """A packet came after the tick that needed it (its frame was concealed):
        grow the cushion."""
        self.underruns += 1
        self.cushion = min(self.cushion + FRAME // 2, self.ceiling)
        self.calm = 0
        self.excess = 0
        self.low = 1 << 30
        self.ticks = 0

    def observe(self, level: int) -> None:
        """`level`: samples buffered just before this tick's frame is taken."""
        if level < self.low:
            self.low = level
        self.ticks += 1
        self.calm += 1
        if self.calm >= RELAX_TICKS:
            self.calm = 0
            self.cushion = max(self.cushion - FRAME // 4, self.floor)
        if self.ticks >= WINDOW_TICKS:
            spare = self.low - FRAME - self.cushion
            self.excess = spare if spare >= MIN_EXCESS else 0
            self.low = 1 << 30
            self.ticks = 0

    def dropped(self, n: int) -> None:
        """n excess samples were shed; the window starts afresh at the new level."""
        self.excess = max(self.excess - n, 0)
        self.low = 1 << 30
        self.ticks = 0
