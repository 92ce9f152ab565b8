"""Generate fixtures/audio/example_call.wav: a short call with keypad digits between speech.

The example is deterministic (fixed speech files, fixed seed), so regenerating
it gives the same bytes.  The speech is from the Free Spoken Digit Dataset
(fixtures/audio/speech/, see its ATTRIBUTION.md).  The keyed digits are an
arbitrary reference, not card data.

    .venv/bin/python scripts/make_example.py [OUT.wav]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from dsp.testsignals import dtmf, ms, white_noise
from masker.offline.wavfile import WavWriter

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "fixtures" / "audio" / "speech"
OUT = ROOT / "fixtures" / "audio" / "example_call.wav"
RATE = 8000
SEED = 20240601

#: (what happens, argument): speech clips by file name, key groups as strings.
SCRIPT = (
    ("speech", "3_jackson_0.wav"),
    ("speech", "7_theo_0.wav"),
    ("pause", 250),
    ("keys", "2580"),
    ("pause", 300),
    ("speech", "9_lucas_0.wav"),
    ("pause", 200),
    ("keys", "31#"),
    ("pause", 250),
    ("speech", "1_george_0.wav"),
    ("speech", "5_jackson_0.wav"),
)
KEY_ON_MS, KEY_OFF_MS, KEY_LEVEL_DBM0 = 90, 110, -9.0
NOISE_DBM0 = -62.0


def example_call() -> tuple[np.ndarray, list[tuple[int, int]]]:
    """int16 samples of the example and the (start, end) of every key press."""
    rng = np.random.default_rng(SEED)
    parts: list[np.ndarray] = [np.zeros(ms(150, RATE))]
    tones: list[tuple[int, int]] = []
    pos = len(parts[0])

    def add(samples: np.ndarray) -> None:
        nonlocal pos
        parts.append(samples)
        pos += len(samples)

    for kind, arg in SCRIPT:
        if kind == "speech":
            add(sf.read(SPEECH / arg, dtype="float64")[0] * 32768.0)
        elif kind == "pause":
            add(np.zeros(ms(arg, RATE)))
        else:
            for key in arg:
                n = ms(KEY_ON_MS, RATE)
                phases = tuple(rng.uniform(0, 2 * np.pi, 2))
                tones.append((pos, pos + n))
                add(dtmf(key, n, RATE, KEY_LEVEL_DBM0, 2.0, 0.0, phases))
                add(np.zeros(ms(KEY_OFF_MS, RATE)))
    x = np.concatenate(parts)
    x = x + white_noise(len(x), NOISE_DBM0, rng)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16), tones


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    pcm, tones = example_call()
    with WavWriter(out, RATE, 1, "pcm16") as w:
        w.write(pcm.reshape(-1, 1))
    print(f"{out}: {len(pcm) / RATE:.2f} s, {len(tones)} key presses")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
