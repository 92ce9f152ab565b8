from datetime import UTC, datetime

import pytest

from tests.support.cards import AMEX, VISA, sd
from tokenizer.fields import (
    CVV,
    POSTCODE,
    FieldSpec,
    custom_field,
    validate_cvv,
    validate_expiry,
    validate_length,
    validate_pan,
)

NOW = datetime(2026, 6, 15, tzinfo=UTC)


def test_valid_visa_pan_is_valid():
    assert validate_pan(sd(VISA)).valid


def test_pan_shorter_than_twelve_digits_is_too_short():
    assert validate_pan(sd("42424242424")).reason == "too_short"


def test_pan_longer_than_nineteen_digits_is_too_long():
    assert validate_pan(sd("4" * 20)).reason == "too_long"


def test_pan_failing_luhn_reports_luhn_failed():
    assert validate_pan(sd("4242424242424241")).reason == "luhn_failed"


def test_pan_of_wrong_length_for_its_brand_is_rejected():
    assert validate_pan(sd("37828224631000")).reason == "bad_length_for_brand"


def test_pan_from_no_known_range_is_unknown_brand():
    assert validate_pan(sd("9999999999999995")).reason == "unknown_brand"


def test_unknown_brand_can_be_allowed_by_configuration():
    assert validate_pan(sd("9999999999999995"), allow_unknown_brand=True).valid


def test_expiry_this_month_is_valid():
    assert validate_expiry(sd("0626"), NOW).valid


def test_expiry_last_month_is_expired():
    assert validate_expiry(sd("0526"), NOW).reason == "expired"


def test_month_thirteen_is_bad_month():
    assert validate_expiry(sd("1330"), NOW).reason == "bad_month"


def test_month_zero_is_bad_month():
    assert validate_expiry(sd("0030"), NOW).reason == "bad_month"


def test_expiry_more_than_twenty_years_ahead_is_rejected():
    assert validate_expiry(sd("0199"), NOW).reason == "too_far_ahead"


def test_three_digit_expiry_is_too_short():
    assert validate_expiry(sd("123"), NOW).reason == "too_short"


def test_visa_cvv_has_three_digits():
    assert validate_cvv(sd("123"), "visa").valid


def test_amex_cvv_needs_four_digits():
    assert validate_cvv(sd("123"), "amex").reason == "too_short"


def test_four_digit_cvv_is_too_long_for_visa():
    assert validate_cvv(sd("1234"), "visa").reason == "too_long"


def test_postcode_digits_within_limits_are_valid():
    assert validate_length(sd("12345"), POSTCODE).valid


def test_custom_field_below_minimum_is_too_short():
    assert validate_length(sd("12"), custom_field("account", 6, 8)).reason == "too_short"


def test_field_spec_rejects_unknown_kind():
    with pytest.raises(ValueError):
        FieldSpec("x", "colour", 1, 2)


def test_validation_result_holds_no_digits():
    result = validate_pan(sd(AMEX))
    assert AMEX not in repr(result) and CVV.name == "cvv"
