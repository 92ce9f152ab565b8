"""Masker slots for many calls, processed a chunk at a time.

A `BatchMasker` (dsp.tone_masker) masks a fixed number of streams per call of
`process`.  The bank holds chunks of `batch_size` slots, created on demand, and
the media tick runs only the chunks that hold at least one call, so the cost
follows the number of calls rather than the configured maximum.

Each chunk runs at one audio rate: narrowband (8 kHz, G.711) calls share
chunks, wideband (16 kHz, G.722) calls others, so one `process` per chunk
still batches every call of its rate.  Each chunk also belongs to one lane (the
sub-tick of the frame it is processed in, masker.media.loop): calls whose packets
arrive at the same phase of the frame share chunks.

`BatchMasking` and `MaskOutcome` are what the media plane needs of a batch
masker and of its per-stream results (dsp.tone_masker.BatchMasker and MaskResult
fit them; tests use stand-ins); `BatchFactory` makes one for n streams (at 8 kHz
as `factory(n)`, at another rate as `factory(n, rate=rate)`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dsp.events import DigitEvent


class MaskOutcome(Protocol):
    """One stream's result of a batch `process`: the masked output frame and the key
    presses the in-band detector finished in it."""

    @property
    def audio(self) -> np.ndarray: ...

    @property
    def digits(self) -> Sequence[DigitEvent]: ...


class BatchMasking(Protocol):
    """A masker for a fixed number of streams (rows), one frame of each per `process`."""

    def process(self, frames: np.ndarray, /) -> Sequence[MaskOutcome]: ...

    def reset(self, row: int, /) -> None: ...

    def force_mask(self, row: int, start: int, end: int, /) -> None: ...

    def arm(self, row: int, /) -> None: ...

    def disarm(self, row: int, /) -> None: ...


BatchFactory = Callable[..., BatchMasking]
#: The audio rate of narrowband chunks (and the default).
NARROWBAND = 8000


@dataclass(frozen=True)
class DspBatchFactory:
    """The dsp/ batch masker with one look-ahead and mask mode (as `masker mask`), at
    8 kHz or, for G.722 calls, 16 kHz: a BatchFactory that pickles, so a media worker
    process builds the same maskers as the service would."""

    lookahead_ms: float = 40.0
    mode: str = "tone"

    def __call__(self, n: int, rate: int = NARROWBAND) -> BatchMasking:
        from dsp.tone_masker import BatchMasker

        return BatchMasker(n, sample_rate=rate, lookahead_ms=self.lookahead_ms, mode=self.mode)


class SlotsExhausted(RuntimeError):
    """Every masker slot is in use (max_calls reached)."""


class MaskBank:
    """Slot allocator over lazily created BatchMasker chunks.

    The first chunk of a rate and lane has `batch_size` slots, each later one four
    times its predecessor (32, 128, 512, ...), never more than the slots still left under
    `max_slots`: a few calls cost one small batch, hundreds share two or three.  A
    `process` has a fixed cost of about 200 rows' worth (dsp's per-tick work), so
    fewer, larger chunks are cheaper per call than many small ones.
    """

    def __init__(self, factory: BatchFactory, batch_size: int, max_slots: int, frame: int = 160):
        self.factory = factory
        self.batch_size = batch_size
        self.max_slots = max_slots
        self.frame = frame
        self.chunks: list[BatchMasking] = []
        self.used: list[list[bool]] = []

        self.starts: list[int] = []  # first slot number of each chunk
        self.rates: list[int] = []  # audio rate of each chunk
        self.lanes: list[int] = []  # lane of each chunk

    def _size(self, rate: int, lane: int) -> int:
        sizes = [
            len(u)
            for u, r, k in zip(self.used, self.rates, self.lanes, strict=True)
            if r == rate and k == lane
        ]
        if not sizes:
            return self.batch_size
        return max(1, min(4 * sizes[-1], self.max_slots - sum(sizes)))

    def allocate(self, rate: int = NARROWBAND, lane: int = 0) -> int:
        """A free slot in a chunk of `rate` and `lane` (a new chunk when none is free)."""
        for c, used in enumerate(self.used):
            if self.rates[c] != rate or self.lanes[c] != lane:
                continue
            for r, u in enumerate(used):
                if not u:
                    used[r] = True
                    self.chunks[c].reset(r)
                    return self.starts[c] + r
        if sum(map(sum, self.used)) >= self.max_slots:
            raise SlotsExhausted("no free masker slot")
        start = self.starts[-1] + len(self.used[-1]) if self.chunks else 0
        size = self._size(rate, lane)
        self.chunks.append(
            self.factory(size) if rate == NARROWBAND else self.factory(size, rate=rate)
        )
        self.used.append([False] * size)
        self.starts.append(start)
        self.rates.append(rate)
        self.lanes.append(lane)
        self.used[-1][0] = True
        return start

    def rate_of(self, slot: int) -> int:
        return self.rates[self.locate(slot)[0]]

    def lane_of(self, slot: int) -> int:
        return self.lanes[self.locate(slot)[0]]

    def locate(self, slot: int) -> tuple[int, int]:
        """(chunk index, row) of a slot."""
        for c in range(len(self.starts) - 1, -1, -1):
            if slot >= self.starts[c]:
                return c, slot - self.starts[c]
        raise IndexError("no such slot")

    def release(self, slot: int) -> None:
        c, r = self.locate(slot)
        self.used[c][r] = False

    def chunk_of(self, slot: int) -> tuple[BatchMasking, int]:
        c, r = self.locate(slot)
        return self.chunks[c], r

    def force_mask(self, slot: int, start: int, end: int) -> None:
        chunk, r = self.chunk_of(slot)
        chunk.force_mask(r, start, end)

    def arm(self, slot: int, armed: bool) -> None:
        chunk, r = self.chunk_of(slot)
        (chunk.arm if armed else chunk.disarm)(r)

    def active_chunks(self, lane: int | None = None) -> list[int]:
        """Chunks holding a call (of `lane`; of every lane when None)."""
        return [
            c
            for c, used in enumerate(self.used)
            if (lane is None or self.lanes[c] == lane) and any(used)
        ]

    def process(self, chunk_index: int, frames: np.ndarray) -> Sequence[MaskOutcome]:
        return self.chunks[chunk_index].process(frames)
