"""The SIP guard's screening of one datagram, as a pure decision."""

from __future__ import annotations

from masker.sip.transport import screen

OPTIONS = (
    b"OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1\r\n"
    b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:ping@127.0.0.1>\r\nCall-ID: c1\r\n"
    b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


def test_a_keep_alive_is_dropped_as_short():
    assert screen(b"\r\n\r\n", 8192).counter == "sip_drop_short"


def test_a_well_formed_request_passes_to_sippy():
    verdict = screen(OPTIONS, 8192)
    assert verdict.counter is None and verdict.data == OPTIONS


def test_an_oversize_request_is_answered_513():
    verdict = screen(OPTIONS, 64)
    assert (verdict.counter, verdict.reply) == ("sip_oversize", (513, "Message Too Large"))


def test_a_request_without_call_id_is_answered_400():
    verdict = screen(OPTIONS.replace(b"Call-ID: c1\r\n", b""), 8192)
    assert verdict.counter == "sip_bad_headers" and verdict.reply is not None
    assert verdict.reply[0] == 400


def test_a_response_with_an_impossible_status_is_dropped_unanswered():
    verdict = screen(b"SIP/2.0 999 Odd\r\n" + OPTIONS.split(b"\r\n", 1)[1], 8192)
    assert (verdict.counter, verdict.reply) == ("sip_drop_bad_status", None)
