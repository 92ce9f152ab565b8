"""SRTP/SRTCP in the media thread, over real loopback sockets, each leg keyed on its
own; the peers are independent libsrtp sessions (pylibsrtp)."""

from __future__ import annotations

import secrets
import time

import numpy as np
import pytest
from pylibsrtp import Policy, Session

from masker.media.engine import MediaEngine
from masker.wire.rtp import parse_rtp
from masker.wire.sdes import SrtpKeys
from masker.wire.sdp import Negotiated
from tests.integration.test_media_engine import PassThrough, wait_for
from tests.support.media import Collector, audio_packets, rtp_socket, running_engine, send_paced

HOST = "127.0.0.1"
SUITE = "AES_CM_128_HMAC_SHA1_80"
PROFILE = {
    "AES_CM_128_HMAC_SHA1_80": Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    "AEAD_AES_256_GCM": Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
}
KEYLEN = {"AEAD_AES_256_GCM": 44}


class Peer:
    """One far end (caller or PBX): its socket and, with SRTP, its own key for what it
    sends and the masker's leg key for what it receives."""

    def __init__(self, srtp: bool, suite: str = SUITE) -> None:
        self.sock = rtp_socket()
        self.rtcp = rtp_socket()
        self.keys: SrtpKeys | None = None
        if srtp:
            n = KEYLEN.get(suite, 30)
            mine, leg = secrets.token_bytes(n), secrets.token_bytes(n)
            self.keys = SrtpKeys(suite, bytearray(leg), bytearray(mine))
            prof = PROFILE[suite]
            self.tx = Session(Policy(mine, Policy.SSRC_ANY_OUTBOUND, srtp_profile=prof))
            self.rx = Session(Policy(leg, Policy.SSRC_ANY_INBOUND, srtp_profile=prof))

    def neg(self) -> Negotiated:
        # the media plane owns (and wipes) what it gets: hand it copies
        keys = self.keys
        copy = (
            None if keys is None else SrtpKeys(keys.suite, bytearray(keys.tx), bytearray(keys.rx))
        )
        return Negotiated(
            HOST,
            self.sock.getsockname()[1],
            0,
            "PCMU",
            101,
            20,
            "sendrecv",
            ((0, "PCMU"),),
            rtcp=(HOST, self.rtcp.getsockname()[1]),
            srtp=copy,
        )

    def wire(self, packets: list[bytes]) -> list[bytes]:
        return [self.tx.protect(p) for p in packets] if self.keys else packets

    def close(self) -> None:
        self.sock.close()
        self.rtcp.close()


@pytest.fixture
def engine():
    with running_engine(PassThrough, 40, batch_size=4, max_calls=8) as eng:
        yield eng


class Call:
    def __init__(self, engine: MediaEngine, caller: Peer, agent: Peer) -> None:
        self.engine, self.caller, self.agent = engine, caller, agent
        self.media = engine.open_call(secrets.token_hex(4))
        self.caller_neg, self.agent_neg = caller.neg(), agent.neg()
        engine.set_caller_sdp(self.media, self.caller_neg)
        engine.set_agent_sdp(self.media, self.agent_neg)
        self.to_masker = (HOST, self.media.caller_port)
        self.from_agent = (HOST, self.media.agent_port)

    def counter(self, name: str) -> int:
        return self.media.counters[name]

    def close(self) -> None:
        self.engine.close_call(self.media)
        self.caller.close()
        self.agent.close()


def pcm(n: int = 160 * 20) -> np.ndarray:
    return ((np.arange(n) % 200 - 100) * 50).astype(np.int16)


def caller_to_agent(call: Call, packets: list[bytes]) -> list[bytes]:
    coll = Collector(call.agent.sock, call.from_agent)
    send_paced(call.caller.sock, call.to_masker, call.caller.wire(packets))
    time.sleep(0.25)
    return [d for _, d, _ in coll.stop()]


def test_srtp_caller_is_decrypted_and_reaches_a_plain_agent(engine):
    call = Call(engine, Peer(True), Peer(False))
    sent = audio_packets(pcm())
    got = caller_to_agent(call, sent)
    call.close()
    assert len(got) >= 18
    # plain RTP the agent can read: the caller's audio, in our own stream
    payloads = b"".join(parse_rtp(d).payload for d in got)
    assert b"".join(parse_rtp(p).payload for p in sent[2:10]) in payloads
    assert call.counter("drop_srtp_auth") == call.counter("drop_srtp_replay") == 0


def test_plain_caller_reaches_an_srtp_agent_encrypted_with_the_agent_leg_key(engine):
    agent = Peer(True)
    call = Call(engine, Peer(False), agent)
    sent = audio_packets(pcm())
    got = caller_to_agent(call, sent)
    call.close()
    assert len(got) >= 18
    plain = [agent.rx.unprotect(d) for d in got]  # raises unless authentic
    assert b"".join(parse_rtp(p).payload for p in sent[2:10]) in b"".join(
        parse_rtp(p).payload for p in plain
    )
    assert b"".join(parse_rtp(p).payload for p in sent[2:10]) not in b"".join(got)


def test_agent_srtp_reaches_a_plain_caller_decrypted_with_the_header_unchanged(engine):
    agent = Peer(True)
    call = Call(engine, Peer(False), agent)
    sent = audio_packets(pcm(1600), ssrc=0x77)
    coll = Collector(call.caller.sock, call.to_masker)
    for p in agent.wire(sent):
        agent.sock.sendto(p, call.from_agent)
    assert wait_for(lambda: len(coll.items) == len(sent))
    call.close()
    assert [d for _, d, _ in coll.stop()] == sent


def test_both_legs_srtp_with_different_keys_relay_is_re_encrypted(engine):
    caller, agent = Peer(True, "AEAD_AES_256_GCM"), Peer(True, "AES_CM_128_HMAC_SHA1_32")
    call = Call(engine, caller, agent)
    got_agent = caller_to_agent(call, audio_packets(pcm()))
    sent = audio_packets(pcm(1600), ssrc=0x99)
    coll = Collector(caller.sock, call.to_masker)
    wire = agent.wire(sent)
    for p in wire:
        agent.sock.sendto(p, call.from_agent)
    assert wait_for(lambda: len(coll.items) == len(sent))
    call.close()
    got_caller = [d for _, d, _ in coll.stop()]
    assert [caller.rx.unprotect(d) for d in got_caller] == sent  # the caller leg's key
    assert not set(got_caller) & set(wire)  # never the agent leg's ciphertext
    assert len(got_agent) >= 18 and all(agent.rx.unprotect(d) for d in got_agent)


def test_tampered_srtp_packet_is_dropped_and_counted(engine):
    call = Call(engine, Peer(True), Peer(False))
    wire = call.caller.wire(audio_packets(pcm(1600)))
    bad = bytearray(wire[3])
    bad[20] ^= 0x01  # one payload bit: the authentication tag no longer matches
    wire[3] = bytes(bad)
    for p in wire:
        call.caller.sock.sendto(p, call.to_masker)
    assert wait_for(lambda: call.counter("drop_srtp_auth") == 1)
    assert wait_for(lambda: call.counter("caller_packets") == len(wire) - 1)
    call.close()


def test_a_caller_keyed_with_the_wrong_sdes_key_is_dropped_counted_and_never_relayed(engine):
    call = Call(engine, Peer(True), Peer(False))
    prof = PROFILE[SUITE]
    wrong = Session(Policy(secrets.token_bytes(30), Policy.SSRC_ANY_OUTBOUND, srtp_profile=prof))
    wire = [wrong.protect(p) for p in audio_packets(pcm(1600))]
    coll = Collector(call.agent.sock, call.from_agent)
    send_paced(call.caller.sock, call.to_masker, wire)  # as they are: no right key on top
    assert wait_for(lambda: call.counter("drop_srtp_auth") == len(wire))
    got = [d for _, d, _ in coll.stop()]
    assert call.counter("caller_packets") == 0
    assert not set(got) & set(wire)  # nothing of it reaches the agent
    call.close()


def test_replayed_srtp_packet_is_dropped_and_counted(engine):
    call = Call(engine, Peer(True), Peer(False))
    wire = call.caller.wire(audio_packets(pcm(1600)))
    for p in [*wire, wire[4], wire[6]]:
        call.caller.sock.sendto(p, call.to_masker)
        time.sleep(0.002)
    assert wait_for(lambda: call.counter("drop_srtp_replay") == 2)
    assert call.counter("caller_packets") == len(wire)
    call.close()


def test_our_sender_report_to_an_srtp_agent_is_srtcp_that_authenticates():
    with running_engine(PassThrough, 8, batch_size=4, sr_interval_s=0.2) as eng:
        agent = Peer(True)
        call = Call(eng, Peer(False), agent)
        coll = Collector(agent.rtcp, (HOST, call.media.agent_port + 1))
        caller_to_agent(call, audio_packets(pcm()))
        assert wait_for(lambda: len(coll.items) >= 1, timeout=3)
        report = agent.rx.unprotect_rtcp(coll.stop()[0][1])
        call.close()
    assert report[1] == 200  # a sender report (RFC 3550 6.4.1), decrypted and authentic


def test_srtcp_from_an_srtp_caller_is_authenticated_before_it_is_read(engine):
    caller = Peer(True)
    call = Call(engine, caller, Peer(False))
    sr = bytes([0x80, 200, 0, 6]) + (0x1234).to_bytes(4, "big") + bytes(20)
    protected = caller.tx.protect_rtcp(sr)
    bad = bytearray(protected)
    bad[10] ^= 0x01
    caller.rtcp.sendto(bytes(bad), (HOST, call.media.caller_port + 1))
    caller.rtcp.sendto(protected, (HOST, call.media.caller_port + 1))
    assert wait_for(lambda: call.counter("caller_rtcp_absorbed") == 1)
    assert call.counter("drop_srtp_auth") == 1
    call.close()


def test_keys_are_overwritten_when_the_call_ends(engine):
    call = Call(engine, Peer(True), Peer(True))
    caller_to_agent(call, audio_packets(pcm(800)))
    held = [call.caller_neg.srtp, call.agent_neg.srtp]
    call.close()
    assert wait_for(lambda: call.media.closed)
    assert wait_for(lambda: all(k is not None and not any(k.tx) and not any(k.rx) for k in held))
    assert call.media.caller.srtp is None and call.media.agent.srtp is None
