"""ITU-T G.711 mu-law and A-law, exact to the standard, via lookup tables.

Encoding tables cover every int16 value (65,536 entries), decoding tables every
code (256 entries), so a frame of any shape converts with one numpy index.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

_SEG_END_ULAW = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_SEG_END_ALAW = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def _build_ulaw_encode() -> NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 14-bit magnitude domain
    negative = pcm < 0
    mag = np.where(negative, -pcm, pcm)
    mag = np.minimum(mag, 8158) + 0x21  # 8159 would overflow into "segment 8"; both give 0x80
    seg = np.searchsorted(_SEG_END_ULAW, mag, side="left")
    code = (seg << 4) | ((mag >> (seg + 1)) & 0x0F)
    mask = np.where(negative, 0x7F, 0xFF)
    return (code ^ mask).astype(np.uint8)


def _build_ulaw_decode() -> NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _build_alaw_encode() -> NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 3  # 13-bit domain
    negative = pcm < 0
    mag = np.where(negative, -pcm - 1, pcm)
    seg = np.searchsorted(_SEG_END_ALAW, mag, side="left")
    shift = np.where(seg < 2, 1, seg)
    code = (seg << 4) | ((mag >> shift) & 0x0F)
    mask = np.where(negative, 0x55, 0xD5)
    return (code ^ mask).astype(np.uint8)


def _build_alaw_decode() -> NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


ULAW_ENCODE = _build_ulaw_encode()
ULAW_DECODE = _build_ulaw_decode()
ALAW_ENCODE = _build_alaw_encode()
ALAW_DECODE = _build_alaw_decode()

#: Codes that decode to silence, used to fill gaps.
ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5


def ulaw_encode(pcm: ArrayLike) -> NDArray[np.uint8]:
    """int16 linear PCM (any shape) -> uint8 mu-law codes."""
    return ULAW_ENCODE[np.asarray(pcm, dtype=np.int16).astype(np.int32) + 32768]


def ulaw_decode(codes: ArrayLike | bytes) -> NDArray[np.int16]:
    """uint8 mu-law codes (array or bytes) -> int16 linear PCM."""
    if isinstance(codes, bytes | bytearray | memoryview):
        codes = np.frombuffer(codes, dtype=np.uint8)
    return ULAW_DECODE[np.asarray(codes, dtype=np.uint8)]


def alaw_encode(pcm: ArrayLike) -> NDArray[np.uint8]:
    """int16 linear PCM (any shape) -> uint8 A-law codes."""
    return ALAW_ENCODE[np.asarray(pcm, dtype=np.int16).astype(np.int32) + 32768]


def alaw_decode(codes: ArrayLike | bytes) -> NDArray[np.int16]:
    """uint8 A-law codes (array or bytes) -> int16 linear PCM."""
    if isinstance(codes, bytes | bytearray | memoryview):
        codes = np.frombuffer(codes, dtype=np.uint8)
    return ALAW_DECODE[np.asarray(codes, dtype=np.uint8)]


def encode(pcm: ArrayLike, law: str) -> NDArray[np.uint8]:
    """Encode with `law` in {"ulaw", "alaw"} (also accepts PCMU/PCMA)."""
    return _ENCODERS[law.lower()](pcm)


def decode(codes: ArrayLike | bytes, law: str) -> NDArray[np.int16]:
    """Decode with `law` in {"ulaw", "alaw"} (also accepts PCMU/PCMA)."""
    return _DECODERS[law.lower()](codes)


_ENCODERS = {"ulaw": ulaw_encode, "pcmu": ulaw_encode, "alaw": alaw_encode, "pcma": alaw_encode}
_DECODERS = {"ulaw": ulaw_decode, "pcmu": ulaw_decode, "alaw": alaw_decode, "pcma": alaw_decode}
