"""Call flows through `masker serve`: a scripted trunk UAC and PBX UAS around the service."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest

from masker.calls.ids import log_safe_hex
from tests.support.media import Collector, audio_packets, rtp_socket, send_paced
from tests.support.serve import Served
from tests.support.sip_client import HOST, SipEndpoint, ack_for, sdp_media, sdp_offer

SERVED_ENV = {"MASKER_PBX_USERNAME": "masker", "MASKER_PBX_PASSWORD": "pw-123"}


@pytest.fixture
def caller():
    ep = SipEndpoint("caller")
    yield ep
    ep.close()


class Call:
    """Trunk-side dialog state for one scripted call."""

    def __init__(self, served: Served, caller: SipEndpoint, user: str | None = None):
        self.served, self.caller = served, caller
        self.user = user or "agent" + log_safe_hex(4)
        self.uri = served.uri(self.user)
        self.agent_call_id: str | None = None
        self.call_id = log_safe_hex(8) + "@test"
        self.tag = log_safe_hex(4)
        self.to_tag: str | None = None

    def invite(self, body: str | None = None, extra: str = "") -> None:
        if body is None:
            body = sdp_offer(40000)
        self.caller.send_raw(
            self.caller.request(
                "INVITE", self.uri, call_id=self.call_id, from_tag=self.tag, body=body, extra=extra
            ),
            self.served.addr,
        )

    def pbx_invite(self):
        """The agent leg's INVITE as the PBX receives it."""
        inv = self.served.pbx.expect("INVITE", user=self.user)
        self.agent_call_id = inv.header("Call-ID")
        return inv

    def pbx_expect(self, want, timeout: float = 3.0):
        return self.served.pbx.expect(want, timeout, call_id=self.agent_call_id)

    def ack(self, resp) -> None:
        self.to_tag = resp.tag("To")
        self.caller.send_raw(
            ack_for(self.caller, resp, self.uri, self.call_id, self.tag), self.served.addr
        )

    def hang_up(self) -> str:
        """The caller's BYE through the masker, the PBX answering 200; the method of the
        200 the caller then gets."""
        self.in_dialog("BYE")
        self.served.pbx.reply(self.pbx_expect("BYE"), 200)
        return self.caller.expect(200).method

    def in_dialog(self, method: str, body: str = "", ctype: str = "application/sdp") -> None:
        self.caller.send_raw(
            self.caller.request(
                method,
                self.uri,
                call_id=self.call_id,
                from_tag=self.tag,
                to_tag=self.to_tag,
                body=body,
                ctype=ctype,
            ),
            self.served.addr,
        )


def connect(served: Served, caller: SipEndpoint, extra: str = ""):
    """INVITE -> PBX 180/200 -> ACK; returns (call, pbx-side INVITE)."""
    call = Call(served, caller)
    call.invite(extra=extra)
    inv = call.pbx_invite()
    served.pbx.reply(inv, 180, to_tag="pbx1")
    assert caller.expect(180).code == 180
    served.pbx.reply(inv, 200, body=sdp_offer(41000, "0 101"), to_tag="pbx1")
    ok = caller.expect(200)
    call.ack(ok)
    call.pbx_expect("ACK")
    return call, inv


def test_invite_reaches_pbx_with_its_own_call_id_and_the_dialled_user(served, caller):
    call = Call(served, caller, user="agent7x")
    call.invite()
    inv = call.pbx_invite()
    assert inv.header("Call-ID") != call.call_id
    assert inv.uri.startswith("sip:agent7x@")


def test_offer_to_pbx_is_anchored_on_masker_ports_with_maskable_codecs_only(served, caller):
    call = Call(served, caller)
    call.invite(sdp_offer(40000, "18 0 8 96 101"))
    inv = call.pbx_invite()
    addr, port, fmts, _ = sdp_media(inv.body)
    assert addr == HOST
    assert served.media_min <= port <= served.media_max
    assert fmts == ["0", "8", "101"]


def test_answer_to_caller_is_anchored_on_another_masker_port(served, caller):
    call = Call(served, caller)
    call.invite()
    inv = call.pbx_invite()
    served.pbx.reply(inv, 200, body=sdp_offer(41000, "0 101"), to_tag="pbx1")
    ok = caller.expect(200)
    addr, port, fmts, _ = sdp_media(ok.body)
    assert addr == HOST
    assert served.media_min <= port <= served.media_max
    assert port != sdp_media(inv.body)[1]
    assert fmts == ["0", "101"]


def test_caller_bye_is_relayed_to_the_pbx(served, caller):
    call, _ = connect(served, caller)
    assert call.hang_up() == "BYE"


def test_pbx_bye_is_relayed_to_the_caller(served, caller):
    call, inv = connect(served, caller)
    pbx = served.pbx
    contact = inv.header("Contact").split("<", 1)[1].split(">", 1)[0]
    pbx.send_raw(
        pbx.request(
            "BYE",
            contact,
            call_id=inv.header("Call-ID"),
            from_tag="pbx1",
            to_tag=inv.tag("From"),
            cseq=1,
        ),
        served.addr,
    )
    bye = caller.expect("BYE")
    caller.reply(bye, 200)
    assert call.pbx_expect(200).method == "BYE"


def test_pbx_busy_is_relayed_to_the_caller(served, caller):
    call = Call(served, caller)
    call.invite()
    inv = call.pbx_invite()
    served.pbx.reply(inv, 486, to_tag="pbx1")
    assert caller.expect(486).code == 486


def test_cancel_before_answer_reaches_the_pbx(served, caller):
    call = Call(served, caller)
    via = caller.via()
    caller.send_raw(
        caller.request(
            "INVITE",
            call.uri,
            call_id=call.call_id,
            from_tag=call.tag,
            body=sdp_offer(40000),
            via=via,
            cseq=1,
        ),
        served.addr,
    )
    inv = call.pbx_invite()
    served.pbx.reply(inv, 180, to_tag="pbx1")
    caller.expect(180)
    caller.send_raw(
        caller.request(
            "CANCEL", call.uri, call_id=call.call_id, from_tag=call.tag, via=via, cseq=1
        ),
        served.addr,
    )
    cancel = call.pbx_expect("CANCEL")
    served.pbx.reply(cancel, 200)
    served.pbx.reply(inv, 487, to_tag="pbx1")
    assert caller.expect(487).code == 487


def test_offer_without_maskable_codec_gets_488(served, caller):
    call = Call(served, caller)
    call.invite(sdp_offer(40000, "18 96"))
    assert caller.expect(488).code == 488
    with pytest.raises(TimeoutError):
        call.pbx_invite()


def test_malformed_sdp_gets_400(served, caller):
    call = Call(served, caller)
    call.invite("v=0\r\nthis is not sdp\r\n")
    assert caller.expect(400).code == 400


def test_options_outside_a_dialog_is_answered_with_allow(served, caller):
    caller.send_raw(
        caller.request("OPTIONS", served.uri("masker"), call_id="opt@test", from_tag="o1"),
        served.addr,
    )
    resp = caller.expect(200)
    assert "INVITE" in resp.header("Allow") and "UPDATE" not in resp.header("Allow")


def test_update_in_dialog_gets_501_with_allow_and_the_call_survives(served, caller):
    call, _ = connect(served, caller)
    call.in_dialog("UPDATE", body=sdp_offer(40000))
    resp = caller.expect(501)
    assert "INFO" in resp.header("Allow")
    assert "timer" not in resp.header("Supported")
    assert call.hang_up() == "BYE"


def test_unknown_method_outside_dialog_gets_501(served, caller):
    caller.send_raw(
        caller.request("FOO", served.uri("x"), call_id="foo@test", from_tag="f"), served.addr
    )
    resp = caller.expect(501)
    assert resp.header("Allow")


def test_dtmf_info_is_answered_and_not_forwarded(served, caller):
    call, _ = connect(served, caller)
    call.in_dialog("INFO", body="Signal=5\r\nDuration=160\r\n", ctype="application/dtmf-relay")
    assert caller.expect(200).method == "INFO"
    with pytest.raises(TimeoutError):
        call.pbx_expect("INFO", timeout=0.7)


def test_reinvite_hold_is_relayed_with_masker_address(served, caller):
    call, _ = connect(served, caller)
    call.in_dialog("INVITE", body=sdp_offer(40000, "0 101", extra="a=sendonly\r\n", version=2))
    reinv = call.pbx_expect("INVITE")
    addr, port, _, attrs = sdp_media(reinv.body)
    assert addr == HOST and "sendonly" in attrs
    served.pbx.reply(reinv, 200, body=sdp_offer(41000, "0 101", extra="a=recvonly\r\n", version=2))
    ok = caller.expect(200)
    assert "recvonly" in sdp_media(ok.body)[3]


def test_pass_through_headers_reach_the_pbx(served, caller):
    call = Call(served, caller)
    call.invite(extra="P-Asserted-Identity: <sip:+441234@example.com>\r\nUser-Agent: trunk-x")
    inv = call.pbx_invite()
    assert "+441234" in inv.header("P-Asserted-Identity")
    assert inv.header("User-Agent") == "trunk-x"


def test_service_logs_call_events_with_both_call_ids(served, caller):
    call, inv = connect(served, caller)
    line = served.wait_log("call.connected", trunk_call_id=call.call_id)
    invite = served.wait_log("call.invite", trunk_call_id=call.call_id)
    assert invite["agent_call_id"] == inv.header("Call-ID")
    assert line["call"] == invite["call"]


def test_invite_without_offer_gets_the_pbx_offer_and_the_ack_answer_reaches_the_pbx(served, caller):
    call = Call(served, caller)
    call.invite(body="")
    inv = call.pbx_invite()
    assert inv.body == ""
    served.pbx.reply(inv, 200, body=sdp_offer(41000, "8 0 101"), to_tag="pbx1")
    ok = caller.expect(200)
    addr, port, fmts, _ = sdp_media(ok.body)
    assert (
        addr == HOST and served.media_min <= port <= served.media_max and fmts == ["8", "0", "101"]
    )
    caller.send_raw(
        ack_for(caller, ok, call.uri, call.call_id, call.tag, body=sdp_offer(40000, "8 101")),
        served.addr,
    )
    ack = call.pbx_expect("ACK")
    a_addr, a_port, a_fmts, _ = sdp_media(ack.body)
    assert a_addr == HOST and a_port != port and a_fmts == ["8", "101"]


def test_early_media_is_relayed_and_masked_audio_flows_before_answer(served, caller):
    rtp_c, rtp_a = rtp_socket(), rtp_socket()
    call = Call(served, caller)
    call.invite(sdp_offer(rtp_c.getsockname()[1], "0 101"))
    inv = call.pbx_invite()
    served.pbx.reply(inv, 183, body=sdp_offer(rtp_a.getsockname()[1], "0 101"), to_tag="pbx1")
    progress = caller.expect(183)
    port = sdp_media(progress.body)[1]
    coll = Collector(rtp_a, (HOST, sdp_media(inv.body)[1]))
    send_paced(rtp_c, (HOST, port), audio_packets(np.zeros(160 * 10, np.int16)))
    time.sleep(0.2)
    assert len(coll.stop()) >= 8
    rtp_c.close()
    rtp_a.close()


def test_digest_challenge_from_the_pbx_is_answered(served, caller):
    call = Call(served, caller)
    call.invite()
    inv = call.pbx_invite()
    served.pbx.reply(
        inv,
        401,
        to_tag="pbx0",
        extra='WWW-Authenticate: Digest realm="pbx", nonce="n0nce", algorithm=MD5',
    )
    call.pbx_expect("ACK")
    again = call.pbx_expect("INVITE")
    auth = again.header("Authorization")
    fields = dict(part.strip().split("=", 1) for part in auth[len("Digest ") :].split(","))
    fields = {k: v.strip('"') for k, v in fields.items()}
    assert fields["username"] == "masker"
    ha1 = hashlib.md5(b"masker:pbx:pw-123").hexdigest()
    ha2 = hashlib.md5(f"INVITE:{fields['uri']}".encode()).hexdigest()
    assert fields["response"] == hashlib.md5(f"{ha1}:n0nce:{ha2}".encode()).hexdigest()


def test_reinvite_with_codec_change_reaches_the_pbx(served, caller):
    call, _ = connect(served, caller)
    call.in_dialog("INVITE", body=sdp_offer(40000, "8 101", version=2))
    reinv = call.pbx_expect("INVITE")
    assert sdp_media(reinv.body)[2] == ["8", "101"]
    served.pbx.reply(reinv, 200, body=sdp_offer(41000, "8 101", version=2))
    assert sdp_media(caller.expect(200).body)[2] == ["8", "101"]


def test_reinvite_with_unmaskable_codec_gets_488_and_the_call_survives(served, caller):
    call, _ = connect(served, caller)
    call.in_dialog("INVITE", body=sdp_offer(40000, "18", version=2))
    assert caller.expect(488).code == 488
    assert call.hang_up() == "BYE"


def test_dtmf_info_digit_reaches_the_tokeniser(served, caller):
    call, _ = connect(served, caller)
    rid = served.wait_log("call.invite", trunk_call_id=call.call_id)["call"]
    call.in_dialog("INFO", body="4", ctype="application/dtmf")
    assert caller.expect(200).method == "INFO"
    served.wait_log("capture started", call=rid)


def test_invite_requiring_session_timers_gets_420_with_unsupported(served, caller):
    call = Call(served, caller)
    call.invite(extra="Require: timer\r\nSession-Expires: 1800")
    resp = caller.expect(420)
    assert resp.header("Unsupported") == "timer"


def test_reinvite_from_the_pbx_is_relayed_to_the_caller_anchored(served, caller):
    call, inv = connect(served, caller)
    pbx = served.pbx
    contact = inv.header("Contact").split("<", 1)[1].split(">", 1)[0]
    pbx.send_raw(
        pbx.request(
            "INVITE",
            contact,
            call_id=inv.header("Call-ID"),
            from_tag="pbx1",
            to_tag=inv.tag("From"),
            cseq=2,
            body=sdp_offer(41000, "0 101", extra="a=sendonly\r\n", version=2),
        ),
        served.addr,
    )
    reinv = caller.expect("INVITE")
    addr, port, _, attrs = sdp_media(reinv.body)
    assert addr == HOST and served.media_min <= port <= served.media_max and "sendonly" in attrs
    caller.reply(reinv, 200, body=sdp_offer(40000, "0 101", extra="a=recvonly\r\n", version=2))
    ok = call.pbx_expect(200)
    assert "recvonly" in sdp_media(ok.body)[3]
