"""The agent-side stream: own SSRC, continuous sequence numbers, timestamps in step."""

from __future__ import annotations

import numpy as np

from masker.media.outbound import OutboundStream
from masker.wire.rtp import parse_rtp, seq_delta, ts_delta


def test_packets_are_continuous_with_one_ssrc():
    out = OutboundStream(0, 160)
    pkts = [parse_rtp(p) for _ in range(5) for p in out.packets_for(np.zeros(160, np.uint8))]
    assert len({p.ssrc for p in pkts}) == 1
    steps = list(zip(pkts, pkts[1:], strict=False))
    assert all(seq_delta(b.sequence, a.sequence) == 1 for a, b in steps)
    assert all(ts_delta(b.timestamp, a.timestamp) == 160 for a, b in steps)


def test_first_packet_has_the_marker_bit():
    out = OutboundStream(0, 160)
    pkts = [parse_rtp(p) for p in out.packets_for(np.zeros(320, np.uint8))]
    assert [p.marker for p in pkts] == [True, False]


def test_other_ptimes_repacketise():
    out = OutboundStream(8, 240)
    pkts = [parse_rtp(p) for _ in range(3) for p in out.packets_for(np.zeros(160, np.uint8))]
    assert [len(p.payload) for p in pkts] == [240, 240]


def test_pause_advances_the_timestamp_and_marks_the_talkspurt():
    out = OutboundStream(0, 160)
    a = parse_rtp(out.packets_for(np.zeros(160, np.uint8))[0])
    out.pause(8000)
    b = parse_rtp(out.packets_for(np.zeros(160, np.uint8))[0])
    assert ts_delta(b.timestamp, a.timestamp) == 8160 and b.marker
    assert seq_delta(b.sequence, a.sequence) == 1


def test_resync_jumps_the_timestamp_keeps_a_partial_frame_and_marks_the_packet():
    """The tick moved later: the next packet's timestamp follows its send time."""
    out = OutboundStream(8, 240)
    out.packets_for(np.zeros(240, np.uint8))
    out.packets_for(np.full(160, 1, np.uint8))  # 160 of the next 240 pending
    a_ts = (out.ts - 240) & 0xFFFFFFFF
    out.resync(64)
    (b,) = [parse_rtp(p) for p in out.packets_for(np.zeros(80, np.uint8))]
    assert ts_delta(b.timestamp, a_ts) == 240 + 64 and b.marker
    assert b.payload[:160] == bytes([1]) * 160
