"""RFC 3550 packet parsing is strict; building round-trips."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from masker.wire.rtp import (
    RtpError,
    RtpPacket,
    build_rtcp_sdes_cname,
    build_rtcp_sr,
    build_rtp,
    build_rtp_fast,
    is_rtcp,
    is_rtp,
    parse_rtp,
    parse_rtp_fast,
    rtp_fixed_header,
    seq_delta,
    ts_delta,
)


def packet(**kw) -> RtpPacket:
    base = dict(payload_type=0, sequence=7, timestamp=1600, ssrc=0xDEADBEEF, payload=b"\xff" * 160)
    base.update(kw)
    return RtpPacket(**base)


def test_build_then_parse_round_trips():
    p = packet(marker=True)
    assert parse_rtp(build_rtp(p)) == p


def test_csrcs_and_extension_round_trip():
    p = packet(csrcs=(1, 2, 3), extension=(0xBEDE, b"\x10\x01\x00\x00"))
    assert parse_rtp(build_rtp(p)) == p


def test_short_packet_is_rejected():
    with pytest.raises(RtpError, match="short"):
        parse_rtp(b"\x80\x00\x00")


def test_wrong_version_is_rejected():
    data = bytearray(build_rtp(packet()))
    data[0] = 0x40
    with pytest.raises(RtpError, match="version"):
        parse_rtp(bytes(data))


def test_padding_is_removed_from_payload():
    data = bytearray(build_rtp(packet(payload=b"abcd")))
    data[0] |= 0x20
    data += b"\x00\x00\x03"
    assert parse_rtp(bytes(data)).payload == b"abcd"


def test_padding_longer_than_packet_is_rejected():
    data = bytearray(build_rtp(packet(payload=b"ab")))
    data[0] |= 0x20
    data[-1] = 200
    with pytest.raises(RtpError, match="padding"):
        parse_rtp(bytes(data))


def test_zero_padding_count_is_rejected():
    data = bytearray(build_rtp(packet(payload=b"ab\x00")))
    data[0] |= 0x20
    with pytest.raises(RtpError, match="padding"):
        parse_rtp(bytes(data))


def test_truncated_csrc_list_is_rejected():
    data = bytearray(build_rtp(packet(payload=b"")))
    data[0] |= 0x05
    with pytest.raises(RtpError, match="CSRC"):
        parse_rtp(bytes(data))


def test_truncated_extension_is_rejected():
    data = bytearray(build_rtp(packet(payload=b"")))
    data[0] |= 0x10
    data += struct.pack("!HH", 0xBEDE, 4)
    with pytest.raises(RtpError, match="extension"):
        parse_rtp(bytes(data))


def test_rtcp_on_the_rtp_port_is_rejected():
    data = bytearray(build_rtp(packet()))
    data[1] = 200 & 0x7F | 0x80  # SR packet type as seen by an RTP parser (PT 72, marker)
    with pytest.raises(RtpError, match="RTCP"):
        parse_rtp(bytes(data))


def test_fast_builder_matches_the_general_one():
    p = packet(marker=True)
    assert build_rtp_fast(0, 7, 1600, 0xDEADBEEF, p.payload, True) == build_rtp(p)


def test_sequence_and_timestamp_deltas_wrap():
    assert seq_delta(2, 0xFFFF) == 3
    assert seq_delta(0xFFFF, 2) == -3
    assert ts_delta(10, 0xFFFFFFF0) == 26


def test_sender_report_is_recognised_as_rtcp():
    sr = build_rtcp_sr(0x1234, 1_700_000_000.5, 160, 10, 1600)
    assert is_rtcp(sr) and len(sr) == 28
    assert not is_rtcp(build_rtp(packet()))


def test_repr_does_not_show_the_payload():
    assert "b'" not in repr(packet(payload=b"12"))


def test_sdes_packet_carries_the_cname_and_ends_on_a_word():
    sdes = build_rtcp_sdes_cname(0xCAFEBABE, "abc123")
    assert is_rtcp(sdes) and len(sdes) % 4 == 0
    assert sdes[0] == 0x81 and sdes[1] == 202  # one chunk, SDES
    assert int.from_bytes(sdes[2:4], "big") == len(sdes) // 4 - 1
    assert sdes[4:8] == bytes.fromhex("CAFEBABE")
    assert sdes[8] == 1 and sdes[9] == 6 and sdes[10:16] == b"abc123"
    assert sdes[16:] == b"\0" * (len(sdes) - 16)


def test_sdes_chunk_is_padded_even_when_the_item_fills_a_word():
    sdes = build_rtcp_sdes_cname(1, "ab")  # 4 + 2 + 2 octets: the end null needs a new word
    assert len(sdes) == 16 and sdes[-4:] == b"\0\0\0\0"


def test_the_fast_parse_agrees_with_the_full_parse_on_random_datagrams() -> None:
    rng = np.random.default_rng(11)
    for _ in range(5000):
        data = bytes(rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8))
        if rng.random() < 0.5 and len(data) >= 12:
            data = bytes([0x80, int(rng.integers(0, 72))]) + data[2:]
        try:
            full = parse_rtp(data)
        except RtpError as exc:
            if "RTCP" in str(exc) and data[0] == 0x80:  # the caller checks 72-76 itself
                assert 72 <= parse_rtp_fast(data)[0] <= 76
            else:
                with pytest.raises(RtpError):
                    parse_rtp_fast(data)
            continue
        fast = parse_rtp_fast(data)
        assert fast == (full.payload_type, full.sequence, full.timestamp, full.ssrc, full.payload)


def test_a_fixed_header_is_read_without_looking_at_the_rest() -> None:
    data = build_rtp(RtpPacket(payload_type=0, sequence=7, timestamp=160, ssrc=9, payload=b"x"))
    assert rtp_fixed_header(data) == (0, 7, 160, 9)
    assert is_rtp(data)
    assert rtp_fixed_header(b"\x00" * 12) is None
