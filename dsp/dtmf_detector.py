"""Streaming keypad-tone (DTMF) detector, for one call or a batch of calls.

Pipeline per tick: the Goertzel bank measures every 5 ms hop of every call at
once; `classify` turns each hop into a key or nothing; a small state machine,
vectorised over calls and looping only over the few hops of a frame, turns runs
of hops into key presses.  A press needs `MIN_HITS` matching hops (about 30 ms
of tone, so 40 ms tones pass and 20 ms tones do not) and ends after
`MAX_GAP` non-matching hops or as soon as a different key shows up, so one
dropped hop in noise does not split a digit and a 40 ms pause separates two.
Exact edges come from `dsp.edges` on a short history of samples; that work is
done only at the rare moments a press is confirmed or ends.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from dsp import edges
from dsp.classify import STRICT, Limits, amplitudes, classify
from dsp.events import DigitEvent
from dsp.goertzel import KEYS, GoertzelBank, HopFeatures

MIN_HITS = 3
MAX_GAP = 1  # non-matching hops bridged inside a press
HISTORY_SECONDS = 0.5
REFINE_WINDOWS = 4  # 80 ms of history around an edge being refined
#: An edge is first looked for this far (in windows) from its coarse position;
#: edges lie within about half a window of it, and any not found there are
#: looked for in the whole history (same answer, more work).
REFINE_REACH_WINDOWS = 0.75
CHUNK_SECONDS = 0.1


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
        self._chunk = int(CHUNK_SECONDS * sample_rate)
        self._reach = int(REFINE_REACH_WINDOWS * self.bank.window)
        self._cur = np.full(n_calls, -1)
        self._hits = np.zeros(n_calls, np.int64)
        self._miss = np.zeros(n_calls, np.int64)
        self._first_end = np.zeros(n_calls, np.int64)
        self._last_end = np.zeros(n_calls, np.int64)
        self._start = np.zeros(n_calls, np.int64)
        self._amp = np.zeros((n_calls, 2))  # steady amplitudes of the running press
        #: features and codes of the hops of the last tick (for the masker)
        self.last_features: HopFeatures | None = None

    @property
    def samples_in(self) -> np.ndarray:
        return self.bank.samples_in

    def reset(self, call: int) -> None:
        """Forget a call (slot reuse): its next sample is sample 0."""
        self.bank.reset(call)
        self._ring[call] = 0
        self._ring_origin[call] = self._ring_pos
        self._cur[call] = -1
        self._hits[call] = self._miss[call] = 0

    def process(self, frames: np.ndarray) -> list[list[DigitEvent]]:
        """Feed (calls, n) samples; returns each call's key presses that ended."""
        frames = np.asarray(frames)
        if frames.ndim != 2 or frames.shape[0] != self.n_calls:
            raise ValueError(f"expected frames shaped ({self.n_calls}, n)")
        out: list[list[DigitEvent]] = [[] for _ in range(self.n_calls)]
        for i in range(0, max(frames.shape[1], 1), self._chunk):
            self._process_chunk(frames[:, i : i + self._chunk], out)
        return out

    def flush(self) -> list[list[DigitEvent]]:
        """End every stream: report presses still running."""
        out: list[list[DigitEvent]] = [[] for _ in range(self.n_calls)]
        calls = np.flatnonzero((self._cur >= 0) & (self._hits >= MIN_HITS))
        if calls.size:
            self._emit(calls, self.samples_in[calls].copy(), out)
        self._cur[:] = -1
        self._hits[:] = 0
        self._miss[:] = 0
        return out

    def _process_chunk(self, frames: np.ndarray, out: list[list[DigitEvent]]) -> None:
        if frames.shape[1] == 0:
            return
        self._write_ring(frames)
        f = self.bank.process(frames)
        self.last_features = f
        if f.calls.size == 0 and self._cur.max() < 0:
            return  # nothing measured and no press running (the usual tick)
        codes = classify(f, self.limits, self.bank.window)
        busy = np.flatnonzero((codes >= 0).any(axis=1) | (self._cur >= 0))
        if busy.size == 0:
            return
        amps = amplitudes(f, self.bank.window)
        self._run_hops(busy, codes[busy], f.window_end[busy], amps[busy], out)

    def _run_hops(
        self,
        calls: np.ndarray,
        codes: np.ndarray,
        ends: np.ndarray,
        amps: np.ndarray,
        out: list[list[DigitEvent]],
    ) -> None:
        """The press state machine over the hops of a tick, for the `calls` that are busy.

        State is gathered once, stepped hop by hop on local arrays and written
        back once; the edge refinements the hops ask for are done together at
        the end, in one vectorised pass, and applied in hop order.
        """
        cur, hits, miss = self._cur[calls], self._hits[calls], self._miss[calls]
        first_end, last_end = self._first_end[calls], self._last_end[calls]
        amp, start = self._amp[calls], self._start[calls]
        asks: list[tuple[bool, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for h in range(codes.shape[1]):
            code, end, a = codes[:, h], ends[:, h], amps[:, h]
            active = cur >= 0
            same = active & (code == cur)
            hits = hits + same
            last_end = np.where(same, end, last_end)
            amp = np.where(same[:, None], np.maximum(amp, a), amp)
            miss = np.where(same, 0, miss + (active & ~same))
            ending = active & ~same & ((code >= 0) | (miss > MAX_GAP))
            confirmed = np.flatnonzero(same & (hits == MIN_HITS))
            if confirmed.size:  # exact onset, from the first matching window
                i = confirmed
                coarse = first_end[i] - self.bank.window
                asks.append((True, i, end[i], cur[i], amp[i], coarse))
            ended = np.flatnonzero(ending & (hits >= MIN_HITS))
            if ended.size:  # exact end, from the last matching window
                i = ended
                asks.append((False, i, end[i], cur[i], amp[i], last_end[i]))
            starting = (ending | ~active) & (code >= 0)
            cur = np.where(starting, code, np.where(ending, -1, cur))
            hits = np.where(starting, 1, np.where(ending, 0, hits))
            miss = np.where(starting | ending, 0, miss)
            first_end = np.where(starting, end, first_end)
            last_end = np.where(starting, end, last_end)
            amp = np.where(starting[:, None], a, amp)
        if asks:
            self._answer(calls, asks, start, out)
        self._cur[calls], self._hits[calls], self._miss[calls] = cur, hits, miss
        self._first_end[calls], self._last_end[calls] = first_end, last_end
        self._amp[calls], self._start[calls] = amp, start

    def _answer(self, calls, asks, start, out: list[list[DigitEvent]]) -> None:
        """Refine every edge `asks` wants at once; set onsets in `start`, emit ended presses."""
        idx = np.concatenate([a[1] for a in asks])
        now = np.concatenate([a[2] for a in asks])
        keys = np.concatenate([a[3] for a in asks])
        amp = np.concatenate([a[4] for a in asks])
        coarse = np.concatenate([a[5] for a in asks])
        is_onset = np.concatenate([np.full(len(a[1]), a[0]) for a in asks])
        exact = self._exact_edges(calls[idx], now, keys, amp, coarse, is_onset)
        at = 0
        for onset, i, *_ in asks:
            values = exact[at : at + len(i)]
            at += len(i)
            if onset:
                start[i] = values
            else:
                self._report(calls[i], keys[at - len(i) : at], start[i], values, out)

    def _exact_edges(self, calls, now, keys, amp, coarse, is_onset) -> np.ndarray:
        """Sample-exact onsets (or ends) of the tones of `keys`, near the coarse ones.

        The history ending at `now` is searched for the run of the key's tone
        around half a window inside the coarse edge; where none is found (or an
        end is not yet decided by later samples) the coarse edge stands.
        """
        half = self.bank.window // 2
        segs, seg0 = self._histories(calls, now)
        anchor = np.where(is_onset, coarse + half, coarse - half) - seg0
        edge = edges.key_run_edges(
            segs, keys, self.rate, amp, anchor, is_onset, self._reach
        )
        decided = (edge >= 0) & (edge < segs.shape[1] - self.rate // 200)
        return np.where(
            is_onset,
            np.where(edge >= 0, seg0 + edge, coarse),
            np.where(decided, seg0 + edge, coarse),
        )

    def _report(self, calls, keys, starts, stops, out: list[list[DigitEvent]]) -> None:
        for call, key, begin, stop in zip(
            calls.tolist(), keys.tolist(), starts.tolist(), stops.tolist(), strict=True
        ):
            out[call].append(DigitEvent(KEYS[key], begin, stop, "inband"))

    def _write_ring(self, frames: np.ndarray) -> None:
        if frames.dtype != np.int16:
            frames = np.clip(np.rint(frames), -32768, 32767).astype(np.int16)
        size = self._ring.shape[1]
        n = frames.shape[1]
        first = min(n, size - self._ring_pos)
        self._ring[:, self._ring_pos : self._ring_pos + first] = frames[:, :first]
        self._ring[:, : n - first] = frames[:, first:]
        self._ring_pos = (self._ring_pos + n) % size

    def _histories(self, calls: np.ndarray, now: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(calls, REFINE_WINDOWS windows) of samples ending at `now`, and their first index."""
        size = self._ring.shape[1]
        length = REFINE_WINDOWS * self.bank.window
        seg0 = now - length
        first = (self._ring_origin[calls] + seg0) % size
        if seg0.min() >= 0 and first.max() <= size - length:
            # no history wraps round the ring: plain row slices
            return sliding_window_view(self._ring, length, axis=1)[calls, first], seg0
        absolute = seg0[:, None] + np.arange(length)
        segs = self._ring[calls[:, None], (self._ring_origin[calls, None] + absolute) % size]
        return np.where(absolute >= 0, segs, 0), seg0

    def _emit(self, calls: np.ndarray, now: np.ndarray, out: list[list[DigitEvent]]) -> None:
        """Report the presses of `calls`, which have just ended, with exact ends."""
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

    def process(self, frame: np.ndarray) -> list[DigitEvent]:
        return self._batch.process(np.asarray(frame).reshape(1, -1))[0]

    def flush(self) -> list[DigitEvent]:
        return self._batch.flush()[0]


def detect(
    samples: np.ndarray, sample_rate: int = 8000, frame: int | None = None
) -> list[DigitEvent]:
    """Every key press in a whole signal, fed in 20 ms frames like a live call."""
    det = DtmfDetector(sample_rate)
    step = frame or sample_rate // 50
    events: list[DigitEvent] = []
    for i in range(0, len(samples), step):
        events += det.process(samples[i : i + step])
    return events + det.flush()
