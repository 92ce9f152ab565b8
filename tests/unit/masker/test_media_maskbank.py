"""Mask bank chunk sizes: few, large batches (a `process` has a fixed cost per
chunk that dwarfs a row's), never more rows than `max_slots` needs."""

from __future__ import annotations

from masker.media.maskbank import MaskBank


class Stub:
    def __init__(self, n: int, rate: int = 8000) -> None:
        self.n = n

    def reset(self, row: int) -> None:
        pass


def test_each_new_chunk_is_four_times_the_last_capped_by_the_slots_left():
    bank = MaskBank(Stub, batch_size=4, max_slots=50)
    for _ in range(50):
        bank.allocate()
    assert [len(u) for u in bank.used] == [4, 16, 30]
