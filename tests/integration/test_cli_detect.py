"""`masker detect`: the real console script lists the digits of a WAV file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dsp.testsignals import KEYS, g711_roundtrip, keys_signal
from tests.support.harness import masker, one_line_error, write_wav

TOLERANCE_MS = 5.0


def keyed(keys: str = KEYS, rate: int = 8000, law: str = "ulaw"):
    """Comfortable key presses (70 ms on, 70 ms off, -10 dBm0) after a G.711 round trip."""
    sig = keys_signal(keys, rate, on_ms=70, off_ms=70, level_dbm0=-10, rng=np.random.default_rng(1))
    return sig, g711_roundtrip(sig.pcm16(None), law)


def detect_json(path, *extra: str) -> dict:
    proc = masker("detect", path, "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_json_lists_every_key_in_order_when_revealed(tmp_path):
    _, pcm = keyed()
    write_wav(tmp_path / "k.wav", pcm)
    doc = detect_json(tmp_path / "k.wav", "--reveal")
    assert "".join(d["digit"] for d in doc["channels"][0]["digits"]) == KEYS


def test_json_report_has_the_documented_shape(tmp_path):
    _, pcm = keyed("5")
    write_wav(tmp_path / "k.wav", pcm)
    doc = detect_json(tmp_path / "k.wav")
    assert doc["file"] == str(tmp_path / "k.wav")
    assert doc["sample_rate"] == 8000
    assert [c["channel"] for c in doc["channels"]] == [0]
    (digit,) = doc["channels"][0]["digits"]
    assert set(digit) == {"digit", "start_ms", "end_ms", "source"}
    assert digit["source"] == "inband"


def test_digits_are_masked_unless_revealed(tmp_path):
    _, pcm = keyed("123")
    write_wav(tmp_path / "k.wav", pcm)
    doc = detect_json(tmp_path / "k.wav")
    assert [d["digit"] for d in doc["channels"][0]["digits"]] == ["*", "*", "*"]


def test_text_output_masks_digits_unless_revealed(tmp_path):
    _, pcm = keyed("4711")
    write_wav(tmp_path / "k.wav", pcm)
    masked = masker("detect", tmp_path / "k.wav")
    revealed = masker("detect", tmp_path / "k.wav", "--reveal")
    assert "channel 0: ****" in masked.stdout
    assert "4711" not in masked.stdout
    assert "channel 0: 4711" in revealed.stdout


def test_start_and_end_are_within_a_few_ms_of_the_tones(tmp_path):
    sig, pcm = keyed()
    write_wav(tmp_path / "k.wav", pcm)
    digits = detect_json(tmp_path / "k.wav")["channels"][0]["digits"]
    assert len(digits) == len(sig.tones)
    for d, tone in zip(digits, sig.tones, strict=True):
        assert abs(d["start_ms"] - tone.start / 8) <= TOLERANCE_MS
        assert abs(d["end_ms"] - tone.end / 8) <= TOLERANCE_MS


@pytest.mark.parametrize("encoding", ["ulaw", "alaw"])
def test_g711_wav_files_are_decoded(tmp_path, encoding):
    _, pcm = keyed("0#*9", law=encoding)
    write_wav(tmp_path / "k.wav", pcm, encoding=encoding)
    doc = detect_json(tmp_path / "k.wav", "--reveal")
    assert "".join(d["digit"] for d in doc["channels"][0]["digits"]) == "0#*9"


def test_sixteen_khz_files_are_decoded(tmp_path):
    _, pcm = keyed("ABCD", rate=16000)
    write_wav(tmp_path / "k.wav", pcm, rate=16000)
    doc = detect_json(tmp_path / "k.wav", "--reveal")
    assert doc["sample_rate"] == 16000
    assert "".join(d["digit"] for d in doc["channels"][0]["digits"]) == "ABCD"


def test_each_channel_of_a_stereo_file_is_reported_on_its_own(tmp_path):
    _, caller = keyed("123")
    _, agent = keyed("89#")
    write_wav(tmp_path / "k.wav", np.stack([caller, agent], axis=1))
    doc = detect_json(tmp_path / "k.wav", "--reveal")
    assert [("".join(d["digit"] for d in c["digits"])) for c in doc["channels"]] == ["123", "89#"]


def test_a_file_without_tones_reports_no_digits(tmp_path):
    rng = np.random.default_rng(2)
    write_wav(tmp_path / "n.wav", (rng.standard_normal(16000) * 300).astype(np.int16))
    assert detect_json(tmp_path / "n.wav")["channels"][0]["digits"] == []


def test_not_a_wav_is_a_one_line_error(tmp_path):
    (tmp_path / "x.wav").write_text("hello")
    proc = masker("detect", tmp_path / "x.wav")
    assert "not a WAV file" in one_line_error(proc)


def test_a_missing_file_is_a_one_line_error(tmp_path):
    proc = masker("detect", tmp_path / "missing.wav")
    assert "no such file" in one_line_error(proc)
