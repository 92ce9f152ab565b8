"""bench/detector.py runs end to end (a smoke test: the benchmark is not a timed test)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT


def test_bench_builds_the_spandsp_harness_and_prints_every_figure():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.detector",
            "--calls",
            "8",
            "--seconds",
            "0.05",
            "--files",
            "0",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "7 key presses per spandsp, 7 per our detector" in out
    for label in (
        "spandsp dtmf_rx (C), one call",
        "detector, one call",
        "detector, batch of 8 calls",
    ):
        assert re.search(re.escape(label) + r".*\d[\d,]*\s+\d+\.\d{3}x", out), out
    assert re.search(r"ratio batch/spandsp: \d+\.\d{3}", out)
    assert re.search(r"masker, batch of 8 calls: +\d+\.\d us per call per 20 ms frame", out)
