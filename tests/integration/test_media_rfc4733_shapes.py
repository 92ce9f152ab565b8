"""RFC 4733 as real stacks send it: each shape is a packet sequence replayed over UDP
to the media engine.  Exactly the keyed digits reach the digit sink (the tokeniser's
feed) and no telephone-event reaches the agent."""

from __future__ import annotations

import random
import time

import pytest

from masker.media.engine import EVENT_GUARD
from masker.media.event_presses import EVENT_TIMEOUT_S
from masker.wire.rfc4733 import TelephoneEvent, build_event, build_events, digit_event
from masker.wire.sdp import Negotiated
from tests.support.media import (
    HOST,
    Collector,
    EventStream,
    RecordingMasker,
    covered,
    pcmu_sdp,
    rtp_socket,
    running_engine,
    send_paced,
)


def neg(sock, event_pt: int | None = 101) -> Negotiated:
    return pcmu_sdp(sock.getsockname()[1], event_pt)


@pytest.fixture
def engine():
    digits: list = []
    options = {"batch_size": 4, "max_calls": 4, "on_digit": lambda *a: digits.append(a)}
    with running_engine(RecordingMasker, **options) as eng:
        eng.digits = digits
        yield eng


class Call:
    """A caller and an agent socket anchored by the engine; the agent's packets collected."""

    def __init__(
        self, engine, caller_event_pt: int | None = 101, agent_event_pt: int | None = 101
    ) -> None:
        self.engine = engine
        self.caller, self.agent = rtp_socket(), rtp_socket()
        self.media = engine.open_call("c")
        engine.set_caller_sdp(self.media, neg(self.caller, caller_event_pt))
        engine.set_agent_sdp(self.media, neg(self.agent, agent_event_pt))
        self.to_masker = (HOST, self.media.caller_port)
        self.at_agent = Collector(self.agent, (HOST, self.media.agent_port))

    def replay(self, packets: list[bytes], interval: float = 0.005) -> None:
        send_paced(self.caller, self.to_masker, packets, interval=interval)

    def digits(self, settle: float = 0.15) -> str:
        time.sleep(settle)
        return "".join(d[1] for d in self.engine.digits)

    def assert_no_event_reached_the_agent(self) -> None:
        time.sleep(0.05)
        pkts = self.at_agent.stop()
        rtp = self.at_agent.rtp()
        assert pkts, "the caller's audio should reach the agent"
        assert {p.payload_type for p in rtp} == {0}
        assert {len(p.payload) for p in rtp} == {160}
        self.caller.close()
        self.agent.close()


def test_duration_zero_first_packets_give_each_key_once(engine):
    call, s = Call(engine), EventStream()
    s.keys("4929", zero_first=2)
    call.replay(s.packets)
    assert call.digits() == "4929"
    call.assert_no_event_reached_the_agent()


def test_three_end_packets_sharing_a_sequence_number_give_each_key_once(engine):
    call, s = Call(engine), EventStream()
    s.keys("5511", same_end_seq=True)
    call.replay(s.packets)
    assert call.digits() == "5511"
    call.assert_no_event_reached_the_agent()


def test_keys_whose_end_packets_are_all_lost_give_each_key_once(engine):
    call, s = Call(engine), EventStream()
    s.keys("3377", ends=0)
    call.replay(s.packets)
    assert call.digits() == "3377"
    call.assert_no_event_reached_the_agent()


def test_a_key_without_end_packets_ends_on_timeout_and_a_late_end_is_no_new_digit(engine):
    call, s = Call(engine), EventStream()
    s.audio(3)
    ts = s.ts
    s.press("8", ends=0)
    s.audio(3)
    call.replay(s.packets)
    assert call.digits() == "8"
    time.sleep(EVENT_TIMEOUT_S + 0.05)
    assert not call.media.keys.press.live(time.monotonic())  # the key has ended
    late = EventStream(seq=s.seq, ts=s.ts)
    late.event(build_event(TelephoneEvent(digit_event("8"), True, 10, 800)), ts)
    late.audio(3)
    call.replay(late.packets)
    assert call.digits() == "8"
    call.assert_no_event_reached_the_agent()


def test_end_packets_out_of_order_give_each_key_once(engine):
    rng = random.Random(4733)
    s = EventStream()
    s.audio(3)
    order: list[bytes] = []
    held: list[bytes] = []
    for k in "6006":
        pkts = s.press(k)
        updates, ends = pkts[:-3], pkts[-3:]
        first_end, other_ends = ends[0], ends[1:]
        # an end packet overtakes the last update; the other ends come after the next key
        order += updates[:-1] + [first_end, updates[-1]] + held
        held = other_ends
        rng.shuffle(held)
        s.packets.clear()
        s.audio(2)
        order += s.packets
    s.packets.clear()
    s.audio(3)
    call = Call(engine)
    call.replay(order + held + s.packets)
    assert call.digits() == "6006"
    call.assert_no_event_reached_the_agent()


def test_a_key_repeated_with_new_timestamps_is_a_new_digit_each_time(engine):
    call, s = Call(engine), EventStream()
    s.keys("1111", gap=0)  # back to back: each press starts where the last one ended
    call.replay(s.packets)
    assert call.digits() == "1111"
    call.assert_no_event_reached_the_agent()


def test_a_stack_that_keeps_one_timestamp_for_repeated_keys_gives_each_key(engine):
    call, s = Call(engine), EventStream()
    s.audio(3)
    ts = s.ts
    for _ in range(3):
        s.press("2")
        s.ts = ts  # no audio between the presses: the clock is not advanced
    s.ts = ts + 2400
    s.audio(3)
    call.replay(s.packets)
    assert call.digits() == "222"
    call.assert_no_event_reached_the_agent()


def test_events_packed_in_one_payload_are_each_a_digit(engine):
    call, s = Call(engine), EventStream()
    s.audio(3)
    packed = build_events(
        [
            TelephoneEvent(digit_event("1"), True, 10, 800),
            TelephoneEvent(digit_event("2"), True, 10, 800),
            TelephoneEvent(digit_event("3"), False, 10, 320),
        ]
    )
    for _ in range(2):  # sent twice (redundancy): still one press each
        s.event(packed, s.ts)
    s.event(build_event(TelephoneEvent(digit_event("3"), True, 10, 800)), s.ts + 1600)
    s.ts += 2400
    s.audio(3)
    call.replay(s.packets)
    assert call.digits() == "123"
    call.assert_no_event_reached_the_agent()


@pytest.mark.parametrize("trailer", [b"\0\0\0\0", b"\0\0", b"\x05\x0a\x00\xa0" * 3])
def test_bytes_after_the_event_block_that_are_no_packing_are_ignored(engine, trailer):
    call, s = Call(engine), EventStream()
    s.audio(3)
    code, ts = digit_event("9"), s.ts
    for k in range(1, 5):  # updates (not ended): anything after them is no packed event
        s.event(build_event(TelephoneEvent(code, False, 10, 160 * k)) + trailer, ts)
    for _ in range(3):
        s.event(build_event(TelephoneEvent(code, True, 10, 800)) + b"\0\0\0\0"[: len(trailer)], ts)
    s.ts += 800
    s.audio(3)
    call.replay(s.packets)
    assert call.digits() == "9"
    call.assert_no_event_reached_the_agent()


@pytest.mark.parametrize("pt", [96, 100, 101, 110, 127])
def test_events_with_any_negotiated_payload_type_give_each_key(engine, pt):
    call, s = Call(engine, caller_event_pt=pt, agent_event_pt=pt), EventStream(event_pt=pt)
    s.keys("4711")
    call.replay(s.packets)
    assert call.digits() == "4711"
    call.assert_no_event_reached_the_agent()


def test_events_with_the_payload_type_of_our_answer_give_each_key(engine):
    # the caller offered 101, the PBX answered 96 (we relay its numbering to the caller)
    call, s = Call(engine, caller_event_pt=101, agent_event_pt=96), EventStream(event_pt=96)
    s.keys("258")
    call.replay(s.packets)
    assert call.digits() == "258"
    call.assert_no_event_reached_the_agent()


def test_events_with_a_payload_type_no_sdp_names_are_learnt(engine):
    call, s = Call(engine, caller_event_pt=None, agent_event_pt=None), EventStream(event_pt=98)
    s.keys("0369", zero_first=1)
    call.replay(s.packets)
    assert call.digits() == "0369"
    assert engine.snapshot().get("event_pt_learnt", 0) == 1
    call.assert_no_event_reached_the_agent()


def test_an_ssrc_change_in_the_middle_of_a_key_is_one_digit(engine):
    a, b = EventStream(ssrc=0xA), EventStream(ssrc=0xB, seq=60000, ts=7_000_000)
    a.audio(3)
    first = a.press("7")[:2]  # two updates on SSRC A ...
    code = digit_event("7")
    ts_b = b.ts
    for k in range(3, 6):  # ... the rest of the key (and its ends) on SSRC B
        b.event(build_event(TelephoneEvent(code, False, 10, 160 * k)), ts_b)
    for _ in range(3):
        b.event(build_event(TelephoneEvent(code, True, 10, 960)), ts_b)
    b.ts += 960
    b.audio(2)
    b.press("7")  # then a new press of the same key on the new stream
    b.audio(3)
    call = Call(engine)
    call.replay(a.packets[:3] + first + b.packets)
    assert call.digits() == "77"
    call.assert_no_event_reached_the_agent()


def test_a_key_longer_than_one_duration_field_is_one_digit(engine):
    call, s = Call(engine), EventStream()
    s.audio(3)
    code, ts = digit_event("#"), s.ts
    for d in (160, 0xFF00, 0xFFFF):  # a key held for over 8 s (updates thinned out)
        s.event(build_event(TelephoneEvent(code, False, 10, d)), ts)
    ts2 = (ts + 0xFFFF) & 0xFFFFFFFF  # its next segment (RFC 4733 2.5.1.3)
    for d in (160, 320):
        s.event(build_event(TelephoneEvent(code, False, 10, d)), ts2)
    for _ in range(3):
        s.event(build_event(TelephoneEvent(code, True, 10, 480)), ts2)
    s.ts = ts2 + 480
    s.audio(3)
    call.replay(s.packets)
    assert call.digits() == "#"
    call.assert_no_event_reached_the_agent()


def test_the_masked_span_covers_the_whole_event(engine):
    call, s = Call(engine), EventStream()
    s.audio(10)
    start_ts = s.ts
    s.press("5", updates=6, zero_first=1)
    s.audio(10)
    call.replay(s.packets, interval=0.02)  # real time: the audio maps to the masker input
    assert call.digits() == "5"
    masker = RecordingMasker.instances[-1]
    spans = [(a, b) for slot, a, b in masker.forced if slot == call.media.slot % 4]
    start = call.media.keys.press.start
    assert call.media.keys.press.ts == start_ts
    assert covered(spans, start - EVENT_GUARD, start + 7 * 160 + EVENT_GUARD)
    call.assert_no_event_reached_the_agent()
