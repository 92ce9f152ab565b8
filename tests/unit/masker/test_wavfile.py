"""masker.offline.wavfile: streaming WAV I/O that gives back exactly what it read."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf

from dsp import g711
from masker.errors import UserError
from masker.offline import wavfile
from masker.offline.wavfile import (
    ENCODINGS,
    G711_ENCODINGS,
    WavReader,
    WavWriter,
    frame_size,
    from_pcm16,
    merge_changed,
    read_info,
    to_pcm16,
)


def random_native(encoding: str, frames: int, channels: int, seed: int = 0) -> np.ndarray:
    """Every value an encoding can hold, drawn at random."""
    rng = np.random.default_rng(seed)
    if encoding in G711_ENCODINGS:
        return rng.integers(0, 256, (frames, channels)).astype(np.uint8)
    pcm16 = rng.integers(-32768, 32768, (frames, channels)).astype(np.int16)
    return from_pcm16(pcm16, encoding)


def write(path, native, rate=8000, encoding="pcm16", chunks=3) -> None:
    with WavWriter(path, rate, native.shape[1], encoding) as w:
        for part in np.array_split(native, chunks):
            w.write(part)


def read_all(path, block=160) -> tuple[np.ndarray, np.ndarray]:
    with WavReader(path) as r:
        blocks = list(r.blocks(block))
    return (np.concatenate([b.native for b in blocks]), np.concatenate([b.pcm16 for b in blocks]))


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_native_samples_survive_write_then_read_exactly(tmp_path, encoding):
    native = random_native(encoding, 1234, 2)
    write(tmp_path / "x.wav", native, encoding=encoding)
    got, _ = read_all(tmp_path / "x.wav")
    assert got.dtype == native.dtype
    assert np.array_equal(got, native)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_soundfile_reads_what_the_writer_wrote(tmp_path, encoding):
    native = random_native(encoding, 500, 2)
    write(tmp_path / "x.wav", native, rate=16000, encoding=encoding)
    expected = g711.decode(native, encoding) if encoding in G711_ENCODINGS else native
    data, rate = sf.read(tmp_path / "x.wav", dtype=expected.dtype.name, always_2d=True)
    assert rate == 16000
    assert np.array_equal(data, expected)


@pytest.mark.parametrize("law", G711_ENCODINGS)
def test_every_g711_code_reads_back_as_that_code(tmp_path, law):
    codes = np.arange(256, dtype=np.uint8).reshape(-1, 1)
    write(tmp_path / "x.wav", codes, encoding=law)
    got, pcm16 = read_all(tmp_path / "x.wav")
    assert np.array_equal(got, codes)
    assert np.array_equal(pcm16, g711.decode(codes, law))


def test_mulaw_negative_zero_is_kept_although_it_decodes_like_positive_zero(tmp_path):
    codes = np.array([[0x7F], [0xFF], [0x7F]], dtype=np.uint8)
    write(tmp_path / "x.wav", codes, encoding="ulaw", chunks=1)
    got, pcm16 = read_all(tmp_path / "x.wav")
    assert pcm16.ravel().tolist() == [0, 0, 0]
    assert got.ravel().tolist() == [0x7F, 0xFF, 0x7F]


@pytest.mark.parametrize(("law", "subtype"), [("ulaw", "ULAW"), ("alaw", "ALAW")])
def test_g711_files_written_by_soundfile_read_as_their_codes(tmp_path, law, subtype):
    pcm = np.random.default_rng(1).integers(-32768, 32768, 800).astype(np.int16)
    sf.write(tmp_path / "x.wav", pcm, 8000, subtype=subtype, format="WAV")
    info = read_info(tmp_path / "x.wav")
    got, _ = read_all(tmp_path / "x.wav")
    raw = (tmp_path / "x.wav").read_bytes()
    codes_in_file = np.frombuffer(raw, dtype=np.uint8, offset=info.data_offset, count=800)
    assert info.encoding == law
    assert np.array_equal(got.ravel(), codes_in_file)


@pytest.mark.parametrize(
    ("subtype", "encoding"),
    [
        ("PCM_16", "pcm16"),
        ("PCM_U8", "pcm_u8"),
        ("PCM_24", "pcm24"),
        ("PCM_32", "pcm32"),
        ("FLOAT", "float32"),
        ("DOUBLE", "float64"),
    ],
)
def test_soundfile_encodings_are_recognised(tmp_path, subtype, encoding):
    sf.write(tmp_path / "x.wav", np.zeros((80, 2)), 16000, subtype=subtype, format="WAV")
    info = read_info(tmp_path / "x.wav")
    assert (info.encoding, info.sample_rate, info.channels, info.frames) == (encoding, 16000, 2, 80)


def test_extensible_header_is_read_like_a_plain_one(tmp_path):
    pcm = np.arange(-300, 300, dtype=np.int16).reshape(-1, 3)
    sf.write(tmp_path / "x.wav", pcm, 8000, subtype="PCM_16", format="WAV")  # 3 ch: extensible
    assert read_info(tmp_path / "x.wav").encoding == "pcm16"
    assert np.array_equal(read_all(tmp_path / "x.wav")[0], pcm)


def test_blocks_hold_all_channels_and_the_last_block_is_shorter(tmp_path):
    write(tmp_path / "x.wav", random_native("pcm16", 1000, 2))
    with WavReader(tmp_path / "x.wav") as r:
        sizes = [b.pcm16.shape for b in r.blocks(300)]
    assert sizes == [(300, 2), (300, 2), (300, 2), (100, 2)]


def test_frame_size_is_twenty_milliseconds():
    assert (frame_size(8000), frame_size(16000)) == (160, 320)


def test_wide_samples_reach_the_dsp_as_their_top_sixteen_bits():
    native = np.array([[0x12345678], [-0x12345678]], dtype=np.int32)
    assert to_pcm16(native, "pcm32").ravel().tolist() == [0x1234, -0x1235]


def test_float_samples_reach_the_dsp_scaled_to_int16():
    native = np.array([[0.5], [-1.0], [2.0]], dtype=np.float32)
    assert to_pcm16(native, "float32").ravel().tolist() == [16384, -32768, 32767]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_merge_keeps_the_inputs_own_samples_where_processing_left_them(encoding):
    native = random_native(encoding, 100, 1, seed=5)
    original16 = to_pcm16(native, encoding)
    processed = original16.copy()
    processed[40:60] = 0
    merged = merge_changed(processed, original16, native, encoding)
    keep = np.ones(100, dtype=bool)
    keep[40:60] = False
    assert np.array_equal(merged[keep], native[keep])
    assert np.array_equal(merged[~keep], from_pcm16(processed[~keep], encoding))


def test_writer_leaves_no_file_when_aborted(tmp_path):
    out = tmp_path / "out.wav"
    with pytest.raises(RuntimeError), WavWriter(out, 8000, 1, "pcm16") as w:
        w.write(np.zeros((160, 1), dtype=np.int16))
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_blocks_with_the_wrong_channel_count(tmp_path):
    with WavWriter(tmp_path / "out.wav", 8000, 2, "pcm16") as w, pytest.raises(ValueError):
        w.write(np.zeros((160, 1), dtype=np.int16))


# --- bad input: one clear UserError each ---------------------------------------------------


def pcm_wav_bytes(frames: int, rate=8000, channels=1, tag=1, bits=16, data_size=None) -> bytes:
    align = channels * bits // 8
    data = bytes(frames * align)
    size = len(data) if data_size is None else data_size
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + size)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", size)
        + data
    )


def expect_error(tmp_path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(UserError, match=match):
        read_info(path)


def test_a_text_file_is_not_a_wav(tmp_path):
    expect_error(tmp_path, b"hello, this is not audio\n" * 10, "not a WAV file")


def test_an_aiff_file_is_not_a_wav(tmp_path):
    sf.write(tmp_path / "x.aiff", np.zeros(160), 8000, format="AIFF")
    expect_error(tmp_path, (tmp_path / "x.aiff").read_bytes(), "not a WAV file")


def test_a_zero_byte_file_is_not_a_wav(tmp_path):
    expect_error(tmp_path, b"", "not a WAV file")


def test_a_cut_header_is_truncated(tmp_path):
    expect_error(tmp_path, pcm_wav_bytes(100)[:30], "truncated")


def test_a_cut_data_chunk_is_truncated(tmp_path):
    expect_error(tmp_path, pcm_wav_bytes(1000)[:1000], "truncated")


def test_half_a_sample_frame_is_truncated(tmp_path):
    expect_error(tmp_path, pcm_wav_bytes(100, data_size=201)[:-1] + b"\0", "truncated")


def test_a_wav_without_samples_is_empty(tmp_path):
    expect_error(tmp_path, pcm_wav_bytes(0), "empty")


@pytest.mark.parametrize("rate", [11025, 22050, 44100, 48000])
def test_rates_other_than_8_and_16_khz_are_unsupported(tmp_path, rate):
    expect_error(tmp_path, pcm_wav_bytes(100, rate=rate), f"unsupported sample rate {rate}")


def test_adpcm_is_an_unsupported_encoding(tmp_path):
    sf.write(tmp_path / "x.wav", np.zeros(1000), 8000, subtype="IMA_ADPCM", format="WAV")
    expect_error(tmp_path, (tmp_path / "x.wav").read_bytes(), "unsupported encoding")


def test_twelve_bit_pcm_is_an_unsupported_encoding(tmp_path):
    expect_error(tmp_path, pcm_wav_bytes(10, bits=12), "unsupported encoding")


def test_too_many_channels_are_refused(tmp_path):
    n = wavfile.MAX_CHANNELS + 1
    expect_error(tmp_path, pcm_wav_bytes(10, channels=n), f"too many channels \\({n}")


def test_a_recording_longer_than_the_limit_is_too_large(tmp_path, monkeypatch):
    monkeypatch.setattr(wavfile, "MAX_SECONDS", 1)
    expect_error(tmp_path, pcm_wav_bytes(8001), "too large")


def test_a_missing_file_is_reported_as_such(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_info(tmp_path / "nope.wav")


def test_a_directory_is_not_a_wav(tmp_path):
    with pytest.raises(UserError, match="is a directory"):
        read_info(tmp_path)
