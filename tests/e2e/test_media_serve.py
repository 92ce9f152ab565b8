"""Real RTP through `masker serve`: keypad tones never reach the agent, speech does,
and the agent leg is a valid RFC 3550 stream; the agent's audio comes back untouched."""

from __future__ import annotations

import time

import numpy as np
import pytest

from dsp.testsignals import keys_signal, sine, to_int16
from masker.offline.receivers import multimon_digits, spandsp_digits
from masker.wire.rtp import seq_delta, ts_delta
from tests.support.media import (
    Collector,
    audio_packets,
    decode_stream,
    event_packets,
    send_paced,
)
from tests.support.serve import MediaCall, Served
from tests.support.serve_api import assert_no_card_data
from tests.support.sip_client import HOST

CARD = "4111111111111111"


def speech_like(n: int, seed: int = 1) -> np.ndarray:
    """A vowel-ish harmonic signal with a slow envelope (no DTMF pairs)."""
    rng = np.random.default_rng(seed)
    x = sum(sine(f, n, 8000, -22.0, rng.uniform(0, 6.28)) for f in (220, 440, 660, 1100))
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 3 * np.arange(n) / 8000)
    return to_int16(x * env)


def test_keyed_card_is_masked_and_stream_is_valid_rfc3550(served):
    call = MediaCall(served)
    keyed = keys_signal(CARD, on_ms=80, off_ms=80, lead_ms=200).pcm16(None)
    pcm = np.concatenate([speech_like(4000), keyed, speech_like(4000, 2), np.zeros(1600, np.int16)])
    # the sent audio itself decodes to the card: the receivers work on this signal
    assert spandsp_digits(pcm) == CARD
    coll = Collector(call.agent_rtp, (HOST, call.masker_agent_port))
    send_paced(call.caller_rtp, (HOST, call.masker_caller_port), audio_packets(pcm))
    time.sleep(0.4)
    pkts = coll.stop() and coll.rtp()
    call.hangup()
    out = decode_stream(pkts)
    assert spandsp_digits(out) == ""
    assert multimon_digits(out) == ""
    assert len({p.ssrc for p in pkts}) == 1
    steps = list(zip(pkts, pkts[1:], strict=False))
    assert all(seq_delta(b.sequence, a.sequence) == 1 for a, b in steps)
    # timestamps step by one frame; after a pause of the sender (a loaded test machine)
    # the stream resumes as a new talkspurt, and after the tick moved later the packet
    # goes out later: marker bit, timestamp moved on by the time passed
    assert all(
        ts_delta(b.timestamp, a.timestamp) == 160
        or (b.marker and ts_delta(b.timestamp, a.timestamp) > 160)
        for a, b in steps
    )
    assert len(pkts) >= 0.8 * (len(pcm) // 160)


def test_speech_reaches_the_agent_at_its_level(served):
    call = MediaCall(served)
    pcm = speech_like(16000, 3)
    coll = Collector(call.agent_rtp, (HOST, call.masker_agent_port))
    send_paced(call.caller_rtp, (HOST, call.masker_caller_port), audio_packets(pcm))
    time.sleep(0.3)
    out = decode_stream(coll.stop() and coll.rtp())
    call.hangup()
    rms_in = np.sqrt(np.mean(pcm.astype(float) ** 2))
    frames = out[: len(out) // 160 * 160].reshape(-1, 160).astype(float)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    voiced = rms[rms > 0.1 * rms_in]  # leave out silence before the stream and after pauses
    assert len(voiced) >= 0.8 * (len(pcm) // 160)
    assert abs(20 * np.log10(np.sqrt(np.mean(voiced**2)) / rms_in)) < 1.0


def test_agent_audio_reaches_the_caller_byte_for_byte(served):
    call = MediaCall(served)
    sent = audio_packets(speech_like(1600, 4), ssrc=0xABCD)
    coll = Collector(call.caller_rtp, (HOST, call.masker_caller_port))
    send_paced(call.agent_rtp, (HOST, call.masker_agent_port), sent, interval=0.005)
    time.sleep(0.2)
    got = [d for _, d, _ in coll.stop()]
    call.hangup()
    assert got == sent


def test_rfc4733_events_never_reach_the_agent_and_their_span_is_masked(served):
    call = MediaCall(served)
    silence = np.zeros(160 * 10, np.int16)
    tone = keys_signal("5", on_ms=160, off_ms=0, lead_ms=0).pcm16(None)[:1280]
    audio_before = audio_packets(silence, seq0=100, ts0=8000)
    # the phone sends the tone in-band *and* as telephone-events over the same 160 ms
    audio_tone = audio_packets(tone, seq0=110, ts0=8000 + 1600)
    events = event_packets("5", ts=8000 + 1600, seq0=500)
    audio_after = audio_packets(np.zeros(160 * 25, np.int16), seq0=118, ts0=8000 + 1600 + 1280)
    paired = [p for pair in zip(audio_tone, events, strict=False) for p in pair]
    packets = audio_before + paired + events[len(audio_tone) :] + audio_after
    coll = Collector(call.agent_rtp, (HOST, call.masker_agent_port))
    send_paced(call.caller_rtp, (HOST, call.masker_caller_port), packets, interval=0.01)
    time.sleep(0.5)
    pkts = coll.stop() and coll.rtp()
    call.hangup()
    assert {p.payload_type for p in pkts} == {0}
    out = decode_stream(pkts)
    assert spandsp_digits(out) == "" and multimon_digits(out) == ""


def send_keyed(call: MediaCall, packets: list[bytes]) -> None:
    """Send at the pace of the audio packets (events ride along with them)."""
    audio_indexes = [i for i, p in enumerate(packets) if p[1] & 0x7F == 0]
    start = time.monotonic()
    for n, i in enumerate(audio_indexes):
        nxt = audio_indexes[n + 1] if n + 1 < len(audio_indexes) else len(packets)
        delay = start + n * 0.02 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for p in packets[i:nxt]:
            call.caller_rtp.sendto(p, (HOST, call.masker_caller_port))
    time.sleep(0.4)


def _registry_id(served: Served, call: MediaCall) -> str:
    return served.wait_log("call.invite", trunk_call_id=call.call_id)["call"]


@pytest.mark.parametrize(
    "inband,rfc4733",
    [(True, False), (False, True), (True, True)],
    ids=["inband", "rfc4733", "both"],
)
def test_keyed_card_reaches_the_tokeniser_once_and_gets_a_token(served, inband, rfc4733):
    from tests.support.media import keyed_packets

    call = MediaCall(served)
    packets = keyed_packets("4111111111111111#1230#123#", inband=inband, rfc4733=rfc4733)
    coll = Collector(call.agent_rtp, (HOST, call.masker_agent_port))
    send_keyed(call, packets)
    pkts = coll.stop() and coll.rtp()
    rid = _registry_id(served, call)
    served.wait_log("capture.event", call=rid, kind="token", timeout=10)
    call.hangup()
    assert {p.payload_type for p in pkts} == {0}
    out = decode_stream(pkts)
    assert spandsp_digits(out) == "" and multimon_digits(out) == ""


def test_service_logs_never_contain_the_keyed_card(served):
    from tests.support.media import keyed_packets

    call = MediaCall(served)
    send_keyed(call, keyed_packets("4111111111111111#1230#123#", inband=True, rfc4733=True))
    served.wait_log("capture.event", call=_registry_id(served, call), kind="token", timeout=10)
    call.hangup()
    assert_no_card_data(*served.raw)
