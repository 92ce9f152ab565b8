"""SDP offer/answer with G.722 and telephone-event/16000 (masker.wire.sdp): the offer
forwarded keeps the sender's codecs first and adds `[media] codecs` it lacks, the
answer sent back names only what its receiver offered (RFC 3264)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from masker.wire.sdes import SdesLeg
from masker.wire.sdp import (
    Negotiated,
    Origin,
    SdpError,
    codecs,
    negotiated,
    parse_sdp,
    rewrite,
    set_codecs,
)


def body(formats: str, *attrs: str) -> str:
    lines = [
        "v=0",
        "o=peer 1 1 IN IP4 192.0.2.10",
        "s=-",
        "c=IN IP4 192.0.2.10",
        "t=0 0",
        f"m=audio 40000 RTP/AVP {formats}",
        *(f"a={a}" for a in attrs),
    ]
    return "\r\n".join(lines) + "\r\n"


WIDE_OFFER = body(
    "9 101", "rtpmap:9 G722/8000", "rtpmap:101 telephone-event/16000", "fmtp:101 0-16"
)


@pytest.fixture
def legs() -> Iterator[tuple[SdesLeg, SdesLeg]]:
    saved = codecs()
    yield SdesLeg(), SdesLeg()
    set_codecs(saved)


def offer_to_agent(text: str, caller: SdesLeg, agent: SdesLeg) -> tuple[str, Negotiated]:
    return rewrite(text, "127.0.0.1", 20000, Origin("127.0.0.1"), sdes_from=caller, sdes_to=agent)


def answer_to_caller(text: str, caller: SdesLeg, agent: SdesLeg) -> tuple[str, Negotiated]:
    return rewrite(
        text, "127.0.0.1", 20002, Origin("127.0.0.1"), sdes_from=agent, sdes_to=caller, offer=False
    )


def audio_formats(text: str) -> list[str]:
    m = parse_sdp(text).audio()
    assert m is not None
    return m.formats


def test_g722_offer_negotiates_pt_9_at_the_8000_clock_with_16000_hz_events():
    neg = negotiated(parse_sdp(WIDE_OFFER))
    assert (neg.codec_pt, neg.codec) == (9, "G722")
    assert neg.event_pt == 101 and neg.event_clocks == ((101, 16000),)


def test_static_pt_9_without_rtpmap_is_g722():
    assert negotiated(parse_sdp(body("9"))).codec == "G722"


def test_an_offer_with_g711_is_forwarded_with_its_own_codecs_only(legs):
    text, _ = offer_to_agent(body("9 8 101", "rtpmap:101 telephone-event/8000"), *legs)
    assert audio_formats(text) == ["9", "8", "101"]


def test_a_g722_only_offer_gets_the_g711_codecs_added_after_its_own(legs):
    text, _ = offer_to_agent(WIDE_OFFER, *legs)
    assert audio_formats(text) == ["9", "0", "8", "101"]
    assert "a=rtpmap:0 PCMU/8000" in text and "a=rtpmap:8 PCMA/8000" in text


def test_agent_answering_pcmu_to_a_g722_only_caller_is_answered_g722_and_transcoded(legs):
    offer_to_agent(WIDE_OFFER, *legs)
    answer = body("0 101", "rtpmap:0 PCMU/8000", "rtpmap:101 telephone-event/8000")
    text, neg = answer_to_caller(answer, *legs)
    assert (neg.codec, neg.peer) == ("PCMU", (9, "G722"))
    assert audio_formats(text) == ["9", "101"]
    assert "a=rtpmap:9 G722/8000" in text and "a=rtpmap:101 telephone-event/16000" in text
    assert "PCMU" not in text


def test_an_answer_within_the_offer_passes_unchanged(legs):
    offer_to_agent(body("0 9 101", "rtpmap:101 telephone-event/8000"), *legs)
    answer = body("9 101", "rtpmap:9 G722/8000", "rtpmap:101 telephone-event/8000")
    text, neg = answer_to_caller(answer, *legs)
    assert neg.peer == (9, "G722") and neg.codec == "G722"
    assert audio_formats(text) == ["9", "101"]


def test_codecs_setting_leaves_g722_out_of_both_legs(legs):
    set_codecs(["PCMA", "PCMU"])
    with pytest.raises(SdpError) as exc:
        offer_to_agent(WIDE_OFFER, *legs)
    assert exc.value.status == 488
    text, _ = offer_to_agent(body("9 0"), *legs)
    assert audio_formats(text) == ["0"]


def test_listed_order_orders_the_added_codecs(legs):
    set_codecs(["G722", "PCMA", "PCMU"])
    text, _ = offer_to_agent(WIDE_OFFER, *legs)
    assert audio_formats(text) == ["9", "8", "0", "101"]


def test_unknown_codec_names_are_refused():
    with pytest.raises(ValueError):
        set_codecs(["G729"])
