import pickle

import pytest

from tests.support.cards import VISA
from tokenizer.sensitive import SensitiveDigits


def test_repr_shows_only_the_length():
    assert repr(SensitiveDigits(VISA)) == "SensitiveDigits(<16 digits>)"


def test_str_and_format_do_not_show_digits():
    value = SensitiveDigits(VISA)
    assert VISA not in str(value) and VISA not in f"{value}" and VISA not in format(value, "")


def test_wipe_zeroes_a_buffer_someone_still_views():
    value = SensitiveDigits(VISA)
    view = memoryview(value._buf)
    value.wipe()
    assert len(value) == 0 and bytes(view) == bytes(16)


def test_wiped_value_reveals_nothing():
    value = SensitiveDigits(VISA)
    value.wipe()
    assert value.reveal() == ""


def test_wipe_overwrites_before_shrinking():
    value = SensitiveDigits("123")
    buf = value._buf
    writes = []

    class Spy(bytearray):
        def __setitem__(self, i, v):
            writes.append(v)
            super().__setitem__(i, v)

    value._buf = Spy(buf)
    value.wipe()
    assert writes == [0, 0, 0]


def test_append_rejects_non_digits():
    with pytest.raises(ValueError):
        SensitiveDigits().append("#")


def test_cannot_be_pickled():
    with pytest.raises(TypeError):
        pickle.dumps(SensitiveDigits(VISA))


def test_reveal_returns_the_digits():
    assert SensitiveDigits(VISA).reveal() == VISA


def test_equal_values_compare_equal():
    assert SensitiveDigits("123") == SensitiveDigits("123")
