"""The caller's playout buffer: ordering, loss, lateness, resync and timestamp mapping."""

from __future__ import annotations

import numpy as np

from masker.media.inbound import MAX_BUFFER, InboundAudio


def frame(value: int, n: int = 160) -> np.ndarray:
    return np.full(n, value, dtype=np.int16)


def test_in_order_packets_come_out_in_order():
    buf = InboundAudio()
    buf.push(1, 1000, frame(1))
    buf.push(1, 1160, frame(2))
    assert buf.take(160)[0] == 1 and buf.take(160)[0] == 2


def test_lost_packet_becomes_silence():
    buf = InboundAudio()
    buf.push(1, 1000, frame(1))
    buf.push(1, 1320, frame(3))
    out = np.concatenate([buf.take(160) for _ in range(3)])
    assert list(out[::160]) == [1, 0, 3] and buf.lost_samples == 160


def test_late_packet_is_dropped():
    buf = InboundAudio()
    buf.push(1, 1000, frame(1))
    buf.push(1, 1160, frame(2))
    assert not buf.push(1, 1000, frame(9))
    assert buf.late_packets == 1


def test_underrun_pads_with_silence():
    buf = InboundAudio()
    buf.push(1, 0, frame(5, 80))
    out = buf.take(160)
    assert out[0] == 5 and out[100] == 0 and buf.underrun_samples == 80


def one_played_then_concealed() -> InboundAudio:
    """A stream whose first packet was played and whose next frame was concealed (the
    packet at 1160 was not there when the tick needed it)."""
    buf = InboundAudio()
    buf.push(1, 1000, frame(1))
    buf.take(160)
    buf.take(160, conceal=frame(1))
    return buf


def test_the_packet_that_continues_the_stream_after_a_concealment_came_late_by_it():
    buf = one_played_then_concealed()
    buf.push(1, 1160, frame(2))
    assert buf.late_by == 160


def test_a_packet_on_time_was_not_late():
    buf = InboundAudio()
    buf.push(1, 1000, frame(1))
    buf.push(1, 1160, frame(2))
    assert buf.late_by == 0


def test_the_packet_after_a_lost_one_was_not_late():
    buf = one_played_then_concealed()  # the packet at 1160 never comes
    buf.push(1, 1320, frame(3))
    assert buf.late_by == 0


def test_the_first_packet_after_the_clock_was_reset_was_not_late():
    buf = one_played_then_concealed()
    buf.reset_clock()  # the stream went idle
    buf.push(1, 1160, frame(2))
    assert buf.late_by == 0


def test_new_ssrc_resynchronises_without_filling():
    buf = InboundAudio()
    buf.push(1, 1000, frame(1))
    buf.push(2, 999999, frame(2))
    assert buf.buffered == 320 and buf.resyncs == 1


def test_large_timestamp_jump_resynchronises():
    buf = InboundAudio()
    buf.push(1, 1000, frame(1))
    buf.push(1, 1000 + 80000, frame(2))
    assert buf.buffered == 320 and buf.resyncs == 1


def test_timestamps_map_to_masker_input_indices():
    buf = InboundAudio()
    buf.push(1, 5000, frame(1))
    buf.take(160)
    buf.push(1, 5160, frame(1))
    assert buf.index_of(5160) == 160 and buf.index_of(5400) == 400


def test_timestamp_wrap_keeps_the_mapping():
    buf = InboundAudio()
    buf.push(1, 0xFFFFFF60, frame(1))
    buf.push(1, 0x00000000, frame(2))
    assert buf.buffered == 320 and buf.index_of(0x00000000) == 160


def test_overfull_buffer_is_trimmed():
    buf = InboundAudio()
    for i in range(MAX_BUFFER // 160 + 2):
        buf.push(1, i * 160, frame(i))
    assert buf.buffered <= MAX_BUFFER and buf.trimmed_samples > 0


def test_after_a_pause_events_map_to_now_until_audio_resumes():
    buf = InboundAudio()
    buf.push(1, 5000, frame(1))
    buf.take(160)
    buf.skip(8000)  # a second of idle ticks
    buf.reset_clock()
    assert buf.index_of(5160 + 800) == buf.fed


def test_implausible_event_timestamp_maps_to_now():
    buf = InboundAudio()
    buf.push(1, 5000, frame(1))
    assert buf.index_of(5000 + 10 * 8000) == buf.fed + buf.buffered


def test_underrun_is_concealed_with_the_previous_frame_not_a_gap():
    buf = InboundAudio()
    buf.push(1, 0, frame(5, 80))
    out = buf.take(160, conceal=frame(7))
    assert out[0] == 5 and out[100] == 7 and buf.underrun_samples == 80


def test_audio_after_an_underrun_maps_past_the_padding():
    buf = InboundAudio()
    buf.push(1, 1000, frame(1))
    buf.take(160)
    buf.take(160)  # the packet at 1160 is late: 160 samples of padding
    assert buf.index_of(1160) == 320


def test_quiet_head_is_dropped_and_the_mapping_follows():
    buf = InboundAudio()
    buf.push(1, 1000, frame(3))
    buf.push(1, 1160, frame(4))
    assert buf.drop_quiet(100, quiet_mean_abs=50) == 100
    assert buf.buffered == 220 and buf.index_of(1160) == 60


def test_loud_audio_is_never_dropped():
    buf = InboundAudio()
    buf.push(1, 1000, frame(3000))
    assert buf.drop_quiet(100, quiet_mean_abs=50) == 0 and buf.buffered == 160


def test_a_code_buffer_fills_gaps_with_its_silence_code():
    buf = InboundAudio(silence=0xFF, dtype=np.uint8)
    buf.push(1, 1000, np.full(160, 7, np.uint8))
    buf.push(1, 1320, np.full(160, 9, np.uint8))
    out = np.concatenate([buf.take(160) for _ in range(3)])
    assert out.dtype == np.uint8 and list(out[::160]) == [7, 0xFF, 9]
