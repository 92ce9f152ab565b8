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
4. band-stop (`dsp.bandstop`), a second, cheaper action for spans that only *may*
   hold a key, so that nothing a loose receiver could take for one is left under
   louder talk or music (issue 8): every hop that passes any limit set above, or the
   looser `classify.UNCERTAIN`, or ends `STOP_PAIR_HOPS` hops of one strongest pair
   (`HopFeatures.pair`, or `short_pair` on 10 ms windows, which still holds a key
   3.5 % off its frequency), has its window's keypad bands removed (both groups, so
   no receiver hears a pair), back over the hops before it and on over the hops
   after it that hold the same pair; only where the keypad bands are loud enough
   for any receiver, and
   never over a masked sample.  Talk keeps its other frequencies (figures in
   tests/unit/dsp/test_talkoff.py).  `MaskResult.stopped` / `stop_gain` report it;
5. the oldest frame of the buffer leaves, with its masked samples replaced and its
   band-stopped samples filtered.  Everything else leaves bit-exact.

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

from dsp import bandstop, edges, replacement
from dsp.batch_growth import grow_state
from dsp.classify import BURIED, CANDIDATE, STABLE, UNCERTAIN, amplitudes, classify
from dsp.detector import BatchDtmfDetector
from dsp.events import DigitEvent
from dsp.goertzel import GoertzelBank, HopFeatures
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
#: Band-stop (`dsp.bandstop`), the action for spans that only *may* hold a key: the
#: window of every hop passing any of the masker's limit sets or `classify.UNCERTAIN`
#: is band-stopped (where it is not masked), widened by these guards, and so are the
#: hops around it that hold the same pair (`HopFeatures.pair`); the keypad bands fade
#: out and back in over `STOP_RAMP_SECONDS` (raised cosine) at the edges of a run.
STOP_GUARD_BEFORE_SECONDS = 0.004
STOP_GUARD_AFTER_SECONDS = 0.004
STOP_RAMP_SECONDS = 0.002
#: ... and the window of every hop ending this many hops in a row of the same pair
#: (`HopFeatures.pair` or `short_pair`), whatever else it holds (talk's harmonics
#: glide from bin to bin, a key's pair stays).
STOP_PAIR_HOPS = 5
#: ... or this many ending in a `short_pair` (tonal 10 ms windows only: sooner, so that
#: a key's onset is still in a 20 ms look-ahead).
SHORT_PAIR_HOPS = 3
#: ... but only where what the band-stop removes is at all loud: its RMS over
#: 2 x `STOP_GATE_HALF_SECONDS` at least `STOP_GATE_DBM0`, 6 dB under the loosest
#: receiver's floor (tests/support/loose_receiver.py, -43 dBm0 a tone): where the
#: keypad bands hold less, no tone in them is loud enough for any receiver, and the
#: audio (line noise, the quiet before a key) leaves untouched.
STOP_GATE_DBM0 = -49.0
STOP_GATE_HALF_SECONDS = 0.001


@dataclass(slots=True)
class MaskResult:
    """One output frame, the key presses that ended and the masked spans that closed.

    `stopped`: the band-stopped spans (keypad bands removed, `dsp.bandstop`) that
    closed, input indices like `masked` and never overlapping it; `stop_gain`: the
    share (0..1) of band-stopped input in each output sample of the frame, or None
    when no sample of the frame is band-stopped.
    """

    audio: NDArray[np.int16]
    digits: list[DigitEvent] = field(default_factory=list)
    masked: list[tuple[int, int]] = field(default_factory=list)
    stopped: list[tuple[int, int]] = field(default_factory=list)
    stop_gain: NDArray[np.float32] | None = None


class BatchMasker:
    """The masker for `n_calls` channels fed (calls x frame) int16 per tick.

    Each call comes out exactly as from a masker of its own (tests/unit/dsp), so the
    media plane, `masker mask` and the scrubber may batch any calls together.
    `band_stop` (on by default) also removes the keypad bands over spans that only
    may hold a key.
    """

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
        band_stop: bool = True,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if lookahead_ms < 10:
            raise ValueError("look-ahead must be at least 10 ms")
        #: how this batch was built (a grown batch is built the same way, larger)
        self._settings: dict[str, Any] = dict(
            sample_rate=sample_rate,
            lookahead_ms=lookahead_ms,
            mode=mode,
            armed=armed,
            seed=seed,
            cadence_on_ms=cadence_on_ms,
            cadence_off_ms=cadence_off_ms,
            cadence_quiet_ms=cadence_quiet_ms,
            band_stop=band_stop,
        )
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
        # each call's noise generator, made on first use (most calls never need one)
        self._rngs: list[np.random.Generator | None] = [None] * n_calls
        self._cad_start = np.full(n_calls, -1, np.int64)
        self._cad_last = np.full(n_calls, -1, np.int64)
        self.band_stop = band_stop
        self._stop_taps = bandstop.keypad_bandstop_fir(sample_rate)
        self._gate_half = int(round(STOP_GATE_HALF_SECONDS * sample_rate))
        self._gate_context = self._gate_half + len(bandstop.keypad_band_fir(sample_rate)) // 2
        self._gate_floor = dbm0_to_peak(STOP_GATE_DBM0) ** 2 / 2
        # input samples before the output frame the band-stop and its gate look at
        self._stop_context = max(len(self._stop_taps) // 2, self._gate_context)
        self._pend_stop = np.zeros((n_calls, self.delay), bool)
        self._stop_open = np.full(n_calls, -1, np.int64)
        self._stop_run = np.zeros(n_calls, np.int64)
        self._stop_guard_before = int(round(STOP_GUARD_BEFORE_SECONDS * sample_rate))
        self._stop_guard_after = int(round(STOP_GUARD_AFTER_SECONDS * sample_rate))
        self._stop_ramp = int(round(STOP_RAMP_SECONDS * sample_rate))
        self._uncertain: NDArray[np.int64] | None = None  # (calls, hops) of the tick
        # `HopFeatures.pair` and window ends of the hops still in reach of the buffer,
        # then this tick's; the code and last hop end of each call's band-stopped key
        reach = (self._pre + self.delay) // (self._window // 4) + 4
        self._pairs = np.full((n_calls, reach), -1, np.int8)
        self._short = np.full((n_calls, reach), -1, np.int8)  # `HopFeatures.short_pair`
        self._ends = np.zeros((n_calls, reach), np.int64)
        self._reach = reach
        self._stop_code = np.full(n_calls, -1, np.int64)
        self._stop_last = np.zeros(n_calls, np.int64)

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
        self._rngs[call] = None
        self._cad_start[call] = self._cad_last[call] = -1
        self._pend_stop[call] = False
        self._stop_open[call] = -1
        self._stop_run[call] = 0
        self._pairs[call] = -1
        self._short[call] = -1
        self._ends[call] = 0
        self._stop_code[call] = -1
        self._stop_last[call] = 0

    def grow(self, n_calls: int) -> None:
        """Hold `n_calls` calls from now on: every current call goes on exactly as it
        would have, the new rows start as in a batch built at that size."""
        if n_calls < self.n_calls:
            raise ValueError("a batch grows, it never shrinks")
        if n_calls > self.n_calls:
            fresh = BatchMasker(n_calls, **self._settings)
            grow_state(self, fresh, self.n_calls, nested=(BatchDtmfDetector, GoertzelBank))

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
                [s for p in parts for s in p[c].stopped],
                _joined_gains([p[c] for p in parts]),
            )
            for c in range(self.n_calls)
        ]

    def flush(self) -> list[MaskResult]:
        """Drain the look-ahead at the end of every stream."""
        res = self._tick(np.zeros((self.n_calls, self.delay), np.int16))
        for call, events in enumerate(self.detector.flush()):
            res[call].digits += events
            end = int(self._in[call] - self.delay)
            if self._open[call] >= 0:
                res[call].masked.append((int(self._open[call]), end))
                self._open[call] = -1
            if self._stop_open[call] >= 0:
                res[call].stopped.append((int(self._stop_open[call]), end))
                self._stop_open[call] = -1
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
        stop = np.concatenate([self._pend_stop, np.zeros((n, f_len), bool)], axis=1)
        self._mark_uncertain(known0, stop)
        out = full[:, self._pre : self._pre + f_len].copy()
        out_mask = mask[:, :f_len].copy()
        gains = self._band_stop(stop, full[:, self._pre - self._stop_context :], out)
        if self.mode == "cadence":
            cadence = self._armed & (mask.any(axis=1) | (self._cad_start >= 0))
            for row in np.flatnonzero(cadence):
                self._cadence(row, int(known0[row]), mask[row], out[row], out_mask[row])
        else:
            self._replace(np.flatnonzero(out_mask.any(axis=1)), known0, mask, out, out_mask)
        self._track_noise(out, out_mask | mask.any(axis=1, keepdims=True))
        results = self._results(out, digits, known0, out_mask, gains)
        self._buf = full[:, -(self._pre + self.delay) :]
        self._pend = mask[:, f_len:]
        self._pend_stop = stop[:, f_len:]
        sent = mask[:, :f_len]
        tail = f_len - 1 - np.where(~sent, np.arange(f_len), -1).max(axis=1)  # trailing Trues
        self._sent_run = np.where(tail == f_len, self._sent_run + f_len, tail)
        self._in += f_len
        return results

    def _results(
        self,
        out: NDArray[np.int16],
        digits: list[list[DigitEvent]],
        known0: NDArray[np.int64],
        out_mask: NDArray[np.bool_],
        gains: NDArray[np.float32] | None,
    ) -> list[MaskResult]:
        """The tick's results: audio, digits, the masked and band-stopped spans that
        closed and the band-stop gains (band-stopped samples that were masked as well
        count as masked only)."""
        results = list(map(MaskResult, out, digits, [[] for _ in range(len(out))]))
        for call, spans in self._close_spans(known0, out_mask, self._open):
            results[call].masked = spans
        if gains is None and not (self._stop_open >= 0).any():
            return results
        if gains is None:
            on = np.zeros(out.shape, bool)
        else:
            gains[out_mask] = 0.0
            on = gains > 0
            for row in np.flatnonzero(on.any(axis=1)).tolist():
                results[row].stop_gain = gains[row]
        for call, spans in self._close_spans(known0, on, self._stop_open):
            results[call].stopped = spans
        return results

    def _note_candidates(self) -> None:
        self._uncertain = None
        f = self.detector.last_features
        if f is None:
            return
        self._pairs, self._ends = self._pairs[:, -self._reach :], self._ends[:, -self._reach :]
        self._short = self._short[:, -self._reach :]
        if f.pair is not None:
            self._pairs = np.concatenate([self._pairs, f.pair], axis=1)
            short = f.short_pair if f.short_pair is not None else np.full_like(f.pair, -1)
            self._short = np.concatenate([self._short, short], axis=1)
            self._ends = np.concatenate([self._ends, f.window_end], axis=1)
        if f.calls.size:
            self._note_codes(f)
        else:
            self._stable_run[:] = 0
        if f.pair is not None:
            self._track(f.pair, f.window_end)
            if self.band_stop:
                self._note_held_pairs(f.pair.shape[1])

    def _note_held_pairs(self, n_hops: int) -> None:
        """Count as uncertain the hops of the tick that end `STOP_PAIR_HOPS` hops in a row
        holding the same key in `HopFeatures.pair` or `short_pair`: a key under talk too
        loud for any limit set, or too far off its frequency for the 20 ms window."""
        end = self._pairs.shape[1]
        now = slice(end - n_hops, end)
        codes = np.full((self._pairs.shape[0], n_hops), -1, np.int64)
        for latest, hops in ((self._short, SHORT_PAIR_HOPS), (self._pairs, STOP_PAIR_HOPS)):
            code = latest[:, now]
            held = code >= 0
            for back in range(1, hops):
                was = slice(end - n_hops - back, end - back)
                held &= (self._pairs[:, was] == code) | (self._short[:, was] == code)
            codes = np.where(held, code, codes)
        if not (codes >= 0).any():
            return
        if self._uncertain is not None:
            codes = np.where(self._uncertain >= 0, self._uncertain, codes)
        self._uncertain = codes

    def _note_codes(self, f: HopFeatures) -> None:
        strong = classify(f, CANDIDATE, self._window)
        codes = np.where(strong >= 0, strong, classify(f, BURIED, self._window))
        stable = classify(f, STABLE, self._window)
        if self.band_stop:
            uncertain = np.where(codes >= 0, codes, stable)
            uncertain = np.where(uncertain >= 0, uncertain, classify(f, UNCERTAIN, self._window))
            if (uncertain >= 0).any():
                self._uncertain = uncertain
        codes = self._stable(stable, codes)
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

    def _mark_uncertain(self, known0: NDArray[np.int64], stop: NDArray[np.bool_]) -> None:
        """OR into `stop` (input from `known0` on) the band-stopped windows of the tick's
        hops: every uncertain hop's, back over the hops before it with the same
        `HopFeatures.pair` (a key's onset under talk), and on over the hops after it
        that keep that pair (`TRACK_GAP_SECONDS` apart at most)."""
        codes = self._uncertain
        pairs, short, ends = self._pairs, self._short, self._ends
        n_hops = pairs.shape[1] - self._reach
        if not self.band_stop or n_hops <= 0:
            return
        if codes is None and not (self._stop_code >= 0).any():
            return
        idx = np.arange(stop.shape[1])
        reach = self._window // 4 + self._track_gap

        def mark(
            calls: NDArray[np.int64], first: NDArray[np.int64], last: NDArray[np.int64]
        ) -> None:
            lo = ends[calls, first] - self._window - self._stop_guard_before - known0[calls]
            hi = ends[calls, last] + self._stop_guard_after - known0[calls]
            stop[calls] |= (idx >= lo[:, None]) & (idx < hi[:, None])
            self._stop_last[calls] = ends[calls, last]

        for h in range(self._reach, pairs.shape[1]):
            code = self._stop_code
            # (a call with no pair held, code -1, follows nothing: `pairs` is -1 on
            # every hop without a pair, and those must not extend a band-stop)
            holds = (pairs[:, h] == code) | (short[:, h] == code)
            follows = (code >= 0) & holds & (ends[:, h] - self._stop_last <= reach)
            if codes is not None:
                new = (codes[:, h - self._reach] >= 0) & self._armed
                calls = np.flatnonzero(new)
                if calls.size:
                    keys = codes[calls, h - self._reach]
                    # the run of hops before h with the key's pair, single misses bridged
                    other = (pairs[calls, :h] != keys[:, None]) & (
                        short[calls, :h] != keys[:, None]
                    )
                    broken = other[:, 1:] & other[:, :-1]
                    first = np.where(broken, np.arange(h - 1), -2).max(axis=1) + 2
                    mark(calls, np.minimum(first, h), np.full(calls.size, h))
                    self._stop_code[calls] = keys
                follows &= ~new
            calls = np.flatnonzero(follows & self._armed)
            if calls.size:
                mark(calls, np.full(calls.size, h), np.full(calls.size, h))
        stale = ends[:, -1] - self._stop_last > reach
        self._stop_code[stale] = -1

    def _band_stop(
        self, stop: NDArray[np.bool_], held: NDArray[np.int16], out: NDArray[np.int16]
    ) -> NDArray[np.float32] | None:
        """Band-stop `out` where `stop` says and the keypad bands are loud enough (the
        gate), with raised-cosine ramps at a run's edges; returns the gains (calls,
        frame) of the band-stopped input, or None.  `held` is the input from
        `_stop_context` samples before `out` on."""
        f_len = out.shape[1]
        calls = np.flatnonzero(stop[:, :f_len].any(axis=1))
        if calls.size == 0:
            self._stop_run[:] = 0
            return None
        seg = held[calls]
        at, half = self._stop_context, len(self._stop_taps) // 2
        stopped = bandstop.centred(seg[:, at - half : at + f_len + half], self._stop_taps)
        # the gate, as far as this frame's gains need it (the ramp down after its end)
        need, context = min(stop.shape[1], f_len + self._stop_ramp + 1), self._gate_context
        power = bandstop.band_power(
            seg[:, at - context : at + need + context], self.rate, self._gate_half
        )
        # (a run reaching past `need` is open-ended: its gains here are the same)
        on = stop[calls, :need] & (power >= self._gate_floor)
        since, until = replacement.run_distances(on, self._stop_run[calls])
        gain = replacement.raised_cosine(np.minimum(since, until)[:, :f_len], self._stop_ramp)
        gain *= on[:, :f_len]
        x = out[calls].astype(np.float64)
        out[calls] = to_int16(x + gain * (stopped - x))
        run = np.where(on[:, f_len - 1], since[:, f_len - 1] + 1, 0)
        self._stop_run[:] = 0
        self._stop_run[calls] = run
        gains = np.zeros(out.shape, np.float32)
        gains[calls] = gain
        return gains

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
                noise = replacement.comfort_noise(f_len, rms, self._rng(call))
                out[call, out_mask[call]] = to_int16(noise[out_mask[call]])
            return
        # as far as this frame's ramps reach (a run reaching past that is open-ended)
        need = min(mask.shape[1], f_len + self._ramp + 1)
        since, until = replacement.run_distances(mask[calls, :need], self._run[calls])
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
            len(out), np.sqrt(self._noise_power[call]), self._rng(call)
        )
        out[inside] = to_int16(np.where(burst, tone, noise)[inside])
        out_mask[:] = inside
        if pos[-1] + 1 >= end:
            self._cad_start[call] = self._cad_last[call] = -1

    def _rng(self, call: int | np.intp) -> np.random.Generator:
        """The call's noise generator, seeded by (seed, call) as a fresh one would be."""
        rng = self._rngs[call]
        if rng is None:
            rng = self._rngs[call] = np.random.default_rng([self._seed, int(call)])
        return rng

    def _track_noise(self, out: NDArray[np.int16], busy: NDArray[np.bool_]) -> None:
        quiet = ~busy.any(axis=1)
        if quiet.any():
            power = np.mean(out[quiet].astype(np.float64) ** 2, axis=1)
            self._noise_power[quiet] = 0.9 * self._noise_power[quiet] + 0.1 * power

    def _close_spans(
        self, known0: NDArray[np.int64], out_mask: NDArray[np.bool_], opened: NDArray[np.int64]
    ) -> list[tuple[int, list[tuple[int, int]]]]:
        """Track the runs of `out_mask` on the output, `opened` holding each call's open
        run's start (or -1); returns (call, runs that closed) for the calls with a change."""
        was_open = opened >= 0
        n, f_len = out_mask.shape
        changes = (out_mask[:, 0] != was_open) | (out_mask[:, 1:] != out_mask[:, :-1]).any(axis=1)
        calls = np.flatnonzero(changes)
        if calls.size == 0:
            return []
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
        return [
            (call, _spans(opened, call, int(known0[call]) + f_len, flips))
            for call, flips in zip(calls.tolist(), per_call, strict=True)
        ]


def _spans(
    opened: NDArray[np.int64], call: int, stop: int, flips: list[tuple[bool, int]]
) -> list[tuple[int, int]]:
    """Spans closed by the `flips` (rising?, input index) of one call's output frame."""
    start = int(opened[call])
    spans = []
    for up, at in flips:
        if up:
            start = at
        elif at < stop:
            spans.append((start, at))
            start = -1
        else:  # the run reaches the end of the frame: still open
            break
    opened[call] = start
    return spans


def _joined_gains(parts: list[MaskResult]) -> NDArray[np.float32] | None:
    """The `stop_gain` of frames joined end to end (None if none is band-stopped)."""
    if all(p.stop_gain is None for p in parts):
        return None
    return np.concatenate(
        [np.zeros(len(p.audio), np.float32) if p.stop_gain is None else p.stop_gain for p in parts]
    )


class StreamingMasker:
    """The masker for one stream (see module docstring)."""

    def __init__(
        self,
        sample_rate: int = 8000,
        lookahead_ms: float = 40.0,
        mode: str = "tone",
        armed: bool = True,
        seed: int = 0,
        band_stop: bool = True,
        **cadence: float,
    ) -> None:
        self._batch = BatchMasker(
            1, sample_rate, lookahead_ms, mode, armed, seed, band_stop=band_stop, **cadence
        )

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


@dataclass(frozen=True, slots=True)
class MaskedSignal:
    """A whole signal through the masker, aligned with its input (`mask_signal_detail`).

    `stop_gain[i]` is the share of band-stopped input in output sample i (0 outside
    the `stopped` spans), so a test can put any other signal (the key-free bed)
    through the same band-stop action: ``x + stop_gain * (bandstopped(x) - x)``.
    """

    audio: NDArray[np.int16]
    digits: list[DigitEvent]
    masked: list[tuple[int, int]]
    stopped: list[tuple[int, int]]
    stop_gain: NDArray[np.float32]


def mask_signal_detail(
    samples: NDArray[np.generic], sample_rate: int = 8000, **kwargs: Any
) -> MaskedSignal:
    """Run the streaming masker over a whole signal in 20 ms frames; remove the delay."""
    m = StreamingMasker(sample_rate, **kwargs)
    step = m.frame_size
    results = [m.process(samples[i : i + step]) for i in range(0, len(samples), step)]
    results.append(m.flush())
    keep = slice(m.delay, m.delay + len(samples))
    gains = _joined_gains(results)
    return MaskedSignal(
        np.concatenate([r.audio for r in results])[keep],
        [d for r in results for d in r.digits],
        [s for r in results for s in r.masked],
        [s for r in results for s in r.stopped],
        np.zeros(len(samples), np.float32) if gains is None else gains[keep],
    )


def mask_signal(
    samples: NDArray[np.generic], sample_rate: int = 8000, **kwargs: Any
) -> tuple[NDArray[np.int16], list[DigitEvent], list[tuple[int, int]]]:
    """Run the streaming masker over a whole signal in 20 ms frames; remove the delay.

    Returns (output aligned with the input, digits, masked spans); the band-stopped
    spans are in `mask_signal_detail`.
    """
    r = mask_signal_detail(samples, sample_rate, **kwargs)
    return r.audio, r.digits, r.masked
