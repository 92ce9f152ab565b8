"""SDP parse/build and the B2BUA's rewrites (RFC 4566 / RFC 3264)."""

from __future__ import annotations

import pytest

from masker.wire.sdp import (
    Origin,
    SdpError,
    anchor,
    format_sdp,
    negotiated,
    parse_sdp,
    restrict_to_maskable,
    rewrite,
)

OFFER = (
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    "s=call\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n"
    "m=audio 49170 RTP/AVP 18 0 8 101\r\n"
    "a=rtpmap:18 G729/8000\r\n"
    "a=fmtp:18 annexb=no\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "a=rtcp:49171\r\n"
    "a=sendrecv\r\n"
    "m=video 51372 RTP/AVP 96\r\n"
    "a=rtpmap:96 H264/90000\r\n"
)


def test_parse_reads_session_and_media():
    sess = parse_sdp(OFFER)
    assert sess.origin.startswith("alice") and len(sess.media) == 2
    assert sess.media[0].port == 49170 and sess.media[0].formats == ["18", "0", "8", "101"]


def test_format_then_parse_is_stable():
    once = format_sdp(parse_sdp(OFFER))
    assert format_sdp(parse_sdp(once)) == once


def test_restrict_keeps_g711_and_telephone_event_only():
    m = restrict_to_maskable(parse_sdp(OFFER)).media[0]
    assert m.formats == ["0", "8", "101"]
    assert all(not (v or "").startswith("18 ") for _, v in m.attributes)


def test_restrict_disables_video():
    assert restrict_to_maskable(parse_sdp(OFFER)).media[1].port == 0


def test_restrict_drops_rtcp_attribute_that_would_bypass_the_anchor():
    m = restrict_to_maskable(parse_sdp(OFFER)).media[0]
    assert "rtcp" not in [k for k, _ in m.attributes]


def test_offer_without_g711_is_488():
    with pytest.raises(SdpError) as exc:
        restrict_to_maskable(parse_sdp(OFFER.replace("RTP/AVP 18 0 8 101", "RTP/AVP 18 101")))
    assert exc.value.status == 488


def test_srtp_offer_is_488():
    with pytest.raises(SdpError) as exc:
        restrict_to_maskable(parse_sdp(OFFER.replace("49170 RTP/AVP", "49170 RTP/SAVP")))
    assert exc.value.status == 488


@pytest.mark.parametrize(
    "body",
    [
        "",
        "hello",
        "v=0\r\n",
        "v=0\r\no=x\r\n",
        "v=0\r\no=a 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio x RTP/AVP 0\r\n",
        "v=0\r\no=a 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
        "v=0\r\no=a 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN XX 1.2.3.4\r\nt=0 0\r\n",
        "v=0\r\no=a 1 1 IN IP4 1.2.3.4\r\nnonsense line\r\n",
    ],
)
def test_malformed_sdp_is_400(body):
    with pytest.raises(SdpError) as exc:
        parse_sdp(body)
    assert exc.value.status == 400


def test_negotiated_reads_address_codec_event_and_ptime():
    neg = negotiated(restrict_to_maskable(parse_sdp(OFFER)))
    assert (neg.address, neg.port, neg.codec, neg.codec_pt, neg.event_pt, neg.ptime) == (
        "192.0.2.10",
        49170,
        "PCMU",
        0,
        101,
        20,
    )
    assert dict(neg.audio_pts) == {0: "PCMU", 8: "PCMA"}


def test_ptime_is_clamped_to_10_40():
    neg = negotiated(parse_sdp(OFFER.replace("ptime:20", "ptime:60")))
    assert neg.ptime == 40


def test_anchor_points_audio_at_our_address_and_port():
    sess = anchor(restrict_to_maskable(parse_sdp(OFFER)), "127.0.0.1", 20000, "o")
    neg = negotiated(sess)
    assert (neg.address, neg.port) == ("127.0.0.1", 20000)


def test_hold_by_zero_address_becomes_sendonly_towards_us():
    held = OFFER.replace("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0").replace("a=sendrecv\r\n", "")
    assert negotiated(parse_sdp(held)).on_hold
    sess = anchor(restrict_to_maskable(parse_sdp(held)), "127.0.0.1", 20000, "o")
    assert sess.media[0].direction == "sendonly"
    assert sess.connection == "IN IP4 127.0.0.1"


def test_sendonly_is_kept():
    text, neg = rewrite(
        OFFER.replace("a=sendrecv", "a=sendonly"), "127.0.0.1", 20000, Origin("127.0.0.1")
    )
    assert "a=sendonly" in text and neg.on_hold


def test_origin_version_increments_only_when_the_body_changes():
    origin = Origin("127.0.0.1")
    t1, _ = rewrite(OFFER, "127.0.0.1", 20000, origin)
    t2, _ = rewrite(OFFER, "127.0.0.1", 20000, origin)
    t3, _ = rewrite(OFFER.replace("a=sendrecv", "a=sendonly"), "127.0.0.1", 20000, origin)
    v = [int(t.split("\r\n")[1].split()[2]) for t in (t1, t2, t3)]
    assert v[0] == v[1] and v[2] == v[1] + 1


def test_static_payload_types_need_no_rtpmap():
    bare = (
        "v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 8\r\n"
    )
    assert negotiated(restrict_to_maskable(parse_sdp(bare))).codec == "PCMA"
