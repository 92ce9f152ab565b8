"""One key press reported in-band and by RFC 4733 reaches the tokeniser once."""

from __future__ import annotations

from masker.media.dedupe import DigitDeduper


def test_same_key_overlapping_is_one_press():
    d = DigitDeduper()
    assert d.accept("5", 1000, 1640)
    assert not d.accept("5", 1040, 1600)


def test_same_key_twice_in_a_row_is_two_presses():
    d = DigitDeduper()
    assert d.accept("1", 0, 640)
    assert d.accept("1", 1280, 1920)


def test_different_keys_overlapping_are_two_presses():
    d = DigitDeduper()
    assert d.accept("1", 0, 640)
    assert d.accept("2", 100, 700)


def test_extended_event_matches_a_late_inband_report():
    d = DigitDeduper()
    assert d.accept("7", 1000, 1160)
    d.extend("7", 1000, 2000)
    assert not d.accept("7", 1800, 2000)
