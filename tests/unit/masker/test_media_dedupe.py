"""One key press reported in-band and by RFC 4733 reaches the tokeniser once."""

from __future__ import annotations

from masker.media.dedupe import DigitDeduper


def test_same_key_from_two_sources_overlapping_is_one_press():
    d = DigitDeduper()
    assert d.accept("5", 1000, 1640, "rfc4733")
    assert not d.accept("5", 1040, 1600, "inband")


def test_same_key_twice_from_one_source_is_two_presses_however_close():
    d = DigitDeduper()
    assert d.accept("5", 0, 800, "rfc4733")
    assert d.accept("5", 900, 1700, "rfc4733")


def test_repeated_key_keyed_both_ways_is_counted_once_per_press():
    d = DigitDeduper()
    got = []
    for i in range(4):  # "5555", 100 ms tones 50 ms apart, each sent both ways
        start = i * 1200
        got.append(d.accept("5", start, start + 800, "rfc4733"))
        got.append(d.accept("5", start + 30, start + 790, "inband"))
    assert got == [True, False] * 4


def test_different_keys_overlapping_are_two_presses():
    d = DigitDeduper()
    assert d.accept("1", 0, 640, "inband")
    assert d.accept("2", 100, 700, "rfc4733")


def test_extended_event_matches_a_late_inband_report():
    d = DigitDeduper()
    assert d.accept("7", 1000, 1160, "rfc4733")
    d.extend("7", 1000, 2000)
    assert not d.accept("7", 1800, 2000, "inband")
