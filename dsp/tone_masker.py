"""Streaming keypad-tone masker: the agent never hears a key press.

The masker delays the audio by a fixed look-ahead (default 40 ms) and decides,
while a sample is still inside that look-ahead, whether it belongs to a keypad
tone.  Per tick:

1. the DTMF detector runs on the new frame (digits are reported as events,
   never logged) and the same filter-bank hops are classified against the looser
   `CANDIDATE` and `BURIED` limits, plus a blind start for keys under louder
   talk or music (the same `STABLE` pair over `STABLE_HOPS` hops in a row), so a
   tone is masked as soon as it *may* become a digit;
2. tracking: an established key stays live while its row and column are still
   the strongest of their groups (`HopFeatures.pair`, the criterion of a
   receiver with no other check), however much talk or music the tone is under;
3. for each call that has a live key in its buffer (rare, so the work is on those
   rows only), `dsp.edges.presence_of_keys` finds the tone's extent with a fine
   two-frequency envelope: the runs where both tones are at half their amplitude,
   between the key's first and last hop, grown by hysteresis over runs at
   `LOW_FRACTION` (a tail under talk, the key's line echo) and over holes under
   `FILL_SECONDS`, then widened by a small guard for the tone's onset and decay;
   RFC 4733 / INFO digits arrive as `force_mask` spans;
4. the oldest frame of the buffer leaves, with its masked samples replaced.
   Everything outside a masked span leaves bit-exact.

Replacement modes (`dsp.replacement`):
- ``tone``: one flat 500 Hz tone at -20 dBm0 with raised-cosine on/off ramps;
- ``silence``: digital silence;
- ``noise``: seeded white comfort noise at the level of the recent unmasked audio;
- ``cadence``: hides how many keys were pressed and when.  At the first key
  press (while armed) a rhythm starts at that tone's onset: bursts of the masking
  tone (``cadence_on_ms``, default 120 ms, ramped) alternating with comfort noise
  (``cadence_off_ms``, default 80 ms), on a fixed grid anchored at the first
  onset.  Every further key press extends the rhythm; it stops on the first grid
  boundary at least ``cadence_quiet_ms`` (default 1 s) after the end of the last
  key press.  The whole span from the first onset to that boundary is synthetic,
  so neither the number of digits nor their timing reaches the agent.

`arm()` / `disarm()`: while disarmed, in-band tones are detected and reported
but not masked ("capture" policy).  `force_mask` spans are masked whatever the
arming state, because the caller asked for them explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dsp import edges, replacement
from dsp.classify import BURIED, CANDIDATE, STABLE, amplitudes, classify
from dsp.detector import BatchDtmfDetector
from dsp.events import DigitEvent
from dsp.goertzel import HopFeatures
from dsp.keypad import dbm0_to_peak, to_int16

MODES = ("tone", "silence", "noise", "cadence")
#: Guards around a tone's measured edges (onset jitter, decay), then rounding outwards
#: to a 1 ms grid.  Together they cost about 3 ms of audio on each side of a tone.
GUARD_BEFORE_SECONDS = 0.0025
GUARD_AFTER_SECONDS = 0.0026
GRID_SECONDS = 0.001
#: Breaks shorter than this between two stretches of the same candidate key are
#: masked too: under louder talk a tone's envelope comes and goes, and the pieces
#: left between masked stretches are enough for a loose receiver.
FILL_SECONDS = 0.03
#: Candidate hops a key needs before it is masked (stray single `BURIED` hops at
#: another key's edges are leakage, not a key).  Until then hops count only when
#: they follow each other (talk passes the `BURIED` limits now and then; a key under
#: talk passes them hop after hop).  One hop passing `CANDIDATE` is enough: at a
#: 20 ms look-ahead the first hop wholly inside a key may be the only one there is
#: before its onset leaves, and a key broken by a dropout may not have a second
#: one next to it (talk passes `CANDIDATE` about 4 hops a minute: 0.08 s a minute
#: more speech masked on the shared speech set).
MIN_CANDIDATE_HOPS = 2
#: Candidate hops of a key this close (between windows) continue the same key:
#: a key under talk drops out of the limits now and then.
CONTINUE_SECONDS = 0.02
#: Tracking (issue 8): once a key is established, every hop whose strongest row and
#: column are that key's (`HopFeatures.pair`, what a receiver with no other check
#: hears) keeps it going, if it follows the key's last hop within this gap; the
#: key's extent is then worked out on the newest samples too.
TRACK_GAP_SECONDS = 0.01
#: Hysteresis of the key's extent: a run where both tones are above this fraction
#: of their amplitude (instead of `edges.PRESENT_FRACTION`) is masked when it holds
#: a stretch of the key proper; it takes a tone's tail under talk or music and the
#: line echo of a key (12 dB down) with it.  Only for keys with at least
#: `LOW_MIN_HOPS` candidate hops one of which passed `CANDIDATE`, or
#: `LOW_MIN_BURIED_HOPS` hops (a vowel can pass `BURIED` for 50 ms, and would
#: take the rest of its syllable with it).
LOW_FRACTION = 0.2
LOW_MIN_HOPS = 6
LOW_MIN_BURIED_HOPS = 18
#: Blind start under louder talk or music (`classify.STABLE`): the same pair the
#: strongest of its groups at an accurate frequency over this many hops in a row.
STABLE_HOPS = 5


@dataclass(slots=True)
class MaskResult:
    """One output frame, the key presses that ended and the masked spans that closed."""

    audio: NDArray[np.int16]
    digits: list[DigitEvent] = field(default_factory=list)
    masked: list[tuple[int, int]] = field(default_factory=list)


class BatchMasker:
    """The masker for `n_calls` channels fed (calls x frame) int16 per tick."""

    def __init__(
        self,
        n_calls: int,
        sample_rate: int = 8000,
        lookahead_ms: float = 40.0,
        mode: str = "tone",
        armed: bool = True,
        seed: int = 0,
        cadence_on_ms: float = 120.0,
        cadence_off_ms: float = 80.0,
        cadence_quiet_ms: float = 1000.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if lookahead_ms < 10:
            raise ValueError("look-ahead must be at least 10 ms")
        self.n_calls = n_calls
        self.rate = sample_rate
        self.mode = mode
        self.frame_size = sample_rate // 50
        self.delay = int(round(lookahead_ms * sample_rate / 1000))
        self.detector = BatchDtmfDetector(n_calls, sample_rate)
        self._window = self.detector.bank.window
        self._pre = 2 * self._window
        self._guard_before = int(round(GUARD_BEFORE_SECONDS * sample_rate))
        self._guard_after = int(round(GUARD_AFTER_SECONDS * sample_rate))
        self._grid = max(1, int(round(GRID_SECONDS * sample_rate)))
        self._ramp = int(round(replacement.RAMP_SECONDS * sample_rate))
        self._fill = int(round(FILL_SECONDS * sample_rate))
        self._continue = int(round(CONTINUE_SECONDS * sample_rate))
        self._track_gap = int(round(TRACK_GAP_SECONDS * sample_rate))
        self._cad_on = int(round(cadence_on_ms * sample_rate / 1000))
        self._cad_cycle = self._cad_on + int(round(cadence_off_ms * sample_rate / 1000))
        self._cad_quiet = int(round(cadence_quiet_ms * sample_rate / 1000))
        self._seed = seed
        self._buf = np.zeros((n_calls, self._pre + self.delay), np.int16)
        self._pend = np.zeros((n_calls, self.delay), bool)
        self._in = np.zeros(n_calls, np.int64)
        self._armed_default = bool(armed)
        self._armed = np.full(n_calls, armed)
        self._cand_end = np.full((n_calls, 16), np.iinfo(np.int64).min // 2, np.int64)
        self._cand_amp = np.zeros((n_calls, 16, 2))
        self._cand_hops = np.zeros((n_calls, 16), np.int64)
        self._cand_start = np.zeros((n_calls, 16), np.int64)  # first window's start
        self._cand_strong = np.zeros((n_calls, 16), np.int64)  # hops passing CANDIDATE
        self._stable_code = np.full(n_calls, -1)
        self._stable_run = np.zeros(n_calls, np.int64)
        self._forced: list[list[tuple[int, int]]] = [[] for _ in range(n_calls)]
        self._forcing: set[int] = set()  # calls with forced spans pending
        self._open = np.full(n_calls, -1, np.int64)
        self._run = np.zeros(n_calls, np.int64)
        self._sent_run = np.zeros(n_calls, np.int64)  # masked samples ending the output
        self._noise_power = np.full(n_calls, dbm0_to_peak(-60.0) ** 2 / 2)
        self._rngs = [np.random.default_rng([seed, c]) for c in range(n_calls)]
        self._cad_start = np.full(n_calls, -1, np.int64)
        self._cad_last = np.full(n_calls, -1, np.int64)

    # -- control -----------------------------------------------------------
    def reset(self, call: int) -> None:
        """Forget a call (slot reuse); its next input sample is sample 0."""
        self.detector.reset(call)
        self._armed[call] = self._armed_default
        self._buf[call] = 0
        self._pend[call] = False
        self._in[call] = 0
        self._cand_end[call] = np.iinfo(np.int64).min // 2
        self._cand_hops[call] = 0
        self._stable_code[call] = -1
        self._stable_run[call] = 0
        self._forced[call] = []
        self._forcing.discard(call)
        self._open[call] = -1
        self._run[call] = 0
        self._sent_run[call] = 0
        self._noise_power[call] = dbm0_to_peak(-60.0) ** 2 / 2
        self._rngs[call] = np.random.default_rng([self._seed, call])
        self._cad_start[call] = self._cad_last[call] = -1

    def force_mask(self, call: int, start: int, end: int) -> None:
        """Mask input samples [start, end) of `call` whatever they contain."""
        if end > start:
            self._forced[call].append((int(start), int(end)))
            self._forcing.add(call)

    def arm(self, call: int) -> None:
        self._armed[call] = True

    def disarm(self, call: int) -> None:
        self._armed[call] = False

    # -- audio ---------------------------------------------------------------
    def process(self, frames: ArrayLike) -> list[MaskResult]:
        """Feed (calls, n) int16; returns per call n delayed samples with tones replaced."""
        frames = np.asarray(frames)
        if frames.ndim != 2 or frames.shape[0] != self.n_calls:
            raise ValueError(f"expected frames shaped ({self.n_calls}, n)")
        if frames.dtype != np.int16:
            frames = to_int16(frames)
        step = 4 * self.frame_size
        if frames.shape[1] <= step:
            return self._tick(frames)
        parts = [self._tick(frames[:, i : i + step]) for i in range(0, frames.shape[1], step)]
        return [
            MaskResult(
                np.concatenate([p[c].audio for p in parts]),
                [d for p in parts for d in p[c].digits],
                [s for p in parts for s in p[c].masked],
            )
            for c in range(self.n_calls)
        ]

    def flush(self) -> list[MaskResult]:
        """Drain the look-ahead at the end of every stream."""
        res = self._tick(np.zeros((self.n_calls, self.delay), np.int16))
        for call, events in enumerate(self.detector.flush()):
            res[call].digits += events
            if self._open[call] >= 0:
                res[call].masked.append((int(self._open[call]), int(self._in[call] - self.delay)))
                self._open[call] = -1
        return res

    def _tick(self, frames: NDArray[np.int16]) -> list[MaskResult]:
        n, f_len = frames.shape
        digits = self.detector.process(frames)
        self._note_candidates()
        full = np.concatenate([self._buf, frames], axis=1)
        base = self._in + f_len - full.shape[1]  # input index of full[:, 0]
        known0 = base + self._pre  # input index of the first sample still held back
        mask = np.concatenate([self._pend, np.zeros((n, f_len), bool)], axis=1)
        self._mask_tones(full, base, mask)
        for call in list(self._forcing):
            self._mask_forced(call, int(known0[call]), mask[call])
        out = full[:, self._pre : self._pre + f_len].copy()
        out_mask = mask[:, :f_len].copy()
        if self.mode == "cadence":
            cadence = self._armed & (mask.any(axis=1) | (self._cad_start >= 0))
            for row in np.flatnonzero(cadence):
                self._cadence(row, int(known0[row]), mask[row], out[row], out_mask[row])
        else:
            self._replace(np.flatnonzero(out_mask.any(axis=1)), known0, mask, out, out_mask)
        self._track_noise(out, out_mask | mask.any(axis=1, keepdims=True))
        results = list(map(MaskResult, out, digits, [[] for _ in range(n)]))
        self._close_spans(known0, out_mask, results)
        self._buf = full[:, -(self._pre + self.delay) :]
        self._pend = mask[:, f_len:]
        sent = mask[:, :f_len]
        tail = f_len - 1 - np.where(~sent, np.arange(f_len), -1).max(axis=1)  # trailing Trues
        self._sent_run = np.where(tail == f_len, self._sent_run + f_len, tail)
        self._in += f_len
        return results

    def _note_candidates(self) -> None:
        f = self.detector.last_features
        if f is None:
            return
        if f.calls.size:
            self._note_codes(f)
        else:
            self._stable_run[:] = 0
        if f.pair is not None:
            self._track(f.pair, f.window_end)

    def _note_codes(self, f: HopFeatures) -> None:
        strong = classify(f, CANDIDATE, self._window)
        codes = np.where(strong >= 0, strong, classify(f, BURIED, self._window))
        codes = self._stable(classify(f, STABLE, self._window), codes)
        if not (codes >= 0).any():
            return
        amps = amplitudes(f, self._window)
        hop = self._window // 4
        for h in range(codes.shape[1]):
            calls = np.flatnonzero(codes[:, h] >= 0)
            if calls.size:
                keys = codes[calls, h]
                end = f.window_end[calls, h]
                last = self._cand_end[calls, keys]
                hops = self._cand_hops[calls, keys]
                fresh = last < end - self._window - self._continue
                old = np.where(fresh[:, None], 0.0, self._cand_amp[calls, keys])
                self._cand_amp[calls, keys] = np.maximum(old, amps[calls, h])
                # a hop passing CANDIDATE is a key at once
                sure = strong[calls, h] >= 0
                counts = (last >= end - hop) | (hops >= MIN_CANDIDATE_HOPS) | sure
                first = np.where(sure, MIN_CANDIDATE_HOPS, 1)
                self._cand_hops[calls, keys] = np.where(fresh, first, hops + counts)
                self._cand_strong[calls, keys] = np.where(
                    fresh, sure, self._cand_strong[calls, keys] + sure
                )
                self._cand_end[calls, keys] = end
                self._cand_start[calls, keys] = np.where(
                    fresh, end - self._window, self._cand_start[calls, keys]
                )

    def _stable(self, stable: NDArray[np.int64], codes: NDArray[np.int64]) -> NDArray[np.int64]:
        """`codes` plus the hops ending `STABLE_HOPS` hops in a row of one `STABLE` pair."""
        held = np.full(stable.shape, -1)
        for h in range(stable.shape[1]):
            code = stable[:, h]
            same = (code >= 0) & (code == self._stable_code)
            self._stable_run = np.where(same, self._stable_run + 1, code >= 0)
            self._stable_code = code
            held[:, h] = np.where(self._stable_run >= STABLE_HOPS, code, -1)
        stable_codes: NDArray[np.int64] = np.where(codes >= 0, codes, held)
        return stable_codes

    def _track(self, pair: NDArray[np.int8], ends: NDArray[np.int64]) -> None:
        """Keep established keys going while their pair is still the strongest."""
        reach = self._window + self._track_gap
        calls = np.flatnonzero(self._cand_end.max(axis=1) >= ends[:, 0] - reach)
        if calls.size == 0:
            return
        for h in range(ends.shape[1]):
            code = pair[calls, h].astype(np.int64)
            heard = code >= 0
            c, k = calls[heard], code[heard]
            end = ends[c, h]
            ok = (self._cand_hops[c, k] >= MIN_CANDIDATE_HOPS) & (
                self._cand_end[c, k] >= end - reach
            )
            self._cand_end[c[ok], k[ok]] = end[ok]

    def _mask_tones(
        self, full: NDArray[np.int16], base: NDArray[np.int64], mask: NDArray[np.bool_]
    ) -> None:
        """OR into `mask` the extent of every candidate key still in the buffer.

        Worked out afresh on every tick over the whole buffer: the extent's
        hysteresis and hole filling reach back over any stretch of the key.
        """
        # Samples still held back, plus enough already sent for the envelope window
        # and for a run that ended there to reach forward by its guard.
        first = self._pre - (self.rate // 100 + self._guard_after + 2 * self._grid)
        # a key whose last hop ended before `first` has no stretch left to anchor a run
        live = (self._cand_end > (base + first)[:, None]) & (self._cand_hops >= MIN_CANDIDATE_HOPS)
        live &= self._armed[:, None]
        calls, keys = np.nonzero(live)
        if calls.size:
            self._mask_rows(full, base, mask, calls, keys, first)

    def _mask_rows(
        self,
        full: NDArray[np.int16],
        base: NDArray[np.int64],
        mask: NDArray[np.bool_],
        calls: NDArray[np.int64],
        keys: NDArray[np.int64],
        first: int,
    ) -> None:
        """OR into `mask` the extent of `keys` in `full[calls, first:]`: runs where the
        tones are above `LOW_FRACTION` (holes under `FILL_SECONDS` filled) holding a
        stretch above `edges.PRESENT_FRACTION` between the key's first and last hop."""
        segs = full[calls, first:]
        amp = self._cand_amp[calls, keys]
        hops = self._cand_hops[calls, keys]
        established = (hops >= LOW_MIN_HOPS) & (self._cand_strong[calls, keys] > 0)
        established |= hops >= LOW_MIN_BURIED_HOPS
        low = None
        if established.any():
            low = np.zeros(segs.shape, bool)
            low[:, 0] = established
        present = edges.presence_of_keys(
            segs, keys, self.rate, amp, low=low, low_fraction=LOW_FRACTION
        )
        low = present if low is None else low | present
        pos = base[calls, None] + first + np.arange(segs.shape[1])
        anchored = pos >= self._cand_start[calls, keys][:, None]
        anchored &= pos < self._cand_end[calls, keys][:, None]
        anchored &= present
        # what is masked already (still held back, or the end of what was sent) is
        # the key too: a run continuing it is the key's, whatever the buffer still holds
        held = self._pre - first
        seed = np.zeros(segs.shape, bool)
        seed[:, held:] = mask[calls, : segs.shape[1] - held]
        sent = np.arange(held)[::-1] < self._sent_run[calls, None]
        seed[:, :held] = sent
        anchored |= seed & low
        present = edges.hysteresis(anchored, low, self._fill)
        present = edges.widen_to_grid(
            present, base[calls] + first, self._guard_before, self._guard_after, self._grid
        )
        into = first - self._pre  # column of mask for `first`
        present = present[:, -into:] if into < 0 else present
        into = max(into, 0)
        if not np.any(calls[1:] == calls[:-1]):  # calls come sorted: no call twice
            mask[calls, into:] |= present
        else:
            np.logical_or.at(mask[:, into:], calls, present)

    def _mask_forced(self, call: int, known0: int, mask: NDArray[np.bool_]) -> None:
        keep = []
        for start, end in self._forced[call]:
            lo, hi = max(start - known0, 0), min(end - known0, len(mask))
            if hi > lo:
                mask[lo:hi] = True
            if end > known0 + self.frame_size:
                keep.append((start, end))
        self._forced[call] = keep
        if not keep:
            self._forcing.discard(call)

    def _replace(
        self,
        calls: NDArray[np.int64],
        known0: NDArray[np.int64],
        mask: NDArray[np.bool_],
        out: NDArray[np.int16],
        out_mask: NDArray[np.bool_],
    ) -> None:
        """Replace the masked output samples of `calls` (rows of the tick's arrays)."""
        if calls.size == 0:
            return
        f_len = out.shape[1]
        if self.mode == "silence":
            out[out_mask] = 0
            return
        if self.mode == "noise":
            for call in calls:
                rms = np.sqrt(self._noise_power[call])
                noise = replacement.comfort_noise(f_len, rms, self._rngs[call])
                out[call, out_mask[call]] = to_int16(noise[out_mask[call]])
            return
        since, until = replacement.run_distances(mask[calls], self._run[calls])
        gain = replacement.raised_cosine(np.minimum(since, until)[:, :f_len], self._ramp)
        positions = known0[calls, None] + np.arange(f_len)
        tone = to_int16(replacement.masking_tone(positions, self.rate) * gain)
        rows = out_mask[calls]
        out[calls] = np.where(rows, tone, out[calls])
        self._run[calls] = np.where(rows[:, -1], since[:, f_len - 1] + 1, 0)

    def _cadence(
        self,
        call: np.intp,
        known0: int,
        mask: NDArray[np.bool_],
        out: NDArray[np.int16],
        out_mask: NDArray[np.bool_],
    ) -> None:
        hits = np.flatnonzero(mask)
        if hits.size:
            if self._cad_start[call] < 0:
                self._cad_start[call] = known0 + hits[0]
            self._cad_last[call] = max(self._cad_last[call], known0 + hits[-1])
        start = int(self._cad_start[call])
        if start < 0:
            return
        cycles = -(-(int(self._cad_last[call]) + self._cad_quiet - start) // self._cad_cycle)
        end = start + cycles * self._cad_cycle
        pos = known0 + np.arange(len(out))
        inside = (pos >= start) & (pos < end)
        phase = (pos - start) % self._cad_cycle
        burst = inside & (phase < self._cad_on)
        gain = replacement.raised_cosine(np.minimum(phase, self._cad_on - 1 - phase), self._ramp)
        tone = replacement.masking_tone(pos, self.rate) * gain
        noise = replacement.comfort_noise(
            len(out), np.sqrt(self._noise_power[call]), self._rngs[call]
        )
        out[inside] = to_int16(np.where(burst, tone, noise)[inside])
        out_mask[:] = inside
        if pos[-1] + 1 >= end:
            self._cad_start[call] = self._cad_last[call] = -1

    def _track_noise(self, out: NDArray[np.int16], busy: NDArray[np.bool_]) -> None:
        quiet = ~busy.any(axis=1)
        if quiet.any():
            power = np.mean(out[quiet].astype(np.float64) ** 2, axis=1)
            self._noise_power[quiet] = 0.9 * self._noise_power[quiet] + 0.1 * power

    def _close_spans(
        self, known0: NDArray[np.int64], out_mask: NDArray[np.bool_], results: list[MaskResult]
    ) -> None:
        """Track masked spans on the output; put the ones that closed into `results`."""
        was_open = self._open >= 0
        n, f_len = out_mask.shape
        changes = (out_mask[:, 0] != was_open) | (out_mask[:, 1:] != out_mask[:, :-1]).any(axis=1)
        calls = np.flatnonzero(changes)
        if calls.size == 0:
            return
        # transitions of each changed row, with the open state before it and "closed" after
        rows = np.zeros((len(calls), f_len + 2), np.int8)
        rows[:, 0] = was_open[calls]
        rows[:, 1:-1] = out_mask[calls]
        row, pos = np.nonzero(np.diff(rows, axis=1))
        rising = rows[row, pos + 1] == 1
        at = (pos + known0[calls][row]).tolist()
        per_call: list[list[tuple[bool, int]]] = [[] for _ in range(len(calls))]
        for r, up, a in zip(row.tolist(), rising.tolist(), at, strict=True):
            per_call[r].append((up, a))
        for call, flips in zip(calls.tolist(), per_call, strict=True):
            results[call].masked = self._spans(call, int(known0[call]) + f_len, flips)

    def _spans(self, call: int, stop: int, flips: list[tuple[bool, int]]) -> list[tuple[int, int]]:
        """Spans closed by the `flips` (rising?, input index) of one call's output frame."""
        start = int(self._open[call])
        spans = []
        for up, at in flips:
            if up:
                start = at
            elif at < stop:
                spans.append((start, at))
                start = -1
            else:  # the run reaches the end of the frame: still open
                break
        self._open[call] = start
        return spans


class StreamingMasker:
    """The masker for one stream (see module docstring)."""

    def __init__(
        self,
        sample_rate: int = 8000,
        lookahead_ms: float = 40.0,
        mode: str = "tone",
        armed: bool = True,
        seed: int = 0,
        **cadence: float,
    ) -> None:
        self._batch = BatchMasker(1, sample_rate, lookahead_ms, mode, armed, seed, **cadence)

    @property
    def frame_size(self) -> int:
        return self._batch.frame_size

    @property
    def delay(self) -> int:
        return self._batch.delay

    @property
    def sample_rate(self) -> int:
        return self._batch.rate

    @property
    def mode(self) -> str:
        return self._batch.mode

    def process(self, frame: ArrayLike) -> MaskResult:
        return self._batch.process(np.asarray(frame).reshape(1, -1))[0]

    def flush(self) -> MaskResult:
        return self._batch.flush()[0]

    def force_mask(self, start: int, end: int) -> None:
        self._batch.force_mask(0, start, end)

    def arm(self) -> None:
        self._batch.arm(0)

    def disarm(self) -> None:
        self._batch.disarm(0)


def mask_signal(
    samples: NDArray[np.generic], sample_rate: int = 8000, **kwargs: Any
) -> tuple[NDArray[np.int16], list[DigitEvent], list[tuple[int, int]]]:
    """Run the streaming masker over a whole signal in 20 ms frames; remove the delay.

    Returns (output aligned with the input, digits, masked spans).
    """
    m = StreamingMasker(sample_rate, **kwargs)
    outs, digits, spans = [], [], []
    for i in range(0, len(samples), m.frame_size):
        r = m.process(samples[i : i + m.frame_size])
        outs.append(r.audio)
        digits += r.digits
        spans += r.masked
    r = m.flush()
    outs.append(r.audio)
    digits += r.digits
    spans += r.masked
    out = np.concatenate(outs)[m.delay : m.delay + len(samples)]
    return out, digits, spans
