"""Every call flow through the real `masker serve`, between real pjsua2 phones.

Caller phone -> masker (trunk side) -> agent phone (the PBX side).  Each test
places its own call on a shared rig (one service, one phone process per side).
"""

from __future__ import annotations

import time

import pytest

from masker.phones.service_process import sip_options_ping
from tests.support.e2e import read_wav, write_keys_wav

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_invite_with_sdp_connects_both_legs(rig):
    c, a = rig.connect()
    caller_codec = rig.caller.info(c)["codec"]
    agent_codec = rig.agent.info(a)["codec"]
    rig.hang_up(c, a)
    assert (caller_codec, agent_codec) == ("PCMU", "PCMU")


def test_agent_leg_keeps_the_request_uri_user_and_passes_headers(rig):
    c, a = rig.connect(headers={"P-Asserted-Identity": "<sip:+4420000@trunk.example>"})
    incoming = rig.agent.calls[a].incoming
    rig.hang_up(c, a)
    assert incoming["uri"].startswith("sip:1000@")
    assert incoming["headers"]["p-asserted-identity"] == "<sip:+4420000@trunk.example>"


def test_agent_leg_has_its_own_call_id(rig):
    c, a = rig.connect()
    caller_id = rig.caller.info(c)["call_id"]
    agent_id = rig.agent.info(a)["call_id"]
    rig.hang_up(c, a)
    assert caller_id != agent_id


def test_invite_without_sdp_offer_gets_media(rig):
    c, a = rig.connect(no_sdp=True)
    status = rig.caller.wait_media(c)["status"]
    rig.hang_up(c, a)
    assert status == "active"


def test_ringing_is_relayed_to_the_caller(rig):
    c, a = rig.ring()
    rig.agent.answer(a, 180)
    early = rig.caller.wait_state(c, "EARLY")
    rig.agent.answer(a, 200)
    rig.caller.wait_state(c, "CONFIRMED")
    rig.hang_up(c, a)
    assert early["code"] == 180


def test_early_media_is_relayed_and_masked(rig, tmp_path):
    sig = write_keys_wav(tmp_path / "keys.wav", "5551234")
    c, a = rig.ring()
    rig.agent.answer(a, 183, record=tmp_path / "early.wav")
    rig.caller.wait_media(c)
    rig.agent.wait_media(a)
    rig.play_and_wait(c, tmp_path / "keys.wav", sig.duration_s)
    state_while_playing = rig.caller.calls[c].state
    path = rig.agent.stop_record(a)
    rig.agent.answer(a, 200)
    rig.caller.wait_state(c, "CONFIRMED")
    rig.hang_up(c, a)
    from masker.offline.receivers import multimon_digits, spandsp_digits

    pcm = read_wav(path)
    assert state_while_playing == "EARLY"
    assert len(pcm) > 8000
    assert spandsp_digits(pcm) == ""
    assert multimon_digits(pcm) == ""


def test_caller_hanging_up_while_ringing_cancels_the_agent_leg(rig):
    c, a = rig.ring()
    rig.agent.answer(a, 180)
    rig.caller.wait_state(c, "EARLY")
    rig.caller.hangup(c)
    agent_end = rig.agent.wait_state(a, "DISCONNECTED")
    caller_end = rig.caller.wait_state(c, "DISCONNECTED")
    assert agent_end["code"] == 487
    assert caller_end["code"] == 487


@pytest.mark.parametrize("code", [486, 503, 603])
def test_agent_rejection_status_is_relayed_to_the_caller(rig, code):
    c, a = rig.ring()
    rig.agent.hangup(a, code=code)
    ev = rig.caller.wait_state(c, "DISCONNECTED")
    assert ev["code"] == code


def test_bye_from_the_agent_ends_the_caller_leg(rig):
    c, a = rig.connect()
    rig.agent.hangup(a)
    ev = rig.caller.wait_state(c, "DISCONNECTED")
    rig.agent.wait_state(a, "DISCONNECTED")
    assert ev["state"] == "DISCONNECTED"


def test_hold_and_unhold_reach_the_agent_and_media_resumes(rig):
    c, a = rig.connect()
    rig.caller.hold(c)
    held = rig.caller.wait_media(c, "local_hold")
    rig.agent.wait_event(
        lambda e: e["event"] == "media" and e["call"] == a and e["status"] == "remote_hold"
    )
    rig.caller.unhold(c)
    resumed = rig.caller.wait_event(
        lambda e: e["event"] == "media" and e["call"] == c and e["status"] == "active"
        and e["t"] > held["t"]
    )  # fmt: skip
    agent_active = rig.agent.wait_event(
        lambda e: e["event"] == "media" and e["call"] == a and e["status"] == "active"
        and e["t"] > held["t"]
    )  # fmt: skip
    rig.hang_up(c, a)
    assert resumed["status"] == agent_active["status"] == "active"


def test_reinvite_changes_the_codec_on_both_legs(rig):
    c, a = rig.connect()
    try:
        rig.caller.reinvite(c, codecs=["PCMA"])
        deadline = time.monotonic() + 5
        while rig.caller.info(c)["codec"] != "PCMA" and time.monotonic() < deadline:
            time.sleep(0.05)
        caller_codec = rig.caller.info(c)["codec"]
    finally:
        rig.caller.set_codecs(["PCMU", "PCMA"])
    rig.hang_up(c, a)
    assert caller_codec == "PCMA"


def test_pcma_call_is_masked(rig, tmp_path):
    from masker.offline.receivers import spandsp_digits

    sig = write_keys_wav(tmp_path / "keys.wav", "4242")
    rig.caller.set_codecs(["PCMA"])
    try:
        c, a = rig.connect(record=tmp_path / "rx.wav")
        codec = rig.agent.info(a)["codec"]
        rig.play_and_wait(c, tmp_path / "keys.wav", sig.duration_s)
        rig.hang_up(c, a)
    finally:
        rig.caller.set_codecs(["PCMU", "PCMA"])
    pcm = read_wav(rig.agent.wait_recorded(a))
    assert codec == "PCMA"
    assert spandsp_digits(pcm) == ""


def test_options_is_answered_for_trunk_health_checks(rig):
    assert sip_options_ping(("127.0.0.1", rig.service.sip_port), wait=2.0) == 200
