"""Reception statistics of the caller's stream: the RFC 3550 report block we send back."""

from __future__ import annotations

import struct

from masker.media.reception import ReceptionStats, sender_report_stamp
from masker.wire.rtp import build_rtcp_sr


def block(stats: ReceptionStats, now: float = 0.0) -> dict:
    ssrc, fraction, lost, ext, jitter, lsr, dlsr = struct.unpack(
        "!IB3sIIII", stats.report_block(now)
    )
    return {
        "ssrc": ssrc,
        "fraction": fraction,
        "lost": int.from_bytes(lost, "big", signed=True),
        "extended": ext,
        "jitter": jitter,
        "lsr": lsr,
        "dlsr": dlsr,
    }


def feed(stats: ReceptionStats, seqs, ssrc: int = 0xABC, jitter_ms=lambda i: 0.0) -> None:
    for i, seq in enumerate(seqs):
        stats.packet(ssrc, seq % 65536, 160 * i, 100.0 + 0.02 * i + jitter_ms(i) / 1000)


def test_a_clean_stream_reports_no_loss():
    s = ReceptionStats()
    feed(s, range(1000, 1100))
    b = block(s)
    assert b["ssrc"] == 0xABC and b["lost"] == 0 and b["fraction"] == 0
    assert b["extended"] == 1099


def test_missing_packets_are_lost_and_their_fraction_is_in_256ths():
    s = ReceptionStats()
    feed(s, [q for q in range(105) if not 50 <= q < 55])
    b = block(s)
    assert b["lost"] == 5
    assert b["fraction"] == (5 << 8) // 105


def test_the_fraction_covers_only_the_interval_since_the_last_report():
    s = ReceptionStats()
    feed(s, [q for q in range(100) if q != 10])
    block(s)
    for q in range(100, 200):
        s.packet(0xABC, q, 160 * q, 200.0 + 0.02 * q)
    b = block(s)
    assert b["fraction"] == 0 and b["lost"] == 1  # cumulative still counts the old one


def test_sequence_numbers_that_wrap_extend_past_65535():
    s = ReceptionStats()
    feed(s, range(65530, 65546))
    b = block(s)
    assert b["extended"] == 65536 + 9 and b["lost"] == 0


def test_packets_on_time_have_no_jitter_and_late_ones_do():
    steady = ReceptionStats()
    feed(steady, range(200))
    assert block(steady)["jitter"] == 0
    shaky = ReceptionStats()
    feed(shaky, range(200), jitter_ms=lambda i: 10.0 * (i % 2))  # every other packet 10 ms late
    assert 60 <= block(shaky)["jitter"] <= 80  # in timestamp units (8 per ms)


def test_the_last_sender_report_and_the_delay_since_are_echoed():
    s = ReceptionStats()
    feed(s, range(10))
    s.sender_report(0xABC, 0x12345678, 50.0)
    b = block(s, now=50.5)
    assert b["lsr"] == 0x12345678 and b["dlsr"] == 32768  # 0.5 s in 1/65536 s


def test_a_sender_report_that_came_before_the_first_packet_counts():
    s = ReceptionStats()
    s.sender_report(0xABC, 0x0BADCAFE, 99.0)
    feed(s, range(10))
    assert block(s, now=100.0)["lsr"] == 0x0BADCAFE


def test_a_sender_report_of_another_ssrc_is_not_echoed():
    s = ReceptionStats()
    feed(s, range(10))
    s.sender_report(0x999, 0x12345678, 50.0)
    assert block(s, now=51.0)["lsr"] == 0


def test_without_a_sender_report_lsr_and_dlsr_are_zero():
    s = ReceptionStats()
    feed(s, range(10))
    b = block(s, now=99.0)
    assert b["lsr"] == 0 and b["dlsr"] == 0


def test_a_new_ssrc_starts_the_count_again():
    s = ReceptionStats()
    feed(s, range(0, 50, 2))  # half lost
    feed(s, range(7, 17), ssrc=0xDEF)
    b = block(s)
    assert b["ssrc"] == 0xDEF and b["lost"] == 0 and b["extended"] == 16


def test_the_ntp_middle_bits_are_read_from_a_sender_report():
    sr = build_rtcp_sr(1, 1_700_000_000.5, 160, 10, 1600)
    secs = (1_700_000_000 + 2208988800) & 0xFFFF
    assert sender_report_stamp(sr) == (1, (secs << 16) | 0x8000)


def test_a_receiver_report_has_no_ntp_time():
    assert sender_report_stamp(b"\x81\xc9\x00\x07" + b"\0" * 28) is None
