"""Recordings as audio files: WAV (any rate; PCM, float, mu-law, A-law), FLAC, Ogg.

WAV output is the input file byte for byte except the samples inside masked
spans: the file is copied and only those samples are rewritten in the data
chunk (headers and every other chunk, LIST/bext metadata included, stay).
G.711 samples are rewritten as codes, so untouched samples stay code-exact.
FLAC is rewritten through soundfile (lossless, so samples outside the spans
are unchanged); Ogg/Vorbis is lossy, so its output is re-encoded and reported
with ``exact_outside_spans: false``.

Detection runs at 8 or 16 kHz: files at those rates go through the masker as
they are (its own output fills the masked and band-stopped spans); any other
rate is brought to 8 kHz with scipy's polyphase resampler, the spans are mapped
back to the original rate (widened by `RESAMPLED_PAD_S` for the resampling
filter's spread) and filled there: masked spans with the masking tone (or
silence), band-stopped ones with the original through the keypad band-stop
(`dsp.bandstop`) at the file's own rate.
"""

from __future__ import annotations

import os
import shutil
import struct
from dataclasses import dataclass
from math import gcd

import numpy as np
import soundfile as sf

from dsp import g711
from dsp.keypad import to_int16
from masker.offline.wavfile import MAX_CHANNELS, MAX_SECONDS
from masker.scrub.channel_masking import merge_spans

DETECT_RATES = (8000, 16000)
RESAMPLED_PAD_S = 0.002
WAV_EXTS = (".wav", ".wave")
SF_EXTS = (".flac", ".ogg", ".oga")

#: WAV format tag + bits -> (encoding, bytes per sample)
_WAV_ENC = {
    (1, 8): ("pcm_u8", 1),
    (1, 16): ("pcm16", 2),
    (1, 24): ("pcm24", 3),
    (1, 32): ("pcm32", 4),
    (3, 32): ("float32", 4),
    (3, 64): ("float64", 8),
    (7, 8): ("ulaw", 1),
    (6, 8): ("alaw", 1),
}


class ScrubError(Exception):
    """A per-file problem (corrupt, truncated, unsupported): reported, never fatal."""


@dataclass
class AudioFile:
    path: str
    container: str  # "wav" | "flac" | "ogg"
    rate: int
    channels: int
    frames: int
    encoding: str
    native: np.ndarray  # (frames, channels): int16/int32/float/uint8 codes, or (f, c, 3) pcm24
    data_offset: int = 0
    subtype: str | None = None
    format: str | None = None

    @property
    def seconds(self) -> float:
        return self.frames / self.rate


def _wav_layout(path: str) -> tuple[int, int, int, int, int, int]:
    """(tag, channels, rate, bits, data_offset, data_bytes) of a checked WAV file."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise ScrubError("not a WAV file (no RIFF/WAVE header)")
        fmt = None
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                raise ScrubError("truncated WAV (no data chunk)")
            cid, csize = struct.unpack("<4sI", chunk)
            if cid == b"fmt ":
                body = fh.read(csize)
                if len(body) < max(16, csize):
                    raise ScrubError("truncated or malformed WAV (fmt chunk)")
                tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", body[:16])
                if tag == 0xFFFE and len(body) >= 26:
                    tag = struct.unpack("<H", body[24:26])[0]
                fmt = (tag, channels, rate, align, bits)
                fh.seek(csize & 1, os.SEEK_CUR)
            elif cid == b"data":
                if fmt is None:
                    raise ScrubError("malformed WAV (data before fmt chunk)")
                offset = fh.tell()
                break
            else:
                fh.seek(csize + (csize & 1), os.SEEK_CUR)
    tag, channels, rate, align, bits = fmt
    if (tag, bits) not in _WAV_ENC:
        raise ScrubError(f"unsupported WAV encoding (format tag 0x{tag:04x}, {bits} bits)")
    width = _WAV_ENC[(tag, bits)][1]
    if not 1 <= channels <= MAX_CHANNELS or align != channels * width or not 1000 <= rate <= 384000:
        raise ScrubError("malformed WAV header (channels, rate or block align)")
    if csize > size - offset:
        raise ScrubError(
            f"truncated WAV (header promises {csize} bytes of audio, file has {size - offset})"
        )
    if csize % align:
        raise ScrubError("truncated WAV (last sample frame incomplete)")
    return tag, channels, rate, bits, offset, csize


def open_audio(path: str) -> AudioFile:
    """Read a recording's samples (memory-mapped for WAV); ScrubError when it cannot be."""
    ext = os.path.splitext(path)[1].lower()
    if ext in WAV_EXTS:
        tag, channels, rate, bits, offset, nbytes = _wav_layout(path)
        enc, width = _WAV_ENC[(tag, bits)]
        frames = nbytes // (channels * width)
        if frames == 0:
            raise ScrubError("empty WAV (no audio)")
        if frames > MAX_SECONDS * rate:
            raise ScrubError("too long (more than 24 h of audio)")
        raw = np.memmap(path, dtype=np.uint8, mode="r", offset=offset, shape=(nbytes,))
        dtype = {"pcm16": "<i2", "pcm32": "<i4", "float32": "<f4", "float64": "<f8"}.get(enc)
        if dtype is not None:
            native = raw.view(dtype).reshape(frames, channels)
        elif enc == "pcm24":
            native = raw.reshape(frames, channels, 3)
        else:
            native = raw.reshape(frames, channels)
        return AudioFile(path, "wav", rate, channels, frames, enc, native, offset)
    try:
        info = sf.info(path)
        dtype = "int16" if info.subtype in ("PCM_16", "PCM_S8", "PCM_U8") else "float32"
        if info.subtype in ("PCM_24", "PCM_32"):
            dtype = "int32"
        data, rate = sf.read(path, dtype=dtype, always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise ScrubError(f"cannot read audio ({_first_line(exc)})") from None
    if len(data) == 0:
        raise ScrubError("empty or unreadable audio")
    if info.frames > 0 and len(data) < info.frames:
        raise ScrubError(f"truncated audio ({len(data)} of {info.frames} frames)")
    container = "flac" if info.format == "FLAC" else "ogg"
    enc = {"int16": "pcm16", "int32": "pcm32", "float32": "float32"}[dtype]
    return AudioFile(
        path,
        container,
        rate,
        data.shape[1],
        len(data),
        enc,
        data,
        subtype=info.subtype,
        format=info.format,
    )


def to_pcm16(native: np.ndarray, encoding: str) -> np.ndarray:
    """int16 view of native samples (any leading shape; pcm24 has a trailing axis of 3)."""
    if encoding in ("ulaw", "alaw"):
        return g711.decode(native, encoding)
    if encoding == "pcm_u8":
        return ((native.astype(np.int16) - 128) << 8).astype(np.int16)
    if encoding == "pcm16":
        return np.asarray(native, dtype=np.int16)
    if encoding == "pcm24":
        return (native[..., 1].astype(np.uint16) | (native[..., 2].astype(np.uint16) << 8)).view(
            np.int16
        )
    if encoding == "pcm32":
        return (np.asarray(native) >> 16).astype(np.int16)
    return to_int16(np.asarray(native, np.float64) * 32768.0)


def from_pcm16(pcm16: np.ndarray, encoding: str) -> np.ndarray:
    """Native samples for int16 PCM (inverse of to_pcm16)."""
    pcm16 = np.asarray(pcm16, dtype=np.int16)
    if encoding in ("ulaw", "alaw"):
        return g711.encode(pcm16, encoding)
    if encoding == "pcm_u8":
        return ((pcm16.astype(np.int32) >> 8) + 128).astype(np.uint8)
    if encoding == "pcm16":
        return pcm16
    if encoding == "pcm24":
        u = pcm16.view(np.uint16)
        return np.stack(
            [np.zeros_like(u, np.uint8), (u & 0xFF).astype(np.uint8), (u >> 8).astype(np.uint8)],
            axis=-1,
        )
    if encoding == "pcm32":
        return pcm16.astype(np.int32) << 16
    dtype = np.float64 if encoding == "float64" else np.float32
    return (pcm16.astype(dtype) / dtype(32768.0)).astype(dtype)


def resample(x: np.ndarray, rate: int, target: int, block_s: int = 60) -> np.ndarray:
    """`x` (1-D) from `rate` to `target` Hz with scipy's polyphase resampler, in blocks.

    Blocks start on multiples of the down-sampling factor and overlap by more
    than the filter's reach, so the result equals one call over the whole signal.
    """
    from scipy.signal import resample_poly

    if rate == target:
        return np.asarray(x, np.int16)
    g = gcd(rate, target)
    up, down = target // g, rate // g
    reach = 10 * max(up, down) // up + 2  # resample_poly's filter half-length, input samples
    pad = -(-reach // down) * down
    block = max(1, rate * block_s // down) * down
    n = len(x)
    out = []
    for s in range(0, n, block):
        a, b = max(0, s - pad), min(n, s + block + pad)
        y = resample_poly(np.asarray(x[a:b], np.float32), up, down)
        off = (s - a) * up // down
        cnt = -(-(min(n, s + block) - s) * up // down)
        out.append(y[off : off + cnt])
    y = np.concatenate(out) if out else np.zeros(0, np.float32)
    return to_int16(y)


def detect_rate(rate: int) -> int:
    return rate if rate in DETECT_RATES else 8000


def replacement(start: int, end: int, rate: int, mode: str) -> np.ndarray:
    """What fills [start, end) at `rate`: the masker's tone (ramped, phase-continuous) or zeros."""
    from dsp import replacement as rep

    n = end - start
    if mode == "silence" or n <= 0:
        return np.zeros(max(n, 0), np.int16)
    ramp = max(1, int(round(rep.RAMP_SECONDS * rate)))
    d = np.arange(n)
    gain = rep.raised_cosine(np.minimum(d, n - 1 - d), ramp)
    tone = rep.masking_tone(np.arange(start, end), rate) * gain
    return to_int16(tone)


@dataclass
class Masked:
    """Spans per channel in original-rate samples, replacements, and key positions."""

    spans: list[list[tuple[int, int]]]
    fills: list[list[np.ndarray]]  # int16 replacement per span
    keys: list[list[tuple[int, int]]]  # original-rate samples
    detect_rate: int


def mask_audio(af: AudioFile, mode: str, lookahead_ms: int, keep_audio: bool = True) -> Masked:
    from masker.scrub import channel_masking

    r = detect_rate(af.rate)
    pcm = [to_pcm16(af.native[:, c], af.encoding) for c in range(af.channels)]
    det = [resample(p, af.rate, r) for p in pcm] if r != af.rate else pcm
    results = channel_masking.run(
        det, r, mode=mode, lookahead_ms=lookahead_ms, keep_audio=keep_audio and r == af.rate
    )
    spans, fills, keys = [], [], []
    pad = int(np.ceil(RESAMPLED_PAD_S * af.rate)) if r != af.rate else 0
    for c, res in enumerate(results):
        if r == af.rate:
            sp = merge_spans(res.spans + res.stopped)
            fl = [res.audio[a:b] for a, b in sp] if keep_audio else []
            ks = res.keys
        else:
            masked = _to_rate(res.spans, r, af.rate, af.frames, pad)
            stopped = _to_rate(res.stopped, r, af.rate, af.frames, pad)
            sp = merge_spans(masked + stopped)
            fl = _fills(pcm[c], sp, masked, af.rate, mode) if keep_audio else []
            ks = [(a * af.rate // r, b * af.rate // r) for a, b in res.keys]
        spans.append(sp)
        fills.append(fl)
        keys.append(ks)
    return Masked(spans, fills, keys, r)


def _to_rate(
    spans: list[tuple[int, int]], r: int, rate: int, frames: int, pad: int
) -> list[tuple[int, int]]:
    """Spans at detection rate `r` mapped to `rate`, widened by `pad`, merged."""
    mapped = [(max(0, a * rate // r - pad), min(frames, -(-b * rate // r) + pad)) for a, b in spans]
    return merge_spans(mapped)


def _fills(
    pcm: np.ndarray,
    spans: list[tuple[int, int]],
    masked: list[tuple[int, int]],
    rate: int,
    mode: str,
) -> list[np.ndarray]:
    """Replacements of `spans` at the file's rate: the original through the keypad
    band-stop, with the `masked` parts (inside them) replaced outright."""
    from dsp.bandstop import bandstopped, keypad_bandstop_fir

    half = len(keypad_bandstop_fir(rate)) // 2
    out = []
    for a, b in spans:
        lo, hi = max(0, a - half), min(len(pcm), b + half)
        fill = to_int16(bandstopped(pcm[lo:hi], rate))[a - lo : b - lo]
        for m0, m1 in masked:
            m0, m1 = max(m0, a), min(m1, b)
            if m1 > m0:
                fill[m0 - a : m1 - a] = replacement(m0, m1, rate, mode)
        out.append(fill)
    return out


def write_masked(af: AudioFile, m: Masked, tmp: str) -> bool:
    """Write the masked recording to `tmp` (not fsynced); True if exact outside the spans."""
    if af.container == "wav":
        shutil.copyfile(af.path, tmp)
        if not any(m.spans):
            return True
        width = af.native.itemsize if af.encoding != "pcm24" else 3
        nbytes = af.frames * af.channels * width
        out = np.memmap(tmp, dtype=np.uint8, mode="r+", offset=af.data_offset, shape=(nbytes,))
        if af.encoding == "pcm24":
            view = out.reshape(af.frames, af.channels, 3)
        else:
            view = out.view(af.native.dtype).reshape(af.frames, af.channels)
        for c in range(af.channels):
            for (a, b), fill in zip(m.spans[c], m.fills[c], strict=True):
                orig = af.native[a:b, c]
                same = to_pcm16(orig, af.encoding) == fill
                new = from_pcm16(fill, af.encoding)
                if af.encoding == "pcm24":
                    view[a:b, c] = np.where(same[:, None], orig, new)
                else:
                    view[a:b, c] = np.where(same, orig, new)
        out.flush()
        del view, out
        return True
    data = np.array(af.native)
    for c in range(af.channels):
        for (a, b), fill in zip(m.spans[c], m.fills[c], strict=True):
            same = to_pcm16(data[a:b, c], af.encoding) == fill
            data[a:b, c] = np.where(same, data[a:b, c], from_pcm16(fill, af.encoding))
    try:
        sf.write(tmp, data, af.rate, subtype=af.subtype, format=af.format)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise ScrubError(f"cannot write audio ({_first_line(exc)})") from None
    return af.container == "flac"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
