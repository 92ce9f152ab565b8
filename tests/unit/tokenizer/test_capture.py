import json

import pytest

from tests.support.cards import AMEX, MASTERCARD, VISA
from tokenizer.capture import CaptureSession, CaptureSettings
from tokenizer.clock import ManualClock
from tokenizer.fields import CVV, EXPIRY, PAN, POSTCODE


@pytest.fixture
def clock():
    return ManualClock()  # 2026-01-15


@pytest.fixture
def events():
    return []


def make(clock, events, fields=(PAN, EXPIRY, CVV), **settings):
    return CaptureSession(
        fields, settings=CaptureSettings(**settings), clock=clock, emit=events.append
    )


def keys(session, text):
    for ch in text:
        session.digit(ch)


def progress(events, field):
    return [e for e in events if e["event"] == "progress" and e["field"] == field]


def test_fields_are_collected_in_order(clock, events):
    s = make(clock, events)
    keys(s, VISA + "#")
    assert s.current_name == "expiry"


def test_hash_ends_a_field(clock, events):
    s = make(clock, events)
    keys(s, VISA + "#")
    assert progress(events, "pan")[-1]["ended_by"] == "hash"


def test_reaching_the_brand_maximum_ends_the_pan(clock, events):
    s = make(clock, events)
    keys(s, MASTERCARD)
    assert progress(events, "pan")[-1]["ended_by"] == "max_length" and s.current_name == "expiry"


def test_four_expiry_digits_end_the_expiry(clock, events):
    s = make(clock, events)
    keys(s, VISA + "#0839")
    assert s.current_name == "cvv"


def test_amex_cvv_takes_four_digits(clock, events):
    s = make(clock, events)
    keys(s, AMEX + "0839" + "123")
    assert s.state == "collecting"
    keys(s, "4")
    assert s.state == "complete"


def test_star_clears_the_current_field(clock, events):
    s = make(clock, events)
    keys(s, "4242*")
    assert progress(events, "pan")[-1]["entered"] == 0 and progress(events, "pan")[-1]["cleared"]


def test_field_ends_after_the_inter_digit_timeout(clock, events):
    s = make(clock, events, field_timeout_s=5.0)
    keys(s, VISA)
    clock.advance(5.0)
    s.poll()
    assert progress(events, "pan")[-1]["ended_by"] == "timeout" and s.current_name == "expiry"


def test_empty_field_does_not_time_out_per_field(clock, events):
    s = make(clock, events, field_timeout_s=5.0)
    clock.advance(6.0)
    s.poll()
    assert s.current_name == "pan" and not progress(events, "pan")


def test_session_times_out_without_keys(clock, events):
    s = make(clock, events, session_timeout_s=60.0)
    clock.advance(60.0)
    s.poll()
    assert s.state == "timed_out" and events[-1] == {"event": "timed_out"}


def test_session_timeout_wipes_digits(clock, events):
    s = make(clock, events, session_timeout_s=60.0, field_timeout_s=100.0)
    keys(s, VISA[:8])
    clock.advance(60.0)
    s.poll()
    assert len(s.value("pan")) == 0


def test_invalid_pan_reports_its_reason(clock, events):
    s = make(clock, events)
    keys(s, "4242424242424241#")
    last = progress(events, "pan")[-1]
    assert (last["valid"], last["reason"]) == (False, "luhn_failed")


def test_invalid_field_is_asked_for_again(clock, events):
    s = make(clock, events)
    keys(s, "4242424242424241#")
    assert s.current_name == "pan" and len(s.value("pan")) == 0
    assert events[-1]["event"] == "field_started" and events[-1]["attempt"] == 2


def test_too_many_invalid_attempts_fail_the_capture(clock, events):
    s = make(clock, events, max_attempts=2)
    keys(s, "1234567890123#1234567890123#")
    assert s.state == "failed"


def test_expired_card_is_rejected(clock, events):
    s = make(clock, events)
    keys(s, VISA + "#1225")
    assert progress(events, "expiry")[-1]["reason"] == "expired"


def test_progress_event_matches_the_documented_shape(clock, events):
    s = make(clock, events)
    keys(s, "4111111111111111#")
    last = progress(events, "pan")[-1]
    assert {k: last[k] for k in ("field", "entered", "display", "brand", "luhn", "complete")} == {
        "field": "pan",
        "entered": 16,
        "display": "•••• •••• •••• 1111",
        "brand": "visa",
        "luhn": True,
        "complete": True,
    }


def test_brand_appears_once_known(clock, events):
    s = make(clock, events)
    keys(s, "4")
    assert progress(events, "pan")[-1]["brand"] == "visa"


def test_display_hides_digits_while_keying(clock, events):
    s = make(clock, events)
    keys(s, VISA[:15])
    assert not any(ch.isdigit() for ch in progress(events, "pan")[-1]["display"])


def test_bin_display_mode_shows_first_six_when_complete(clock, events):
    s = make(clock, events, display_mode="bin_last4")
    keys(s, VISA + "#")
    assert progress(events, "pan")[-1]["display"] == "4242 42•• •••• 4242"


def test_expiry_and_cvv_show_only_bullets(clock, events):
    s = make(clock, events)
    keys(s, VISA + "#0839" + "94")
    shown = [
        e["display"] for e in events if e["event"] == "progress" and e["field"] in ("expiry", "cvv")
    ]
    assert shown and all(set(d) <= {"•"} for d in shown)


def test_agent_restart_clears_a_completed_field(clock, events):
    s = make(clock, events)
    keys(s, VISA + "#0839")
    s.restart_field("expiry")
    assert s.current_name == "expiry" and len(s.value("expiry")) == 0


def test_restarting_the_pan_also_clears_the_cvv(clock, events):
    s = make(clock, events)
    keys(s, VISA + "#0839947")
    s.restart_field("pan")
    assert len(s.value("cvv")) == 0 and s.state == "collecting"


def test_after_a_restart_completed_fields_are_kept(clock, events):
    s = make(clock, events)
    keys(s, VISA + "#0839947")
    s.restart_field("pan")
    keys(s, MASTERCARD)
    assert s.current_name == "cvv" and s.value("expiry").reveal() == "0839"


def test_restart_of_unknown_field_is_refused(clock, events):
    with pytest.raises(ValueError):
        make(clock, events).restart_field("colour")


def test_cancel_wipes_and_reports(clock, events):
    s = make(clock, events)
    keys(s, VISA)
    s.cancel()
    assert s.state == "cancelled" and len(s.value("pan")) == 0
    assert events[-1]["event"] == "cancelled"


def test_keys_after_completion_are_ignored(clock, events):
    s = make(clock, events)
    keys(s, VISA + "#0839947")
    n = len(events)
    keys(s, "123")
    assert s.state == "complete" and len(events) == n


def test_letter_keys_are_ignored(clock, events):
    s = make(clock, events)
    keys(s, "4A2B")
    assert len(s.value("pan")) == 2


def test_optional_postcode_field_is_collected(clock, events):
    s = make(clock, events, fields=(PAN, EXPIRY, CVV, POSTCODE))
    keys(s, VISA + "#0839947" + "12345#")
    assert s.state == "complete"


def test_every_event_is_json_and_holds_no_card_digits(clock, events):
    s = make(clock, events)
    keys(s, VISA + "#0839947")
    text = json.dumps(events, ensure_ascii=False)
    assert VISA not in text and "0839" not in text and "947" not in text


def test_repr_shows_no_digits(clock, events):
    s = make(clock, events)
    keys(s, VISA)
    assert "4242" not in repr(s)


def test_hash_before_any_digit_is_ignored(clock, events):
    s = make(clock, events)
    keys(s, "#")
    assert s.current_name == "pan" and not progress(events, "pan")


def test_restart_revives_a_failed_capture_from_scratch(clock, events):
    s = make(clock, events, max_attempts=1)
    keys(s, VISA + "#" + "1225")  # expired: capture fails and everything is wiped
    s.restart_field("expiry")
    keys(s, "0839947")
    assert s.state == "collecting" and s.current_name == "pan"
