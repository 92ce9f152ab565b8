import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import cards as cards
from tokenizer.brands import cvv_length, detect_brand, max_length, valid_length


@pytest.mark.parametrize(
    "pan,brand",
    [
        (cards.VISA, "visa"),
        (cards.MASTERCARD, "mastercard"),
        (cards.MASTERCARD_2SERIES, "mastercard"),
        (cards.AMEX, "amex"),
        (cards.DISCOVER, "discover"),
        (cards.JCB, "jcb"),
        (cards.UNIONPAY, "unionpay"),
        (cards.DINERS, "diners"),
        (cards.MAESTRO, "maestro"),
    ],
)
def test_test_cards_are_detected_as_their_brand(pan, brand):
    assert detect_brand(pan) == brand


@pytest.mark.parametrize("prefix", ["2221", "2500", "2720"])
def test_mastercard_two_series_bounds_are_mastercard(prefix):
    assert detect_brand(prefix + "000000") == "mastercard"


@pytest.mark.parametrize("prefix", ["2220", "2721"])
def test_just_outside_the_two_series_is_unknown(prefix):
    assert detect_brand(prefix + "000000") is None


def test_brand_is_unknown_while_the_prefix_is_ambiguous():
    assert detect_brand("5") is None  # Mastercard 51-55 or Maestro 5018/5020/...


def test_visa_is_known_from_the_first_digit():
    assert detect_brand("4") == "visa"


def test_amex_valid_length_is_fifteen_only():
    assert valid_length("amex", 15) and not valid_length("amex", 16)


def test_amex_cvv_has_four_digits():
    assert cvv_length("amex") == 4 and cvv_length("visa") == 3


def test_mastercard_entry_ends_at_sixteen_digits():
    assert max_length("mastercard") == 16


@settings(derandomize=True, deadline=None)
@given(st.sampled_from(["51", "52", "53", "54", "55"]), st.text("0123456789", max_size=12))
def test_any_number_starting_51_to_55_is_mastercard(prefix, rest):
    assert detect_brand(prefix + rest) == "mastercard"


@settings(derandomize=True, deadline=None)
@given(st.text("0123456789", min_size=1, max_size=19))
def test_a_detected_brand_never_changes_as_more_digits_arrive(digits):
    first = next(
        (detect_brand(digits[:i]) for i in range(1, len(digits) + 1) if detect_brand(digits[:i])),
        None,
    )
    if first is not None:
        assert detect_brand(digits) == first
