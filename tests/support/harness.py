"""Helpers for the offline-harness tests: write generated WAVs, run the real `masker` CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from dsp import g711
from dsp.testsignals import to_int16
from masker.offline.wavfile import WavReader, WavWriter
from tests.support.paths import PROJECT_ROOT

MASKER = str(Path(sys.executable).parent / "masker")
SPEECH_DIR = PROJECT_ROOT / "fixtures" / "audio" / "speech"


def masker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the installed `masker` console script; text stdout/stderr."""
    return subprocess.run(
        [MASKER, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


def write_wav(path, pcm16: np.ndarray, rate: int = 8000, encoding: str = "pcm16") -> None:
    """int16 samples, (frames,) or (frames, channels), as a WAV in `encoding`.

    For G.711 the samples are encoded to codes, so pass them after a round trip
    in the same law to have the file hold exactly these samples.
    """
    x = np.asarray(pcm16)
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    native = g711.encode(x, encoding) if encoding in ("ulaw", "alaw") else to_int16(x)
    with WavWriter(path, rate, x.shape[1], encoding) as w:
        w.write(native)


def read_wav(path) -> tuple[np.ndarray, np.ndarray, object]:
    """(native samples, int16 samples, WavInfo) of a whole file."""
    with WavReader(path) as r:
        blocks = list(r.blocks(1 << 16))
        info = r.info
    return (
        np.concatenate([b.native for b in blocks]),
        np.concatenate([b.pcm16 for b in blocks]),
        info,
    )


def speech_clips(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`n` real speech recordings (8 kHz int16) from the bundled fixtures, drawn at random."""
    import soundfile as sf

    files = sorted(SPEECH_DIR.glob("*.wav"))
    picks = rng.choice(len(files), size=n, replace=n > len(files))
    return [sf.read(files[i], dtype="int16")[0] for i in picks]


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed run (asserts there is exactly one, no traceback)."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]
