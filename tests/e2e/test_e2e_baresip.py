"""Interop: baresip (Debian, an independent SIP stack) calls through the real masker.

baresip's microphone plays a keyed card (in-band tones) and it keys more digits
as RFC 4733 telephone-events; the pjsua2 agent behind the masker must receive
neither, and the call must set up and tear down cleanly.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from masker.offline.receivers import multimon_digits, spandsp_digits
from masker.phones.baresip import BaresipCaller, baresip_available
from masker.phones.client import PhoneClient
from masker.phones.service_process import ServiceProcess
from masker.phones.tones import keyed_signal
from tests.support.e2e import marker_found, media_summaries, read_wav

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(120),
]


def test_baresip_is_installed_with_its_modules():
    # `make test` installs baresip: a missing peer must fail the suite, not skip it.
    assert baresip_available()


@pytest.fixture(scope="module")
def baresip_call(tmp_path_factory):
    """One baresip call through the masker; returns what the agent observed."""
    wd = tmp_path_factory.mktemp("e2e-baresip")
    # 1.5 s before the marker: baresip's own audio pipeline settles its buffers in the
    # call's first half second, and on a loaded box cut ~140 samples out of a marker
    # played then (its packets came in order; the splices were inside them).
    sig = keyed_signal("4111111111111111#", lead_ms=1500)
    # baresip ends the call when its source file ends: pad it well past the test
    pcm = np.concatenate([sig.pcm, np.zeros(8000 * 8, dtype=np.int16)])
    sf.write(wd / "source.wav", pcm, 8000, subtype="PCM_16")
    with PhoneClient("agent") as agent:
        agent.auto_answer(record_dir=wd)
        with (
            ServiceProcess(pbx_port=agent.sip_port, workdir=wd / "service") as service,
            BaresipCaller(wd / "source.wav", wd / "baresip") as caller,
        ):
            caller.dial(f"sip:2000@{service.uri_host}")
            inc = agent.wait_incoming(timeout=15)
            a = inc["call"]
            established = caller.wait_event("CALL_ESTABLISHED", timeout=15)
            time.sleep(sig.duration_s + 0.5)
            caller.send_digits("1230#")
            time.sleep(2.5)
            caller.hangup()
            closed = caller.wait_event("CALL_CLOSED", timeout=10)
            recording = read_wav(agent.wait_recorded(a, timeout=15))
            media = media_summaries(service)
    return {
        "incoming": inc,
        "established": established,
        "closed": closed,
        "recording": recording,
        "signal": sig,
        "media": media,
        "dtmf": agent.calls[a].dtmf,
        "infos": agent.calls[a].infos,
    }


def test_baresip_call_through_the_masker_sets_up_and_tears_down(baresip_call):
    assert baresip_call["incoming"]["uri"].startswith("sip:2000@")
    assert baresip_call["established"]["type"] == "CALL_ESTABLISHED"
    assert baresip_call["closed"]["type"] == "CALL_CLOSED"


def test_baresip_audio_reaches_the_agent(baresip_call):
    marker_found(baresip_call["recording"], baresip_call["signal"], baresip_call["media"])


def test_baresip_inband_digits_are_not_recoverable_at_the_agent(baresip_call):
    pcm = baresip_call["recording"]
    assert spandsp_digits(pcm) == ""
    assert multimon_digits(pcm) == ""


def test_baresip_rfc4733_digits_never_reach_the_agent(baresip_call):
    assert baresip_call["dtmf"] == []
    assert baresip_call["infos"] == []
