"""tokenizer.lifetime: the weak register that says, by count only, whether any capture still
holds clear digits, and whether one was dropped without being wiped."""

import gc

from tests.support.cards import SCAN_PAN
from tokenizer import lifetime
from tokenizer.capture import CaptureSession
from tokenizer.fields import EXPIRY, PAN


def capture_with(digits: str) -> CaptureSession:
    c = CaptureSession([PAN, EXPIRY])
    for ch in digits:
        c.digit(ch)
    return c


def test_live_capture_digits_are_counted():
    since = lifetime.mark()
    c = capture_with(SCAN_PAN[:6])
    assert lifetime.held_digit_count(since) == 6 and lifetime.holders_with_digits(since) == 1
    c.wipe()


def test_wiped_capture_holds_nothing():
    since = lifetime.mark()
    c = capture_with(SCAN_PAN[:6])
    c.wipe()
    assert lifetime.held_digit_count(since) == 0 and lifetime.holders_with_digits(since) == 0


def test_captures_made_before_the_mark_are_not_counted():
    before = capture_with("4000")
    since = lifetime.mark()
    assert lifetime.held_digit_count(since) == 0
    before.wipe()


def test_capture_dropped_without_a_wipe_is_recorded_and_wiped():
    since = lifetime.mark()
    c = capture_with(SCAN_PAN[:6])
    pan = c.value("pan")
    del c
    gc.collect()
    assert lifetime.dropped_holding_digits(since) == 1 and len(pan) == 0


def test_capture_wiped_before_it_is_dropped_is_not_recorded():
    since = lifetime.mark()
    c = capture_with(SCAN_PAN[:6])
    c.wipe()
    del c
    gc.collect()
    assert lifetime.dropped_holding_digits(since) == 0
