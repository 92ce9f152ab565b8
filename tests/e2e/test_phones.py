"""The pjsua2 test phones work phone to phone, with no masker in the path.

These prove the instruments before they are used to judge the masker: a keyed
in-band tone reaches the far end's recording, RFC 4733 and SIP INFO digits
arrive as such, and the call flows the e2e tests need behave as SIP says.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from masker.offline.receivers import multimon_digits, spandsp_digits
from masker.phones.client import PhoneClient
from masker.phones.tones import keyed_signal

pytestmark = pytest.mark.timeout(120)

KEYS = "4129#"


@pytest.fixture(scope="module")
def phones():
    with PhoneClient("agent") as agent, PhoneClient("caller") as caller:
        yield caller, agent


@pytest.fixture
def keyed_wav(tmp_path):
    sig = keyed_signal(KEYS)
    path = tmp_path / "keys.wav"
    sf.write(path, sig.pcm, 8000, subtype="PCM_16")
    return path, sig


def connect(caller: PhoneClient, agent: PhoneClient, record=None, **call_args) -> tuple[int, int]:
    since = len(agent.events)
    c = caller.call(f"sip:agent@{agent.uri_host}", **call_args)
    a = agent.wait_incoming(since=since)["call"]
    agent.answer(a, 200, record=record)
    caller.wait_state(c, "CONFIRMED")
    agent.wait_media(a)
    return c, a


def end(caller: PhoneClient, agent: PhoneClient, c: int, a: int) -> None:
    caller.hangup(c)
    agent.wait_state(a, "DISCONNECTED")
    caller.wait_state(c, "DISCONNECTED")


def test_call_carries_custom_headers_to_the_callee(phones):
    caller, agent = phones
    c, a = connect(caller, agent, headers={"P-Asserted-Identity": "<sip:+441234@example.com>"})
    headers = agent.calls[a].incoming["headers"]
    end(caller, agent, c, a)
    assert headers["p-asserted-identity"] == "<sip:+441234@example.com>"


def test_inband_keys_are_decodable_from_the_callee_recording(phones, keyed_wav, tmp_path):
    caller, agent = phones
    wav, sig = keyed_wav
    c, a = connect(caller, agent, record=tmp_path / "rx.wav")
    caller.play(c, wav)
    time.sleep(sig.duration_s + 0.3)
    end(caller, agent, c, a)
    pcm, rate = sf.read(agent.wait_recorded(a), dtype="int16")
    assert rate == 8000
    assert spandsp_digits(pcm) == KEYS
    assert multimon_digits(pcm) == KEYS


def test_rfc4733_digits_arrive_as_telephone_events(phones):
    caller, agent = phones
    c, a = connect(caller, agent)
    caller.send_dtmf(c, KEYS, "rfc4733", duration_ms=100)
    time.sleep(0.4 * len(KEYS) + 0.5)
    end(caller, agent, c, a)
    got = agent.calls[a].dtmf
    assert "".join(e["digit"] for e in got) == KEYS
    assert {e["method"] for e in got} == {"rfc4733"}


def test_info_digits_arrive_with_a_dtmf_relay_body(phones):
    caller, agent = phones
    c, a = connect(caller, agent)
    caller.send_dtmf(c, "7", "info")
    agent.wait_call_event(a, "info_rx")
    end(caller, agent, c, a)
    info = agent.calls[a].infos[0]
    assert info["content_type"] == "application/dtmf-relay"
    assert "Signal=7" in info["body"]


def test_rejection_status_code_reaches_the_caller(phones):
    caller, agent = phones
    since = len(agent.events)
    c = caller.call(f"sip:agent@{agent.uri_host}")
    a = agent.wait_incoming(since=since)["call"]
    agent.hangup(a, code=486)
    ev = caller.wait_state(c, "DISCONNECTED")
    assert ev["code"] == 486


def test_hanging_up_before_answer_cancels_the_call(phones):
    caller, agent = phones
    since = len(agent.events)
    c = caller.call(f"sip:agent@{agent.uri_host}")
    a = agent.wait_incoming(since=since)["call"]
    agent.answer(a, 180)
    caller.wait_state(c, "EARLY")
    caller.hangup(c)
    ev = agent.wait_state(a, "DISCONNECTED")
    assert ev["code"] == 487


def test_early_media_flows_after_183(phones, keyed_wav, tmp_path):
    caller, agent = phones
    wav, sig = keyed_wav
    since = len(agent.events)
    c = caller.call(f"sip:agent@{agent.uri_host}")
    a = agent.wait_incoming(since=since)["call"]
    agent.answer(a, 183, record=tmp_path / "early.wav")
    caller.wait_media(c)
    caller.play(c, wav)
    time.sleep(sig.duration_s + 0.3)
    early_state = caller.calls[c].state
    path = agent.stop_record(a)
    agent.answer(a, 200)
    caller.wait_state(c, "CONFIRMED")
    end(caller, agent, c, a)
    pcm, _ = sf.read(path, dtype="int16")
    assert early_state == "EARLY"
    assert spandsp_digits(pcm) == KEYS


def test_hold_and_unhold_renegotiate_media(phones):
    caller, agent = phones
    c, a = connect(caller, agent)
    caller.hold(c)
    held = caller.wait_media(c, "local_hold")
    caller.unhold(c)
    caller.wait_event(
        lambda e: e["event"] == "media" and e["call"] == c and e["status"] == "active"
        and e["t"] > held["t"]
    )  # fmt: skip
    end(caller, agent, c, a)
    assert len(agent.calls[a].reinvites) >= 2


def test_codec_preference_selects_pcma(phones):
    caller, agent = phones
    caller.set_codecs(["PCMA", "PCMU"])
    try:
        c, a = connect(caller, agent)
        codec = agent.info(a)["codec"]
        end(caller, agent, c, a)
    finally:
        caller.set_codecs(["PCMU", "PCMA"])
    assert codec == "PCMA"


def test_reinvite_changes_codec(phones):
    caller, agent = phones
    c, a = connect(caller, agent)
    before = agent.info(a)["codec"]
    try:
        caller.reinvite(c, codecs=["PCMA"])
        agent.wait_call_event(a, "reinvite_rx")
        deadline = time.monotonic() + 5
        while agent.info(a)["codec"] != "PCMA" and time.monotonic() < deadline:
            time.sleep(0.05)
        after = agent.info(a)["codec"]
    finally:
        caller.set_codecs(["PCMU", "PCMA"])
    end(caller, agent, c, a)
    assert (before, after) == ("PCMU", "PCMA")


def test_invite_without_sdp_offer_still_gets_media(phones):
    caller, agent = phones
    c, a = connect(caller, agent, no_sdp=True)
    has_sdp = agent.calls[a].incoming["has_sdp"]
    status = caller.wait_media(c)["status"]
    end(caller, agent, c, a)
    assert not has_sdp
    assert status == "active"


def test_recording_of_a_silent_call_is_silent(phones, tmp_path):
    caller, agent = phones
    c, a = connect(caller, agent, record=tmp_path / "quiet.wav")
    time.sleep(0.5)
    end(caller, agent, c, a)
    pcm, _ = sf.read(agent.wait_recorded(a), dtype="int16")
    assert len(pcm) > 2000
    assert np.abs(pcm.astype(np.int32)).max() < 100


def test_custom_info_body_arrives_as_sent(phones):
    caller, agent = phones
    c, a = connect(caller, agent)
    caller.send_info(c, "application/dtmf", "9")
    info = agent.wait_call_event(a, "info_rx")
    end(caller, agent, c, a)
    assert (info["content_type"], info["body"].strip()) == ("application/dtmf", "9")
