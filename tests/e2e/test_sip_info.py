"""Keypad digits in SIP INFO bodies and the INFO relay policy (deny by default)."""

from __future__ import annotations

import pytest

from masker.errors import UserError
from masker.runtime.service_config import load_config
from masker.sip.info import (
    body_bytes,
    carries_digits,
    info_digit,
    info_keys,
    is_dtmf_info,
    normalise_allowlist,
    relay_verdict,
)
from masker.sip.transport import sippy_text


@pytest.mark.parametrize(
    "ctype,body,digit",
    [
        ("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", "5"),
        ("application/dtmf-relay", "signal= *\r\n", "*"),
        ("application/dtmf-relay", "Signal=11\r\nDuration=100\r\n", "#"),
        ("Application/DTMF-Relay; charset=x", "Signal=a\r\n", "A"),
        ("application/dtmf", "7", "7"),
        ("application/dtmf", "#\r\n", "#"),
    ],
)
def test_digit_is_read(ctype, body, digit):
    assert is_dtmf_info(ctype)
    assert info_digit(ctype, body) == digit


@pytest.mark.parametrize(
    "ctype,body",
    [
        ("application/dtmf-relay", "Duration=160\r\n"),
        ("application/dtmf-relay", "Signal=x\r\n"),
        ("application/dtmf", "12345"),
        ("application/sdp", "v=0"),
    ],
)
def test_no_digit_when_body_names_no_key(ctype, body):
    assert info_digit(ctype, body) is None


def test_other_info_types_are_not_dtmf():
    assert not is_dtmf_info("application/media_control+xml")
    assert not is_dtmf_info(None)


@pytest.mark.parametrize(
    "ctype,body,keys",
    [
        ("application/x-dtmf-relay", b"Signal=9\r\nDuration=100\r\n", ["9"]),
        ("application/dtmf-relay", b"  SIGNAL :  10 \n", ["*"]),
        ("application/dtmf-relay", b"Duration=100\rSignal=15\r", ["D"]),
        ("application/dtmf-relay", b"Signal=16\r\n", []),  # flash is no key
        (
            "application/vnd.nortelnetworks.digits",
            b"p=Digit-Collection\r\ny=digits\r\nd=#\r\n",
            ["#"],
        ),
        ("audio/telephone-event", bytes([11, 0x8A, 0x03, 0x20]), ["#"]),
        ("audio/telephone-event", bytes([5, 0x0A, 0, 160]) + bytes([5, 0x8A, 1, 64]) * 3, ["5"]),
        ("audio/telephone-event", bytes([1, 0x8A, 0, 160, 2, 0x8A, 0, 160]), ["1", "2"]),
        ("audio/telephone-event", bytes([16, 0x8A, 0, 160]), []),
        ("audio/telephone-event", b"\x05\x8a", []),  # short: no whole block
        ("text/plain", b"7\r\n", ["7"]),
        ("text/plain", b"Signal=3\r\n", ["3"]),
        ("text/plain", b"hello", []),
        (
            'multipart/mixed; boundary="xx"',
            b"--xx\r\nContent-Type: application/dtmf\r\n\r\n4\r\n--xx--\r\n",
            ["4"],
        ),
        (
            "multipart/alternative;boundary=xx",
            b"--xx\r\nContent-Type: application/dtmf\r\n\r\n4\r\n"
            b"--xx\r\nContent-Type: application/dtmf-relay\r\n\r\nSignal=4\r\n--xx--\r\n",
            ["4"],
        ),
    ],
)
def test_keys_are_read_from_every_encoding(ctype, body, keys):
    assert info_keys(ctype, body) == keys


@pytest.mark.parametrize(
    "ctype",
    [
        "application/dtmf-relay",
        "APPLICATION/X-DTMF-RELAY",
        "application/dtmf",
        "application/vnd.nortelnetworks.digits",
        "audio/telephone-event",
        "text/plain",
        "text/html",
        "multipart/mixed",
        "message/sipfrag",
        "application/kpml-response+xml",
        "application/x-keypad",
        "application/*",
        "*/*",
        "garbage",
        "",
    ],
)
def test_types_that_can_carry_digits_are_recognised(ctype):
    assert carries_digits(ctype)


@pytest.mark.parametrize("ctype", ["application/media_control+xml", "application/json"])
def test_types_without_digits_are_not_flagged(ctype):
    assert not carries_digits(ctype)


ALLOW = normalise_allowlist(["Application/Media_Control+XML"])
XML = b"<media_control><vc_primitive/></media_control>"


def test_allowlisted_plain_body_may_be_relayed():
    assert relay_verdict("application/media_control+xml; x=y", XML, ALLOW) is None


@pytest.mark.parametrize(
    "ctype,body,package,encoding,why",
    [
        (None, None, "", "", "no_body"),
        ("application/json", b"{}", "", "", "not_allowlisted"),
        ("application/media_control+xml", XML, "dtmf", "", "digit_package"),
        ("application/media_control+xml", XML, "", "gzip", "encoded_body"),
        ("application/media_control+xml", XML + b"\xe9", "", "", "binary_body"),
        ("application/media_control+xml", b"x\r\nSignal=5\r\n", "", "", "digit_body"),
    ],
)
def test_info_that_could_carry_a_key_is_never_relayed(ctype, body, package, encoding, why):
    assert relay_verdict(ctype, body, ALLOW, package, encoding) == why


def test_a_digit_type_on_the_allowlist_is_still_not_relayed():
    allow = normalise_allowlist(["application/dtmf-relay"])
    assert relay_verdict("application/dtmf-relay", b"Duration=1\r\n", allow) == "digit_type"


def test_allowlisting_a_digit_type_is_a_config_error():
    with pytest.raises(UserError, match="info_allowlist"):
        load_config(
            env={
                "MASKER_SIP_INFO_ALLOWLIST": "application/media_control+xml,"
                "application/x-dtmf-relay"
            }
        )


def test_binary_info_body_reaches_sippy_byte_for_byte():
    body = bytes([11, 0x8A, 0x03, 0x20])
    raw = (
        b"INFO sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bK1\r\n"
        b"Content-Type: audio/telephone-event\r\nContent-Length: 4\r\n\r\n" + body
    )
    text = sippy_text(raw)
    assert text is not None and body_bytes(text.split("\r\n\r\n", 1)[1]) == body


def test_datagram_with_a_non_utf8_header_is_still_garbage():
    assert sippy_text(b"INFO sip:a@b SIP/2.0\r\nX-Bad: \xff\r\n\r\n") is None
