"""Where in the 20 ms frame the tick runs: just after the callers' packets arrive.

A caller's frame waits in the playout buffer from its packet's arrival to the next
tick, so the tick's phase against the arrivals is up to a whole frame of added
delay.  Trunk gateways, SBCs and media servers packetise their channels on one
20 ms timer, so a box's calls mostly arrive at a few phases of the frame.

`PhaseLock` samples, at a few ticks in a row, how long before the tick was due each
playing call's last packet came, and `best_move` picks the phase with the least
mean wait among the safe ones: those with (almost) no arrival inside `MARGIN_S`
on either side, room for the arrivals' jitter.  The tick must move off a phase
with more than UNSAFE_SHARE of the arrivals inside its margin at all but the worst
of the sampled ticks (one tick of a sender's hiccup moves nothing), and may move
to an earlier phase that waits HYSTERESIS_S less and is safe at every sampled
tick; otherwise it stays.  Calls spread over the whole frame (a trunk of
independent phones) leave no phase safe, and nothing moves; nor does it while the
media thread is busier than BUSY_SHARE (the arrival times it sees are then its own
queue).  It looks again soon after a move (the calls of a busy start settle in a
second), and less often while nothing moves.

Moving the tick earlier past a call's arrival would leave that call without its
next frame (a concealed frame), so the tick moves earlier only when no sampled
arrival lies in between (at all but the worst sampled tick, whose passed packets
the engine does not count as the callers' jitter: their cushions do not grow).
Otherwise it moves later, to the same phase: the calls it passes then hold a frame
of excess, which the playout sheds at their next quiet moment (masker.media.playout).

The outgoing RTP timestamps follow the tick up, never down (RFC 3550: they follow
the sampling clock).  A move later than the latest phase the tick reached jumps
every call's timestamps by the part above it (masker.media.tick.FrameTick.moved),
so however the moves add up, our packets' transit to the agent stays put.  Below
that phase our packets go out ahead of their timestamps, so after its first move
(which settles the calls, free) the tick goes at most DESCENT_S below it, until no
call is left: the moves spread the agent's transit by no more than that.  A
required move that would go further goes later, round the frame, instead (passing
the calls' packets: a frame of excess each); an optional one is not made.  (The
first follower moved neither the timestamps nor within a bound: its moves added up
past a frame in an hour's soak, and every later packet was late.  Moving the
timestamps on with every later move, unbounded, the next try, lowered the transit
by every earlier move: within 3 minutes the agent's packets came 40 ms earlier than
at first.)  Only a single-lane loop moves (with lanes, masker.media.loop, each call
picks the sub-tick after its arrivals).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from masker.media.call_media import CallMedia

#: The tick stays this far from the arrivals, after those it serves and before the
#: next (their jitter).
MARGIN_S = 0.003
#: A phase is safe when at most this share of the sampled arrivals falls inside its
#: margin (arrivals spread over the whole frame leave no phase safe: no move).
SAFE_SHARE = 0.01
#: Candidate phases, this far apart.
STEP_S = 0.0005
#: A phase is unsafe, and the tick moves off it, when more than this share of the
#: arrivals falls inside its margin (between SAFE_SHARE and it: stay, no dithering).
UNSAFE_SHARE = 0.05
#: A safe tick moves (earlier) only to cut the mean wait by this much.
HYSTERESIS_S = 0.003
#: A media thread busier than this (share of its CPU time since the last look) sees
#: its own queue in the arrival times, not the callers' phase: the tick stays.
BUSY_SHARE = 0.6
#: Ticks between looks: the first look and the one after a move come after
#: SOON_TICKS, each look that moves nothing doubles the wait, up to EVERY_TICKS.
SOON_TICKS = 10
EVERY_TICKS = 50
#: Ticks sampled per look (its last ones).
SAMPLE_TICKS = 5
#: The shares that decide are those of this quantile of the sampled ticks: of 5, the
#: second worst (what one tick alone sees moves nothing).
TICK_QUANTILE = 0.75
#: The tick goes at most this far below the latest phase it reached while calls play
#: (the outgoing timestamps follow it up, never down): the spread of our packets'
#: transit to the agent that the moves add.
DESCENT_S = 0.006


@dataclass(frozen=True, slots=True)
class PhaseMove:
    """Move the next tick by `seconds` (< 0: earlier); the mean wait of the sampled
    arrivals before and after, and how many samples the move passes (after a later
    move each holds a frame of excess; after an earlier one, which passes none at
    all but the worst sampled tick, each misses its next tick once)."""

    seconds: float
    wait_before: float
    wait_after: float
    crossed: int
    #: how far the outgoing timestamps move on with it: the part of a later move
    #: above the latest phase the tick reached (PhaseLock)
    stamps: float = 0.0


def _share(hits: np.ndarray, ticks: np.ndarray | None, quantile: float) -> np.ndarray:
    """Per candidate phase (rows of `hits`, one column per arrival): the share of the
    arrivals that hit, at that quantile of the sampled ticks (`ticks`: each
    arrival's; 1.0: the worst tick), or over all arrivals when they are not told
    apart."""
    if ticks is None:
        return np.asarray(hits.mean(axis=1))
    labels, index = np.unique(ticks, return_inverse=True)
    members = index[:, None] == np.arange(labels.size)  # arrival x tick
    per_tick = hits.astype(np.float64) @ members / members.sum(axis=0)
    return np.asarray(np.quantile(per_tick, quantile, axis=1))


def best_move(
    ages: np.ndarray,
    period: float,
    margin: float = MARGIN_S,
    ticks: np.ndarray | None = None,
    room: float | None = None,
) -> PhaseMove | None:
    """The move of the tick phase for arrivals `ages` seconds before a tick was due
    (one sample per call per sampled tick; negative: handled after the due time, by
    a tick that ran late), to the safe phase with the least mean wait.

    Required when the present phase is unsafe (more than UNSAFE_SHARE of the
    arrivals inside its margin): earlier if that passes no arrival, else later.
    Optional when that phase is earlier, passes no arrival and waits HYSTERESIS_S
    less.  None: stay.  `ticks` (the sampled tick of each arrival) tells the two
    apart: a required move goes by the second-worst tick (TICK_QUANTILE: what one
    tick of a sender's hiccup sees moves nothing, since moving would cost the calls
    it passes as much as the hiccup did), an optional one must be safe at every
    sampled tick (else the tick dithers: earlier to gain, later at the next tail).

    `room`: how much earlier the tick may go, if bounded (PhaseLock: DESCENT_S); a
    required move earlier than that goes later round the frame to the same phase,
    an optional one is not made."""
    if ages.size == 0:
        return None
    shifts = np.arange(0.0, period, STEP_S)  # the tick moved earlier by each
    waits = np.mod(ages[None, :] - shifts[:, None], period)
    mean_wait = waits.mean(axis=1)
    # inside the margin on either side: just before the tick, or just after it (taken
    # by a tick that runs late, missed by one on time: an underrun when it flips)
    hits = (waits < margin) | (waits > period - margin)
    required = _share(hits[:1], ticks, TICK_QUANTILE)[0] > UNSAFE_SHARE
    quantile = TICK_QUANTILE if required else 1.0
    safe = _share(hits, ticks, quantile) <= SAFE_SHARE
    if not safe.any():
        return None
    best = int(np.argmin(np.where(safe, mean_wait, np.inf)))
    if best == 0:
        return None
    s = float(shifts[best])
    before, after = float(mean_wait[0]), float(mean_wait[best])
    # earlier: every sampled call's next packet must come before the new phase
    # (a negative age was taken by this tick; its next packet comes after the old
    # phase); for a required move, at all but the worst sampled tick (a hiccup's late
    # packet does not say when that call's next one comes)
    passes_none = not _share(ages[None, :] <= s, ticks, quantile)[0]
    earlier = passes_none and (required or before - after >= HYSTERESIS_S)
    if earlier and (room is None or s <= room):
        return PhaseMove(-s, before, after, int(np.count_nonzero(ages <= s)))
    if required:
        return PhaseMove(period - s, before, after, int(np.count_nonzero(ages > s)))
    return None


class PhaseLock:
    """Samples the arrivals at the last SAMPLE_TICKS ticks before each look and says
    when to move the tick (`tick`, once per frame, on the media thread: `cpu_clock`
    is that thread's CPU time)."""

    def __init__(
        self,
        period: float,
        margin: float = MARGIN_S,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.period = period
        self.margin = margin
        self.cpu_clock = cpu_clock
        self._ticks = 0
        self._every = SOON_TICKS
        self._ages: list[float] = []
        self._labels: list[int] = []  # the sampled tick of each age
        self._last_look: tuple[float, float] | None = None  # (due, CPU time) then
        #: the tick's phase since its first move (the sum of its moves) and the latest
        #: it reached; None before that move, and again once no call is seen (not
        #: after a look without arrivals: a sender's stall stops the packets, not the
        #: calls' streams)
        self.phase = 0.0
        self.top: float | None = None
        self._calls_seen = False

    def tick(self, due: float, calls: Iterable[CallMedia]) -> PhaseMove | None:
        """At a tick that was `due` then: the move to make, if this tick ends a look.
        Ages count from the due time, not from when the tick ran: a tick held up by
        a burst of packets made room for them by luck (a negative age, as late as
        one that missed it)."""
        self._ticks += 1
        if self._last_look is None:  # the first tick: where the thread's CPU share starts
            self._last_look = (due, self.cpu_clock())
        if self._ticks <= self._every - SAMPLE_TICKS:
            return None
        period = self.period
        sampled, before = self._ages, len(self._ages)
        for call in calls:
            self._calls_seen = True
            if call.active and -period < (age := due - call.last_caller_audio) < period:
                sampled.append(age)
        self._labels.extend([self._ticks] * (len(sampled) - before))
        if self._ticks < self._every:
            return None
        ages, ticks = np.array(self._ages), np.array(self._labels)
        self._ages, self._labels, self._ticks = [], [], 0
        if not self._calls_seen:  # no call left: the next calls' first move is free
            self.top = None
        self._calls_seen = False
        busy = self._busy(due)
        top = self.top
        room = None if top is None else DESCENT_S - (top - self.phase)
        move = None if busy else best_move(ages, period, self.margin, ticks, room)
        self._every = SOON_TICKS if move is not None else min(2 * self._every, EVERY_TICKS)
        if move is None:
            return None
        if top is None:  # the first move: the calls settle, and its phase is the top
            self.phase = self.top = 0.0
            return dataclasses.replace(move, stamps=max(0.0, move.seconds))
        self.phase += move.seconds
        self.top = max(top, self.phase)
        return dataclasses.replace(move, stamps=max(0.0, self.phase - top))

    def _busy(self, due: float) -> bool:
        """The media thread used more than BUSY_SHARE of the time since the last look."""
        cpu, last = self.cpu_clock(), self._last_look
        self._last_look = (due, cpu)
        return last is not None and due > last[0] and cpu - last[1] > BUSY_SHARE * (due - last[0])
