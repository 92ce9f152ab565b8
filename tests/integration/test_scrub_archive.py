"""`masker scrub` over a generated archive of mixed formats (one run, many checks)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from masker.cli import main
from masker.scrub import channel_masking, pcap, verify
from masker.scrub.audio import open_audio, to_pcm16
from tests.support.scrub import call_with_keys, make_archive

AUDIO = [
    "2023/jan/ulaw_8k.wav",
    "2023/jan/stereo_16k.wav",
    "2023/stereo_48k.wav",
    "2024/alaw_44k1.wav",
    "2024/mono_48k.flac",
    "2024/speech_only.wav",
]
CAPTURES = ["2024/call.pcap", "2024/call.pcapng"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("scrub")
    src, out = root / "archive", root / "clean"
    make_archive(src)
    code = main(["scrub", str(src), "--out", str(out), "--jobs", "2", "--no-progress"])
    doc = json.loads((out / ".masker-scrub" / "report.json").read_text())
    return {
        "src": src,
        "out": out,
        "code": code,
        "doc": doc,
        "files": {f["input"]: f for f in doc["files"]},
    }


def test_every_recording_is_clean_and_corrupt_ones_are_errors(run):
    files = run["files"]
    assert {k: f["status"] for k, f in files.items()} == {
        **{k: "clean" for k in AUDIO + CAPTURES},
        "2023/truncated.wav": "error",
        "2024/truncated.pcap": "error",
    }
    assert "truncated" in files["2023/truncated.wav"]["error"]
    assert "truncated" in files["2024/truncated.pcap"]["error"]
    assert run["code"] == 1  # errors make the run fail
    assert run["doc"]["summary"]["ignored"] == 1  # notes.txt


def test_outputs_mirror_the_tree_and_no_half_written_files(run):
    out = run["out"]
    made = sorted(
        str(p.relative_to(out))
        for p in out.rglob("*")
        if p.is_file() and ".masker-scrub" not in p.parts
    )
    assert made == sorted(AUDIO + CAPTURES)


def test_every_key_masked_for_both_independent_receivers(run):
    for rel in AUDIO[:-1]:
        assert verify.audio_file_digits(str(run["src"] / rel))["spandsp"] > 0, rel
        assert verify.audio_file_digits(str(run["out"] / rel), multimon=True) == {
            "spandsp": 0,
            "multimon": 0,
        }, rel
        assert run["files"][rel]["keys_masked"] == 4, rel


def _span_mask(spans, channels, frames, rate):
    mask = np.zeros((frames, channels), bool)
    for s in spans:
        a = max(0, math.floor(s["start_ms"] * rate / 1000) - 1)
        b = math.ceil(s["end_ms"] * rate / 1000) + 1
        mask[a:b, s["channel"]] = True
    return mask


@pytest.mark.parametrize("rel", AUDIO)
def test_nothing_changes_outside_the_masked_spans(run, rel):
    a, b = open_audio(str(run["src"] / rel)), open_audio(str(run["out"] / rel))
    assert (a.rate, a.channels, a.frames, a.encoding) == (b.rate, b.channels, b.frames, b.encoding)
    inside = _span_mask(run["files"][rel]["spans"], a.channels, a.frames, a.rate)
    same = np.asarray(a.native) == np.asarray(b.native)
    assert same[~inside].all(), rel  # bit-exact PCM, code-exact G.711, outside the spans
    assert not same[inside].all() or rel.endswith("speech_only.wav")
    if rel.endswith(".wav"):  # headers and every byte outside the data chunk untouched
        x, y = (run["src"] / rel).read_bytes(), (run["out"] / rel).read_bytes()
        assert x[: a.data_offset] == y[: a.data_offset]
        assert len(x) == len(y)


def _records(path):
    cap = pcap.read_capture(str(path))
    return [r for r in cap.records if r.frame_at >= 0]


@pytest.mark.parametrize("rel", CAPTURES)
def test_capture_events_removed_info_blanked_timing_kept(run, rel):
    before, after = _records(run["src"] / rel), _records(run["out"] / rel)
    f = run["files"][rel]
    assert f["events_removed"] == 8 and f["info_blanked"] == 2
    assert len(after) == len(before) - 8
    kept = [
        r
        for r in before
        if pcap._rtp_header(pcap.locate(r.linktype, r.frame).payload(r.frame)) is None
        or pcap._rtp_header(pcap.locate(r.linktype, r.frame).payload(r.frame))[0] != 101
    ]
    assert len(kept) == len(after)
    changed = 0
    for x, y in zip(kept, after, strict=True):
        hx, hy = x.raw[: x.frame_at], y.raw[: y.frame_at]
        assert hx == hy  # timestamps and lengths exactly as captured
        assert len(x.frame) == len(y.frame)
        changed += x.frame != y.frame
    assert changed >= 4
    leaks = pcap.leaks(str(run["out"] / rel), multimon=True)
    assert leaks == {"spandsp": 0, "multimon": 0, "events": 0, "info_digits": 0, "bad_checksums": 0}
    assert pcap.leaks(str(run["src"] / rel))["spandsp"] > 0


def test_info_bodies_keep_their_length_and_content_length():
    body = b"Signal=5\r\nDuration=160\r\n"
    new, n = pcap.blank_digits("application/dtmf-relay", body)
    assert (new, n) == (b"Signal=X\r\nDuration=160\r\n", 1)
    assert pcap.blank_digits("application/dtmf", b"#\r\n") == (b"X\r\n", 1)
    assert pcap.blank_digits("application/vnd.nortelnetworks.digits", b"d=12\r\n")[0] == b"d=XX\r\n"


def test_reports_never_contain_digit_values(run):
    text = (run["out"] / ".masker-scrub" / "report.json").read_text()
    assert "Signal=5" not in text
    csv = (run["out"] / ".masker-scrub" / "report.csv").read_text().splitlines()
    assert csv[0].startswith("input,output,format,status")
    assert len(csv) == 11


def test_dry_run_reports_key_positions_and_writes_nothing(tmp_path, capsys):
    rng = np.random.default_rng(3)
    x, truth = call_with_keys(6, "1234", rng, rate=48000)
    sf.write(tmp_path / "a.wav", x, 48000, subtype="PCM_16")
    code = main(
        ["scrub", str(tmp_path / "a.wav"), "--dry-run", "--json", "--no-progress", "--jobs", "1"]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and not (tmp_path / ".masker-scrub").exists()
    keys = doc["files"][0]["keys"]
    assert len(keys) == 4
    for k, (a, b) in zip(keys, truth, strict=True):
        assert abs(k["start_ms"] - a / 48) < 15 and abs(k["end_ms"] - b / 48) < 15
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_lanes_give_the_same_output_as_one_pass():
    from dsp.tone_masker import BatchMasker

    rng = np.random.default_rng(5)
    x, _ = call_with_keys(30, "411111111111", rng, at=[7.9, 15.95, 23.99])
    m = BatchMasker(1, 8000)
    outs = [m.process(x[None, i : i + 8000])[0].audio for i in range(0, len(x), 8000)]
    outs.append(m.flush()[0].audio)
    single = np.concatenate(outs)[m.delay : m.delay + len(x)]
    lanes = channel_masking.run([x], 8000)[0]
    assert np.array_equal(lanes.audio, single)
    assert len(lanes.keys) == 12


def test_g711_decoding_matches_soundfile(run):
    af = open_audio(str(run["src"] / "2023/jan/ulaw_8k.wav"))
    ref, _ = sf.read(run["src"] / "2023/jan/ulaw_8k.wav", dtype="int16")
    assert np.array_equal(to_pcm16(np.asarray(af.native[:, 0]), "ulaw"), ref)


def test_unsupported_codec_is_reported_not_pretended(tmp_path):
    from tests.support.scrub import AGENT, CALLER, _frame, rtp, write_pcap

    pkts = [
        (1.0 + k * 0.02, _frame(CALLER, AGENT, rtp(9, k, k * 160, 7, bytes(160))))
        for k in range(20)
    ]
    write_pcap(tmp_path / "g722.pcap", pkts)
    code = main(
        [
            "scrub",
            str(tmp_path / "g722.pcap"),
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
            "--jobs",
            "1",
        ]
    )
    doc = json.loads((tmp_path / "o" / ".masker-scrub" / "report.json").read_text())
    f = doc["files"][0]
    assert code == 1 and f["status"] == "unsupported" and "G722" in f["error"]
    assert not Path(tmp_path / "o" / "g722.pcap").exists()
