"""A PBX that never answers: the caller gets a clean 504 within `[pbx] no_reply_s`, the
call's media is released, and nothing of the call lingers."""

from __future__ import annotations

import time

import pytest

from masker.calls.ids import log_safe_hex
from tests.support.serve import Served
from tests.support.sip_client import SipEndpoint, sdp_offer


@pytest.mark.e2e
def test_a_silent_pbx_gets_the_caller_a_504_within_the_no_reply_time(tmp_path) -> None:
    served = Served(tmp_path, env_extra={"MASKER_PBX_NO_REPLY_S": "1.5"})
    caller = SipEndpoint("caller")
    try:
        served.pbx.close()  # nobody reads the PBX's port any more
        call_id = log_safe_hex(8)
        started = time.monotonic()
        caller.send_raw(
            caller.request(
                "INVITE", served.uri("agent7"), call_id=call_id, from_tag="t1", body=sdp_offer(4000)
            ),
            served.addr,
        )
        answer = caller.expect(504, timeout=10)
        waited = time.monotonic() - started
        served.wait_log("call.agent_no_reply", trunk_call_id=call_id, timeout=5)
        served.wait_log("call.ended", trunk_call_id=call_id, timeout=5)
    finally:
        caller.close()
        served.stop()
    assert 1.4 <= waited < 5
    assert answer.header("Call-ID") == call_id
