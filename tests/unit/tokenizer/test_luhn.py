from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.cards import AMEX, VISA
from tokenizer.luhn import luhn_check_digit, luhn_valid

digit_strings = st.text(alphabet="0123456789", min_size=1, max_size=25)


def test_known_test_cards_pass():
    assert luhn_valid(VISA) and luhn_valid(AMEX)


def test_single_digit_change_fails():
    assert not luhn_valid("4242424242424241")


def test_empty_string_is_not_valid():
    assert not luhn_valid("")


def test_check_digit_completes_a_known_card():
    assert luhn_check_digit(VISA[:-1]) == VISA[-1]


@settings(derandomize=True, deadline=None)
@given(digit_strings)
def test_appending_the_check_digit_always_passes(partial):
    assert luhn_valid(partial + luhn_check_digit(partial))


@settings(derandomize=True, deadline=None)
@given(digit_strings, st.integers(min_value=0), st.integers(min_value=1, max_value=9))
def test_changing_any_one_digit_of_a_valid_number_breaks_it(partial, pos, delta):
    number = partial + luhn_check_digit(partial)
    i = pos % len(number)
    changed = number[:i] + str((int(number[i]) + delta) % 10) + number[i + 1 :]
    assert not luhn_valid(changed)


@settings(derandomize=True, deadline=None)
@given(digit_strings)
def test_exactly_one_check_digit_makes_a_number_valid(partial):
    assert sum(luhn_valid(partial + str(d)) for d in range(10)) == 1
