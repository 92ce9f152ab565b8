"""`masker mask`: the real console script writes a masked, aligned copy of a WAV file.

The detailed leak, over-masking and exactness figures are in test_leak.py; these
tests pin the command's behaviour: format kept, report shape, options, errors,
and flat memory on long recordings.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess

import numpy as np
import pytest
import soundfile as sf

from dsp.testsignals import g711_roundtrip, keys_signal, white_noise
from masker.offline.receivers import multimon_digits, spandsp_digits
from tests.support.harness import MASKER, masker, one_line_error, read_wav, write_wav
from tests.support.paths import PROJECT_ROOT

KEYS = "0123456789"


def keyed(path, keys=KEYS, rate=8000, encoding="pcm16", channels=1, seed=0) -> np.ndarray:
    """Comfortable key presses over low noise on every channel; returns int16 samples."""
    rng = np.random.default_rng(seed)
    law = encoding if encoding in ("ulaw", "alaw") else "ulaw"
    cols = []
    for _ in range(channels):
        sig = keys_signal(keys, rate, on_ms=80, off_ms=120, level_dbm0=-8, rng=rng)
        x = sig.pcm16(None) + np.rint(white_noise(len(sig.samples), -50, rng)).astype(np.int16)
        cols.append(g711_roundtrip(x, law))
    pcm = np.stack(cols, axis=1)
    write_wav(path, pcm, rate, encoding)
    return pcm


def mask_json(src, dst, *extra: str) -> dict:
    proc = masker("mask", src, dst, "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize(
    ("encoding", "rate", "channels"),
    [
        ("pcm16", 8000, 1),
        ("ulaw", 8000, 1),
        ("alaw", 8000, 1),
        ("pcm16", 16000, 1),
        ("pcm16", 8000, 2),
        ("ulaw", 16000, 2),
    ],
)
def test_output_keeps_rate_encoding_channels_and_length(tmp_path, encoding, rate, channels):
    keyed(tmp_path / "in.wav", "12", rate, encoding, channels)
    mask_json(tmp_path / "in.wav", tmp_path / "out.wav")
    _, _, src = read_wav(tmp_path / "in.wav")
    _, _, out = read_wav(tmp_path / "out.wav")
    assert (out.sample_rate, out.encoding, out.channels, out.frames) == (
        src.sample_rate,
        src.encoding,
        src.channels,
        src.frames,
    )


def test_json_report_counts_key_presses_and_lists_spans(tmp_path):
    keyed(tmp_path / "in.wav")
    doc = mask_json(tmp_path / "in.wav", tmp_path / "out.wav")
    assert set(doc) == {"lookahead_ms", "mode", "masked", "band_stopped", "digits_masked"}
    assert (doc["lookahead_ms"], doc["mode"], doc["digits_masked"]) == (40, "tone", len(KEYS))
    assert len(doc["masked"]) >= len(KEYS)
    assert all(set(s) == {"channel", "start_ms", "end_ms"} for s in doc["masked"])
    assert all(s["start_ms"] < s["end_ms"] for s in doc["masked"])


def test_report_spans_cover_every_tone(tmp_path):
    sig = keys_signal(KEYS, 8000, on_ms=80, off_ms=120, level_dbm0=-8)
    write_wav(tmp_path / "in.wav", sig.pcm16())
    doc = mask_json(tmp_path / "in.wav", tmp_path / "out.wav")
    for tone in sig.tones:
        assert any(
            s["start_ms"] <= tone.start / 8 and tone.end / 8 <= s["end_ms"] for s in doc["masked"]
        )


def test_stereo_channels_are_masked_independently(tmp_path):
    rng = np.random.default_rng(4)
    caller = keys_signal("555", on_ms=80, off_ms=120, level_dbm0=-8).pcm16()
    agent = g711_roundtrip(np.rint(white_noise(len(caller), -30, rng)).astype(np.int16))
    write_wav(tmp_path / "in.wav", np.stack([caller, agent], axis=1))
    doc = mask_json(tmp_path / "in.wav", tmp_path / "out.wav")
    _, out, _ = read_wav(tmp_path / "out.wav")
    assert {s["channel"] for s in doc["masked"]} == {0}
    # the agent's channel comes out exactly as the agent's audio masked on its own
    # (loud noise may have bits band-stopped, never because of the caller's keys)
    write_wav(tmp_path / "agent.wav", agent)
    mask_json(tmp_path / "agent.wav", tmp_path / "agent-out.wav")
    _, alone, _ = read_wav(tmp_path / "agent-out.wav")
    assert np.array_equal(out[:, 1], alone.reshape(-1))
    assert spandsp_digits(out[:, 0]) == ""


@pytest.mark.parametrize("mode", ["tone", "silence", "noise", "cadence"])
def test_no_receiver_recovers_a_digit_in_any_mode(tmp_path, mode):
    pcm = keyed(tmp_path / "in.wav")
    assert spandsp_digits(pcm[:, 0]) == KEYS  # the receivers do hear the input
    doc = mask_json(tmp_path / "in.wav", tmp_path / "out.wav", "--mode", mode)
    _, out, _ = read_wav(tmp_path / "out.wav")
    assert doc["mode"] == mode
    assert spandsp_digits(out[:, 0]) == ""
    assert multimon_digits(out[:, 0]) == ""


@pytest.mark.parametrize("lookahead", [20, 60])
def test_lookahead_option_is_used_and_output_stays_aligned(tmp_path, lookahead):
    pcm = keyed(tmp_path / "in.wav", "47")
    doc = mask_json(tmp_path / "in.wav", tmp_path / "out.wav", "--lookahead-ms", str(lookahead))
    _, out, _ = read_wav(tmp_path / "out.wav")
    assert doc["lookahead_ms"] == lookahead
    outside = np.ones(len(pcm), dtype=bool)
    for s in doc["masked"]:
        outside[round(s["start_ms"] * 8) : round(s["end_ms"] * 8)] = False
    assert np.array_equal(out[outside], pcm[outside])


def test_text_output_gives_counts_but_no_digits(tmp_path):
    keyed(tmp_path / "in.wav", "999")
    proc = masker("mask", tmp_path / "in.wav", tmp_path / "out.wav")
    assert proc.returncode == 0, proc.stderr
    assert "masked 3 key press(es)" in proc.stdout
    assert "999" not in proc.stdout


def test_bundled_example_is_masked_clean(tmp_path):
    example = str(PROJECT_ROOT / "fixtures" / "audio" / "example_call.wav")
    doc = mask_json(example, tmp_path / "out.wav")
    _, out, _ = read_wav(tmp_path / "out.wav")
    assert doc["digits_masked"] == 7
    assert spandsp_digits(out[:, 0]) == "" and multimon_digits(out[:, 0]) == ""


# --- bad input and options -------------------------------------------------------------------


def riff(rate=8000, channels=1, bits=16, tag=1, frames=800, data_size=None, cut=0) -> bytes:
    align = channels * bits // 8
    data = bytes(frames * align)
    size = len(data) if data_size is None else data_size
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    body = (
        b"RIFF"
        + struct.pack("<I", 36 + size)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", size)
        + data
    )
    return body[: len(body) - cut]


BAD_INPUTS = {
    "not a WAV file": b"ID3\x03 this is an mp3, honest" * 20,
    "truncated": riff(cut=500),
    "unsupported sample rate 44100": riff(rate=44100),
    "empty": riff(frames=0),
    "unsupported encoding": riff(tag=2, bits=4),
    "too many channels": riff(channels=12),
}


@pytest.mark.parametrize("problem", list(BAD_INPUTS))
def test_bad_input_is_a_one_line_error_and_writes_nothing(tmp_path, problem):
    (tmp_path / "in.wav").write_bytes(BAD_INPUTS[problem])
    proc = masker("mask", tmp_path / "in.wav", tmp_path / "out.wav")
    assert problem in one_line_error(proc)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


def test_missing_input_is_a_one_line_error(tmp_path):
    proc = masker("mask", tmp_path / "nope.wav", tmp_path / "out.wav")
    assert "no such file" in one_line_error(proc)


def test_unwritable_output_is_a_one_line_error(tmp_path):
    keyed(tmp_path / "in.wav", "1")
    proc = masker("mask", tmp_path / "in.wav", tmp_path / "no" / "such" / "dir.wav")
    assert "cannot write" in one_line_error(proc)


@pytest.mark.parametrize("value", ["0", "5", "500"])
def test_out_of_range_lookahead_is_a_one_line_error(tmp_path, value):
    keyed(tmp_path / "in.wav", "1")
    proc = masker("mask", tmp_path / "in.wav", tmp_path / "out.wav", "--lookahead-ms", value)
    assert "look" in one_line_error(proc)


# --- memory stays flat on long recordings ----------------------------------------------------


def long_stereo(path, seconds: int, seed: int = 0) -> None:
    """A long caller+agent recording written in blocks: a key press every ~2 s over noise."""
    from masker.offline.wavfile import WavWriter

    rng = np.random.default_rng(seed)
    minute = 8000 * 60
    with WavWriter(path, 8000, 2, "pcm16") as w:
        for start in range(0, seconds * 8000, minute):
            n = min(minute, seconds * 8000 - start)
            sig = keys_signal("1590" * 8, on_ms=80, off_ms=1800, level_dbm0=-10, lead_ms=300)
            caller = np.resize(sig.pcm16(), n)
            noise = np.rint(white_noise(n, -40, rng)).astype(np.int16)
            w.write(np.stack([caller, noise], axis=1))


def peak_rss_kib(*args: str) -> int:
    """Peak resident memory of one `masker` run (from the kernel's rusage of that child)."""
    proc = subprocess.Popen(
        [MASKER, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, proc.stderr.read()
    proc.stderr.close()
    return usage.ru_maxrss


def rss_growth_kib(tmp_path, short_s: int, long_s: int) -> int:
    long_stereo(tmp_path / "short.wav", short_s)
    long_stereo(tmp_path / "long.wav", long_s)
    short = peak_rss_kib("mask", tmp_path / "short.wav", tmp_path / "o1.wav")
    long = peak_rss_kib("mask", tmp_path / "long.wav", tmp_path / "o2.wav")
    assert sf.info(tmp_path / "o2.wav").frames == long_s * 8000
    return long - short


def test_memory_stays_flat_on_a_long_stereo_recording(tmp_path):
    # 8x the audio (6 MiB more input) must not raise the peak by more than 4 MiB.
    assert rss_growth_kib(tmp_path, 15, 120) < 4 * 1024


@pytest.mark.soak
def test_memory_stays_flat_on_an_hour_long_stereo_recording(tmp_path):
    # an hour of stereo is 110 MiB of PCM16; the peak must stay within 8 MiB of a minute's.
    assert rss_growth_kib(tmp_path, 60, 3600) < 8 * 1024
