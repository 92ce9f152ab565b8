"""The guard in front of sippy: header checks and raw error responses."""

from __future__ import annotations

import pytest

from masker.sip.transport import (
    _header_problem,
    bad_status_line,
    lower_transport_params,
    raw_response,
)

REQ = (
    "OPTIONS sip:m@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
    "From: <sip:a@127.0.0.1>;tag=1\r\n"
    "To: <sip:m@127.0.0.1>\r\n"
    "Call-ID: c1\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Content-Length: 0\r\n\r\n"
)


def test_well_formed_request_has_no_header_problem():
    assert _header_problem(REQ) is None


def test_missing_mandatory_header_is_named():
    assert _header_problem(REQ.replace("CSeq: 1 OPTIONS\r\n", "")) == "Missing Cseq Header"


def test_duplicated_single_header_is_named():
    assert (
        _header_problem(REQ.replace("Call-ID: c1\r\n", "Call-ID: c1\r\ni: c2\r\n"))
        == "Duplicate Call-Id Header"
    )


def test_repeated_via_is_allowed():
    two_vias = REQ.replace("Via:", "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2\r\nVia:")
    assert _header_problem(two_vias) is None


def test_raw_response_echoes_the_transaction_headers_and_adds_a_to_tag():
    resp = raw_response(REQ, 400, "Bad Request")
    lines = resp.split("\r\n")
    assert lines[0] == "SIP/2.0 400 Bad Request"
    assert "Call-ID: c1" in lines and "CSeq: 1 OPTIONS" in lines
    assert any(ln.startswith("To: <sip:m@127.0.0.1>;tag=") for ln in lines)


def test_raw_501_carries_allow():
    assert "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO" in raw_response(REQ, 501, "Not Impl")


def test_no_response_without_via():
    assert (
        raw_response(
            REQ.replace("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n", ""), 400, "Bad"
        )
        is None
    )


@pytest.mark.parametrize(
    "line", ["SIP/2.0 200 OK", "SIP/2.0 180 Ringing", "SIP/2.0 699 Odd", "SIP/2.0 100"]
)
def test_response_with_a_valid_status_code_passes(line):
    assert not bad_status_line(line + "\r\nVia: x\r\n\r\n")


@pytest.mark.parametrize(
    "line",
    [
        "SIP/2.0 99 Low",
        "SIP/2.0 700 High",
        "SIP/2.0 2000 Long",
        "SIP/2.0 abc Letters",
        "SIP/2.0  200 Space",
        "SIP/2.0 ",
        "SIP/2.0 \u0662\u0660\u0660 Arabic digits",
    ],
)
def test_response_with_a_bad_status_code_is_refused(line):
    assert bad_status_line(line + "\r\nVia: x\r\n\r\n")


def test_transport_parameters_are_lowered_for_sippy():
    msg = (
        b"SIP/2.0 200 OK\r\nContact: <sip:uas@127.0.0.1:5080;transport=UDP>\r\n"
        b"Record-Route: <sip:p@10.0.0.1;lr;Transport=Tcp>\r\n\r\nv=0\r\n"
    )
    out = lower_transport_params(msg)
    assert b";transport=udp>" in out and b";transport=tcp>" in out
    assert out.endswith(b"\r\n\r\nv=0\r\n")


def test_a_message_without_transport_parameters_is_left_as_it_is():
    msg = REQ.encode()
    assert lower_transport_params(msg) is msg


def test_the_body_is_never_rewritten():
    msg = b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n\r\na=x;transport=UDP\r\n"
    assert lower_transport_params(msg) == msg
