"""Masker slots for many calls, processed a chunk at a time.

A `BatchMasker` (dsp.masker) masks a fixed number of streams per call of
`process`.  The bank holds chunks of `batch_size` slots, created on demand, and
the media tick runs only the chunks that hold at least one call, so the cost
follows the number of calls rather than the configured maximum.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

BatchFactory = Callable[[int], Any]


class SlotsExhausted(RuntimeError):
    """Every masker slot is in use (max_calls reached)."""


class MaskBank:
    """Slot allocator over lazily created BatchMasker chunks."""

    def __init__(self, factory: BatchFactory, batch_size: int, max_slots: int, frame: int = 160):
        self.factory = factory
        self.batch_size = batch_size
        self.max_slots = max_slots
        self.frame = frame
        self.chunks: list[Any] = []
        self.used: list[list[bool]] = []

    def allocate(self) -> int:
        for c, used in enumerate(self.used):
            for r, u in enumerate(used):
                if not u:
                    used[r] = True
                    slot = c * self.batch_size + r
                    self.chunks[c].reset(r)
                    return slot
        if len(self.chunks) * self.batch_size >= self.max_slots:
            raise SlotsExhausted("no free masker slot")
        self.chunks.append(self.factory(self.batch_size))
        self.used.append([False] * self.batch_size)
        self.used[-1][0] = True
        return (len(self.chunks) - 1) * self.batch_size

    def release(self, slot: int) -> None:
        c, r = divmod(slot, self.batch_size)
        self.used[c][r] = False

    def chunk_of(self, slot: int) -> tuple[Any, int]:
        c, r = divmod(slot, self.batch_size)
        return self.chunks[c], r

    def force_mask(self, slot: int, start: int, end: int) -> None:
        chunk, r = self.chunk_of(slot)
        chunk.force_mask(r, start, end)

    def arm(self, slot: int, armed: bool) -> None:
        chunk, r = self.chunk_of(slot)
        (chunk.arm if armed else chunk.disarm)(r)

    def active_chunks(self) -> list[int]:
        return [c for c, used in enumerate(self.used) if any(used)]

    def process(self, chunk_index: int, frames: np.ndarray) -> list[Any]:
        return self.chunks[chunk_index].process(frames)
