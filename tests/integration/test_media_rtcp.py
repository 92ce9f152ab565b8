"""RTCP on both legs: sender reports for our masked stream to the agent, receiver
reports on the caller's stream to the caller, as RFC 3550 compound packets; the
agent's own RTCP reaches the caller."""

from __future__ import annotations

import socket
import struct
import time

import numpy as np
import pytest

from dsp.tone_masker import BatchMasker
from masker.phones.client import free_udp_port_block
from masker.wire.rtp import build_rtcp_sr, parse_rtp
from tests.support.media import (
    HOST,
    audio_packets,
    pcmu_sdp,
    rtp_socket,
    running_engine,
    send_paced,
)


@pytest.fixture
def engine():
    with running_engine(BatchMasker, 8, batch_size=2, max_calls=2, sr_interval_s=0.2) as eng:
        yield eng


def rtcp_packets(data: bytes) -> list[tuple[int, bytes]]:
    """(packet type, packet) of each packet in a compound RTCP datagram."""
    out = []
    while data:
        words = struct.unpack_from("!H", data, 2)[0]
        out.append((data[1], data[: 4 * (words + 1)]))
        data = data[4 * (words + 1) :]
    return out


def test_agent_gets_sender_reports_with_a_cname_for_our_stream(engine):
    caller = rtp_socket()
    base = free_udp_port_block(2)  # the agent's RTP port and RTCP port (RTP + 1)
    agent_rtp, agent_rtcp = (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
    )
    agent_rtp.bind((HOST, base))
    agent_rtcp.bind((HOST, base + 1))
    call = engine.open_call("c")
    engine.set_caller_sdp(call, pcmu_sdp(caller.getsockname()[1]))
    engine.set_agent_sdp(call, pcmu_sdp(base))
    pcm = (np.sin(np.arange(160 * 30) * 0.2) * 3000).astype(np.int16)
    send_paced(caller, (HOST, call.caller_port), audio_packets(pcm, ssrc=0x99))
    agent_rtp.settimeout(1)
    ssrc = parse_rtp(agent_rtp.recv(2048)).ssrc
    agent_rtcp.settimeout(2)
    deadline = time.monotonic() + 2
    compound = []
    while time.monotonic() < deadline:
        compound = rtcp_packets(agent_rtcp.recv(2048))
        if compound and compound[0][0] == 200:
            break
    for s in (caller, agent_rtp, agent_rtcp):
        s.close()
    assert [pt for pt, _ in compound] == [200, 202]  # SR first, then SDES
    sr, sdes = compound[0][1], compound[1][1]
    assert struct.unpack_from("!I", sr, 4)[0] == ssrc
    assert struct.unpack_from("!I", sr, 20)[0] > 0  # packets sent
    assert struct.unpack_from("!I", sdes, 4)[0] == ssrc
    assert sdes[8] == 1 and sdes[9] > 0  # a CNAME item


def rtp_rtcp_pair() -> tuple[socket.socket, socket.socket]:
    """Sockets on an RTP port and the RTCP port above it (RTP + 1)."""
    base = free_udp_port_block(2)
    pair = (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
    )
    pair[0].bind((HOST, base))
    pair[1].bind((HOST, base + 1))
    return pair


def report_where(
    sock: socket.socket, pt: int, want=lambda first: True, timeout: float = 2.0
) -> list[tuple[int, bytes]]:
    """The first compound RTCP packet that starts with type `pt` and whose first
    packet `want` accepts."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        compound = rtcp_packets(sock.recv(2048))
        if compound and compound[0][0] == pt and want(compound[0][1]):
            return compound
    return []


def caller_with_rtcp(engine):
    """A call whose caller listens on RTP and RTCP (RTP + 1); the agent on RTP only."""
    caller_rtp, caller_rtcp = rtp_rtcp_pair()
    agent = rtp_socket()
    call = engine.open_call("c")
    engine.set_caller_sdp(call, pcmu_sdp(caller_rtp.getsockname()[1]))
    engine.set_agent_sdp(call, pcmu_sdp(agent.getsockname()[1]))
    return call, caller_rtp, caller_rtcp, agent


def highest_seq(rr: bytes) -> int:
    return struct.unpack_from("!I", rr, 16)[0]


def test_caller_gets_receiver_reports_on_its_own_stream(engine):
    call, caller_rtp, caller_rtcp, agent = caller_with_rtcp(engine)
    sr = build_rtcp_sr(0x99, 1_700_000_000.25, 0, 1, 160)
    caller_rtcp.sendto(sr, (HOST, call.caller_port + 1))
    pcm = np.zeros(160 * 20, np.int16)
    send_paced(caller_rtp, (HOST, call.caller_port), audio_packets(pcm, ssrc=0x99, seq0=500))
    compound = report_where(caller_rtcp, 201, lambda rr: highest_seq(rr) == 519)
    for s in (caller_rtp, caller_rtcp, agent):
        s.close()
    assert [pt for pt, _ in compound] == [201, 202]  # RR, then SDES
    rr = compound[0][1]
    assert rr[0] & 0x1F == 1  # one report block
    source, fraction, _lost, extended, _jitter, lsr = struct.unpack_from("!IB3sIII", rr, 8)
    assert source == 0x99 and fraction == 0
    assert extended == 519  # 20 packets from 500, none lost
    assert lsr == struct.unpack_from("!I", sr, 10)[0]  # the caller's SR is echoed


def call_with_rtcp_on_both_legs(engine):
    """A call whose caller and agent each listen on RTP and RTCP (RTP + 1)."""
    caller_rtp, caller_rtcp = rtp_rtcp_pair()
    agent_rtp, agent_rtcp = rtp_rtcp_pair()
    call = engine.open_call("c")
    engine.set_caller_sdp(call, pcmu_sdp(caller_rtp.getsockname()[1]))
    engine.set_agent_sdp(call, pcmu_sdp(agent_rtp.getsockname()[1]))
    return call, (caller_rtp, caller_rtcp, agent_rtp, agent_rtcp)


def test_agent_rtcp_is_forwarded_to_the_caller_unchanged(engine):
    call, socks = call_with_rtcp_on_both_legs(engine)
    report = build_rtcp_sr(0x77, 1_700_000_000.0, 0, 5, 800)
    socks[3].sendto(report, (HOST, call.agent_port + 1))  # from the agent's RTCP port
    socks[1].settimeout(2)
    got = socks[1].recv(2048)
    for s in socks:
        s.close()
    assert got == report


def test_rtcp_from_another_port_than_the_sdp_says_is_not_relayed(engine):
    call, socks = call_with_rtcp_on_both_legs(engine)
    report = build_rtcp_sr(0x77, 1_700_000_000.0, 0, 5, 800)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as intruder:
        intruder.bind((HOST, 0))
        intruder.sendto(report, (HOST, call.agent_port + 1))
        socks[1].settimeout(0.5)
        try:
            got = socks[1].recv(2048)
        except TimeoutError:
            got = None
    for s in socks:
        s.close()
    assert got is None
    assert engine.snapshot().get("drop_unexpected_source", 0) == 1
