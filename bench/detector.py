"""`make bench`: detector throughput next to spandsp's dtmf_rx, on one core, same audio.

Throughput is channel-seconds of audio per CPU-second (time.process_time here,
CLOCK_PROCESS_CPUTIME_ID in the C harness), with the process pinned to one CPU
and numeric libraries held to one thread, so the figures compare like for like:

- spandsp dtmf_rx: Debian's libspandsp through a tiny C harness
  (bench/spandsp_bench.c, compiled here into bench/build/), one call, 20 ms frames;
- our detector streaming one call (DtmfDetector, 20 ms frames);
- our detector on a batch of 1,000 calls (BatchDtmfDetector, one (1000 x 160) tick
  per 20 ms, as the live service runs), each call at a different point of the same
  audio; and the same batch fed 100 ms per call at a time (1000 x 800), as a job
  analysing recordings in bulk would;
- the masker's cost per call per 20 ms frame, one call and a batch of 1,000.

The audio is the bundled example call (speech with keyed digits between).
Only the detector/masker calls are timed, not the slicing of frames for them.

    python -m bench.detector [--calls 1000] [--seconds 2] [--audio FILE.wav]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads: one core means one thread

import argparse  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
AUDIO = ROOT / "fixtures" / "audio" / "example_call.wav"
C_SOURCE = ROOT / "bench" / "spandsp_bench.c"
BUILD = ROOT / "bench" / "build"
RATE = 8000
FRAME = 160
#: Block per call for bulk analysis of recordings (the detector's own chunk size).
BULK_BLOCK = 800


@dataclass
class Result:
    name: str
    audio_s: float
    cpu_s: float
    digits: int | None = None

    @property
    def throughput(self) -> float:
        """Channel-seconds of audio per CPU-second."""
        return self.audio_s / self.cpu_s


def pin_to_one_core() -> int:
    """Run this process (and the C harness it starts) on one CPU; returns it."""
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def load_audio(path: Path) -> np.ndarray:
    """A mono 8 kHz WAV as int16, cut to whole 20 ms frames."""
    pcm, rate = sf.read(path, dtype="int16")
    if rate != RATE or pcm.ndim != 1:
        raise SystemExit(f"{path}: expected 8 kHz mono")
    return pcm[: len(pcm) // FRAME * FRAME]


def build_spandsp_harness() -> Path:
    """Compile bench/spandsp_bench.c against Debian's libspandsp (when stale)."""
    exe = BUILD / "spandsp_bench"
    if exe.exists() and exe.stat().st_mtime >= C_SOURCE.stat().st_mtime:
        return exe
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise SystemExit("bench: no C compiler (install gcc)")
    BUILD.mkdir(parents=True, exist_ok=True)
    cmd = [cc, "-O2", "-Wall", "-o", str(exe), str(C_SOURCE), "-lspandsp", "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench: cannot build the spandsp harness (libspandsp-dev?):\n"
                         f"{proc.stderr.strip()}")
    return exe


def run_spandsp(exe: Path, pcm: np.ndarray, min_cpu_s: float) -> Result:
    raw = BUILD / "bench_audio.raw"
    pcm.astype("=i2").tofile(raw)
    passes = 50
    while True:
        out = subprocess.run([str(exe), str(raw), str(passes)], capture_output=True,
                             text=True, check=True).stdout.split()
        audio_s, cpu_s, digits = float(out[0]), float(out[1]), int(out[2])
        if cpu_s >= min_cpu_s or passes > 10**7:
            return Result("spandsp dtmf_rx (C), one call", audio_s, cpu_s, digits)
        passes = int(passes * max(2.0, 1.2 * min_cpu_s / max(cpu_s, 1e-6)))


def run_detector_streaming(pcm: np.ndarray, min_cpu_s: float) -> Result:
    from dsp.dtmf_detector import DtmfDetector

    frames = pcm.reshape(-1, FRAME)
    cpu = audio = 0.0
    digits = None
    while cpu < min_cpu_s:
        det = DtmfDetector(RATE)
        found = 0
        t0 = time.process_time()
        for f in frames:
            found += len(det.process(f))
        found += len(det.flush())
        cpu += time.process_time() - t0
        audio += len(pcm) / RATE
        digits = found if digits is None else digits
    return Result("detector, one call (20 ms frames)", audio, cpu, digits)


def _call_offsets(n_calls: int, n_frames: int) -> np.ndarray:
    """Where in the audio each call starts, spread so calls are in different states."""
    return (np.arange(n_calls) * 37) % n_frames


def run_batch(make, pcm: np.ndarray, n_calls: int, min_cpu_s: float,
              block: int = FRAME) -> tuple[float, float]:
    """(audio channel-seconds, CPU seconds) of `make(n_calls).process` over whole ticks
    of `block` samples per call (20 ms as the live service runs; longer blocks for
    recordings analysed in bulk)."""
    n_frames = len(pcm) // FRAME
    offsets = _call_offsets(n_calls, n_frames) * FRAME
    span = np.arange(block)

    def tick(t: int) -> np.ndarray:
        return pcm[(offsets[:, None] + t * block + span) % len(pcm)]

    batch = make(n_calls)
    for t in range(5):  # warm-up: first-touch allocations
        batch.process(tick(t))
    cpu = 0.0
    ticks = 0
    while cpu < min_cpu_s or ticks * block < len(pcm):
        frames = tick(ticks + 5)
        t0 = time.process_time()
        batch.process(frames)
        cpu += time.process_time() - t0
        ticks += 1
    return ticks * n_calls * block / RATE, cpu


def run_masker_streaming(pcm: np.ndarray, min_cpu_s: float) -> tuple[float, float]:
    from dsp.masker import StreamingMasker

    frames = pcm.reshape(-1, FRAME)
    cpu = 0.0
    n = 0
    while cpu < min_cpu_s:
        m = StreamingMasker(RATE)
        t0 = time.process_time()
        for f in frames:
            m.process(f)
        cpu += time.process_time() - t0
        n += len(frames)
    return n * FRAME / RATE, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.detector", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="batch size (default 1000)")
    parser.add_argument("--audio", type=Path, default=AUDIO,
                        help="8 kHz mono WAV to run (default: the bundled example call)")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="minimum CPU seconds per measurement (default 2)")
    args = parser.parse_args(argv)

    cpu = pin_to_one_core()
    pcm = load_audio(args.audio)
    exe = build_spandsp_harness()
    from dsp.dtmf_detector import BatchDtmfDetector
    from dsp.masker import BatchMasker

    spandsp = run_spandsp(exe, pcm, args.seconds)
    stream = run_detector_streaming(pcm, args.seconds)
    audio, cpu_s = run_batch(lambda n: BatchDtmfDetector(n, RATE), pcm, args.calls, args.seconds)
    batch = Result(f"detector, batch of {args.calls} calls", audio, cpu_s)
    bulk_audio, bulk_cpu = run_batch(lambda n: BatchDtmfDetector(n, RATE), pcm, args.calls,
                                     args.seconds, block=BULK_BLOCK)
    bulk = Result(f"  same, {BULK_BLOCK * 1000 // RATE} ms blocks (recordings)", bulk_audio,
                  bulk_cpu)
    m_audio, m_cpu = run_batch(lambda n: BatchMasker(n, RATE), pcm, args.calls, args.seconds)
    s_audio, s_cpu = run_masker_streaming(pcm, args.seconds)

    def frames_of(audio_s: float) -> float:
        return audio_s * RATE / FRAME

    print(f"DTMF detector benchmark: one core (CPU {cpu}), one thread; audio {args.audio.name} "
          f"({len(pcm) / RATE:.2f} s, speech and {spandsp.digits} key presses per spandsp, "
          f"{stream.digits} per our detector)")
    print(f"{'':42s}{'channel-s per CPU-s':>22s}{'vs spandsp':>12s}")
    for r in (spandsp, stream, batch, bulk):
        print(f"{r.name:42s}{r.throughput:22,.0f}{r.throughput / spandsp.throughput:11.3f}x")
    print(f"ratio batch/spandsp: {batch.throughput / spandsp.throughput:.3f} in 20 ms ticks "
          f"(the live service), {bulk.throughput / spandsp.throughput:.3f} in "
          f"{BULK_BLOCK * 1000 // RATE} ms blocks")
    print(f"masker, batch of {args.calls} calls: "
          f"{m_cpu / frames_of(m_audio) * 1e6:8.1f} us per call per 20 ms frame "
          f"({m_audio / m_cpu:,.0f} channel-s per CPU-s)")
    print(f"masker, one call:{'':17s}{s_cpu / frames_of(s_audio) * 1e6:8.1f} us per 20 ms frame "
          f"({s_audio / s_cpu:,.0f} channel-s per CPU-s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
