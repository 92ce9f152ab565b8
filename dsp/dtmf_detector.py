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

from dsp import edges
from dsp.classify import STRICT, Limits, amplitudes, classify
from dsp.events import DigitEvent
from dsp.goertzel import KEYS, GoertzelBank, HopFeatures

MIN_HITS = 3
MAX_GAP = 1  # non-matching hops bridged inside a press
HISTORY_SECONDS = 0.5
REFINE_WINDOWS = 4  # 80 ms of history around an edge being refined
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
        codes = classify(f, self.limits, self.bank.window)
        busy = np.flatnonzero((codes >= 0).any(axis=1) | (self._cur >= 0))
        if busy.size == 0:
            return
        amps = amplitudes(f, self.bank.window)
        for h in range(codes.shape[1]):
            self._step(busy, codes[busy, h], f.window_end[busy, h], amps[busy, h], out)

    def _write_ring(self, frames: np.ndarray) -> None:
        if frames.dtype != np.int16:
            frames = np.clip(np.rint(frames), -32768, 32767).astype(np.int16)
        size = self._ring.shape[1]
        n = frames.shape[1]
        first = min(n, size - self._ring_pos)
        self._ring[:, self._ring_pos : self._ring_pos + first] = frames[:, :first]
        self._ring[:, : n - first] = frames[:, first:]
        self._ring_pos = (self._ring_pos + n) % size

    def _step(
        self,
        calls: np.ndarray,
        code: np.ndarray,
        end: np.ndarray,
        amp: np.ndarray,
        out: list[list[DigitEvent]],
    ) -> None:
        """One hop of the press state machine for the `calls` that are busy."""
        cur, hits, miss = self._cur[calls], self._hits[calls], self._miss[calls]
        active = cur >= 0
        same = active & (code == cur)
        hits = hits + same
        self._last_end[calls] = np.where(same, end, self._last_end[calls])
        self._amp[calls] = np.where(
            same[:, None], np.maximum(self._amp[calls], amp), self._amp[calls]
        )
        miss = np.where(same, 0, miss + (active & ~same))
        ending = active & ~same & ((code >= 0) | (miss > MAX_GAP))
        self._hits[calls] = hits
        confirmed = np.flatnonzero(same & (hits == MIN_HITS))
        if confirmed.size:
            self._refine_starts(calls[confirmed], end[confirmed])
        ended = np.flatnonzero(ending & (hits >= MIN_HITS))
        if ended.size:
            self._emit(calls[ended], end[ended], out)
        starting = (ending | ~active) & (code >= 0)
        self._cur[calls] = np.where(starting, code, np.where(ending, -1, cur))
        self._hits[calls] = np.where(starting, 1, np.where(ending, 0, hits))
        self._miss[calls] = np.where(starting | ending, 0, miss)
        self._first_end[calls] = np.where(starting, end, self._first_end[calls])
        self._last_end[calls] = np.where(starting, end, self._last_end[calls])
        self._amp[calls] = np.where(starting[:, None], amp, self._amp[calls])

    def _histories(self, calls: np.ndarray, now: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(calls, REFINE_WINDOWS windows) of samples ending at `now`, and their first index."""
        size = self._ring.shape[1]
        length = REFINE_WINDOWS * self.bank.window
        seg0 = now - length
        absolute = seg0[:, None] + np.arange(length)
        segs = self._ring[calls[:, None], (self._ring_origin[calls, None] + absolute) % size]
        return np.where(absolute >= 0, segs, 0), seg0

    def _presence(self, calls: np.ndarray, now: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        segs, seg0 = self._histories(calls, now)
        keys = self._cur[calls]
        return edges.presence_of_keys(segs, keys, self.rate, self._amp[calls]), seg0

    def _refine_starts(self, calls: np.ndarray, now: np.ndarray) -> None:
        """Exact onsets of the presses of `calls`, just confirmed."""
        w = self.bank.window
        coarse = self._first_end[calls] - w
        present, seg0 = self._presence(calls, now)
        start, _ = edges.run_bounds(present, coarse + w // 2 - seg0)
        self._start[calls] = np.where(start >= 0, seg0 + start, coarse)

    def _emit(self, calls: np.ndarray, now: np.ndarray, out: list[list[DigitEvent]]) -> None:
        """Report the presses of `calls`, which have just ended, with exact ends."""
        w = self.bank.window
        last = self._last_end[calls]
        present, seg0 = self._presence(calls, now)
        _, end = edges.run_bounds(present, last - w // 2 - seg0)
        decided = (end >= 0) & (end < present.shape[1] - self.rate // 200)
        ends = np.where(decided, seg0 + end, last)
        for call, stop in zip(calls.tolist(), ends.tolist(), strict=True):
            key = KEYS[int(self._cur[call])]
            out[call].append(DigitEvent(key, int(self._start[call]), int(stop), "inband"))


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
