"""The load phones' transit measure survives an RTP timestamp wrap (a long soak's
calls start at random timestamps, so about one in 150 wraps within an hour)."""

from masker.phones.lite import RxStats, unwrap_ts


def test_timestamp_wrap_continues_the_stream_instead_of_jumping_back():
    rx = RxStats()
    start = 2**32 - 320
    got = [unwrap_ts(rx, (start + 160 * i) & 0xFFFFFFFF) for i in range(4)]
    assert got == [start + 160 * i for i in range(4)]


def test_reordered_packet_before_a_wrap_stays_before_it():
    rx = RxStats()
    unwrap_ts(rx, 100)  # just after the wrap
    assert unwrap_ts(rx, 2**32 - 60) == -60
