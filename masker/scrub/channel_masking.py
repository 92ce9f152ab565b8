"""The live-call masker over whole channels, batched by segments.

`dsp.tone_masker.BatchMasker` costs about the same per tick for one call as for a
few dozen, so a channel is cut into segments ("lanes") that run side by side as
one batch.  Each lane starts `WARMUP_S` before the part it owns and runs
`tail` past it, so the masker's state where the owned part starts has settled
and its look-ahead decisions at the end are the ones a single pass would make
(the masker is causal within its look-ahead).  Lane starts are whole seconds,
which keeps the 20 ms tick grid and the masking tone's phase (a function of the
input position modulo one second) identical to one pass over the channel.

Results are in input-sample indices of the channel: masked spans (end
exclusive, merged), band-stopped spans (`dsp.bandstop`, merged), key presses
(start, end; never the digit), and, on request, the channel with its masked and
band-stopped spans replaced by the masker's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

#: Shortest owned segment; shorter files run as one lane per channel.
SEGMENT_MIN_S = 8
#: Most lanes in one batch (throughput is flat above ~16).
MAX_LANES = 32
WARMUP_S = 1
#: Audio fed to the masker per call (it ticks in 80 ms steps inside).
BLOCK_S = 1


@dataclass
class ChannelResult:
    spans: list[tuple[int, int]] = field(default_factory=list)
    stopped: list[tuple[int, int]] = field(default_factory=list)
    keys: list[tuple[int, int]] = field(default_factory=list)
    audio: NDArray[np.int16] | None = None


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, with overlapping and touching spans joined."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def run(
    channels: list[NDArray[np.int16]],
    rate: int,
    mode: str = "tone",
    lookahead_ms: int = 40,
    keep_audio: bool = True,
) -> list[ChannelResult]:
    """Mask every channel (int16, 1-D, at 8 or 16 kHz); see the module docstring."""
    from dsp.tone_masker import BatchMasker, MaskResult

    total = sum(len(c) for c in channels)
    seg = max(SEGMENT_MIN_S * rate, -(-total // MAX_LANES))
    seg = -(-seg // rate) * rate
    frame = rate // 50
    probe = BatchMasker(1, sample_rate=rate, lookahead_ms=lookahead_ms, mode=mode)
    delay = probe.delay
    tail = -(-(delay + 3 * frame) // frame) * frame
    lanes = []  # (channel, own_start, own_end, run_start, run_end)
    for c, x in enumerate(channels):
        for s in range(0, len(x), seg):
            e = min(s + seg, len(x))
            lanes.append((c, s, e, max(0, s - WARMUP_S * rate), min(len(x), e + tail)))
    results = [ChannelResult() for _ in channels]
    if not lanes:
        for r, x in zip(results, channels, strict=True):
            r.audio = x.copy() if keep_audio else None
        return results
    length = max(re - rs for _, _, _, rs, re in lanes)
    length = -(-length // frame) * frame
    x_in = np.zeros((len(lanes), length), np.int16)
    for i, (c, _, _, rs, re) in enumerate(lanes):
        x_in[i, : re - rs] = channels[c][rs:re]
    batch = BatchMasker(len(lanes), sample_rate=rate, lookahead_ms=lookahead_ms, mode=mode)
    out = np.zeros((len(lanes), length + delay), np.int16) if keep_audio else None
    spans: list[list[tuple[int, int]]] = [[] for _ in lanes]
    stopped: list[list[tuple[int, int]]] = [[] for _ in lanes]
    keys: list[list[tuple[int, int]]] = [[] for _ in lanes]

    def keep(res: list[MaskResult], at: int) -> None:
        for i, r in enumerate(res):
            if out is not None:
                n = min(len(r.audio), out.shape[1] - at)
                out[i, at : at + n] = r.audio[:n]
            spans[i].extend(r.masked)
            stopped[i].extend(r.stopped)
            keys[i].extend((d.start, d.end) for d in r.digits)

    block = BLOCK_S * rate
    at = 0
    for i in range(0, length, block):
        chunk = x_in[:, i : i + block]
        keep(batch.process(chunk), at)
        at += chunk.shape[1]
    keep(batch.flush(), at)

    for i, (c, s, e, rs, _) in enumerate(lanes):
        r = results[c]
        for own, found in ((r.spans, spans[i]), (r.stopped, stopped[i])):
            for a, b in found:
                a, b = max(a + rs, s), min(b + rs, e)
                if b > a:
                    own.append((a, b))
        r.keys.extend((a + rs, b + rs) for a, b in keys[i] if s <= a + rs < e)
    for c, r in enumerate(results):
        r.spans = merge_spans(r.spans)
        r.stopped = merge_spans(r.stopped)
        r.keys.sort()
        if keep_audio:
            r.audio = channels[c].copy()
    if out is not None:  # keep_audio
        for i, (c, s, e, rs, _) in enumerate(lanes):
            aligned = out[i, delay:]
            audio = results[c].audio
            assert audio is not None  # kept above
            for a, b in results[c].spans + results[c].stopped:
                a, b = max(a, s), min(b, e)
                if b > a:
                    audio[a:b] = aligned[a - rs : b - rs]
    return results
