import pytest

from tests.support.cards import AMEX, VISA, sd
from tokenizer.display import mask_other, mask_pan


def test_complete_pan_shows_last_four_only_by_default():
    assert mask_pan(sd(VISA), complete=True) == "•••• •••• •••• 4242"


def test_bin_mode_shows_first_six_and_last_four():
    assert mask_pan(sd(VISA), complete=True, mode="bin_last4") == "4242 42•• •••• 4242"


def test_incomplete_pan_shows_bullets_only():
    assert mask_pan(sd(VISA[:10]), complete=False) == "•••• •••• ••"


def test_display_never_shows_more_than_ten_digits():
    shown = mask_pan(sd(AMEX), complete=True, mode="bin_last4")
    assert sum(ch.isdigit() for ch in shown) == 10


def test_other_fields_show_bullets_per_digit():
    assert mask_other(sd("947")) == "•••"


def test_unknown_display_mode_is_rejected():
    with pytest.raises(ValueError):
        mask_pan(sd(VISA), complete=True, mode="all")
