from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.cards import AMEX, VISA
from tokenizer.luhn import luhn_check_digit, luhn_valid
from tokenizer.redact import REDACTED, redact_card_data, redact_text


def run(event):
    return redact_card_data(None, "info", event)


def test_card_number_in_the_message_is_redacted():
    assert run({"event": f"paid with {VISA}"})["event"] == f"paid with {REDACTED}"


def test_card_number_split_by_spaces_is_redacted():
    assert VISA[:4] + " " not in redact_text("4242 4242 4242 4242 ok")


def test_card_number_split_by_dashes_is_redacted():
    assert redact_text("3782-822463-10005") == REDACTED


def test_luhn_failing_digit_run_is_kept():
    wrong = "12345678901" + str((int(luhn_check_digit("12345678901")) + 1) % 10)
    assert redact_text(f"order {wrong}") == f"order {wrong}"


def test_short_numbers_are_kept():
    assert redact_text("call 12 at 2026-01-15 10:00") == "call 12 at 2026-01-15 10:00"


def test_card_inside_a_longer_digit_run_is_redacted():
    assert VISA not in redact_text("ref 99" + VISA + "77")


def test_values_under_card_keys_are_redacted_whatever_they_hold():
    out = run({"event": "x", "cvv": "947", "expiry": "0839", "pan": "not digits"})
    assert (out["cvv"], out["expiry"], out["pan"]) == (REDACTED, REDACTED, REDACTED)


def test_card_keys_match_case_insensitively():
    assert run({"event": "x", "Card_Number": "1"})["Card_Number"] == REDACTED


def test_nested_values_are_redacted():
    out = run({"event": "x", "body": {"card": {"cvc": "947"}, "note": [AMEX]}})
    assert out["body"]["card"] == REDACTED and out["body"]["note"] == [REDACTED]


def test_integers_that_are_card_numbers_are_redacted():
    assert run({"event": "x", "value": int(VISA)})["value"] == REDACTED


def test_bytes_values_are_redacted():
    assert run({"event": "x", "raw": VISA.encode()})["raw"] == REDACTED


def test_exception_objects_are_redacted():
    assert VISA not in str(run({"event": "x", "err": ValueError(VISA)})["err"])


def test_other_fields_pass_through():
    assert run({"event": "x", "amount": 1250, "ok": True}) == {
        "event": "x",
        "amount": 1250,
        "ok": True,
    }


@settings(derandomize=True, deadline=None)
@given(
    st.text("0123456789", min_size=11, max_size=18),
    st.sampled_from(["", " ", "-"]),
    st.text(max_size=10).filter(lambda t: not any(c.isdigit() for c in t)),
)
def test_any_luhn_valid_12_to_19_digit_run_is_redacted(partial, sep, prefix):
    pan = partial + luhn_check_digit(partial)
    shown = sep.join(pan[i : i + 4] for i in range(0, len(pan), 4))
    out = redact_text(prefix + " " + shown + " end")
    assert pan not in out.replace(" ", "").replace("-", "")


@settings(derandomize=True, deadline=None)
@given(st.text(max_size=60))
def test_redaction_leaves_no_luhn_valid_run(text):
    out = redact_text(text)
    digits_runs = "".join(c if c.isdigit() and c.isascii() else " " for c in out).split()
    for run_ in digits_runs:
        for n in range(12, min(19, len(run_)) + 1):
            assert not any(luhn_valid(run_[i : i + n]) for i in range(len(run_) - n + 1))
