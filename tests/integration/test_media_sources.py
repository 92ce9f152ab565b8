"""Whom the media plane accepts media from and sends it to, and which ports it hands
out: nobody who sprays packets at the masker's ports receives the agent's audio or
gets their packets relayed, and the ports of the next call cannot be guessed."""

from __future__ import annotations

import socket
import time
from dataclasses import replace

import numpy as np
import pytest

from masker.errors import UserError
from masker.media.ports import PortAllocator, PortsExhausted
from masker.phones.client import free_udp_port_block
from masker.runtime.service_config import load_config
from masker.wire.sdp import Negotiated, Origin, rewrite
from tests.support.media import (
    HOST,
    Collector,
    RecordingMasker,
    audio_packets,
    pcmu_sdp,
    rtp_socket,
    running_engine,
    send_paced,
)


def neg(sock) -> Negotiated:
    return pcmu_sdp(sock.getsockname()[1])


def make_engine(latching: str = "strict", latch_packets: int = 5):
    """The engine under test: a recording masker, strict or symmetric latching."""
    return running_engine(
        RecordingMasker, batch_size=4, max_calls=4, latching=latching, latch_packets=latch_packets
    )


@pytest.fixture
def strict():
    with make_engine() as eng:
        yield eng


@pytest.fixture
def symmetric():
    with make_engine("symmetric", 5) as eng:
        yield eng


class Call:
    def __init__(self, engine, agent_sdp: bool = True) -> None:
        self.engine = engine
        self.caller, self.agent, self.attacker = rtp_socket(), rtp_socket(), rtp_socket()
        self.media = engine.open_call("c")
        engine.set_caller_sdp(self.media, neg(self.caller))
        if agent_sdp:
            engine.set_agent_sdp(self.media, neg(self.agent))
        self.caller_port = (HOST, self.media.caller_port)
        self.agent_port = (HOST, self.media.agent_port)

    def close(self) -> None:
        for s in (self.caller, self.agent, self.attacker):
            s.close()


def tone(n: int, ssrc: int, seq0: int = 100, ts0: int = 5000) -> list[bytes]:
    pcm = (np.sin(np.arange(160 * n) * 0.3) * 4000).astype(np.int16)
    return audio_packets(pcm, ssrc=ssrc, seq0=seq0, ts0=ts0)


def counter(engine, name: str) -> int:
    return engine.snapshot().get(name, 0)


def wait_counter(engine, name: str, at_least: int, timeout: float = 2.0) -> int:
    """The counter once it reaches `at_least` (or after `timeout`): the media thread
    counts a packet some time after it was sent."""
    deadline = time.monotonic() + timeout
    while counter(engine, name) < at_least and time.monotonic() < deadline:
        time.sleep(0.02)
    return counter(engine, name)


def test_a_sprayer_on_the_caller_port_during_ringing_gets_none_of_the_agents_audio(strict):
    call = Call(strict, agent_sdp=False)  # ringing: the PBX has not answered yet
    send_paced(call.attacker, call.caller_port, tone(5, ssrc=0x66), interval=0.005)
    strict.set_agent_sdp(call.media, neg(call.agent))
    heard = Collector(call.attacker)
    send_paced(call.agent, call.agent_port, tone(10, ssrc=0x77), interval=0.005)
    time.sleep(0.2)
    assert heard.stop() == []
    assert counter(strict, "drop_unexpected_source") == 5
    call.close()


def test_the_pbxs_packets_before_its_answer_count_as_before_sdp_not_as_a_sprayer(strict):
    call = Call(strict, agent_sdp=False)  # the PBX's media raced ahead of its 200 OK
    send_paced(call.agent, call.agent_port, tone(3, ssrc=0x77), interval=0.005)
    rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp.sendto(b"\x81\xc9\x00\x01" + bytes(4), (HOST, call.media.agent_port + 1))
    assert wait_counter(strict, "drop_before_sdp", 4) == 4
    assert counter(strict, "drop_unexpected_source") == 0
    rtcp.close()
    call.close()


def test_the_agents_audio_goes_to_the_callers_sdp_address_only(strict):
    call = Call(strict)
    at_caller, at_attacker = Collector(call.caller), Collector(call.attacker)
    send_paced(call.attacker, call.caller_port, tone(5, ssrc=0x66), interval=0.005)
    sent = tone(10, ssrc=0x77)
    send_paced(call.agent, call.agent_port, sent, interval=0.005)
    time.sleep(0.2)
    assert at_attacker.stop() == []
    assert [d for _, d, _ in at_caller.stop()] == sent
    call.close()


def test_a_sprayers_audio_is_not_relayed_to_the_agent(strict):
    call = Call(strict)
    at_agent = Collector(call.agent, call.agent_port)
    send_paced(call.attacker, call.caller_port, tone(25, ssrc=0x66), interval=0.01)
    time.sleep(0.2)
    assert at_agent.stop() == []
    assert counter(strict, "caller_packets") == 0
    call.close()


def test_a_sprayer_on_the_agent_port_reaches_neither_the_caller_nor_the_agent(strict):
    call = Call(strict)
    at_caller, at_attacker = Collector(call.caller), Collector(call.attacker)
    send_paced(call.attacker, call.agent_port, tone(10, ssrc=0x66), interval=0.005)
    send_paced(call.caller, call.caller_port, tone(10, ssrc=0x55), interval=0.02)
    time.sleep(0.2)
    assert at_caller.stop() == []
    assert at_attacker.stop() == []
    assert counter(strict, "drop_unexpected_source") == 10
    call.close()


def test_strict_latching_never_moves_to_another_source(strict):
    call = Call(strict)
    at_attacker = Collector(call.attacker)
    send_paced(call.attacker, call.caller_port, tone(20, ssrc=0x66), interval=0.01)
    send_paced(call.agent, call.agent_port, tone(5, ssrc=0x77), interval=0.005)
    time.sleep(0.2)
    assert at_attacker.stop() == []
    call.close()


def test_the_callers_rtcp_is_accepted_only_from_its_rtcp_port(strict):
    call = Call(strict)
    report = bytes([0x80, 200, 0, 6]) + bytes(24)
    call.attacker.sendto(report, (HOST, call.media.caller_port + 1))
    assert wait_counter(strict, "drop_unexpected_source", 1) == 1
    assert counter(strict, "caller_rtcp_absorbed") == 0
    call.close()


def test_symmetric_latching_moves_after_enough_consistent_packets(symmetric):
    call = Call(symmetric)  # the caller's SDP address never sends: a NAT in between
    nat = call.attacker
    at_nat = Collector(nat)
    send_paced(nat, call.caller_port, tone(8, ssrc=0x42), interval=0.01)
    send_paced(call.agent, call.agent_port, tone(5, ssrc=0x77), interval=0.005)
    time.sleep(0.2)
    assert len(at_nat.stop()) == 5
    assert counter(symmetric, "drop_unexpected_source") == 4  # the packets before the latch
    assert counter(symmetric, "rtp_relatched") == 1
    call.close()


def test_symmetric_latching_does_not_move_on_fewer_packets(symmetric):
    call = Call(symmetric)
    at_attacker = Collector(call.attacker)
    send_paced(call.attacker, call.caller_port, tone(4, ssrc=0x42), interval=0.01)
    send_paced(call.agent, call.agent_port, tone(5, ssrc=0x77), interval=0.005)
    time.sleep(0.2)
    assert at_attacker.stop() == []
    call.close()


def test_symmetric_latching_does_not_move_on_a_spray_without_sequence(symmetric):
    call = Call(symmetric)
    at_attacker = Collector(call.attacker)
    rng = np.random.default_rng(7)
    spray = [
        tone(1, ssrc=int(rng.integers(1 << 32)), seq0=int(rng.integers(1 << 16)))[0]
        for _ in range(30)
    ]
    send_paced(call.attacker, call.caller_port, spray, interval=0.005)
    send_paced(call.agent, call.agent_port, tone(5, ssrc=0x77), interval=0.005)
    time.sleep(0.2)
    assert at_attacker.stop() == []
    call.close()


def test_symmetric_latching_does_not_move_away_from_a_source_that_is_sending(symmetric):
    call = Call(symmetric)
    at_attacker = Collector(call.attacker)
    caller = tone(40, ssrc=0x55)
    attack = tone(40, ssrc=0x66, seq0=9000)
    interleaved = [
        (
            call.caller if i % 2 == 0 else call.attacker,
            caller[i // 2] if i % 2 == 0 else attack[i // 2],
        )
        for i in range(80)
    ]
    start = time.monotonic()
    for i, (sock, pkt) in enumerate(interleaved):
        time.sleep(max(0.0, start + i * 0.005 - time.monotonic()))
        sock.sendto(pkt, call.caller_port)
    send_paced(call.agent, call.agent_port, tone(5, ssrc=0x77), interval=0.005)
    time.sleep(0.2)
    assert at_attacker.stop() == []
    call.close()


def test_ports_are_not_handed_out_in_sequence():
    base = free_udp_port_block(400)
    ports = PortAllocator(HOST, base, base + 399)
    pairs = [ports.allocate() for _ in range(30)]
    numbers = [p.port for p in pairs]
    for p in pairs:
        ports.release(p)
    assert all(n % 2 == 0 and base <= n < base + 399 for n in numbers)
    steps = {b - a for a, b in zip(numbers, numbers[1:], strict=False)}
    assert steps != {2} and len(steps) > 10  # no stride to guess the next one from
    assert len(set(numbers)) == 30


def test_each_pair_has_rtcp_on_the_next_port():
    base = free_udp_port_block(40)
    ports = PortAllocator(HOST, base, base + 39)
    pair = ports.allocate()
    assert pair.rtcp.getsockname()[1] == pair.port + 1 and pair.port % 2 == 0
    ports.release(pair)


def test_a_port_taken_by_another_program_is_skipped():
    base = free_udp_port_block(5)
    first = base + (base % 2)
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind((HOST, first))
    ports = PortAllocator(HOST, first, first + 3)  # two pairs, the first one taken
    pair = ports.allocate()
    assert pair.port == first + 2
    with pytest.raises(PortsExhausted):
        ports.allocate()
    ports.release(pair)
    taken.close()


def test_a_released_pair_is_not_reused_while_others_are_free():
    base = free_udp_port_block(40)
    ports = PortAllocator(HOST, base, base + 39)
    pair = ports.allocate()
    port = pair.port
    ports.release(pair)
    again = [ports.allocate() for _ in range(9)]
    assert port not in {p.port for p in again}
    for p in again:
        ports.release(p)


@pytest.mark.parametrize("value", ["first", "latch"])
def test_an_unknown_latching_mode_is_refused(value):
    with pytest.raises(UserError, match="latching"):
        load_config(env={"MASKER_MEDIA_LATCHING": value})


def test_symmetric_latching_is_a_config_option():
    cfg = load_config(env={"MASKER_MEDIA_LATCHING": "symmetric"})
    assert cfg.media.latching == "symmetric" and load_config(env={}).media.latching == "strict"


def test_the_sdp_rtcp_attribute_is_read_before_it_is_stripped():
    body = (
        "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
        "a=rtcp:40101 IN IP4 127.0.0.2\r\n"
    )
    out, negotiated = rewrite(body, HOST, 20000, Origin(HOST))
    assert negotiated.rtcp == ("127.0.0.2", 40101)
    assert "a=rtcp" not in out
    _, bare = rewrite(
        body.replace("a=rtcp:40101 IN IP4 127.0.0.2\r\n", "a=rtcp:40101\r\n"),
        HOST,
        20000,
        Origin(HOST),
    )
    assert bare.rtcp == ("", 40101)


def test_rtcp_is_accepted_from_the_sdp_rtcp_port_and_not_from_rtp_plus_one(strict):
    call = Call(strict)
    rtcp_at, plus_one = rtp_socket(), rtp_socket()
    strict.set_caller_sdp(
        call.media, replace(neg(call.caller), rtcp=("", rtcp_at.getsockname()[1]))
    )
    report = bytes([0x80, 200, 0, 6]) + bytes(24)
    plus_one.sendto(report, (HOST, call.media.caller_port + 1))
    rtcp_at.sendto(report, (HOST, call.media.caller_port + 1))
    deadline = time.monotonic() + 2
    while counter(strict, "caller_rtcp_absorbed") < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)
    assert counter(strict, "caller_rtcp_absorbed") == 1
    assert counter(strict, "drop_unexpected_source") == 1
    for s in (rtcp_at, plus_one):
        s.close()
    call.close()
