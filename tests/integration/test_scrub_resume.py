"""`masker scrub` killed mid-run (SIGKILL to its process group): resume and in-place safety."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from masker.scrub import verify
from tests.support.paths import PROJECT_ROOT
from tests.support.scrub import call_with_keys, write_wav

ROOT = PROJECT_ROOT
N_FILES = 16


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    src = tmp_path_factory.mktemp("resume") / "archive"
    rng = np.random.default_rng(11)
    for k in range(N_FILES):
        x, _ = call_with_keys(20, "4111", rng)
        (src / f"d{k % 3}").mkdir(parents=True, exist_ok=True)
        write_wav(src / f"d{k % 3}" / f"call{k:02d}.wav", x, 8000, "ULAW")
    return src


def _scrub(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "masker.cli",
            "scrub",
            *map(str, args),
            "--jobs",
            "1",
            "--no-progress",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _kill_after(proc: subprocess.Popen, manifest: Path, lines: int, extra_s: float) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.exists() and manifest.read_text().count("\n") >= lines:
            break
        time.sleep(0.01)
    time.sleep(extra_s)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its workers
    proc.wait()
    return manifest.read_text().count("\n") if manifest.exists() else 0


def _finish(*args) -> dict:
    p = _scrub(*args)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()[-2000:]
    return p


def test_resume_after_kill_skips_finished_files(archive, tmp_path):
    out = tmp_path / "out"
    manifest = out / ".masker-scrub" / "manifest.jsonl"
    done = _kill_after(_scrub(archive, "--out", out), manifest, 3, 0.05)
    assert 3 <= done < N_FILES
    for p in out.rglob("*.wav"):  # whatever got its final name is a verified result
        assert verify.audio_file_digits(str(p))["spandsp"] == 0
    _finish(archive, "--out", out)
    summary = json.loads((out / ".masker-scrub" / "report.json").read_text())["summary"]
    assert summary["skipped"] >= done
    assert summary["skipped"] + summary["clean"] == N_FILES
    assert not list(out.rglob("*.part"))
    assert len(list(out.rglob("*.wav"))) == N_FILES


def test_kill_during_in_place_leaves_original_or_verified_result(archive, tmp_path):
    ref = tmp_path / "ref"
    _finish(archive, "--out", ref)
    work = tmp_path / "work"
    shutil.copytree(archive, work)
    originals = {p.relative_to(work): p.read_bytes() for p in work.rglob("*.wav")}
    results = {rel: (ref / rel).read_bytes() for rel in originals}
    state = tmp_path / "state"
    manifest = state / "manifest.jsonl"
    rng = np.random.default_rng(1)
    for attempt in range(3):
        _kill_after(
            _scrub(work, "--in-place", "--state-dir", state),
            manifest,
            1 + 4 * attempt,
            float(rng.uniform(0, 0.2)),
        )
        for rel, before in originals.items():
            now = (work / rel).read_bytes()
            assert now in (before, results[rel]), f"{rel} is neither original nor result"
    _finish(work, "--in-place", "--state-dir", state)
    for rel in originals:
        assert (work / rel).read_bytes() == results[rel]
    assert not list(work.rglob("*.part"))


def test_a_result_placed_in_place_before_its_manifest_line_is_not_scrubbed_again(archive, tmp_path):
    """The window a kill can hit: a worker has replaced the original with its clean
    result, the main process has not yet written the manifest line.  The next run
    must know the file as a result (placed.jsonl) and leave it alone."""
    work = tmp_path / "work"
    shutil.copytree(archive, work)
    state = tmp_path / "state"
    _finish(work, "--in-place", "--state-dir", state)
    results = {p: p.read_bytes() for p in work.rglob("*.wav")}
    (state / "manifest.jsonl").write_text("")  # every manifest line lost to the kill
    _finish(work, "--in-place", "--state-dir", state)
    summary = json.loads((state / "report.json").read_text())["summary"]
    assert summary["skipped"] == N_FILES
    assert {p: p.read_bytes() for p in work.rglob("*.wav")} == results
