"""Mask bank chunks: one per rate and lane (a `process` has a fixed cost per chunk
that dwarfs a row's), grown in place as calls arrive, never past `max_slots`."""

from __future__ import annotations

import numpy as np
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


def _dsp_caches() -> dict[str, object]:
    """Every memoised table-building function of the dsp package."""
    import importlib
    import pkgutil

    import dsp

    found = {}
    for info in pkgutil.iter_modules(dsp.__path__):
        module = importlib.import_module(f"dsp.{info.name}")
        for name, fn in vars(module).items():
            if callable(getattr(fn, "cache_info", None)):
                found[f"{info.name}.{name}"] = fn
    del found["detector._list_display"]  # per batch size: a compiled `[[], ...]`, no table
    return found


def test_after_warm_up_a_keyed_call_builds_no_shared_dsp_table():
    """The tables are the process's: built at start, not in the first keyed call's
    tick (where they held up every call, and counted as that call's memory)."""
    from dsp.keypad import to_int16
    from dsp.testsignals import dtmf
    from masker.media.maskbank import DspBatchFactory

    caches = _dsp_caches()
    for fn in caches.values():
        fn.cache_clear()
    factory = DspBatchFactory(lookahead_ms=20.0)
    factory.warm_up()
    built = {name: fn.cache_info().misses for name, fn in caches.items()}
    assert sum(built.values()) > 0
    call = factory(3)
    keyed = to_int16(np.concatenate([np.zeros(800), dtmf("1", 960), np.zeros(1600)]))
    for block in np.broadcast_to(keyed, (3, keyed.size)).reshape(3, -1, 160).transpose(1, 0, 2):
        call.process(block)
    assert {name: fn.cache_info().misses for name, fn in caches.items()} == built
