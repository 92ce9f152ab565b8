"""Lanes (`[media] lanes = 4`): a call's frames are masked in the sub-tick that comes
next after its packets arrive (masker.media.loop), so a packet waits a quarter frame
for its tick, not up to a whole one.  The engine is driven by hand here (its thread
not started): the loop's schedule is set, packets are dispatched and lanes ticked
explicitly."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest

from masker.media.engine import MediaEngine
from masker.media.loop import TICK_S, MediaLoop
from masker.media.ports import PortAllocator
from masker.phones.client import free_udp_port_block
from tests.support.media import audio_packets, event_packets, pcmu_sdp, rtp_socket

HOST = "127.0.0.1"
LANES = 4


class Row:
    def __init__(self, audio: np.ndarray) -> None:
        self.audio, self.digits = audio, []


class Recording:
    """A BatchMasker stand-in that passes audio through and records arming and forced
    spans per row."""

    def __init__(self, n: int, rate: int = 8000) -> None:
        self.n = n
        self.armed = [False] * n
        self.forced: list[tuple[int, int, int]] = []

    def reset(self, row: int) -> None:
        self.armed[row] = False
        self.forced = [f for f in self.forced if f[0] != row]

    def force_mask(self, row: int, start: int, end: int) -> None:
        self.forced.append((row, start, end))

    def arm(self, row: int) -> None:
        self.armed[row] = True

    def disarm(self, row: int) -> None:
        self.armed[row] = False

    def grow(self, n: int) -> None:
        self.armed += [False] * (n - self.n)
        self.n = n

    def process(self, frames: np.ndarray) -> list[Row]:
        return [Row(frames[i].copy()) for i in range(self.n)]


@pytest.fixture
def engine() -> Iterator[MediaEngine]:
    base = free_udp_port_block(24)
    eng = MediaEngine(PortAllocator(HOST, base, base + 23), Recording, batch_size=2, lanes=LANES)
    try:
        yield eng
    finally:
        eng.table.close_all()
        eng.loop.close()


class Call:
    """A call on the hand-driven engine with its caller's and agent's sockets."""

    def __init__(self, eng: MediaEngine, name: str) -> None:
        self.eng = eng
        self.caller, self.agent = rtp_socket(), rtp_socket()
        self.media = eng.open_call(name)
        eng.set_caller_sdp(self.media, pcmu_sdp(self.caller.getsockname()[1]))
        eng.set_agent_sdp(self.media, pcmu_sdp(self.agent.getsockname()[1]))
        eng.loop.run_commands()

    def send(self, packets: list[bytes]) -> None:
        for pkt in packets:
            self.caller.sendto(pkt, (HOST, self.media.caller_port))
        time.sleep(0.02)
        while self.eng.loop.dispatch(0):
            pass

    def agent_packets(self) -> list[bytes]:
        self.agent.setblocking(False)
        got = []
        while True:
            try:
                got.append(self.agent.recv(2048))
            except BlockingIOError:
                return got

    @property
    def lane(self) -> int:
        return self.eng.bank.lane_of(self.media.slot)


def _next_sub_tick_in(eng: MediaEngine, seconds: float, lane: int) -> None:
    eng.loop.next_tick = time.monotonic() + seconds
    eng.loop.lane = lane


def test_the_lane_after_an_arrival_is_the_first_sub_tick_past_the_margin():
    loop = MediaLoop(Counter(), lambda now, lane: None, LANES)
    try:
        loop.next_tick, loop.lane = 100.0, 2
        assert loop.lane_after(100.0 - 0.001, 0.003) == 3  # 100.000 is too soon
        assert loop.lane_after(100.0 - 0.010, 0.003) == 2
        assert loop.lane_after(100.0 + 0.016, 0.003) == 2  # a frame on: lane 2 again
        assert loop.lane_after(100.0 - 0.003, 0.003) == 2  # exactly the margin
    finally:
        loop.close()


def test_a_calls_first_audio_moves_it_to_the_lane_that_ticks_next(engine):
    calls = []
    for lane in (1, 3, 2):
        call = Call(engine, f"c{lane}")
        _next_sub_tick_in(engine, 1.0, lane)  # far off: the very next sub-tick
        call.send(audio_packets(np.zeros(160, np.int16)))
        calls.append((lane, call))
    assert [c.lane for _, c in calls] == [lane for lane, _ in calls]
    assert all(c.media.counters["lane_moves"] == 1 for _, c in calls)


def test_a_call_already_in_the_next_lane_stays_in_its_slot(engine):
    call = Call(engine, "c0")
    slot = call.media.slot
    _next_sub_tick_in(engine, 1.0, 0)
    call.send(audio_packets(np.zeros(160, np.int16)))
    assert (call.lane, call.media.slot, call.media.counters["lane_moves"]) == (0, slot, 0)


def test_a_lane_tick_masks_only_the_calls_of_that_lane(engine):
    a, b = Call(engine, "a"), Call(engine, "b")
    _next_sub_tick_in(engine, 1.0, 1)
    a.send(audio_packets(np.zeros(320, np.int16)))
    _next_sub_tick_in(engine, 1.0, 2)
    b.send(audio_packets(np.zeros(320, np.int16)))
    now = time.monotonic()
    engine._tick(now, 1)
    time.sleep(0.02)
    assert (len(a.agent_packets()), len(b.agent_packets())) == (1, 0)
    engine._tick(now, 2)
    time.sleep(0.02)
    assert (len(a.agent_packets()), len(b.agent_packets())) == (0, 1)


def test_arming_and_forced_spans_move_with_a_call_to_its_lane(engine):
    call = Call(engine, "c")
    engine.arm(call.media, True)
    engine.loop.run_commands()
    # a key by RFC 4733 before any audio: its span is forced on the call's first slot
    call.send(event_packets("5", ts=5000 + 320, seq0=50, duration=480))
    assert call.media.masked_until > 0
    _next_sub_tick_in(engine, 1.0, 3)
    call.send(audio_packets(np.zeros(160, np.int16)))
    chunk, row = engine.bank.chunk_of(call.media.slot)
    assert call.lane == 3 and chunk.armed[row]
    ends = [end for r, _, end in chunk.forced if r == row]
    assert ends and max(ends) >= call.media.masked_until


def test_sub_ticks_cycle_through_every_lane_once_a_frame():
    seen: list[int] = []
    loop = MediaLoop(Counter(), lambda now, lane: seen.append(lane), LANES)
    loop.start()
    try:
        time.sleep(0.3)
    finally:
        loop.stop()
        loop.close()
    assert len(seen) >= 0.3 / (TICK_S / LANES) * 0.5
    assert seen[: 2 * LANES] == list(range(LANES)) * 2


def test_one_lane_ticks_once_a_frame_and_every_call_stays_in_it():
    loop = MediaLoop(Counter(), lambda now, lane: None)
    try:
        loop.next_tick, loop.lane = 100.0, 0
        assert {loop.lane_after(100.0 + dt / 1000, 0.003) for dt in range(-30, 30)} == {0}
        assert loop.sub_tick == TICK_S
    finally:
        loop.close()


def test_a_lane_count_other_than_1_2_or_4_is_refused():
    with pytest.raises(ValueError, match="lanes"):
        MediaLoop(Counter(), lambda now, lane: None, 3)
