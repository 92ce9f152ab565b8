"""What the far end of a call received, judged against what the near end sent.

Pure functions on recordings (int16 PCM at 8 kHz) and the known schedule of a
`KeyedSignal`: where the marker landed (alignment and one-way delay), how many
milliseconds of each keyed tone are still audible (leak), and whether an
independent receiver recovers any digit.  Results hold counts, never digits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import correlate

from masker.phones.tones import RATE, KeyedSignal, key_frequencies

#: Leak analysis: 10 ms fit windows advanced by 5 ms (the reported resolution).
LEAK_WINDOW = 80
LEAK_HOP = 40
#: A window leaks when both of the key's sines are present at >= this share of
#: the sent amplitude and explain >= LEAK_EXPLAINED of the window's energy.
LEAK_AMPLITUDE_SHARE = 0.4
LEAK_EXPLAINED = 0.7
#: The marker must correlate at least this well to count as found.
MIN_MARKER_CORRELATION = 0.5
#: A marker broken by a stalled sender or receiver (late packets: the receiver plays
#: something else in their place, and the rest of the chirp comes later) is matched
#: in pieces of one 20 ms packet each (the marker starts on a packet boundary, so a
#: gap falls between pieces), each at least MIN_MARKER_CORRELATION, in order, each
#: at most MAX_PIECE_GAP_S after where the one found before it ended (or a sample
#: before); up to MAX_PIECES_LOST of the six may be missing (late packets dropped).
MARKER_PIECE_S = 0.02
MAX_PIECE_GAP_S = 0.5
MAX_PIECES_LOST = 2
MIN_ECHO_CORRELATION = 0.3


@dataclass(frozen=True)
class Alignment:
    """Where sent sample s appears in the recording: at s + lag."""

    lag: int
    correlation: float


def find_marker(recording: np.ndarray, sent: KeyedSignal) -> Alignment | None:
    """Locate the sent chirp marker in the recording by normalised cross-correlation."""
    return accepted_marker(best_marker_match(recording, sent))


def accepted_marker(best: Alignment | None) -> Alignment | None:
    """`best` when it correlates well enough to count as the marker found, else None."""
    if best is None or best.correlation < MIN_MARKER_CORRELATION:
        return None
    return best


def best_marker_match(recording: np.ndarray, sent: KeyedSignal) -> Alignment | None:
    """The recording's best match for the marker, however weak (for diagnosis): the
    whole chirp, or the chirp in pieces when they match better (`_piecewise_match`: its
    correlation is its weakest piece's, its lag the first piece's, so a gap inside the
    marker neither hides it nor moves its start)."""
    if sent.marker_start is None:
        return None
    score = _marker_scores(recording, _marker(sent))
    if len(score) == 0:
        return None
    i = int(np.argmax(score))
    whole = Alignment(lag=i - sent.marker_start, correlation=float(score[i]))
    pieces = _piecewise_match(recording, sent)
    return pieces if pieces is not None and pieces.correlation > whole.correlation else whole


def _marker(sent: KeyedSignal) -> np.ndarray:
    assert sent.marker_start is not None
    return sent.pcm[sent.marker_start : sent.marker_start + sent.marker_len].astype(np.float64)


def _marker_scores(recording: np.ndarray, marker: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of `marker` at every lag of the recording."""
    rec = np.asarray(recording, dtype=np.float64)
    if len(rec) < len(marker):
        return np.zeros(0)
    xc = correlate(rec, marker, mode="valid", method="fft")
    energy = np.convolve(rec * rec, np.ones(len(marker)), mode="valid")
    return xc / np.sqrt(np.maximum(energy, 1e-9) * float(np.dot(marker, marker)))


def _piecewise_match(recording: np.ndarray, sent: KeyedSignal) -> Alignment | None:
    """The chirp found as packet-sized pieces in order, each within MAX_PIECE_GAP_S
    after the end of the one found before it, at most MAX_PIECES_LOST of them lost
    (dropped as late): from each strong match of a piece that may come first, the
    best place of every later piece in its window.  Its correlation is the weakest
    found piece's, its lag where the whole marker would start; the fewest pieces
    lost wins, then the strongest.  None when nothing that may come first matches."""
    assert sent.marker_start is not None
    marker = _marker(sent)
    size = int(MARKER_PIECE_S * sent.rate)
    scores = [
        _marker_scores(recording, marker[k : k + size])
        for k in range(0, len(marker) - size + 1, size)
    ]
    if len(scores[0]) < 3:
        return None
    gap = int(MAX_PIECE_GAP_S * sent.rate)
    best: tuple[int, float, int] | None = None  # (pieces lost, -weakest, lag): least wins
    for first in range(min(MAX_PIECES_LOST + 1, len(scores))):
        for start in _peaks(scores[first]).tolist():
            found = _lost_and_weakest(scores, first, start, size, gap)
            if found is not None:
                lag = start - first * size - sent.marker_start
                candidate = (found[0], -found[1], lag)
                best = candidate if best is None else min(best, candidate)
    return None if best is None else Alignment(lag=best[2], correlation=-best[1])


def _peaks(score: np.ndarray) -> np.ndarray:
    """Indices of the local maxima of `score` at MIN_MARKER_CORRELATION or above."""
    mid = score[1:-1]
    return (
        np.flatnonzero((mid >= MIN_MARKER_CORRELATION) & (mid >= score[:-2]) & (mid >= score[2:]))
        + 1
    )


def _lost_and_weakest(
    scores: list[np.ndarray], first: int, start: int, size: int, gap: int
) -> tuple[int, float] | None:
    """(pieces lost, weakest correlation) of the marker whose piece `first` is at
    `start`, each later piece sought in its window after the last piece found; None
    when more than MAX_PIECES_LOST (those before `first` included) are not found."""
    at, last, lost = start, first, first
    weakest = float(scores[first][start])
    for k in range(first + 1, len(scores)):
        score = scores[k]
        lo = at + (k - last) * size - 1
        hi = min(lo + gap + 2, len(score))
        place = lo + int(np.argmax(score[lo:hi])) if lo < hi else -1
        if place < 0 or score[place] < MIN_MARKER_CORRELATION:
            lost += 1
            if lost > MAX_PIECES_LOST:
                return None
            continue
        at, last = place, k
        weakest = min(weakest, float(score[place]))
    return lost, weakest


def round_trip_samples(recording: np.ndarray, sent: KeyedSignal) -> int | None:
    """Samples between the marker as sent and as echoed back, in one recording.

    The caller mixes its own player into its recording and the far end loops
    the audio back, so both copies share one clock: the difference is exact
    to a sample whatever the phones' start-up timing.
    """
    if sent.marker_start is None:
        return None
    score = _marker_scores(recording, _marker(sent))
    if len(score) == 0:
        return None
    first = int(np.argmax(score))
    if score[first] < MIN_MARKER_CORRELATION:
        return None
    rest = score.copy()
    guard = RATE // 500  # 2 ms: the chirp's correlation peak is far narrower
    rest[max(first - guard, 0) : first + guard + 1] = -1.0
    second = int(np.argmax(rest))
    if rest[second] < MIN_ECHO_CORRELATION:
        return None
    return abs(second - first)


def _pair_fit(frames: np.ndarray, freqs: tuple[float, float], offset: np.ndarray):
    """Least-squares fit of two sines per frame: (amplitude per sine, explained share)."""
    n = frames.shape[1]
    t = (offset[:, None] + np.arange(n)[None, :]) / RATE
    basis = []
    for f in freqs:
        basis += [np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)]
    b = np.stack(basis, axis=-1)  # frames x n x 4
    coef, *_ = _batched_lstsq(b, frames)
    amp = np.stack([np.hypot(coef[:, 0], coef[:, 1]), np.hypot(coef[:, 2], coef[:, 3])], axis=-1)
    fitted = np.einsum("fnk,fk->fn", b, coef)
    total = np.sum(frames * frames, axis=1)
    explained = np.sum(fitted * fitted, axis=1) / np.maximum(total, 1e-9)
    return amp, explained


def _batched_lstsq(b: np.ndarray, y: np.ndarray):
    """Solve min |b x - y| for every frame at once via the normal equations."""
    bt = np.transpose(b, (0, 2, 1))
    gram = bt @ b + 1e-6 * np.eye(b.shape[2])[None]
    rhs = bt @ y[:, :, None]
    return (np.linalg.solve(gram, rhs)[:, :, 0],)


def leaked_ms(
    recording: np.ndarray, sent: KeyedSignal, lag: int, sent_amplitude: float = 5000.0
) -> list[float]:
    """Milliseconds of each keyed tone that are still present in the recording.

    Each tone's span is mapped into the recording by `lag`, widened by one
    window each side, and cut into 10 ms windows every 5 ms; a window counts as
    5 ms of leak when the key's own two sines are fitted at a large share of
    the sent level and dominate the window.  An unmasked 100 ms tone scores
    about 100 ms; a fully masked one 0.
    """
    rec = np.asarray(recording, dtype=np.float64)
    out: list[float] = []
    for span in sent.spans:
        lo = max(span.start + lag - LEAK_WINDOW, 0)
        hi = min(span.end + lag + LEAK_WINDOW, len(rec))
        starts = np.arange(lo, hi - LEAK_WINDOW + 1, LEAK_HOP)
        if len(starts) == 0:
            out.append(0.0)
            continue
        frames = rec[starts[:, None] + np.arange(LEAK_WINDOW)[None, :]]
        amp, explained = _pair_fit(frames, key_frequencies(span.key), starts)
        leaking = (amp.min(axis=1) >= LEAK_AMPLITUDE_SHARE * sent_amplitude) & (
            explained >= LEAK_EXPLAINED
        )
        out.append(float(np.count_nonzero(leaking) * LEAK_HOP * 1000 // RATE))
    return out


def speech_similarity(
    recording: np.ndarray, sent: np.ndarray, chunk: int = 4000, search: int = 1600
) -> float:
    """How intact sent speech arrived: median over 0.5 s chunks of the best
    normalised cross-correlation near the chunk's expected place.

    The whole signal is first located coarsely; each chunk is then matched
    within +-`search` samples, so a jitter-buffer frame slip spoils one chunk,
    not the verdict.  Near-silent chunks are skipped.  1.0 = bit-exact.
    """
    rec = np.asarray(recording, dtype=np.float64)
    ref = np.asarray(sent, dtype=np.float64)
    if len(rec) < len(ref):
        rec = np.concatenate([rec, np.zeros(len(ref) - len(rec))])
    lag = int(np.argmax(_normalised_xcorr(rec, ref)))
    loud = np.sqrt(np.mean(ref * ref)) * 0.3
    scores = []
    for start in range(0, len(ref) - chunk + 1, chunk):
        piece = ref[start : start + chunk]
        if np.sqrt(np.mean(piece * piece)) < loud:
            continue
        lo = max(lag + start - search, 0)
        hi = min(lag + start + chunk + search, len(rec))
        window = rec[lo:hi]
        if len(window) < chunk:
            scores.append(0.0)
            continue
        scores.append(float(np.max(_normalised_xcorr(window, piece))))
    return float(np.median(scores)) if scores else 0.0


def _normalised_xcorr(rec: np.ndarray, ref: np.ndarray) -> np.ndarray:
    xc = correlate(rec, ref, mode="valid", method="fft")
    energy = np.convolve(rec * rec, np.ones(len(ref)), mode="valid")
    return xc / np.sqrt(np.maximum(energy, 1e-9) * float(np.dot(ref, ref)))
