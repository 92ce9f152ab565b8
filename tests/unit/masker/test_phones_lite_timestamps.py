"""The load phones' transit measure survives an RTP timestamp wrap (a long soak's
calls start at random timestamps, so about one in 150 wraps within an hour), and counts
only the agent's RTP coming back to the caller."""

import time

from masker.phones.lite import RxStats, back_transit_ms, unwrap_ts


def test_timestamp_wrap_continues_the_stream_instead_of_jumping_back():
    rx = RxStats()
    start = 2**32 - 320
    got = [unwrap_ts(rx, (start + 160 * i) & 0xFFFFFFFF) for i in range(4)]
    assert got == [start + 160 * i for i in range(4)]


def test_reordered_packet_before_a_wrap_stays_before_it():
    rx = RxStats()
    unwrap_ts(rx, 100)  # just after the wrap
    assert unwrap_ts(rx, 2**32 - 60) == -60


def test_rtcp_landing_on_a_caller_socket_is_not_taken_for_the_agents_rtp():
    """A receiver report (payload type byte 201) sent to a neighbour's RTCP port."""
    rr = bytes([0x81, 201, 0, 7]) + (0x9ABCDEF0).to_bytes(4, "big") + bytes(24)
    assert back_transit_ms(rr, [], 0.0) is None


def test_the_agents_rtp_at_the_caller_gives_its_transit():
    rtp = bytes([0x80, 0, 0, 1]) + (8000).to_bytes(4, "big") + bytes(4) + bytes(160)
    transit = back_transit_ms(rtp, [], 0.0)
    assert transit is not None and abs(transit - (time.monotonic() * 1000.0 - 1000.0)) < 50
