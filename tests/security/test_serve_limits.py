"""Issue 13 through a real `masker serve`: a caller flooding SIP INFO digits, and calls
that would never end (on hold, inactive, no media address)."""

from __future__ import annotations

import time

import pytest

from masker.calls.ids import log_safe_hex
from tests.support.serve import Served, answered_call
from tests.support.sip_client import SipEndpoint, ack_for, sdp_offer

pytestmark = pytest.mark.e2e

DTMF_RELAY = "Signal=5\r\nDuration=160\r\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    s = Served(
        tmp_path_factory.mktemp("serve-limits"),
        env_extra={
            "MASKER_MEDIA_HOLD_TIMEOUT_S": "1.5",
            "MASKER_MEDIA_RTP_TIMEOUT_S": "60",
        },
    )
    yield s
    s.stop()


def test_an_info_flood_is_refused_over_the_dialog_rate_and_the_capture_is_told(served):
    caller = SipEndpoint("caller")
    try:
        uri, cid, tag, to_tag, agent_cid = answered_call(served, caller)
        served.pbx.expect("ACK", call_id=agent_cid)
        since = len(served.lines)
        sent, t0 = 150, time.monotonic()
        for i in range(sent):
            caller.send_raw(
                caller.request(
                    "INFO",
                    uri,
                    call_id=cid,
                    from_tag=tag,
                    to_tag=to_tag,
                    body=DTMF_RELAY,
                    ctype="application/dtmf-relay",
                ),
                served.addr,
            )
            if i % 50 == 49:
                time.sleep(0.02)  # a burst the size of a socket buffer, not a UDP loss test
        codes, retry_after = [], []
        try:
            while len(codes) < sent:
                msg = caller.recv(2.0)
                if msg.is_response and msg.header("CSeq").endswith("INFO"):
                    codes.append(msg.code)
                    if msg.code == 503:
                        retry_after.append(msg.header("Retry-After"))
        except TimeoutError:
            pass
        elapsed = time.monotonic() - t0
        accepted = codes.count(200)
        assert accepted <= 40 + 20 * elapsed + 1, (accepted, elapsed)
        assert set(codes) == {200, 503} and codes.count(503) >= sent - 40 - 20 * elapsed - 5
        assert set(retry_after) == {"1"}
        # nothing of it reached the PBX, and the caller's capture was failed, not fed a gap
        assert served.pbx.no_message(0.3)
        served.wait_log("capture cancelled: digits lost", since=since, timeout=5)
        # the call still works: BYE crosses
        caller.send_raw(
            caller.request("BYE", uri, call_id=cid, from_tag=tag, to_tag=to_tag), served.addr
        )
        served.pbx.expect("BYE", call_id=agent_cid)
    finally:
        caller.close()


@pytest.mark.parametrize("sdp", ["inactive", "no_address"])
def test_a_call_on_hold_ends_at_the_hold_timeout(served, sdp):
    """a=inactive or c=0.0.0.0: the caller never sends RTP, so the RTP timeout never
    applied and the call (its ports, its masker slot) lived for ever."""
    caller = SipEndpoint("caller")
    try:
        user = "held" + log_safe_hex(3)
        uri, cid, tag = served.uri(user), log_safe_hex(6), "h1"
        body = (
            sdp_offer(4000, extra="a=inactive\r\n")
            if sdp == "inactive"
            else sdp_offer(4000, addr="0.0.0.0")
        )
        since = len(served.lines)
        caller.send_raw(
            caller.request("INVITE", uri, call_id=cid, from_tag=tag, body=body), served.addr
        )
        inv = served.pbx.expect("INVITE", user=user)
        served.pbx.reply(inv, 200, body=sdp_offer(4100), to_tag="p")
        ok = caller.expect(200)
        caller.send_raw(ack_for(caller, ok, uri, cid, tag), served.addr)
        t0 = time.monotonic()
        bye = served.pbx.expect("BYE", call_id=inv.header("Call-ID"), timeout=6)
        served.pbx.reply(bye, 200)
        caller.expect("BYE", call_id=cid, timeout=3)
        assert 1.0 < time.monotonic() - t0 < 5
        ended = served.wait_log("call.ended", since=since, timeout=3)
        assert ended["reason"] == "hold_timeout"
    finally:
        caller.close()


def test_an_rtp_less_call_that_is_not_on_hold_still_gets_the_rtp_timeout_only(served):
    """The hold limit is separate: a sendrecv call is governed by rtp_timeout_s (60 s
    here), so it is still up after the hold limit has passed."""
    caller = SipEndpoint("caller")
    try:
        uri, cid, tag, to_tag, agent_cid = answered_call(served, caller)
        served.pbx.expect("ACK", call_id=agent_cid)
        assert served.pbx.no_message(2.5)
        caller.send_raw(
            caller.request("BYE", uri, call_id=cid, from_tag=tag, to_tag=to_tag), served.addr
        )
        served.pbx.expect("BYE", call_id=agent_cid)
    finally:
        caller.close()
