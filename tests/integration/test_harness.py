"""masker.offline.harness on its own: alignment, exactness and reports, with a reference masker.

The reference masker has the StreamingMasker interface and a known behaviour
(it zeroes one fixed span of input samples after a look-ahead delay), so any
misalignment or re-encoding by the harness shows up exactly.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from dsp.events import DigitEvent
from masker.errors import UserError
from masker.offline.harness import MaskedSpan, MaskReport, mask_file
from masker.offline.wavfile import G711_ENCODINGS, WavReader, WavWriter, from_pcm16, to_pcm16

SPAN = (1000, 1850)


class ZeroSpanMasker:
    """Delays by the look-ahead and zeroes input samples SPAN, reporting one key press."""

    def __init__(self, rate: int, mode: str, lookahead_ms: int, span=SPAN):
        self.frame_size = rate // 50
        self.delay = rate * lookahead_ms // 1000
        self._held = np.zeros(self.delay, dtype=np.int16)
        self._consumed = 0
        self._span = span
        self._reported = False

    def process(self, frame: np.ndarray):
        assert len(frame) == self.frame_size
        frame = frame.astype(np.int16)
        return self._emit(frame)

    def flush(self):
        return self._emit(np.zeros(0, dtype=np.int16), drain=True)

    def _emit(self, frame: np.ndarray, drain: bool = False):
        x = np.concatenate([self._held, frame])
        n = len(x) if drain else len(frame)
        out, self._held = x[:n].copy(), x[n:]
        first = self._consumed - self.delay  # input index of out[0]
        a, b = self._span
        lo, hi = max(a, first), min(b, first + n)
        if lo < hi:
            out[lo - first : hi - first] = 0
        self._consumed += len(frame)
        done = not self._reported and first + n >= b
        self._reported |= done
        return SimpleNamespace(
            audio=out,
            digits=[DigitEvent("D", a, b)] if done else [],
            masked=[(a, b)] if done else [],
            stopped=[],
        )


class PerChannel:
    """The batch interface over one reference masker per channel."""

    def __init__(self, rate: int, channels: int, mode: str, lookahead_ms: int, span=SPAN):
        self.maskers = [ZeroSpanMasker(rate, mode, lookahead_ms, span) for _ in range(channels)]
        self.frame_size = self.maskers[0].frame_size
        self.delay = self.maskers[0].delay

    def process(self, frames: np.ndarray) -> list:
        assert frames.shape == (len(self.maskers), self.frame_size)
        return [m.process(f) for m, f in zip(self.maskers, frames, strict=True)]

    def flush(self) -> list:
        return [m.flush() for m in self.maskers]


def make_input(path, encoding="pcm16", frames=4321, channels=1, rate=8000, seed=0) -> np.ndarray:
    """Random native samples written to `path`; returns them."""
    rng = np.random.default_rng(seed)
    if encoding in G711_ENCODINGS:
        native = rng.integers(0, 256, (frames, channels)).astype(np.uint8)
    else:
        native = from_pcm16(
            rng.integers(-32768, 32768, (frames, channels)).astype(np.int16), encoding
        )
    with WavWriter(path, rate, channels, encoding) as w:
        w.write(native)
    return native


def read_native(path) -> tuple[np.ndarray, object]:
    with WavReader(path) as r:
        return np.concatenate([b.native for b in r.blocks(10_000)]), r.info


def run_mask(tmp_path, lookahead_ms=40, **kw) -> tuple[np.ndarray, np.ndarray, MaskReport, object]:
    native = make_input(tmp_path / "in.wav", **kw)
    report = mask_file(
        tmp_path / "in.wav", tmp_path / "out.wav", lookahead_ms=lookahead_ms, new_masker=PerChannel
    )
    out, info = read_native(tmp_path / "out.wav")
    return native, out, report, info


def outside_span() -> np.ndarray:
    keep = np.ones(4321, dtype=bool)
    keep[SPAN[0] : SPAN[1]] = False
    return keep


@pytest.mark.parametrize("lookahead_ms", [5, 20, 37, 40, 60])
def test_output_sample_i_lines_up_with_input_sample_i(tmp_path, lookahead_ms):
    native, out, _, _ = run_mask(tmp_path, lookahead_ms=lookahead_ms)
    keep = outside_span()
    assert out.shape == native.shape
    assert np.array_equal(out[keep], native[keep])
    assert not out[~keep].any()


@pytest.mark.parametrize("encoding", ["pcm16", "ulaw", "alaw", "pcm24", "float32"])
def test_audio_outside_masked_spans_is_bit_exact_in_the_inputs_encoding(tmp_path, encoding):
    native, out, _, info = run_mask(tmp_path, encoding=encoding)
    assert info.encoding == encoding
    keep = outside_span()
    assert np.array_equal(out[keep], native[keep])
    silence = from_pcm16(np.zeros((int((~keep).sum()), 1), dtype=np.int16), encoding)
    assert np.array_equal(to_pcm16(out[~keep], encoding), to_pcm16(silence, encoding))


def test_output_keeps_rate_and_channel_count(tmp_path):
    native, out, _, info = run_mask(tmp_path, channels=2, rate=16000)
    assert (info.sample_rate, info.channels, info.frames) == (16000, 2, 4321)


def test_each_channel_is_masked_by_its_own_masker(tmp_path):
    native, out, report, _ = run_mask(tmp_path, channels=2)
    keep = outside_span()
    assert np.array_equal(out[keep], native[keep])
    assert report.digits_masked == 2
    assert [s.channel for s in report.masked] == [0, 1]


def test_report_gives_masked_spans_in_input_milliseconds(tmp_path):
    _, _, report, _ = run_mask(tmp_path)
    assert report.masked == [MaskedSpan(0, *SPAN)]
    doc = report.to_json()
    assert doc == {
        "lookahead_ms": 40,
        "mode": "tone",
        "masked": [{"channel": 0, "start_ms": 125.0, "end_ms": 231.25}],
        "band_stopped": [],
        "digits_masked": 1,
    }


def test_report_never_holds_a_digit_value(tmp_path):
    _, _, report, _ = run_mask(tmp_path)
    assert "D" not in json.dumps(report.to_json())
    assert "D" not in repr(report).replace("MaskReport", "").replace("MaskedSpan", "")


def test_a_span_ending_in_the_last_partial_frame_is_masked(tmp_path):
    native = make_input(tmp_path / "in.wav", frames=1000)
    report = mask_file(
        tmp_path / "in.wav",
        tmp_path / "out.wav",
        new_masker=lambda r, c, m, la: PerChannel(r, c, m, la, span=(900, 1000)),
    )
    out, _ = read_native(tmp_path / "out.wav")
    assert np.array_equal(out[:900], native[:900]) and not out[900:].any()
    assert report.masked == [MaskedSpan(0, 900, 1000)]


def test_a_file_shorter_than_one_frame_comes_out_whole(tmp_path):
    native = make_input(tmp_path / "in.wav", frames=37)
    mask_file(tmp_path / "in.wav", tmp_path / "out.wav", new_masker=PerChannel)
    out, _ = read_native(tmp_path / "out.wav")
    assert np.array_equal(out, native)


def test_unknown_mode_is_a_user_error(tmp_path):
    make_input(tmp_path / "in.wav")
    with pytest.raises(UserError, match="unknown mask mode"):
        mask_file(tmp_path / "in.wav", tmp_path / "out.wav", mode="loud", new_masker=PerChannel)


def test_writing_over_the_input_is_refused(tmp_path):
    native = make_input(tmp_path / "in.wav")
    with pytest.raises(UserError, match="must not be the input"):
        mask_file(tmp_path / "in.wav", tmp_path / "in.wav", new_masker=PerChannel)
    assert np.array_equal(read_native(tmp_path / "in.wav")[0], native)


def test_bad_input_leaves_no_output_file(tmp_path):
    (tmp_path / "in.wav").write_text("not audio")
    with pytest.raises(UserError, match="not a WAV"):
        mask_file(tmp_path / "in.wav", tmp_path / "out.wav", new_masker=PerChannel)
    assert not (tmp_path / "out.wav").exists()
