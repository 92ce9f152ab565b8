"""Streaming keypad-tone (DTMF) detector, for one call or a batch of calls.

Pipeline per tick: the Goertzel bank measures every 5 ms hop of every call at
once; `classify` turns each hop into a key or nothing; a small state machine,
vectorised over calls and over the hops of a frame, turns runs of hops into key
presses.  A press needs `MIN_HITS` matching hops (about 30 ms of tone, so 40 ms
tones pass and 20 ms tones do not) and ends after two non-matching hops or as
soon as a different key shows up, so one dropped hop in noise does not split a
digit and a 40 ms pause separates two.
Interruptions (packet-loss concealment, a TV): ITU-T Q.24 / ETSI ES 201 235-3 ask
that a break of up to 10 ms does not end a key, while 20 ms of silence separates
two.  With a 20 ms window a 10 ms break spoils five or six hops, as many as a 20 ms
pause, so hops cannot tell them apart; the fine envelope can.  A press that ends
is therefore held back (`BRIDGE_HOLD_SECONDS`); if the same key is confirmed again
meanwhile and the tone was never absent for `BRIDGE_SECONDS` or more at a stretch
in between (measured sample by sample with `dsp.edges`), the two are one press.
Otherwise the held press is reported: at the hold's end, when another key is
confirmed, or at `flush`.
Exact edges come from `dsp.edges` on a short history of samples; that work is
done only at the rare moments a press is confirmed or ends.
"""

from __future__ import annotations

from functools import lru_cache
from types import CodeType
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from dsp import edges
from dsp.classify import STRICT, Limits, amplitudes, classify
from dsp.events import DigitEvent
from dsp.goertzel import GoertzelBank, HopFeatures
from dsp.keypad import KEYS, to_int16

MIN_HITS = 3
MAX_GAP = 1  # non-matching hops bridged inside a press (`_run_hops` relies on one)
HISTORY_SECONDS = 0.5
REFINE_WINDOWS = 4  # 80 ms of history around an edge being refined
#: An edge is first looked for this far (in windows) from its anchor, half a
#: window inside the coarse edge, and a little way (REFINE_BEYOND_SECONDS) the
#: other side of the anchor; edges lie about half a window from the anchor, and
#: any not settled there are looked for in the whole history (same answer,
#: more work).
REFINE_REACH_WINDOWS = 0.6
REFINE_BEYOND_SECONDS = 0.002
CHUNK_SECONDS = 0.1
#: A break in a tone shorter than this (longest run of absence, sample-exact) is
#: bridged; ES 201 235-3: breaks of <= 10 ms are one key, >= 20 ms of silence two.
BRIDGE_SECONDS = 0.015
#: How long an ended press waits for its key to come back: a 10 ms break, then a
#: whole window and MIN_HITS - 1 more hops of tone, and a hop of slack.
BRIDGE_HOLD_SECONDS = 0.045


@lru_cache(maxsize=16)
def _list_display(n: int) -> CodeType:
    """A compiled `[[], [], ...]` of n lists: evaluating it makes n fresh empty lists
    faster than a comprehension (one bytecode per list instead of a loop step)."""
    return compile("[" + "[]," * n + "]", "<empty lists>", "eval")


def _empty_lists(n: int) -> list[list[DigitEvent]]:
    """n distinct empty lists (one per call: callers may extend theirs)."""
    lists: list[list[DigitEvent]] = eval(_list_display(n))
    return lists


class TickHops(NamedTuple):
    """The press state machine over one tick's hops, (calls, hops) arrays."""

    press: NDArray[np.int64]  # key of the press running after each hop (-1: none)
    prior: NDArray[np.int64]  # the press running before each hop
    ends: NDArray[np.int64]  # input index one past each hop's window
    amp: NDArray[np.float64]  # (calls, hops + 1, 2) steady amplitudes; [:, h + 1] after hop h
    first_end: NDArray[np.int64]  # window end of the running press's first matching hop
    last_before: NDArray[np.int64]  # window end of its last matching hop before each hop


class BatchDtmfDetector:
    """DTMF detector for `n_calls` channels fed (calls x samples) per tick."""

    def __init__(self, n_calls: int, sample_rate: int = 8000, limits: Limits = STRICT) -> None:
        self.n_calls = n_calls
        self.rate = sample_rate
        self.limits = limits
        self.bank = GoertzelBank(n_calls, sample_rate)
        # int16 history is enough for edge refinement and halves the copying
        self._ring = np.zeros((n_calls, int(HISTORY_SECONDS * sample_rate)), np.int16)
        self._ring_pos = 0  # shared write position; a call's sample s sits at origin + s
        self._ring_origin = np.zeros(n_calls, np.int64)
        # sliding views of the ring, by length
        self._ring_windows: dict[int, NDArray[np.int16]] = {}
        self._chunk = int(CHUNK_SECONDS * sample_rate)
        self._reach = int(REFINE_REACH_WINDOWS * self.bank.window)
        self._beyond = int(REFINE_BEYOND_SECONDS * sample_rate)
        self._cur = np.full(n_calls, -1)
        self._hits = np.zeros(n_calls, np.int64)
        self._miss = np.zeros(n_calls, np.int64)
        self._first_end = np.zeros(n_calls, np.int64)
        self._last_end = np.zeros(n_calls, np.int64)
        self._start = np.zeros(n_calls, np.int64)
        self._amp = np.zeros((n_calls, 2))  # steady amplitudes of the running press
        # the press held back after it ended, waiting for a bridged break (-1: none)
        self._held_key = np.full(n_calls, -1)
        self._held_start = np.zeros(n_calls, np.int64)
        self._held_stop = np.zeros(n_calls, np.int64)
        self._held_amp = np.zeros((n_calls, 2))
        self._hold = int(BRIDGE_HOLD_SECONDS * sample_rate)
        self._bridge = int(BRIDGE_SECONDS * sample_rate)
        #: features and codes of the hops of the last tick (for the masker)
        self.last_features: HopFeatures | None = None

    @property
    def samples_in(self) -> NDArray[np.int64]:
        return self.bank.samples_in

    def reset(self, call: int) -> None:
        """Forget a call (slot reuse): its next sample is sample 0."""
        self.bank.reset(call)
        self._ring[call] = 0
        self._ring_origin[call] = self._ring_pos
        self._cur[call] = -1
        self._hits[call] = self._miss[call] = 0
        self._held_key[call] = -1

    def process(self, frames: ArrayLike) -> list[list[DigitEvent]]:
        """Feed (calls, n) samples; returns each call's key presses that ended."""
        frames = np.asarray(frames)
        if frames.ndim != 2 or frames.shape[0] != self.n_calls:
            raise ValueError(f"expected frames shaped ({self.n_calls}, n)")
        out = _empty_lists(self.n_calls)
        for i in range(0, max(frames.shape[1], 1), self._chunk):
            self._process_chunk(frames[:, i : i + self._chunk], out)
        return out

    def flush(self) -> list[list[DigitEvent]]:
        """End every stream: report presses still running."""
        out = _empty_lists(self.n_calls)
        held = np.flatnonzero(self._held_key >= 0)
        if held.size:
            self._release(held, out)
        calls = np.flatnonzero((self._cur >= 0) & (self._hits >= MIN_HITS))
        if calls.size:
            self._emit(calls, self.samples_in[calls].copy(), out)
        self._cur[:] = -1
        self._hits[:] = 0
        self._miss[:] = 0
        return out

    def _process_chunk(self, frames: NDArray[np.generic], out: list[list[DigitEvent]]) -> None:
        if frames.shape[1] == 0:
            return
        self._write_ring(frames)
        f = self.bank.process(frames)
        self.last_features = f
        if f.calls.size or self._cur.max() >= 0:  # else nothing measured, no press running
            codes = classify(f, self.limits, self.bank.window)
            busy = np.flatnonzero((codes >= 0).any(axis=1) | (self._cur >= 0))
            if busy.size:
                amps = amplitudes(f, self.bank.window)
                self._run_hops(busy, codes[busy], f.window_end[busy], amps[busy], out)
        if self._held_key.max() >= 0:
            # held presses whose hold is over, unless their key is back (not yet confirmed)
            done = (self._held_key >= 0) & (self.samples_in - self._held_stop > self._hold)
            done &= self._cur != self._held_key
            if done.any():
                self._release(np.flatnonzero(done), out)

    def _run_hops(
        self,
        calls: NDArray[np.int64],
        codes: NDArray[np.int64],
        ends: NDArray[np.int64],
        amps: NDArray[np.float64],
        out: list[list[DigitEvent]],
    ) -> None:
        """The press state machine over the hops of a tick, for the `calls` that are busy.

        With one hop bridged (MAX_GAP), the press running after hop h is the
        hop's key if it has one, else the previous hop's key (a first miss is
        bridged) or none (a second miss ends it); so presses, their starts and
        ends, and the matching hops counted so far follow for all hops at once
        from shifted copies and running sums, with a loop over hops only for the
        press amplitudes.  The edge refinements the hops ask for are done
        together, in one vectorised pass, and applied in hop order.
        """
        n_hops = codes.shape[1]
        if n_hops == 0:
            return
        cur, hits_in = self._cur[calls], self._hits[calls]
        keyed = codes >= 0
        # code of the hop before this tick's first (-1 after a bridged miss)
        before = np.where(self._miss[calls] == 0, cur, -1)
        press = np.where(keyed, codes, np.column_stack([before, codes[:, :-1]]))
        prior = np.column_stack([cur, press[:, :-1]])  # the press running before each hop
        change = press != prior
        same = keyed & ~change
        # matching hops of the running press so far: counted from its first hop
        # when it started in this tick, else on top of the hits carried in
        counted = np.cumsum(keyed, axis=1)
        hop = np.arange(n_hops)
        began = np.maximum.accumulate(np.where(change, hop, -1), axis=1)
        rows = np.arange(len(calls))[:, None]
        first = np.maximum(began, 0)  # (where the press began in this tick)
        since = counted - counted[rows, first] + keyed[rows, first]
        hits = np.where(began >= 0, since, hits_in[:, None] + counted)
        hits_before = np.column_stack([hits_in, hits[:, :-1]])
        first_end = np.where(began >= 0, ends[rows, first], self._first_end[calls, None])
        # end of the latest matching hop: this tick's if there is one (ends grow
        # hop by hop), else the one carried in (never mixed: a slot reused by
        # `reset` carries the old stream's, larger, sample indices)
        latest = np.maximum.accumulate(np.where(keyed, ends, -1), axis=1)
        last_end = np.where(latest >= 0, latest, self._last_end[calls, None])
        last_before = np.column_stack([self._last_end[calls], last_end[:, :-1]])
        amp = np.empty((len(calls), n_hops + 1, 2))  # amp[:, h + 1]: after hop h
        amp[:, 0] = self._amp[calls]
        kept = ~(change & keyed)
        heard = amps * keyed[..., None]
        for h in range(n_hops):
            np.maximum(amp[:, h] * kept[:, h, None], heard[:, h], out=amp[:, h + 1])
        confirmed = same & (hits == MIN_HITS)
        ended = change & (prior >= 0) & (hits_before >= MIN_HITS)
        start = self._start[calls]
        if confirmed.any() or ended.any():
            hops = TickHops(press, prior, ends, amp, first_end, last_before)
            self._answer(calls, confirmed, ended, hops, start, out)
        last = n_hops - 1
        self._cur[calls] = press[:, last]
        self._hits[calls] = np.where(press[:, last] >= 0, hits[:, last], 0)
        self._miss[calls] = (press[:, last] >= 0) & ~keyed[:, last]
        self._first_end[calls], self._last_end[calls] = first_end[:, last], last_end[:, last]
        self._amp[calls], self._start[calls] = amp[:, -1], start

    def _answer(
        self,
        calls: NDArray[np.int64],
        confirmed: NDArray[np.bool_],
        ended: NDArray[np.bool_],
        hops: TickHops,
        start: NDArray[np.int64],
        out: list[list[DigitEvent]],
    ) -> None:
        """Refine every edge the hops ask for at once: exact onsets of the presses
        `confirmed` (into `start`), exact ends of those `ended` (reported)."""
        press, prior, ends, amp, first_end, last_before = hops
        oc, oh = np.nonzero(confirmed)
        ec, eh = np.nonzero(ended)
        idx = np.concatenate([oc, ec])
        at = (idx, np.concatenate([oh, eh]))
        is_onset = np.arange(len(idx)) < len(oc)
        keys = np.where(is_onset, press[at], prior[at])
        coarse = np.where(is_onset, first_end[at] - self.bank.window, last_before[at])
        level = np.where(is_onset[:, None], amp[idx, at[1] + 1], amp[idx, at[1]])
        exact = self._exact_edges(calls[idx], ends[at], keys, level, coarse, is_onset)
        onsets, stops = exact[: len(oc)], exact[len(oc) :]
        confirming = np.zeros(len(calls), bool)
        confirming[oc] = True
        ends_at = (keys[len(oc) :], stops, level[len(oc) :])
        if not confirming[ec].any():  # no press both confirmed and ended in this tick
            start[oc] = onsets
            if len(oc):
                self._confirmed(calls[oc], keys[: len(oc)], start, oc, out)
            if len(ec):
                self._ended(calls[ec], start[ec], *ends_at, out)
            return
        end_keys, end_stops, end_amps = ends_at
        for h in range(press.shape[1]):  # a press confirmed and ended within the tick
            now = oh == h
            if now.any():
                start[oc[now]] = onsets[now]
                self._confirmed(calls[oc[now]], keys[: len(oc)][now], start, oc[now], out)
            now = eh == h
            if now.any():
                rows = ec[now]
                self._ended(
                    calls[rows], start[rows], end_keys[now], end_stops[now], end_amps[now], out
                )

    def _confirmed(
        self,
        calls: NDArray[np.int64],
        keys: NDArray[np.int64],
        start: NDArray[np.int64],
        rows: NDArray[np.int64],
        out: list[list[DigitEvent]],
    ) -> None:
        """Presses of `keys` just confirmed on `calls`, with onsets in start[rows]: one
        of the same key held back across a short break takes it over (its start
        stands); any other held press is over and is reported."""
        held = self._held_key[calls] >= 0
        if not held.any():
            return
        calls, keys, rows = calls[held], keys[held], rows[held]
        same = self._held_key[calls] == keys
        if same.any():
            c = calls[same]
            gap = self._longest_absence(
                c, self._held_stop[c], start[rows[same]], keys[same], self._held_amp[c]
            )
            bridged = gap < self._bridge
            start[rows[same][bridged]] = self._held_start[c[bridged]]
            self._held_key[c[bridged]] = -1
        self._release(calls[self._held_key[calls] >= 0], out)

    def _ended(
        self,
        calls: NDArray[np.int64],
        starts: NDArray[np.int64],
        keys: NDArray[np.int64],
        stops: NDArray[np.int64],
        amps: NDArray[np.float64],
        out: list[list[DigitEvent]],
    ) -> None:
        """Presses that just ended: held back in case their tone comes back."""
        earlier = calls[self._held_key[calls] >= 0]
        if earlier.size:
            self._release(earlier, out)
        self._held_key[calls] = keys
        self._held_start[calls] = starts
        self._held_stop[calls] = stops
        self._held_amp[calls] = amps

    def _release(self, calls: NDArray[np.int64], out: list[list[DigitEvent]]) -> None:
        """Report the held presses of `calls`."""
        self._report(
            calls, self._held_key[calls], self._held_start[calls], self._held_stop[calls], out
        )
        self._held_key[calls] = -1

    def _longest_absence(
        self,
        calls: NDArray[np.int64],
        stops: NDArray[np.int64],
        onsets: NDArray[np.int64],
        keys: NDArray[np.int64],
        amps: NDArray[np.float64],
    ) -> NDArray[np.int64]:
        """Per call, the longest run of samples in [stop, onset) where the key's tone
        is absent (either tone below half its steady amplitude, `dsp.edges`)."""
        half = self.rate // 200
        width = np.maximum(onsets - stops, 0)
        n = int(width.max()) + 2 * half
        segs = self._history(calls, stops - half, n)
        present = edges.presence_of_keys(segs, keys, self.rate, amps)
        span = np.arange(n) - half
        absent = ~present & (span >= 0) & (span < width[:, None])
        count = np.cumsum(absent, axis=1)
        since = count - np.maximum.accumulate(np.where(absent, 0, count), axis=1)
        longest: NDArray[np.int64] = since.max(axis=1)
        return longest

    def _exact_edges(
        self,
        calls: NDArray[np.int64],
        now: NDArray[np.int64],
        keys: NDArray[np.int64],
        amp: NDArray[np.float64],
        coarse: NDArray[np.int64],
        is_onset: NDArray[np.bool_],
    ) -> NDArray[np.int64]:
        """Sample-exact onsets (or ends) of the tones of `keys`, near the coarse ones.

        The history ending at `now` is searched for the run of the key's tone
        around half a window inside the coarse edge; where none is found (or an
        end is not yet decided by later samples) the coarse edge stands.
        """
        half = self.bank.window // 2
        length = REFINE_WINDOWS * self.bank.window
        seg0 = now - length
        anchor = np.where(is_onset, coarse + half, coarse - half) - seg0

        def cut(rows: NDArray[np.int64], starts: NDArray[np.int64], n: int) -> NDArray[np.int16]:
            return self._history(calls[rows], seg0[rows] + starts, n)

        edge = edges.key_run_edges_in(
            cut, length, keys, self.rate, amp, anchor, is_onset, self._reach, self._beyond
        )
        decided = (edge >= 0) & (edge < length - self.rate // 200)
        exact: NDArray[np.int64] = np.where(
            is_onset,
            np.where(edge >= 0, seg0 + edge, coarse),
            np.where(decided, seg0 + edge, coarse),
        )
        return exact

    def _report(
        self,
        calls: NDArray[np.int64],
        keys: NDArray[np.int64],
        starts: NDArray[np.int64],
        stops: NDArray[np.int64],
        out: list[list[DigitEvent]],
    ) -> None:
        for call, key, begin, stop in zip(
            calls.tolist(), keys.tolist(), starts.tolist(), stops.tolist(), strict=True
        ):
            out[call].append(DigitEvent(KEYS[key], begin, stop, "inband"))

    def _write_ring(self, frames: NDArray[np.generic]) -> None:
        if frames.dtype != np.int16:
            frames = to_int16(frames)
        size = self._ring.shape[1]
        n = frames.shape[1]
        first = min(n, size - self._ring_pos)
        self._ring[:, self._ring_pos : self._ring_pos + first] = frames[:, :first]
        self._ring[:, : n - first] = frames[:, first:]
        self._ring_pos = (self._ring_pos + n) % size

    def _history(
        self, calls: NDArray[np.int64], first: NDArray[np.int64], n: int
    ) -> NDArray[np.int16]:
        """(calls, n) samples of each call from its sample `first` on (0 before sample 0)."""
        size = self._ring.shape[1]
        at = (self._ring_origin[calls] + first) % size
        if at.max() <= size - n:
            # nothing wraps round the ring: plain row slices
            if n not in self._ring_windows:
                self._ring_windows[n] = sliding_window_view(self._ring, n, axis=1)
            segs: NDArray[np.int16] = self._ring_windows[n][calls, at]
        else:
            segs = self._ring[calls[:, None], (at[:, None] + np.arange(n)) % size]
        if first.min() < 0:
            segs = np.where(first[:, None] + np.arange(n) >= 0, segs, 0)
        return segs

    def _emit(
        self, calls: NDArray[np.int64], now: NDArray[np.int64], out: list[list[DigitEvent]]
    ) -> None:
        """Report the presses of `calls`, which have just ended (end of stream), with
        exact ends."""
        keys = self._cur[calls]
        last = self._last_end[calls]
        stops = self._exact_edges(
            calls, now, keys, self._amp[calls], last, np.zeros(len(calls), bool)
        )
        self._report(calls, keys, self._start[calls], stops, out)


class DtmfDetector:
    """DTMF detector for one stream: `process` frames of any length, `flush` at the end."""

    def __init__(self, sample_rate: int = 8000) -> None:
        self._batch = BatchDtmfDetector(1, sample_rate)

    @property
    def sample_rate(self) -> int:
        return self._batch.rate

    def process(self, frame: ArrayLike) -> list[DigitEvent]:
        return self._batch.process(np.asarray(frame).reshape(1, -1))[0]

    def flush(self) -> list[DigitEvent]:
        return self._batch.flush()[0]


def detect(
    samples: NDArray[np.generic], sample_rate: int = 8000, frame: int | None = None
) -> list[DigitEvent]:
    """Every key press in a whole signal, fed in 20 ms frames like a live call."""
    det = DtmfDetector(sample_rate)
    step = frame or sample_rate // 50
    events: list[DigitEvent] = []
    for i in range(0, len(samples), step):
        events += det.process(samples[i : i + step])
    return events + det.flush()
