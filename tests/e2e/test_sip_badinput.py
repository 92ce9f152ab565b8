"""Bad SIP input never takes the service down or touches another call: each datagram
gets the right error or is dropped and counted."""

from __future__ import annotations

import os
import secrets
import signal

import pytest

from tests.support.serve import Served, answered_call
from tests.support.sip_client import SipEndpoint, sdp_offer

SERVED_ENV = {"MASKER_SIP_MAX_MESSAGE_BYTES": "4096"}


@pytest.fixture
def ep():
    e = SipEndpoint("bad")
    yield e
    e.close()


def options(ep: SipEndpoint, served: Served, **kw) -> str:
    return ep.request(
        "OPTIONS", served.uri("masker"), call_id=secrets.token_hex(6), from_tag="x", **kw
    )


def still_answers(ep: SipEndpoint, served: Served) -> bool:
    ep.send_raw(options(ep, served), served.addr)
    return ep.expect(200).method == "OPTIONS"


def test_garbage_datagram_is_dropped(served, ep):
    ep.send_raw(os.urandom(300), served.addr)
    assert ep.no_message(0.4)
    assert still_answers(ep, served)


def test_text_that_is_not_sip_is_dropped(served, ep):
    ep.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"x" * 40, served.addr)
    assert ep.no_message(0.4)
    assert still_answers(ep, served)


def test_truncated_request_is_dropped(served, ep):
    ep.send_raw(options(ep, served)[:60], served.addr)
    assert ep.no_message(0.4)
    assert still_answers(ep, served)


def test_missing_call_id_gets_400(served, ep):
    req = "\r\n".join(
        ln for ln in options(ep, served).split("\r\n") if not ln.startswith("Call-ID")
    )
    ep.send_raw(req, served.addr)
    assert ep.expect(400).code == 400


def test_duplicated_cseq_gets_400(served, ep):
    req = options(ep, served).replace("CSeq:", "CSeq: 9 OPTIONS\r\nCSeq:", 1)
    ep.send_raw(req, served.addr)
    resp = ep.expect(400)
    assert "Cseq" in resp.start or "CSeq" in resp.start


def test_duplicated_call_id_gets_400(served, ep):
    req = options(ep, served).replace("Call-ID:", "Call-ID: other\r\nCall-ID:", 1)
    ep.send_raw(req, served.addr)
    assert ep.expect(400).code == 400


def test_oversize_request_gets_513(served, ep):
    req = options(ep, served, extra="X-Padding: " + "a" * 5000)
    ep.send_raw(req, served.addr)
    assert ep.expect(513).code == 513


def test_bye_for_unknown_dialog_gets_481(served, ep):
    ep.send_raw(
        ep.request("BYE", served.uri("x"), call_id="nodialog", from_tag="a", to_tag="b"),
        served.addr,
    )
    assert ep.expect(481).code == 481


def test_invite_without_contact_does_not_kill_the_service(served, ep):
    req = "\r\n".join(
        ln
        for ln in ep.request(
            "INVITE", served.uri("x"), call_id="nc", from_tag="a", body=sdp_offer(4000)
        ).split("\r\n")
        if not ln.startswith("Contact")
    )
    ep.send_raw(req, served.addr)
    ep.no_message(0.5)
    assert still_answers(ep, served)


def test_bad_input_during_a_call_leaves_the_call_working(served, ep):
    caller = SipEndpoint("caller")
    uri, cid, tag, to_tag, agent_cid = answered_call(served, caller)
    for junk in (
        os.urandom(500),
        b"INVITE sip:x SIP/2.0\r\n\r\n" + b"\0" * 40,
        options(ep, served).replace("Via:", "Via: garbage garbage\r\nX:", 1),
    ):
        ep.send_raw(junk, served.addr)
    caller.send_raw(
        caller.request("BYE", uri, call_id=cid, from_tag=tag, to_tag=to_tag), served.addr
    )
    bye = served.pbx.expect("BYE", call_id=agent_cid)
    served.pbx.reply(bye, 200)
    assert caller.expect(200).method == "BYE"
    caller.close()


def test_drops_are_counted(served, ep):
    ep.send_raw(os.urandom(100), served.addr)
    assert still_answers(ep, served)
    served.proc.send_signal(signal.SIGUSR1)
    stats = served.wait_log("stats", timeout=3)
    assert stats.get("sip_drop_garbage", 0) >= 1
    assert served.alive()


def test_a_response_with_an_impossible_status_code_is_dropped_and_counted(served, ep):
    ep.send_raw(
        "SIP/2.0 999 Nonsense\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKbadstatus\r\n"
        "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>;tag=2\r\n"
        "Call-ID: bad-status\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        served.addr,
    )
    assert ep.no_message(0.3)
    assert still_answers(ep, served)
    since = len(served.lines)
    served.proc.send_signal(signal.SIGUSR1)
    stats = served.wait_log("stats", timeout=3, since=since)
    assert stats.get("sip_drop_bad_status", 0) >= 1
