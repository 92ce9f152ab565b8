"""Keypad digits in SIP INFO bodies."""

from __future__ import annotations

import pytest

from masker.sip.info import info_digit, is_dtmf_info


@pytest.mark.parametrize("ctype,body,digit", [
    ("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", "5"),
    ("application/dtmf-relay", "signal= *\r\n", "*"),
    ("application/dtmf-relay", "Signal=11\r\nDuration=100\r\n", "#"),
    ("Application/DTMF-Relay; charset=x", "Signal=a\r\n", "A"),
    ("application/dtmf", "7", "7"),
    ("application/dtmf", "#\r\n", "#"),
])
def test_digit_is_read(ctype, body, digit):
    assert is_dtmf_info(ctype)
    assert info_digit(ctype, body) == digit


@pytest.mark.parametrize("ctype,body", [
    ("application/dtmf-relay", "Duration=160\r\n"),
    ("application/dtmf-relay", "Signal=x\r\n"),
    ("application/dtmf", "12345"),
    ("application/sdp", "v=0"),
])
def test_no_digit_when_body_names_no_key(ctype, body):
    assert info_digit(ctype, body) is None


def test_other_info_types_are_not_dtmf():
    assert not is_dtmf_info("application/media_control+xml")
    assert not is_dtmf_info(None)
