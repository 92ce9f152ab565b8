"""SRTP (SDES) through `masker serve`, each leg negotiated and keyed on its own: keyed
cards stay masked, 488 for offers the service cannot honour, no key in the logs.
The caller and the PBX are independent libsrtp peers (pylibsrtp)."""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterator

import numpy as np
import pytest
from pylibsrtp import Policy, Session

from dsp.testsignals import keys_signal
from masker.calls.ids import log_safe_hex
from masker.offline.receivers import multimon_digits, spandsp_digits
from masker.wire.rtp import parse_rtp
from tests.support.media import Collector, audio_packets, decode_stream, rtp_socket, send_paced
from tests.support.serve import Served
from tests.support.sip_client import HOST, SipEndpoint, ack_for, sdp_media, sdp_offer

CARD = "4111111111111111"
SUITE = "AES_CM_128_HMAC_SHA1_80"


@pytest.fixture(scope="module")
def srtp_caller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Caller leg SRTP required, agent leg plain."""
    env = {"MASKER_MEDIA_SRTP_CALLER": "require", "MASKER_MEDIA_SRTP_AGENT": "off"}
    service = Served(tmp_path_factory.mktemp("srtp_caller"), env_extra=env)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def srtp_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Caller leg plain, agent leg SRTP required."""
    env = {"MASKER_MEDIA_SRTP_CALLER": "off", "MASKER_MEDIA_SRTP_AGENT": "require"}
    service = Served(tmp_path_factory.mktemp("srtp_agent"), env_extra=env)
    yield service
    service.stop()


def crypto_lines(attrs: list[str]) -> dict[int, tuple[str, bytes]]:
    """tag -> (suite, key) of a body's a=crypto lines, read independently of the service."""
    out = {}
    for a in attrs:
        if a.startswith("crypto:"):
            tag, suite, inline = a[len("crypto:") :].split()
            out[int(tag)] = (suite, base64.b64decode(inline.split(":", 1)[1].split("|")[0]))
    return out


def sessions(send_key: bytes, recv_key: bytes) -> tuple[Session, Session]:
    tx = Session(Policy(send_key, Policy.SSRC_ANY_OUTBOUND))
    rx = Session(Policy(recv_key, Policy.SSRC_ANY_INBOUND))
    return tx, rx


class SrtpCall:
    """INVITE -> PBX 200 -> ACK with the given bodies; keeps what each side saw."""

    def __init__(self, served: Served, offer_of, answer_of=None) -> None:
        self.served = served
        self.sip = SipEndpoint("caller")
        self.caller_rtp, self.agent_rtp = rtp_socket(), rtp_socket()
        self.user = "agent" + log_safe_hex(4)
        self.uri = served.uri(self.user)
        self.call_id, self.tag = log_safe_hex(8), log_safe_hex(4)
        self.to_tag: str | None = None
        self.agent_call_id = ""
        req = self.sip.request(
            "INVITE",
            self.uri,
            call_id=self.call_id,
            from_tag=self.tag,
            body=offer_of(self.caller_rtp.getsockname()[1]),
        )
        self.sip.send_raw(req, served.addr)
        self.answer_of = answer_of

    def connect(self) -> None:
        inv = self.served.pbx.expect("INVITE", user=self.user)
        self.agent_call_id = inv.header("Call-ID")
        self.pbx_offer = inv.body
        _, self.masker_agent_port, _, self.pbx_attrs = sdp_media(inv.body)
        answer_of = self.answer_of or (lambda port, _offer: sdp_offer(port, "0 101"))
        body = answer_of(self.agent_rtp.getsockname()[1], inv.body)
        self.served.pbx.reply(inv, 200, to_tag="pbx1", body=body)
        ok = self.sip.expect(200)
        self.caller_answer = ok.body
        _, self.masker_caller_port, _, self.caller_attrs = sdp_media(ok.body)
        self.sip.send_raw(ack_for(self.sip, ok, self.uri, self.call_id, self.tag), self.served.addr)
        self.to_tag = ok.tag("To")
        self.served.pbx.expect("ACK", call_id=self.agent_call_id)

    def hangup(self) -> None:
        self.sip.send_raw(
            self.sip.request(
                "BYE", self.uri, call_id=self.call_id, from_tag=self.tag, to_tag=self.to_tag
            ),
            self.served.addr,
        )
        self.served.pbx.expect("BYE", call_id=self.agent_call_id)
        self.close()

    def close(self) -> None:
        self.sip.close()
        self.caller_rtp.close()
        self.agent_rtp.close()


def savp_offer(key: bytes, suite: str = SUITE):
    def offer(port: int) -> str:
        crypto = f"a=crypto:1 {suite} inline:{base64.b64encode(key).decode()}\r\n"
        return sdp_offer(port, "0 101", extra=crypto).replace("RTP/AVP", "RTP/SAVP")

    return offer


def keyed_pcm() -> np.ndarray:
    keyed = keys_signal(CARD, on_ms=80, off_ms=80, lead_ms=200).pcm16(None)
    pcm = np.concatenate([np.zeros(1600, np.int16), keyed, np.zeros(3200, np.int16)])
    assert spandsp_digits(pcm) == CARD  # the receivers hear the card in what is sent
    return pcm


def test_srtp_caller_keyed_card_is_masked_for_a_plain_agent(srtp_caller):
    caller_key = secrets.token_bytes(30)
    call = SrtpCall(srtp_caller, savp_offer(caller_key))
    call.connect()
    # the agent leg is plain; the caller got RTP/SAVP and the masker's own key, tag 1
    assert " RTP/AVP " in call.pbx_offer and not crypto_lines(call.pbx_attrs)
    assert " RTP/SAVP " in call.caller_answer
    (tag, (suite, masker_key)), *more = crypto_lines(call.caller_attrs).items()
    assert (tag, suite, more) == (1, SUITE, []) and masker_key != caller_key
    tx, rx = sessions(caller_key, masker_key)
    coll = Collector(call.agent_rtp, (HOST, call.masker_agent_port))
    packets = [tx.protect(p) for p in audio_packets(keyed_pcm())]
    send_paced(call.caller_rtp, (HOST, call.masker_caller_port), packets)
    time.sleep(0.4)
    pkts = coll.stop() and coll.rtp()
    # the agent's plain audio reaches the caller as SRTP under the masker's caller-leg key
    back = audio_packets(np.zeros(800, np.int16), ssrc=0xABCD)
    got = Collector(call.caller_rtp, (HOST, call.masker_caller_port))
    send_paced(call.agent_rtp, (HOST, call.masker_agent_port), back, interval=0.005)
    time.sleep(0.2)
    relayed = [d for _, d, _ in got.stop()]
    call.hangup()
    assert len(pkts) >= 0.8 * len(packets)
    out = decode_stream(pkts)
    assert spandsp_digits(out) == "" and multimon_digits(out) == ""
    assert [rx.unprotect(d) for d in relayed] == back


def test_plain_caller_keyed_card_is_masked_for_an_srtp_agent(srtp_agent):
    pbx_key = secrets.token_bytes(30)

    def answer(port: int, offer: str) -> str:
        crypto = f"a=crypto:2 {SUITE} inline:{base64.b64encode(pbx_key).decode()}\r\n"
        return sdp_offer(port, "0 101", extra=crypto).replace("RTP/AVP", "RTP/SAVP")

    call = SrtpCall(srtp_agent, lambda port: sdp_offer(port, "0 101"), answer)
    call.connect()
    assert " RTP/SAVP " in call.pbx_offer and " RTP/AVP " in call.caller_answer
    offered = crypto_lines(call.pbx_attrs)
    assert offered[2][0] == SUITE and not crypto_lines(call.caller_attrs)
    tx, rx = sessions(pbx_key, offered[2][1])
    coll = Collector(call.agent_rtp, (HOST, call.masker_agent_port))
    packets = audio_packets(keyed_pcm())
    send_paced(call.caller_rtp, (HOST, call.masker_caller_port), packets)
    time.sleep(0.4)
    wire = [d for _, d, _ in coll.stop() if not 200 <= d[1] <= 204]
    # the agent's SRTP reaches the plain caller decrypted
    back = audio_packets(np.zeros(800, np.int16), ssrc=0xABCD)
    got = Collector(call.caller_rtp, (HOST, call.masker_caller_port))
    send_paced(call.agent_rtp, (HOST, call.masker_agent_port), [tx.protect(p) for p in back], 0.005)
    time.sleep(0.2)
    relayed = [d for _, d, _ in got.stop()]
    call.hangup()
    assert len(wire) >= 0.8 * len(packets)
    out = decode_stream([parse_rtp(rx.unprotect(d)) for d in wire])  # authentic, decrypted
    assert spandsp_digits(out) == "" and multimon_digits(out) == ""
    assert relayed == back


def _refused(served: Served, offer_of) -> int:
    call = SrtpCall(served, offer_of)
    try:
        return call.sip.expect(488).code
    finally:
        call.close()


def test_plain_offer_when_the_caller_leg_requires_srtp_gets_488(srtp_caller):
    assert _refused(srtp_caller, lambda port: sdp_offer(port, "0 101")) == 488


def test_srtp_offer_of_an_unsupported_suite_only_gets_488(srtp_caller):
    assert _refused(srtp_caller, savp_offer(secrets.token_bytes(30), "F8_128_HMAC_SHA1_80")) == 488


def test_plain_pbx_answer_when_the_agent_leg_requires_srtp_gets_488(srtp_agent):
    call = SrtpCall(srtp_agent, lambda port: sdp_offer(port, "0 101"))
    inv = srtp_agent.pbx.expect("INVITE", user=call.user)
    srtp_agent.pbx.reply(inv, 200, to_tag="pbx1", body=sdp_offer(call.agent_rtp.getsockname()[1]))
    try:
        assert call.sip.expect(488).code == 488
    finally:
        call.close()


def test_no_key_material_reaches_the_service_logs(srtp_caller):
    caller_key = secrets.token_bytes(30)
    call = SrtpCall(srtp_caller, savp_offer(caller_key))
    call.connect()
    masker_key = crypto_lines(call.caller_attrs)[1][1]
    tx, _ = sessions(caller_key, masker_key)
    send_paced(
        call.caller_rtp,
        (HOST, call.masker_caller_port),
        [tx.protect(p) for p in audio_packets(np.zeros(1600, np.int16))],
    )
    call.hangup()
    srtp_caller.wait_log("call.ended", trunk_call_id=call.call_id)
    log = "".join(srtp_caller.raw)
    for key in (caller_key, masker_key):
        b64 = base64.b64encode(key).decode()
        assert b64 not in log and b64[:16] not in log and key.hex() not in log
