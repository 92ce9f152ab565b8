"""SDES (RFC 4568) a=crypto parsing and the per-leg SRTP offer/answer in the SDP rewrite."""

from __future__ import annotations

import base64

import pytest

from masker.wire.sdes import SdesLeg, SrtpKeys, format_crypto, parse_crypto
from masker.wire.sdp import Origin, SdpError, parse_sdp, rewrite

KEY30 = bytes(range(30))
KEY44 = bytes(range(44))
B30 = base64.b64encode(KEY30).decode()
B44 = base64.b64encode(KEY44).decode()


def body(proto: str = "RTP/AVP", crypto: tuple[str, ...] = ()) -> str:
    lines = [
        "v=0",
        "o=peer 1 1 IN IP4 192.0.2.10",
        "s=-",
        "c=IN IP4 192.0.2.10",
        "t=0 0",
        f"m=audio 4000 {proto} 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
    ]
    lines += [f"a=crypto:{c}" for c in crypto]
    return "\r\n".join(lines) + "\r\n"


def forward(text: str, src: SdesLeg, dst: SdesLeg, offer: bool = True):
    out, neg = rewrite(
        text, "198.51.100.1", 30000, Origin("198.51.100.1"), sdes_from=src, sdes_to=dst, offer=offer
    )
    m = parse_sdp(out).audio()
    assert m is not None
    return m, neg


def test_crypto_line_of_each_supported_suite_parses_with_its_key():
    for suite, key in (
        ("AES_CM_128_HMAC_SHA1_80", B30),
        ("AES_CM_128_HMAC_SHA1_32", B30),
        ("AEAD_AES_256_GCM", B44),
    ):
        line = parse_crypto(f"7 {suite} inline:{key}")
        assert line is not None and line.tag == 7 and line.suite == suite
        assert bytes(line.key) == base64.b64decode(key)


def test_crypto_line_with_lifetime_parses_and_unpadded_base64_is_accepted():
    assert parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{B30}|2^31") is not None
    assert parse_crypto(f"1 AEAD_AES_256_GCM inline:{B44.rstrip('=')}") is not None


@pytest.mark.parametrize(
    "value",
    [
        f"1 F8_128_HMAC_SHA1_80 inline:{B30}",  # unknown suite
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{B30}|2^20|1:4",  # MKI
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{B30};inline:{B30}",  # several keys
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{B30} UNENCRYPTED_SRTP",  # session parameter
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{B44}",  # wrong key length
        "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64",
        f"x AES_CM_128_HMAC_SHA1_80 inline:{B30}",
        "1 AES_CM_128_HMAC_SHA1_80",
    ],
)
def test_crypto_line_we_cannot_use_is_ignored(value):
    assert parse_crypto(value) is None


def test_key_material_is_never_in_a_repr():
    line = parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{B30}")
    keys = SrtpKeys("AES_CM_128_HMAC_SHA1_80", bytearray(KEY30), bytearray(KEY30))
    for obj in (line, keys, SdesLeg("offer")):
        assert B30 not in repr(obj) and str(KEY30[:4]) not in repr(obj)


def test_srtp_offer_is_answered_with_the_preferred_suite_its_tag_and_our_own_key():
    caller, agent = SdesLeg("offer"), SdesLeg("off")
    offer = body(
        "RTP/SAVP",
        (f"1 AES_CM_128_HMAC_SHA1_32 inline:{B30}", f"2 AES_CM_128_HMAC_SHA1_80 inline:{B30}"),
    )
    to_agent, neg = forward(offer, caller, agent)
    assert to_agent.proto == "RTP/AVP" and not to_agent.attr("crypto")  # the agent leg is plain
    assert neg.srtp is not None and neg.srtp.suite == "AES_CM_128_HMAC_SHA1_80"
    assert bytes(neg.srtp.rx) == KEY30 and bytes(neg.srtp.tx) != KEY30
    proto, attrs = caller.answer()
    assert proto == "RTP/SAVP"
    ours = parse_crypto(attrs[0][1] or "")
    assert ours is not None and ours.tag == 2 and ours.suite == "AES_CM_128_HMAC_SHA1_80"
    assert ours.key == neg.srtp.tx


def test_gcm_is_preferred_when_offered():
    caller = SdesLeg("require")
    offer = body(
        "RTP/SAVP",
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{B30}", f"2 AEAD_AES_256_GCM inline:{B44}"),
    )
    _, neg = forward(offer, caller, SdesLeg("off"))
    assert neg.srtp is not None and neg.srtp.suite == "AEAD_AES_256_GCM" and len(neg.srtp.tx) == 44


def test_require_refuses_a_plain_offer_with_488():
    with pytest.raises(SdpError) as exc:
        forward(body(), SdesLeg("require"), SdesLeg("off"))
    assert exc.value.status == 488


def test_srtp_offer_of_unsupported_suites_only_is_refused_with_488():
    offer = body("RTP/SAVP", (f"1 F8_128_HMAC_SHA1_80 inline:{B30}",))
    with pytest.raises(SdpError) as exc:
        forward(offer, SdesLeg("offer"), SdesLeg("off"))
    assert exc.value.status == 488


def test_off_refuses_rtp_savp_and_ignores_crypto_in_a_plain_offer():
    with pytest.raises(SdpError) as exc:
        forward(body("RTP/SAVP", (f"1 AES_CM_128_HMAC_SHA1_80 inline:{B30}",)), *_off())
    assert exc.value.status == 488
    m, neg = forward(body("RTP/AVP", (f"1 AES_CM_128_HMAC_SHA1_80 inline:{B30}",)), *_off())
    assert neg.srtp is None and m.proto == "RTP/AVP" and not m.attr("crypto")


def _off() -> tuple[SdesLeg, SdesLeg]:
    return SdesLeg("off"), SdesLeg("off")


def test_plain_offer_under_offer_mode_stays_plain():
    caller = SdesLeg("offer")
    _, neg = forward(body(), caller, SdesLeg("off"))
    assert neg.srtp is None and caller.answer() == ("RTP/AVP", [])


def test_offer_to_an_srtp_agent_leg_carries_every_suite_with_fresh_keys():
    m_offer, _ = forward(body(), SdesLeg("off"), SdesLeg("offer"))
    m_require, _ = forward(body(), SdesLeg("off"), SdesLeg("require"))
    assert m_offer.proto == "RTP/AVP" and m_require.proto == "RTP/SAVP"
    lines = [parse_crypto(v or "") for v in m_offer.attr("crypto")]
    assert [(c.tag, c.suite) for c in lines if c] == [
        (1, "AEAD_AES_256_GCM"),
        (2, "AES_CM_128_HMAC_SHA1_80"),
        (3, "AES_CM_128_HMAC_SHA1_32"),
    ]
    assert len({bytes(c.key) for c in lines if c}) == 3


def test_agent_answer_selects_our_offered_key_and_its_own():
    agent = SdesLeg("require")
    m, _ = forward(body(), SdesLeg("off"), agent)
    ours = {c.tag: c for c in (parse_crypto(v or "") for v in m.attr("crypto")) if c}
    answer = body("RTP/SAVP", (f"2 AES_CM_128_HMAC_SHA1_80 inline:{B30}",))
    _, neg = forward(answer, agent, SdesLeg("off"), offer=False)
    assert neg.srtp is not None and neg.srtp.suite == "AES_CM_128_HMAC_SHA1_80"
    assert neg.srtp.tx == ours[2].key and bytes(neg.srtp.rx) == KEY30


def test_plain_answer_to_a_required_srtp_offer_is_refused_with_488():
    agent = SdesLeg("require")
    forward(body(), SdesLeg("off"), agent)
    with pytest.raises(SdpError) as exc:
        forward(body(), agent, SdesLeg("off"), offer=False)
    assert exc.value.status == 488


def test_plain_answer_to_a_best_effort_offer_gives_plain_rtp():
    agent = SdesLeg("offer")
    forward(body(), SdesLeg("off"), agent)
    _, neg = forward(body(), agent, SdesLeg("off"), offer=False)
    assert neg.srtp is None


def test_wipe_overwrites_every_key():
    leg = SdesLeg("offer")
    _, attrs = leg.offer()
    held = list(leg._ours.values())
    keys = SrtpKeys("AES_CM_128_HMAC_SHA1_80", bytearray(KEY30), bytearray(KEY30))
    leg.wipe()
    keys.wipe()
    assert all(not any(k) for k in held) and not any(keys.tx) and not any(keys.rx)
    assert attrs and leg.answer() == ("RTP/AVP", [])


def test_format_crypto_round_trips():
    line = parse_crypto(format_crypto(5, "AEAD_AES_256_GCM", bytearray(KEY44)))
    assert line is not None and line.tag == 5 and bytes(line.key) == KEY44
