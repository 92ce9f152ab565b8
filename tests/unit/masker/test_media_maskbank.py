"""Mask bank chunks: one per rate and lane (a `process` has a fixed cost per chunk
that dwarfs a row's), grown in place as calls arrive, never past `max_slots`."""

from __future__ import annotations

import pytest

from masker.media.maskbank import MaskBank, SlotsExhausted


class Stub:
    def __init__(self, n: int, rate: int = 8000) -> None:
        self.n = n
        self.sizes = [n]
        self.resets: list[int] = []

    def reset(self, row: int) -> None:
        self.resets.append(row)

    def grow(self, n: int) -> None:
        assert n > self.n
        self.n = n
        self.sizes.append(n)


def test_a_full_chunk_grows_in_place_by_half_in_whole_batches_capped_by_max_slots():
    bank = MaskBank(Stub, batch_size=4, max_slots=50)
    for _ in range(50):
        bank.allocate()
    assert len(bank.chunks) == 1
    assert bank.chunks[0].sizes == [4, 8, 12, 20, 32, 48, 50]


def test_slots_keep_their_number_when_their_chunk_grows():
    bank = MaskBank(Stub, batch_size=2, max_slots=16)
    first = [bank.allocate(), bank.allocate()]
    wide = bank.allocate(16000)
    more = [bank.allocate() for _ in range(3)]  # the narrowband chunk grows to 8 rows
    assert [bank.locate(s) for s in first + more] == [(0, r) for r in range(5)]
    assert bank.locate(wide) == (1, 0) and bank.rate_of(wide) == 16000


def test_a_freed_row_is_used_again_before_the_chunk_grows():
    bank = MaskBank(Stub, batch_size=2, max_slots=8)
    a, _ = bank.allocate(), bank.allocate()
    bank.release(a)
    assert bank.allocate() == a
    assert bank.chunks[0].sizes == [2] and bank.chunks[0].resets == [0, 1, 0]


def test_allocation_past_max_slots_is_refused_and_a_release_makes_room():
    bank = MaskBank(Stub, batch_size=2, max_slots=3)
    slots = [bank.allocate(), bank.allocate(16000), bank.allocate()]
    with pytest.raises(SlotsExhausted):
        bank.allocate()
    bank.release(slots[1])
    bank.release(slots[1])  # a second release of the same slot changes nothing
    assert bank.in_use == 2
    bank.allocate()
    with pytest.raises(SlotsExhausted):
        bank.allocate(16000)
