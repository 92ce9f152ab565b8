"""RFC 4733 telephone-event payloads."""

from __future__ import annotations

import pytest

from masker.rfc4733 import EventError, TelephoneEvent, build_event, digit_event, parse_event


def test_event_round_trips():
    ev = TelephoneEvent(event=11, end=True, volume=10, duration=1280)
    assert parse_event(build_event(ev)) == ev


def test_keypad_events_map_to_digits():
    events = [TelephoneEvent(e, False, 0, 0) for e in (0, 9, 10, 11, 12)]
    assert [parse_event(build_event(ev)).digit for ev in events] == ["0", "9", "*", "#", "A"]


def test_non_keypad_event_has_no_digit():
    assert TelephoneEvent(event=16, end=False, volume=0, duration=0).digit is None


def test_short_payload_is_rejected():
    with pytest.raises(EventError):
        parse_event(b"\x01\x02")


def test_end_bit_and_volume_are_parsed():
    ev = parse_event(bytes([5, 0x80 | 63, 0x01, 0x00]))
    assert ev.end and ev.volume == 63 and ev.duration == 256


def test_digit_event_codes():
    assert digit_event("#") == 11 and digit_event("d") == 15


def test_digit_event_rejects_non_keys():
    with pytest.raises(EventError):
        digit_event("x")


def test_repr_hides_the_event_code():
    assert "event=" not in repr(TelephoneEvent(event=7, end=False, volume=0, duration=0))
