"""RFC 4733 telephone-event payloads."""

from __future__ import annotations

import pytest

from masker.wire.rfc4733 import (
    EventError,
    TelephoneEvent,
    build_event,
    build_events,
    digit_event,
    parse_event,
    parse_events,
)


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


def test_a_four_byte_payload_is_one_event_at_offset_zero():
    ev = TelephoneEvent(event=3, end=False, volume=10, duration=320)
    assert parse_events(build_event(ev)) == [(0, ev)]


def test_packed_events_start_where_the_previous_one_ended():
    evs = [
        TelephoneEvent(1, True, 10, 800),
        TelephoneEvent(2, True, 10, 640),
        TelephoneEvent(3, False, 10, 160),
    ]
    assert parse_events(build_events(evs)) == [(0, evs[0]), (800, evs[1]), (1440, evs[2])]


def test_zero_padding_after_an_ended_event_is_not_a_packed_key():
    ev = TelephoneEvent(event=5, end=True, volume=10, duration=800)
    assert parse_events(build_event(ev) + b"\0\0\0\0") == [(0, ev)]


def test_blocks_after_an_event_that_has_not_ended_are_not_packed_keys():
    ev = TelephoneEvent(event=5, end=False, volume=10, duration=800)
    extra = build_event(TelephoneEvent(event=7, end=True, volume=10, duration=800))
    assert parse_events(build_event(ev) + extra) == [(0, ev)]


def test_a_partial_trailing_block_is_ignored():
    ev = TelephoneEvent(event=9, end=True, volume=10, duration=800)
    assert parse_events(build_event(ev) + b"\x01\x02\x03") == [(0, ev)]


def test_a_packed_block_with_the_reserved_bit_is_not_a_key():
    ev = TelephoneEvent(event=9, end=True, volume=10, duration=800)
    assert parse_events(build_event(ev) + bytes([4, 0x40 | 10, 0, 160])) == [(0, ev)]


def test_a_short_payload_has_no_events():
    with pytest.raises(EventError):
        parse_events(b"\x01\x02\x03")
