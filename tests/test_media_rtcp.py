"""RTCP towards the agent: our masked stream's sender reports, as RFC 3550 compound packets."""

from __future__ import annotations

import socket
import struct
import time

import numpy as np
import pytest
from media_support import HOST, audio_packets, rtp_socket, send_paced

from dsp.masker import BatchMasker
from masker.media.engine import MediaEngine
from masker.media.ports import PortAllocator
from masker.phones.client import free_udp_port_block
from masker.rtp import parse_rtp
from masker.sdp import Negotiated


def neg(port: int) -> Negotiated:
    return Negotiated(HOST, port, 0, "PCMU", 101, 20, "sendrecv", ((0, "PCMU"),))


@pytest.fixture
def engine():
    base = free_udp_port_block(8)
    eng = MediaEngine(PortAllocator(HOST, base, base + 7), lambda n: BatchMasker(n),
                      batch_size=2, max_calls=2, sr_interval_s=0.2)
    eng.start()
    yield eng
    eng.stop()


def rtcp_packets(data: bytes) -> list[tuple[int, bytes]]:
    """(packet type, packet) of each packet in a compound RTCP datagram."""
    out = []
    while data:
        words = struct.unpack_from("!H", data, 2)[0]
        out.append((data[1], data[: 4 * (words + 1)]))
        data = data[4 * (words + 1):]
    return out


def test_agent_gets_sender_reports_with_a_cname_for_our_stream(engine):
    caller = rtp_socket()
    base = free_udp_port_block(2)  # the agent's RTP port and RTCP port (RTP + 1)
    agent_rtp, agent_rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), \
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    agent_rtp.bind((HOST, base))
    agent_rtcp.bind((HOST, base + 1))
    call = engine.open_call("c")
    engine.set_caller_sdp(call, neg(caller.getsockname()[1]))
    engine.set_agent_sdp(call, neg(base))
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
