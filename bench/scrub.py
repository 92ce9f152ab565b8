"""`masker scrub` throughput: channel-seconds of audio per CPU-second, 1 and 2 jobs.

The archive is built from the shared speech set (FSDD, 8 kHz; falls back to
fixtures/audio/speech) with keys mixed in: mu-law WAV calls, as a recording
archive holds them.  The figure includes reading, hashing, masking, writing,
fsync and the spandsp read-back of every output (CPU summed over the workers,
as each job reports it, plus the parent).  Beside it: spandsp's dtmf_rx
detection-only rate on the same audio (bench/spandsp_bench.c, one core).

    python -m bench.scrub [--calls 24] [--seconds 120]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from dsp import testsignals  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPEECH = [Path("/work/shared/fixtures/speech"), ROOT / "fixtures" / "audio" / "speech"]


def speech_files() -> list[Path]:
    for d in SPEECH:
        files = sorted(d.glob("*.wav"))
        if files:
            return files
    raise SystemExit("bench: no speech set")


def build_archive(dest: Path, calls: int, seconds: int, seed: int = 0) -> np.ndarray:
    """Write `calls` mu-law calls of speech with a 16-digit card and CVV keyed in."""
    rng = np.random.default_rng(seed)
    files = speech_files()
    everything = []
    for k in range(calls):
        parts, n = [], 0
        while n < seconds * 8000:
            x, rate = sf.read(files[int(rng.integers(len(files)))], dtype="float64")
            if rate != 8000:
                continue
            parts += [x * 16000, np.zeros(int(rng.integers(800, 4000)))]
            n += len(x) + len(parts[-1])
        x = np.concatenate(parts)[: seconds * 8000]
        for at, keys in ((0.3, "4111111111111111"), (0.7, "123")):
            sig = testsignals.random_keys_signal(
                keys, rng, on_ms=(60, 150), off_ms=(60, 200), level_dbm0=(-20, -3)
            )
            s = int(at * len(x))
            x[s : s + len(sig.samples)] = sig.samples[: len(x) - s]
        pcm = testsignals.to_int16(x)
        (dest / f"d{k % 4}").mkdir(parents=True, exist_ok=True)
        sf.write(dest / f"d{k % 4}" / f"call{k:03d}.wav", pcm, 8000, subtype="ULAW")
        everything.append(testsignals.g711_roundtrip(pcm, "ulaw"))
    return np.concatenate(everything)


def scrub(src: Path, out: Path, jobs: int) -> dict:
    from masker.scrub.runner import Options, run

    shutil.rmtree(out, ignore_errors=True)
    summ, results, _ = run(Options([str(src)], str(out), jobs=jobs, progress=False))
    assert summ["clean"] == summ["files"], summ
    return summ


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=24)
    ap.add_argument("--seconds", type=int, default=120)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scrub-") as tmp:
        src = Path(tmp) / "archive"
        pcm = build_archive(src, args.calls, args.seconds)
        scrub(src, Path(tmp) / "warm", 1)  # imports, page cache
        one = scrub(src, Path(tmp) / "out1", 1)
        two = scrub(src, Path(tmp) / "out2", 2)
        print(
            f"archive: {args.calls} mu-law calls x {args.seconds} s "
            f"({one['channel_seconds']:.0f} channel-s), keys in every call"
        )
        print(
            f"{'masker scrub, 1 job':<40} {one['channel_s_per_cpu_s']:>8,} channel-s per CPU-s"
            f"   {one['channel_seconds'] / one['wall_s']:>8,.0f} per wall-s"
        )
        print(
            f"{'masker scrub, 2 jobs':<40} {two['channel_s_per_cpu_s']:>8,} channel-s per CPU-s"
            f"   {two['channel_seconds'] / two['wall_s']:>8,.0f} per wall-s"
            f"  ({one['wall_s'] / two['wall_s']:.2f}x 1 job)"
        )
        try:
            from bench.detector import build_spandsp_harness, pin_to_one_core, run_spandsp

            pin_to_one_core()
            pcm = pcm[: len(pcm) // 160 * 160]
            r = run_spandsp(build_spandsp_harness(), pcm, 2.0)
            print(
                f"{'spandsp dtmf_rx detection only (C)':<40} {r.throughput:>8,.0f} "
                "channel-s per CPU-s"
            )
        except SystemExit as exc:
            print(f"spandsp harness unavailable: {exc}")


if __name__ == "__main__":
    main()
