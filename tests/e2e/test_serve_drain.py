"""`masker serve`: start-up warnings, JSON-only logs, SIGTERM drain with grace period."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.support.serve import Served, answered_call
from tests.support.sip_client import SipEndpoint, sdp_offer


@pytest.fixture
def caller():
    ep = SipEndpoint("caller")
    yield ep
    ep.close()


def test_development_keys_warning_is_loud(tmp_path):
    s = Served(tmp_path)
    s.stop()
    assert any("DEVELOPMENT KEYS" in line for line in s.raw)


def test_every_log_line_is_json_apart_from_the_warning_banner(tmp_path, caller):
    s = Served(tmp_path)
    answered_call(s, caller)
    s.stop()
    other = [ln for ln in s.raw if not ln.startswith("*") and ln.strip()]
    for line in other:
        json.loads(line)


def test_sigterm_without_calls_exits_promptly(tmp_path):
    s = Served(tmp_path)
    t0 = time.monotonic()
    assert s.stop() == 0
    assert time.monotonic() - t0 < 2.0


def test_draining_refuses_new_calls_and_lets_active_ones_finish(tmp_path, caller):
    s = Served(tmp_path, env_extra={"MASKER_SERVICE_DRAIN_GRACE_S": "20"})
    uri, cid, tag, to_tag, agent_cid = answered_call(s, caller)
    s.proc.send_signal(signal.SIGTERM)
    s.wait_log("draining")
    other = SipEndpoint("late")
    other.send_raw(
        other.request("INVITE", s.uri("late"), call_id="late1", from_tag="l", body=sdp_offer(4000)),
        s.addr,
    )
    assert other.expect(503).code == 503
    other.close()
    assert s.alive()
    caller.send_raw(caller.request("BYE", uri, call_id=cid, from_tag=tag, to_tag=to_tag), s.addr)
    bye = s.pbx.expect("BYE", call_id=agent_cid)
    s.pbx.reply(bye, 200)
    s.proc.wait(5)
    assert s.proc.returncode == 0
    s.wait_log("drained")


def test_calls_still_up_after_the_grace_period_are_hung_up(tmp_path, caller):
    s = Served(tmp_path, env_extra={"MASKER_SERVICE_DRAIN_GRACE_S": "1"})
    _, _, _, _, agent_cid = answered_call(s, caller)
    s.proc.send_signal(signal.SIGTERM)
    assert caller.expect("BYE", timeout=4).method == "BYE"
    assert s.pbx.expect("BYE", call_id=agent_cid, timeout=4).method == "BYE"
    s.proc.wait(5)
    assert s.proc.returncode == 0
