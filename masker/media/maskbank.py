"""Masker slots for many calls, processed a chunk at a time.

A `BatchMasker` (dsp.tone_masker) masks a fixed number of streams per call of
`process`.  The bank holds one chunk per audio rate and lane, created on demand
with `batch_size` rows and grown as calls arrive, and the media tick runs only
the chunks that hold at least one call, so the cost follows the number of calls
rather than the configured maximum.

Each chunk runs at one audio rate: narrowband (8 kHz, G.711) calls share a
chunk, wideband (16 kHz, G.722) calls another, so one `process` per chunk
batches every call of its rate.  Each chunk also belongs to one lane (the
sub-tick of the frame it is processed in, masker.media.loop): calls whose packets
arrive at the same phase of the frame share a chunk.

`BatchMasking` and `MaskOutcome` are what the media plane needs of a batch
masker and of its per-stream results (dsp.tone_masker.BatchMasker and MaskResult
fit them; tests use stand-ins); `BatchFactory` makes one for n streams (at 8 kHz
as `factory(n)`, at another rate as `factory(n, rate=rate)`).  `MaskBank.warm_up`
builds the dsp's shared tables when a media engine starts, before its first call.
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

    def grow(self, rows: int, /) -> None:
        """Hold `rows` streams from now on, the current ones going on undisturbed."""
        ...


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

    def warm_up(self, frame: int = 160) -> None:
        """Mask a key through a throwaway one-stream batch at 8 kHz, so that the dsp's
        shared tables (tone bases, window gains, band-stop and replacement tables) and
        lazy imports exist before the first call.  They are the process's, not a
        call's: built at the first keyed call, they held up that tick for every call,
        and counted as that call's memory.  (16 kHz tables wait for a G.722 call.)"""
        from dsp.keypad import to_int16
        from dsp.testsignals import dtmf

        audio = np.concatenate([np.zeros(8 * frame), dtmf("5", 8 * frame), np.zeros(8 * frame)])
        masker = self(1)
        for block in to_int16(audio).reshape(-1, 1, frame):
            masker.process(block)


class SlotsExhausted(RuntimeError):
    """Every masker slot is in use (max_calls reached)."""


def _step(rows: int, unit: int) -> int:
    """`rows` rounded up to a whole number of `unit`s, at least one."""
    unit = max(unit, 1)
    return max(1, -(-rows // unit)) * unit


class MaskBank:
    """Slot allocator over one growing BatchMasker chunk per audio rate and lane.

    A chunk starts with `batch_size` rows and, when a call finds it full, grows by
    half its size rounded up to whole `batch_size`s (32, 64, 96, 160, 256, 384, ...;
    never past `max_slots`): the batch grows in place (`BatchMasking.grow`), its
    calls going on undisturbed.  So each rate and lane costs one `process` per tick,
    whose fixed cost (the dsp's per-tick work, a few hundred rows' worth on keyed
    audio) is paid once, and at most a third of a chunk's rows (processed and held
    in memory like the others) wait for calls.  A slot is `chunk * max_slots + row`
    (`first_slot`): it stays the same when its chunk grows.
    """

    def __init__(self, factory: BatchFactory, batch_size: int, max_slots: int, frame: int = 160):
        self.factory = factory
        self.batch_size = batch_size
        self.max_slots = max_slots
        self.frame = frame
        self.chunks: list[BatchMasking] = []
        self.used: list[list[bool]] = []

        self.rates: list[int] = []  # audio rate of each chunk
        self.lanes: list[int] = []  # lane of each chunk
        self.in_use = 0

    def allocate(self, rate: int = NARROWBAND, lane: int = 0) -> int:
        """A free slot in the chunk of `rate` and `lane` (made, or grown, when none is)."""
        if self.in_use >= self.max_slots:
            raise SlotsExhausted("no free masker slot")
        c = self._chunk(rate, lane)
        used = self.used[c]
        try:
            r = used.index(False)
        except ValueError:
            r = len(used)
            size = min(r + _step(r // 2, self.batch_size), self.max_slots)
            self.chunks[c].grow(size)
            used.extend([False] * (size - r))
        used[r] = True
        self.chunks[c].reset(r)
        self.in_use += 1
        return self.first_slot(c) + r

    def _chunk(self, rate: int, lane: int) -> int:
        """The index of the chunk of `rate` and `lane`, made when there is none yet."""
        for c, (r, k) in enumerate(zip(self.rates, self.lanes, strict=True)):
            if r == rate and k == lane:
                return c
        size = max(1, min(self.batch_size, self.max_slots))
        self.chunks.append(
            self.factory(size) if rate == NARROWBAND else self.factory(size, rate=rate)
        )
        self.used.append([False] * size)
        self.rates.append(rate)
        self.lanes.append(lane)
        return len(self.chunks) - 1

    def first_slot(self, chunk: int) -> int:
        """The slot number of a chunk's row 0."""
        return chunk * self.max_slots

    def rate_of(self, slot: int) -> int:
        return self.rates[self.locate(slot)[0]]

    def lane_of(self, slot: int) -> int:
        return self.lanes[self.locate(slot)[0]]

    def locate(self, slot: int) -> tuple[int, int]:
        """(chunk index, row) of a slot."""
        c, r = divmod(slot, self.max_slots)
        if slot < 0 or c >= len(self.chunks) or r >= len(self.used[c]):
            raise IndexError("no such slot")
        return c, r

    def release(self, slot: int) -> None:
        c, r = self.locate(slot)
        if self.used[c][r]:
            self.used[c][r] = False
            self.in_use -= 1

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

    def warm_up(self) -> None:
        """Build the dsp's shared tables before the first call (DspBatchFactory.warm_up),
        in this bank's frames; other factories (tests' stand-ins) have none."""
        if isinstance(self.factory, DspBatchFactory):
            self.factory.warm_up(self.frame)
