"""G.722 in the media plane, in-process with the real batch masker over loopback RTP:
a G.722 caller is detected and masked at 16 kHz, either leg may be G.722 or G.711
(transcoded only where they differ), masked spans land where the keys were,
telephone-event at a 16,000 Hz clock is counted in the stream's clock."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from scipy.signal import resample_poly

from dsp.tone_masker import BatchMasker
from masker.media.codecs import G722_DELAY, RESAMPLE_DELAY
from masker.offline.receivers import multimon_digits, spandsp_digits
from masker.phones.analysis import find_marker, leaked_ms
from masker.phones.tones import KeyedSignal, keyed_signal
from masker.wire.rfc4733 import TelephoneEvent, build_event, parse_event
from masker.wire.rtp import RtpPacket, build_rtp
from masker.wire.sdp import Negotiated
from tests.support.g722 import G722_PT, decode_g722_stream, g722_packets
from tests.support.media import (
    HOST,
    Collector,
    RecordingMasker,
    audio_packets,
    decode_stream,
    event_packets,
    rtp_socket,
    running_engine,
    send_paced,
)

PT = {"PCMU": 0, "PCMA": 8, "G722": G722_PT}
RATE = {"PCMU": 8000, "PCMA": 8000, "G722": 16000}
KEYS = "4196"


def real_masker(n: int, rate: int = 8000) -> BatchMasker:
    return BatchMasker(n, sample_rate=rate)


def leg_sdp(port: int, codec: str, event_clock: int = 8000, peer: str | None = None) -> Negotiated:
    pt = PT[codec]
    return Negotiated(
        HOST,
        port,
        pt,
        codec,
        101,
        20,
        "sendrecv",
        ((pt, codec),),
        event_clocks=((101, event_clock),),
        peer=None if peer is None else (PT[peer], peer),
    )


def caller_packets(signal: KeyedSignal, codec: str, ssrc: int = 0x1234) -> list[bytes]:
    if codec == "G722":
        return g722_packets(signal.pcm, ssrc=ssrc)
    return audio_packets(
        signal.pcm, pt=PT[codec], ssrc=ssrc, law="ulaw" if codec == "PCMU" else "alaw"
    )


def agent_audio(packets: list[RtpPacket], codec: str) -> np.ndarray:
    if codec == "G722":
        return decode_g722_stream(packets)
    return decode_stream(packets, "ulaw" if codec == "PCMU" else "alaw")


@dataclass
class CallRun:
    audio: dict[str, np.ndarray] = field(default_factory=dict)
    packets: dict[str, list[RtpPacket]] = field(default_factory=dict)
    digits: list[tuple[str, str, str]] = field(default_factory=list)


def run_calls(calls: dict[str, tuple[str, str, list[bytes]]], factory=real_masker) -> CallRun:
    """Each call (caller codec, agent codec, caller packets) through one engine at once."""
    run = CallRun()
    options = {"batch_size": 2, "max_calls": 8, "on_digit": lambda *a: run.digits.append(a)}
    with running_engine(factory, 4 * len(calls) + 4, **options) as eng:
        legs = {}
        for name, (c_codec, a_codec, _) in calls.items():
            caller, agent = rtp_socket(), rtp_socket()
            media = eng.open_call(name)
            eng.set_caller_sdp(media, leg_sdp(caller.getsockname()[1], c_codec))
            eng.set_agent_sdp(media, leg_sdp(agent.getsockname()[1], a_codec, peer=c_codec))
            legs[name] = (caller, media, Collector(agent, source=(HOST, media.agent_port)))
        streams = [(legs[n][0], (HOST, legs[n][1].caller_port), calls[n][2]) for n in calls]
        start = time.monotonic()
        for i in range(max(len(p) for _, _, p in streams)):
            delay = start + i * 0.02 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            for sock, dest, pkts in streams:
                if i < len(pkts):
                    sock.sendto(pkts[i], dest)
        time.sleep(0.4)
        for name, (_, a_codec, _) in calls.items():
            col = legs[name][2]
            col.stop()
            run.packets[name] = col.rtp()
            run.audio[name] = agent_audio(run.packets[name], a_codec)
    return run


def energy_spans(pcm: np.ndarray, rate: int, threshold: float = 300.0) -> list[tuple[int, int]]:
    """[start, end) runs of 1 ms blocks whose RMS is above threshold, in samples."""
    block = rate // 1000
    n = len(pcm) // block
    rms = np.sqrt((pcm[: n * block].astype(np.float64).reshape(n, block) ** 2).mean(axis=1))
    on = rms > threshold
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(int), [0]])))
    return [(int(a) * block, int(b) * block) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def test_g722_caller_to_g722_agent_is_masked_at_16khz_and_every_key_reported():
    signal = keyed_signal(KEYS, rate=16000)
    run = run_calls({"wide": ("G722", "G722", caller_packets(signal, "G722"))})
    audio, pkts = run.audio["wide"], run.packets["wide"]
    assert {p.payload_type for p in pkts} == {G722_PT}
    assert {len(p.payload) for p in pkts} == {160}
    assert "".join(d for _, d, _ in run.digits) == KEYS
    assert spandsp_digits(audio, 16000) == ""
    assert multimon_digits(audio, 16000) == ""


@pytest.mark.parametrize("caller, agent", [("G722", "PCMU"), ("PCMA", "G722")])
def test_transcoded_call_is_masked_and_every_key_reported(caller, agent):
    signal = keyed_signal(KEYS, rate=RATE[caller])
    run = run_calls({"x": (caller, agent, caller_packets(signal, caller))})
    audio = run.audio["x"]
    assert {p.payload_type for p in run.packets["x"]} == {PT[agent]}
    assert "".join(d for _, d, _ in run.digits) == KEYS
    assert spandsp_digits(audio, RATE[agent]) == ""
    assert multimon_digits(audio, RATE[agent]) == ""


class TappedMasker(BatchMasker):
    """The real masker, keeping all it was fed: the callers' audio after the playout
    buffer, on the masker's own timeline."""

    instances: list[TappedMasker] = []

    def __init__(self, n: int, rate: int = 8000) -> None:
        super().__init__(n, sample_rate=rate)
        self.rate = rate
        self.fed: list[np.ndarray] = []
        TappedMasker.instances.append(self)

    def process(self, frames):
        self.fed.append(np.array(frames))
        return super().process(frames)


def masker_input(rate: int) -> np.ndarray:
    """What the one call at `rate` fed the masker (its loudest row), at 8 kHz."""
    (tap,) = [m for m in TappedMasker.instances if m.rate == rate]
    rows = np.concatenate(tap.fed, axis=1).astype(np.float64)
    fed = rows[np.argmax((rows**2).sum(axis=1))]
    return fed if rate == 8000 else resample_poly(fed, 1, rate // 8000)


def test_mask_spans_of_a_g722_caller_at_a_pcmu_agent_are_where_the_keys_were():
    """The same keyed signal from a G.722 and from a PCMU caller, both to PCMU agents in
    one engine.  Each key is located where the masker was fed it (after the playout
    buffer, whose underruns on a loaded box may move later keys against the marker);
    the agent's audio is that timeline a constant delay later (the chirp marker, seen
    in both, gives it: look-ahead, codec and resampler).  Nothing of any key is left,
    and every masked span starts where the narrowband call's does, to the masker's
    1 ms grid: the 16 kHz detection and the codec change move no span."""
    wide, narrow = keyed_signal(KEYS, rate=16000), keyed_signal(KEYS, rate=8000)
    TappedMasker.instances.clear()
    run = run_calls(
        {
            "wide": ("G722", "PCMU", caller_packets(wide, "G722", ssrc=1)),
            "narrow": ("PCMU", "PCMU", caller_packets(narrow, "PCMU", ssrc=2)),
        },
        factory=TappedMasker,
    )
    assert sorted(d for _, d, _ in run.digits) == sorted(KEYS + KEYS)
    found = {}
    for name, rate in (("wide", 16000), ("narrow", 8000)):
        audio, fed = run.audio[name], masker_input(rate)
        at_agent, at_masker = find_marker(audio, narrow), find_marker(fed, narrow)
        assert at_agent is not None and at_masker is not None
        after_marker = at_masker.lag + narrow.marker_start + narrow.marker_len
        keys = [(s, e) for s, e in energy_spans(fed, 8000) if s > after_marker]
        assert len(keys) == len(KEYS), (name, keys)
        shift = at_agent.lag - at_masker.lag
        masked = [
            (s - shift, e - shift) for s, e in energy_spans(audio, 8000) if s - shift > after_marker
        ]
        assert len(masked) == len(KEYS), (name, masked)
        for (start, end), (key_start, key_end) in zip(masked, keys, strict=True):
            assert start <= key_start and end > (key_start + key_end) // 2, (name, masked, keys)
        lags = [k + shift - span.start for (k, _), span in zip(keys, narrow.spans, strict=True)]
        assert [leaked_ms(audio, narrow, lag)[i] for i, lag in enumerate(lags)] == [0.0] * 4
        found[name] = [(s - k, e - k) for (s, e), (k, _) in zip(masked, keys, strict=True)]
    for (ws, we), (ns, ne) in zip(found["wide"], found["narrow"], strict=True):
        assert abs(ws - ns) <= 8 and abs(we - ne) <= 8, (found["wide"], found["narrow"])


@dataclass
class Press:
    forced: list[tuple[int, int, int]]
    digits: list[tuple[str, str, str]]
    at_agent: list[RtpPacket]


def one_press(event_clock: int, duration: int) -> Press:
    """A G.722 caller keys one RFC 4733 press with the given event clock and duration."""
    RecordingMasker.instances.clear()
    digits: list[tuple[str, str, str]] = []
    options = {"batch_size": 2, "on_digit": lambda *a: digits.append(a)}
    with running_engine(lambda n, rate=8000: RecordingMasker(n), 8, **options) as eng:
        caller, agent = rtp_socket(), rtp_socket()
        media = eng.open_call("ev")
        caller_neg = leg_sdp(caller.getsockname()[1], "G722", event_clock=event_clock)
        eng.set_caller_sdp(media, caller_neg)
        eng.set_agent_sdp(media, leg_sdp(agent.getsockname()[1], "G722", peer="G722"))
        col = Collector(agent, source=(HOST, media.agent_port))
        silence = keyed_signal("", marker=False, lead_ms=400, tail_ms=0, rate=16000)
        audio = g722_packets(silence.pcm, ts0=8000)
        press = event_packets(
            "7", ts=8000 + 10 * 160, seq0=500, duration=duration, step=duration // 4
        )
        send_paced(caller, (HOST, media.caller_port), audio[:10] + press + audio[10:], 0.005)
        time.sleep(0.2)
        col.stop()
    forced = [f for m in RecordingMasker.instances for f in m.forced]
    return Press(forced, digits, col.rtp())


def test_telephone_event_at_16000_hz_masks_its_duration_in_the_stream_clock():
    """A 160 ms press: 2560 units of a 16,000 Hz event clock, 1280 clock samples, masked
    (in 16 kHz masker samples) from a guard before to a guard after: the same span as
    1280 units of an 8,000 Hz event clock.  Reported once, never forwarded."""
    for press in (one_press(16000, 2560), one_press(8000, 1280)):
        start = min(s for _, s, _ in press.forced)
        end = max(e for _, _, e in press.forced)
        assert end - start == 2 * (160 + 1280 + 160)
        assert [(d, src) for _, d, src in press.digits] == [("7", "rfc4733")]
        assert press.at_agent and {p.payload_type for p in press.at_agent} == {G722_PT}


def test_agent_pcmu_reaches_a_g722_caller_as_g722_and_its_events_in_the_callers_clock():
    with running_engine(real_masker, 8, batch_size=2) as eng:
        caller, agent = rtp_socket(), rtp_socket()
        media = eng.open_call("back")
        eng.set_caller_sdp(media, leg_sdp(caller.getsockname()[1], "G722", event_clock=16000))
        eng.set_agent_sdp(media, leg_sdp(agent.getsockname()[1], "PCMU", peer="G722"))
        col = Collector(caller, source=(HOST, media.caller_port))
        tone = keyed_signal("", marker=True, lead_ms=100, tail_ms=100, rate=8000)
        pkts = audio_packets(tone.pcm, ssrc=77, ts0=1000)
        ev = build_rtp(RtpPacket(101, 900, 1000, 77, build_event(TelephoneEvent(5, True, 10, 800))))
        send_paced(agent, (HOST, media.agent_port), pkts + [ev], 0.005)
        time.sleep(0.2)
        col.stop()
    got = col.rtp()
    audio = [p for p in got if p.payload_type == G722_PT]
    events = [p for p in got if p.payload_type == 101]
    assert [p.sequence for p in audio] == [100 + i for i in range(len(pkts))]
    assert {len(p.payload) for p in audio} == {160}
    assert [parse_event(p.payload).duration for p in events] == [1600]
    back = resample_poly(decode_g722_stream(audio), 1, 2)
    aligned = find_marker(back, tone)  # the agent's audio, as late as resampler and codec make it
    assert aligned is not None and aligned.correlation > 0.99
    assert aligned.lag == RESAMPLE_DELAY + G722_DELAY
