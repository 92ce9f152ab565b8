"""`masker scrub` band-stops what only may hold a key (dsp.bandstop), as the live masker
does: keys under louder talk leave nothing a loose receiver hears, at the detector's
own rate and at a rate it resamples from."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from dsp import testsignals as tg
from dsp.bandstop import bandstopped
from masker.cli import main
from tests.support.harness import speech_clips
from tests.support.loose_receiver import recoverable_keys


def keys_under_talk(rate: int, seed: int) -> tuple[np.ndarray, np.ndarray, list]:
    """(recording, its key-free bed, tones): 16 keys 10 dB under to level with talk."""
    rng = np.random.default_rng(seed)
    bed = tg.scale_to_dbm0(tg.talk_bed(speech_clips(20, rng), rate * 4, rate), -16.0)
    sig = tg.keys_under(bed, tg.KEYS, rng, rate, ratio_db=(-10.0, 0.0))
    bed = np.resize(bed, len(sig.samples))
    tones = [(t.key, t.start, t.end) for t in sig.tones]
    return tg.to_int16(sig.samples), tg.to_int16(bed), tones


def scrub(tmp_path, pcm: np.ndarray, rate: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Scrub one mono recording; returns the output and the rewritten spans (samples)."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    sf.write(src / "a.wav", pcm, rate, subtype="PCM_16")
    assert main(["scrub", str(src), "--out", str(out), "--jobs", "1", "--no-progress"]) == 0
    doc = json.loads((out / ".masker-scrub" / "report.json").read_text())
    spans = [
        (int(round(s["start_ms"] * rate / 1000)), int(round(s["end_ms"] * rate / 1000)))
        for s in doc["files"][0]["spans"]
    ]
    return sf.read(out / "a.wav", dtype="int16")[0], spans


@pytest.mark.parametrize("rate", [8000, 48000])
def test_scrubbed_keys_under_talk_leave_nothing_a_loose_receiver_hears(tmp_path, rate):
    pcm, bed, tones = keys_under_talk(rate, seed=31)
    out, spans = scrub(tmp_path, pcm, rate)
    written = np.zeros(len(pcm), bool)
    for a, b in spans:
        written[a:b] = True
    assert written.mean() < 0.9  # talk between the keys keeps its keypad bands
    # the reference: the key-free bed through the same band-stop where the file changed
    ref = np.where(written, bandstopped(bed, rate), bed)
    assert recoverable_keys(out.astype(np.float64), ref, tones, rate) == []
    assert recoverable_keys(pcm.astype(np.float64), bed, tones, rate) != []
    assert np.array_equal(out[~written], pcm[~written])
