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
- the masker's cost per call per 20 ms frame, one call and a batch of 1,000;
- the band-stop's cost (dsp.bandstop, the masker's action for spans that only may
  hold a key): the masker on a batch of 150 calls with and without it, at 8 and
  16 kHz (the example call resampled 2:1).

The audio is the bundled example call (speech with keyed digits between).
Only the detector/masker calls are timed, not the slicing of frames for them.

Then a table of hard cases (`--files N` keyed files each, seeded; 0 skips it),
ours beside spandsp and multimon-ng on the same audio:

- keys under louder speech (key-to-speech -10 to +3 dB, 16 keys a file): recall;
- keys with 4-10 ms breaks (150-300 ms keys): extra digits (splits);
- digits recoverable after masking (spandsp, multimon-ng, the loose receiver of
  tests/support/loose_receiver.py), keys -10 to +5 dB under speech and under
  synthetic music, at 40 and 20 ms look-ahead (the reference in band-stopped spans
  is the key-free bed through the same band-stop);
- talk-off, speech masked and speech band-stopped per minute, and the speech energy
  the band-stop removes, on the shared speech set (/work/shared/fixtures/speech,
  all 3,000 files; falls back to the bundled 300).

    python -m bench.detector [--calls 1000] [--seconds 2] [--audio FILE.wav] [--files 8]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads: one core means one thread

import argparse  # noqa: E402
import itertools  # noqa: E402
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
        raise SystemExit(
            f"bench: cannot build the spandsp harness (libspandsp-dev?):\n{proc.stderr.strip()}"
        )
    return exe


def run_spandsp(exe: Path, pcm: np.ndarray, min_cpu_s: float) -> Result:
    raw = BUILD / "bench_audio.raw"
    pcm.astype("=i2").tofile(raw)
    passes = 50
    while True:
        out = subprocess.run(
            [str(exe), str(raw), str(passes)], capture_output=True, text=True, check=True
        ).stdout.split()
        audio_s, cpu_s, digits = float(out[0]), float(out[1]), int(out[2])
        if cpu_s >= min_cpu_s or passes > 10**7:
            return Result("spandsp dtmf_rx (C), one call", audio_s, cpu_s, digits)
        passes = int(passes * max(2.0, 1.2 * min_cpu_s / max(cpu_s, 1e-6)))


def run_detector_streaming(pcm: np.ndarray, min_cpu_s: float) -> Result:
    from dsp.detector import DtmfDetector

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


def run_batch(
    make, pcm: np.ndarray, n_calls: int, min_cpu_s: float, block: int = FRAME
) -> tuple[float, float]:
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
    from dsp.tone_masker import StreamingMasker

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


SHARED_SPEECH = ROOT.parent / "shared" / "fixtures" / "speech"
BUNDLED_SPEECH = ROOT / "fixtures" / "audio" / "speech"


def speech_files() -> list[Path]:
    files = sorted(SHARED_SPEECH.glob("*.wav"))
    return files or sorted(BUNDLED_SPEECH.glob("*.wav"))


def _matched(truth: str, heard: str) -> int:
    """Keys of `truth` found in order in `heard` (longest common subsequence)."""
    from difflib import SequenceMatcher

    blocks = SequenceMatcher(None, truth, heard, autojunk=False).get_matching_blocks()
    return sum(b.size for b in blocks)


def _under_speech(seed: int, files: list[Path], ratio: tuple[float, float]):
    from dsp import testsignals as tg

    rng = np.random.default_rng(seed)
    keys = "".join(rng.choice(list(tg.KEYS), 16))
    clips = [sf.read(files[i], dtype="int16")[0] for i in rng.choice(len(files), 60)]
    return _keys_over(tg.talk_bed(clips, RATE * 12), keys, rng, ratio)


def _under_music(seed: int, ratio: tuple[float, float]):
    from dsp import testsignals as tg

    rng = np.random.default_rng(seed)
    keys = "".join(rng.choice(list(tg.KEYS), 16))
    return _keys_over(tg.music_bed(RATE * 12, RATE, rng), keys, rng, ratio)


def _keys_over(bed: np.ndarray, keys: str, rng: np.random.Generator, ratio: tuple[float, float]):
    """(keyed audio, key truths, key-free bed), after a G.711 round trip."""
    from dsp import testsignals as tg

    bed = tg.scale_to_dbm0(bed, rng.uniform(-22, -12))
    sig = tg.keys_under(bed, keys, rng, RATE, ratio_db=ratio)
    x = sig.samples + tg.white_noise(len(sig.samples), -60.0, rng)
    ref = tg.g711_roundtrip(tg.to_int16(np.resize(bed, len(x))))
    return tg.g711_roundtrip(tg.to_int16(x)), sig.tones, ref


def conditions_table(n_files: int) -> list[tuple[str, str, str, str]]:
    """Rows (case, ours, spandsp, multimon-ng) of the hard cases."""
    from collections import Counter

    from dsp import testsignals as tg
    from dsp.bandstop import bandstopped
    from dsp.detector import BatchDtmfDetector, detect
    from dsp.tone_masker import mask_signal_detail
    from masker.offline.receivers import multimon_digits, spandsp_digits
    from tests.support.loose_receiver import recoverable_keys

    files = speech_files()
    rows = []
    total = ours = sp = mm = 0
    for seed in range(n_files):
        pcm, tones, _ = _under_speech(1000 + seed, files, (-10.0, 3.0))
        truth = "".join(t.key for t in tones)
        total += len(tones)
        ours += _matched(truth, "".join(e.digit for e in detect(pcm)))
        sp += _matched(truth, spandsp_digits(pcm))
        mm += _matched(truth, multimon_digits(pcm))
    rows.append(
        (f"keys under louder speech, -10..+3 dB: found of {total}", str(ours), str(sp), str(mm))
    )
    total = ours = sp = mm = 0
    for seed in range(n_files):
        rng = np.random.default_rng(2000 + seed)
        keys = "".join(rng.choice(list(tg.KEYS), 6))
        sig = tg.random_keys_signal(keys, rng, on_ms=(150, 300), level_dbm0=(-20, -3))
        sig = tg.with_dropouts(sig, rng)
        x = sig.samples + tg.white_noise(len(sig.samples), -60.0, rng)
        pcm = tg.g711_roundtrip(tg.to_int16(x))
        total += len(keys)
        ours += len(detect(pcm)) - len(keys)
        sp += len(spandsp_digits(pcm)) - len(keys)
        mm += len(multimon_digits(pcm)) - len(keys)
    rows.append(
        (f"keys with 4-10 ms breaks: extra digits over {total}", str(ours), str(sp), str(mm))
    )
    beds = {
        "speech": lambda seed: _under_speech(3000 + seed, files, (-10.0, 5.0)),
        "music": lambda seed: _under_music(4000 + seed, (-10.0, 5.0)),
    }
    for (bed_name, make), lookahead in itertools.product(beds.items(), (40.0, 20.0)):
        loose = sp = mm = total = 0
        for seed in range(n_files):
            pcm, tones, bed = make(seed)
            res = mask_signal_detail(pcm, RATE, lookahead_ms=lookahead)
            out = res.audio
            covered = np.zeros(len(out), bool)
            for a, b in res.masked:
                covered[a:b] = True
            bed = bed.astype(np.float64)
            bed = tg.to_int16(bed + res.stop_gain * (bandstopped(bed, RATE) - bed))
            ref = np.where(covered, out, bed)
            keyed = {t.key for t in tones}
            total += len(tones)

            def beyond(receiver, out=out, ref=ref, keyed=keyed):
                extra = Counter(receiver(out)) - Counter(receiver(ref))
                return sum(v for k, v in extra.items() if k in keyed)

            sp += beyond(spandsp_digits)
            mm += beyond(multimon_digits)
            truth = [(t.key, t.start, t.end) for t in tones]
            loose += len(recoverable_keys(out, ref, truth, RATE))
        rows.append(
            (
                f"recoverable after masking of {total}: {bed_name}, {lookahead:.0f} ms ahead",
                f"{loose} (loose rx)",
                str(sp),
                str(mm),
            )
        )
    # talk-off and masked speech over the speech set, 50 calls side by side
    signals = [sf.read(f, dtype="int16")[0] for f in files]
    calls = 50
    streams = [np.concatenate(signals[i::calls]) for i in range(calls)]
    length = -(-max(map(len, streams)) // FRAME) * FRAME
    pcm = np.zeros((calls, length), np.int16)
    for i, st in enumerate(streams):
        pcm[i, : len(st)] = st
    from dsp.tone_masker import BatchMasker

    det, masker = BatchDtmfDetector(calls, RATE), BatchMasker(calls, RATE)
    digits = 0
    ticks = []
    for i in range(0, length, FRAME):
        digits += sum(map(len, det.process(pcm[:, i : i + FRAME])))
        ticks.append(masker.process(pcm[:, i : i + FRAME]))
    digits += sum(map(len, det.flush()))
    ticks.append(masker.flush())
    masked = sum(b - a for t in ticks for r in t for a, b in r.masked)
    stopped = sum(b - a for t in ticks for r in t for a, b in r.stopped)
    # energy of the speech where it was band-stopped, before and after
    gains = np.zeros(pcm.shape, np.float32)
    at = -masker.delay
    for t in ticks:
        for call, r in enumerate(t):
            if r.stop_gain is not None:
                gains[call, at : at + len(r.stop_gain)] = r.stop_gain
        at += len(t[0].audio)
    x = pcm.astype(np.float64)
    inside = gains > 0
    kept = x + gains * (bandstopped(x, RATE) - x)
    removed_db = 10 * np.log10(np.sum(x[inside] ** 2) / np.sum(kept[inside] ** 2))
    speech_s = sum(map(len, signals)) / RATE
    sp_off = sum(len(spandsp_digits(st)) for st in streams)
    mm_off = sum(len(multimon_digits(st)) for st in streams)
    rows.append(
        (
            f"talk-off, {len(files)} speech files ({speech_s / 60:.0f} min)",
            str(digits),
            str(sp_off),
            str(mm_off),
        )
    )
    rows.append(
        ("speech masked, s per minute of speech", f"{masked / RATE / speech_s * 60:.2f}", "", "")
    )
    rows.append(
        (
            "speech band-stopped, s per minute of speech",
            f"{stopped / RATE / speech_s * 60:.2f}",
            "",
            "",
        )
    )
    rows.append(("  its energy removed there, dB", f"{removed_db:.1f}", "", ""))
    return rows


def band_stop_cost(
    pcm: np.ndarray, n_calls: int, min_cpu_s: float
) -> list[tuple[int, float, float]]:
    """(rate, us per call per 20 ms frame of the batch masker with its band-stop, and
    without) over `pcm` (8 kHz; 2:1 resampled for 16 kHz), `n_calls` calls a batch."""
    from scipy.signal import resample_poly

    from dsp.keypad import to_int16
    from dsp.tone_masker import BatchMasker

    costs = []
    for rate in (8000, 16000):
        audio = pcm if rate == RATE else to_int16(resample_poly(pcm.astype(np.float64), 2, 1))
        block = rate // 50
        per_frame = []
        for on in (True, False):
            audio_s, cpu = run_batch(
                lambda n, r=rate, on=on: BatchMasker(n, r, band_stop=on),
                audio,
                n_calls,
                min_cpu_s,
                block=block,
            )
            per_frame.append(cpu / (audio_s * RATE / block) * 1e6)  # run_batch counts 8 kHz
        costs.append((rate, per_frame[0], per_frame[1]))
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.detector", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--calls", type=int, default=1000, help="batch size (default 1000)")
    parser.add_argument(
        "--audio",
        type=Path,
        default=AUDIO,
        help="8 kHz mono WAV to run (default: the bundled example call)",
    )
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="minimum CPU seconds per measurement (default 2)"
    )
    parser.add_argument(
        "--files",
        type=int,
        default=8,
        help="keyed files per hard case in the conditions table (0: skip)",
    )
    args = parser.parse_args(argv)

    cpu = pin_to_one_core()
    pcm = load_audio(args.audio)
    exe = build_spandsp_harness()
    from dsp.detector import BatchDtmfDetector
    from dsp.tone_masker import BatchMasker

    spandsp = run_spandsp(exe, pcm, args.seconds)
    stream = run_detector_streaming(pcm, args.seconds)
    audio, cpu_s = run_batch(lambda n: BatchDtmfDetector(n, RATE), pcm, args.calls, args.seconds)
    batch = Result(f"detector, batch of {args.calls} calls", audio, cpu_s)
    bulk_audio, bulk_cpu = run_batch(
        lambda n: BatchDtmfDetector(n, RATE), pcm, args.calls, args.seconds, block=BULK_BLOCK
    )
    bulk = Result(
        f"  same, {BULK_BLOCK * 1000 // RATE} ms blocks (recordings)", bulk_audio, bulk_cpu
    )
    m_audio, m_cpu = run_batch(lambda n: BatchMasker(n, RATE), pcm, args.calls, args.seconds)
    s_audio, s_cpu = run_masker_streaming(pcm, args.seconds)

    def frames_of(audio_s: float) -> float:
        return audio_s * RATE / FRAME

    print(
        f"DTMF detector benchmark: one core (CPU {cpu}), one thread; audio {args.audio.name} "
        f"({len(pcm) / RATE:.2f} s, speech and {spandsp.digits} key presses per spandsp, "
        f"{stream.digits} per our detector)"
    )
    print(f"{'':42s}{'channel-s per CPU-s':>22s}{'vs spandsp':>12s}")
    for r in (spandsp, stream, batch, bulk):
        print(f"{r.name:42s}{r.throughput:22,.0f}{r.throughput / spandsp.throughput:11.3f}x")
    print(
        f"ratio batch/spandsp: {batch.throughput / spandsp.throughput:.3f} in 20 ms ticks "
        f"(the live service), {bulk.throughput / spandsp.throughput:.3f} in "
        f"{BULK_BLOCK * 1000 // RATE} ms blocks"
    )
    print(
        f"masker, batch of {args.calls} calls: "
        f"{m_cpu / frames_of(m_audio) * 1e6:8.1f} us per call per 20 ms frame "
        f"({m_audio / m_cpu:,.0f} channel-s per CPU-s)"
    )
    print(
        f"masker, one call:{'':17s}{s_cpu / frames_of(s_audio) * 1e6:8.1f} us per 20 ms frame "
        f"({s_audio / s_cpu:,.0f} channel-s per CPU-s)"
    )
    for rate, on, off in band_stop_cost(pcm, 150, args.seconds):
        print(
            f"masker, batch of 150 calls at {rate // 1000} kHz: {on:6.1f} us per call per "
            f"20 ms frame, {off:6.1f} without the band-stop "
            f"({(on - off) * 50 / 1e3:.2f} ms CPU per call-second for it)"
        )
    if args.files > 0:
        print(f"\nhard cases ({args.files} seeded files each)")
        print(f"{'':58s}{'ours':>14s}{'spandsp':>9s}{'multimon':>10s}")
        for case, ours, sp, mm in conditions_table(args.files):
            print(f"{case:58s}{ours:>14s}{sp:>9s}{mm:>10s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
