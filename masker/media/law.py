"""G.711 code tables the media plane shares.

The caller's audio is buffered as G.711 codes (uint8) in the law of its first
audio packet and decoded once per tick for every call together: these are the
decode tables per codec name, the code of digital silence per law (what a gap is
filled with) and the code -> code tables for a caller that switches law
mid-call (`bytes.translate`).
"""

from __future__ import annotations

import numpy as np

from dsp import g711
from dsp.keypad import samples_per_ms

#: G.711 runs at 8,000 samples a second on every leg.
RATE = 8000
SAMPLES_PER_MS = samples_per_ms(RATE)

#: Codec name (as the SDP names it) -> the law dsp.g711 calls it.
G711_LAW: dict[str, str] = {"PCMU": "ulaw", "PCMA": "alaw"}
#: Codec name (as the SDP names it) -> code -> linear sample table.
DECODE: dict[str, np.ndarray] = {"PCMU": g711.ULAW_DECODE, "PCMA": g711.ALAW_DECODE}
#: The code of digital silence per law (what a gap in the caller's codes is filled with).
SILENCE: dict[str, int] = {
    law: int(np.abs(t.astype(np.int32)).argmin()) for law, t in DECODE.items()
}
#: (from law, to law) -> code -> code table, for bytes.translate.
TRANSCODE: dict[tuple[str, str], bytes] = {
    (a, b): g711.encode(DECODE[a], G711_LAW[b]).astype(np.uint8).tobytes()
    for a in DECODE
    for b in DECODE
    if a != b
}
