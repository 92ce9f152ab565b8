"""Card digits keyed through the real masker never reach the agent; the tokeniser gets them.

pjsua2 caller -> `masker serve` -> pjsua2 agent that records what it hears.
"No digit recoverable" is judged by two independent receivers (spandsp and
multimon-ng) on the agent's recording, and by the telephone-events and INFO
requests the agent phone receives.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from masker.offline.receivers import multimon_digits, spandsp_digits
from masker.phones.analysis import leaked_ms, speech_similarity
from masker.phones.probe_call import CapturePoller, describe_token_event
from tests.support.e2e import (
    digest,
    marker_found,
    media_summaries,
    read_wav,
    speech_pcm,
    vault_card_digests,
    write_keys_wav,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

MC_PAN = "5555555555554444"  # public Mastercard test number


def expiry() -> str:
    return f"12{(time.gmtime().tm_year + 3) % 100:02d}"


def card_keys() -> str:
    return f"{MC_PAN}#{expiry()}#123#"


def poller(rig):
    return CapturePoller(rig.service.api_url, rig.service.api_key, time.time() - 0.5, every_s=0.1)


def tokens(events):
    return [e for e in events if e.get("event") == "token"]


def progress(events) -> list[str]:
    """The masked capture progress, for failure messages (never digits)."""
    return [describe_token_event(e) for e in events]


def assert_one_token_for_the_keyed_card(rig, events) -> None:
    issued = tokens(events)
    assert len(issued) == 1, progress(events)
    assert issued[0]["brand"] == "mastercard"
    assert issued[0]["display"].replace(" ", "").endswith("4444")
    vaulted = vault_card_digests(rig.service, issued[0]["token"])
    assert vaulted == (digest(MC_PAN), digest(expiry()))  # exactly the keyed card


def test_inband_card_is_not_recoverable_from_the_agent_recording(rig, tmp_path):
    sig = write_keys_wav(tmp_path / "card.wav", card_keys())
    c, a = rig.connect(record=tmp_path / "rx.wav")
    rig.play_and_wait(c, tmp_path / "card.wav", sig.duration_s)
    rig.hang_up(c, a)
    pcm = read_wav(rig.agent.wait_recorded(a))
    marker_found(pcm, sig, media_summaries(rig.service))  # the audio path worked
    assert spandsp_digits(pcm) == ""
    assert multimon_digits(pcm) == ""


def test_inband_tones_do_not_leak_into_the_agent_audio(rig, tmp_path):
    sig = write_keys_wav(tmp_path / "keys.wav", "147*2580369#")
    c, a = rig.connect(record=tmp_path / "rx.wav")
    rig.play_and_wait(c, tmp_path / "keys.wav", sig.duration_s)
    rig.hang_up(c, a)
    pcm = read_wav(rig.agent.wait_recorded(a))
    align = marker_found(pcm, sig, media_summaries(rig.service))
    assert max(leaked_ms(pcm, sig, align.lag)) < 10.0


def test_rfc4733_digits_never_reach_the_agent(rig, tmp_path):
    c, a = rig.connect(record=tmp_path / "rx.wav")
    rig.caller.send_dtmf(c, "4111#", "rfc4733", duration_ms=120)
    time.sleep(2.0)
    rig.hang_up(c, a)
    pcm = read_wav(rig.agent.wait_recorded(a))
    assert rig.agent.calls[a].dtmf == []
    assert spandsp_digits(pcm) == ""
    assert multimon_digits(pcm) == ""


def test_sip_info_digits_are_not_forwarded_to_the_agent(rig):
    c, a = rig.connect()
    rig.caller.send_dtmf(c, "4111#", "info", interval_ms=150)
    time.sleep(1.5)
    rig.hang_up(c, a)
    assert rig.agent.calls[a].infos == []
    assert rig.agent.calls[a].dtmf == []


@pytest.mark.parametrize(
    "content_type, body",
    [("application/dtmf", "5"), ("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n")],
)
def test_dtmf_info_bodies_of_either_type_stop_at_the_masker(rig, content_type, body):
    c, a = rig.connect()
    rig.caller.send_info(c, content_type, body)
    time.sleep(0.8)
    rig.hang_up(c, a)
    assert rig.agent.calls[a].infos == []


def test_tokeniser_gets_the_inband_card_and_issues_a_token(rig, tmp_path):
    sig = write_keys_wav(tmp_path / "card.wav", card_keys())
    with poller(rig) as p:
        c, a = rig.connect()
        rig.play_and_wait(c, tmp_path / "card.wav", sig.duration_s)
        time.sleep(0.5)
        rig.hang_up(c, a)
    assert_one_token_for_the_keyed_card(rig, p.events)


@pytest.mark.parametrize(
    "method, pacing, seconds_per_key",
    [
        ("rfc4733", {"duration_ms": 100}, 0.2),
        ("info", {"interval_ms": 150}, 0.15),
    ],
)
def test_tokeniser_gets_the_signalled_card_and_issues_a_token(rig, method, pacing, seconds_per_key):
    with poller(rig) as p:
        c, a = rig.connect()
        keys = card_keys()
        rig.caller.send_dtmf(c, keys, method, **pacing)
        time.sleep(seconds_per_key * len(keys) + 1.0)
        rig.hang_up(c, a)
    assert_one_token_for_the_keyed_card(rig, p.events)


def test_speech_passes_through_to_the_agent_intact(rig, tmp_path):
    speech = speech_pcm()
    sf.write(tmp_path / "speech.wav", speech, 8000, subtype="PCM_16")
    c, a = rig.connect(record=tmp_path / "rx.wav")
    rig.play_and_wait(c, tmp_path / "speech.wav", len(speech) / 8000)
    rig.hang_up(c, a)
    pcm = read_wav(rig.agent.wait_recorded(a))
    similarity = speech_similarity(pcm, speech)
    assert np.abs(pcm.astype(np.int32)).max() > 1000
    assert similarity > 0.9
