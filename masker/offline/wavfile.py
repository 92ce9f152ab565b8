"""Streaming WAV input and output for the offline harness.

Audio is read and written block by block, so an hour-long stereo recording
costs no more memory than a second of it.  Every block comes in two forms: the
file's own samples ("native": G.711 codes, int16, int32 or float) and int16 PCM
for the DSP.  Keeping the native form lets the writer put back exactly what the
input held wherever the masker left the audio alone: bit-exact for PCM, and
code-exact for mu-law/A-law, which soundfile cannot give (it decodes both
mu-law zeros, 0x7F and 0xFF, to the same 0).  So G.711 data is read and written
as raw codes; every other encoding goes through soundfile.

The RIFF header is checked here before soundfile sees the file, so that "not a
WAV", "truncated", "empty", "unsupported" and "too large" each get a clear,
one-line `UserError`.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

from dsp import g711
from dsp.keypad import to_int16
from masker.errors import UserError

SUPPORTED_RATES = (8000, 16000)
#: A contact-centre recording is mono or caller+agent stereo; allow some headroom.
MAX_CHANNELS = 8
#: Longest recording accepted (the RIFF size field caps files at 4 GiB anyway).
MAX_SECONDS = 24 * 3600
FRAME_MS = 20

_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_IEEE_FLOAT = 0x0003
_WAVE_FORMAT_ALAW = 0x0006
_WAVE_FORMAT_MULAW = 0x0007
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE

G711_ENCODINGS = ("ulaw", "alaw")

#: encoding -> (soundfile subtype, dtype of the native samples)
_SOUNDFILE = {
    "pcm_u8": ("PCM_U8", np.int16),
    "pcm16": ("PCM_16", np.int16),
    "pcm24": ("PCM_24", np.int32),
    "pcm32": ("PCM_32", np.int32),
    "float32": ("FLOAT", np.float32),
    "float64": ("DOUBLE", np.float64),
}
ENCODINGS = (*G711_ENCODINGS, *_SOUNDFILE)


def frame_size(sample_rate: int) -> int:
    """Samples per 20 ms frame, the packet size of a live call."""
    return sample_rate * FRAME_MS // 1000


@dataclass(frozen=True)
class WavInfo:
    """What the RIFF header says, after checking it against the file."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    encoding: str
    data_offset: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


@dataclass(frozen=True)
class Block:
    """Consecutive sample frames of every channel, shape (frames, channels)."""

    pcm16: NDArray[np.int16]
    native: np.ndarray

    def __len__(self) -> int:
        return len(self.pcm16)


def _encoding_of(tag: int, bits: int) -> str | None:
    if tag == _WAVE_FORMAT_PCM:
        return {8: "pcm_u8", 16: "pcm16", 24: "pcm24", 32: "pcm32"}.get(bits)
    if tag == _WAVE_FORMAT_IEEE_FLOAT:
        return {32: "float32", 64: "float64"}.get(bits)
    if tag == _WAVE_FORMAT_MULAW and bits == 8:
        return "ulaw"
    if tag == _WAVE_FORMAT_ALAW and bits == 8:
        return "alaw"
    return None


def _parse_fmt(body: bytes, name: str) -> tuple[int, int, int, int, int]:
    """(format tag, channels, rate, block align, bits) from a fmt chunk."""
    if len(body) < 16:
        raise UserError(f"{name}: malformed WAV (fmt chunk too short)")
    tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _WAVE_FORMAT_EXTENSIBLE:
        if len(body) < 26:
            raise UserError(f"{name}: malformed WAV (extensible fmt chunk too short)")
        tag = struct.unpack("<H", body[24:26])[0]
    return tag, channels, rate, align, bits


def read_info(path: str | os.PathLike[str]) -> WavInfo:
    """Check a WAV file's header and return its layout, or raise UserError."""
    name = str(path)
    try:
        size = os.path.getsize(path)
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise UserError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{name}: is a directory, not a WAV file") from None
    except OSError as exc:
        raise UserError(f"{name}: cannot open ({exc.strerror})") from None
    with fh:
        fmt, data_offset, data_size = _read_chunks(fh, name)
    tag, channels, rate, align, bits = fmt
    encoding = _check_layout(name, tag, channels, rate, align, bits)
    available = size - data_offset
    if data_size > available:
        raise UserError(
            f"{name}: truncated WAV (header promises {data_size} bytes of audio, "
            f"file has {available})"
        )
    if data_size % align:
        raise UserError(f"{name}: truncated WAV (last sample frame incomplete)")
    frames = data_size // align
    if frames == 0:
        raise UserError(f"{name}: empty WAV (no audio)")
    if frames > MAX_SECONDS * rate:
        raise UserError(
            f"{name}: too large ({frames / rate / 3600:.1f} h of audio; "
            f"at most {MAX_SECONDS // 3600} h)"
        )
    return WavInfo(name, rate, channels, frames, encoding, data_offset)


def _read_chunks(fh: BinaryIO, name: str) -> tuple[tuple[int, int, int, int, int], int, int]:
    """The RIFF/WAVE chunks up to the data chunk: (fmt fields, data offset, data size)."""
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        if head[:4] == b"RIFF" and len(head) < 12:
            raise UserError(f"{name}: truncated WAV (header cut short)")
        raise UserError(f"{name}: not a WAV file (no RIFF/WAVE header)")
    fmt: tuple[int, int, int, int, int] | None = None
    while True:
        chunk = fh.read(8)
        if len(chunk) < 8:
            what = "no data chunk" if fmt is not None else "no fmt chunk"
            raise UserError(f"{name}: truncated WAV ({what})")
        cid, csize = struct.unpack("<4sI", chunk)
        if cid == b"fmt ":
            body = fh.read(csize)
            if len(body) < csize:
                raise UserError(f"{name}: truncated WAV (fmt chunk cut short)")
            fmt = _parse_fmt(body, name)
            fh.seek(csize & 1, os.SEEK_CUR)
        elif cid == b"data":
            if fmt is None:
                raise UserError(f"{name}: malformed WAV (data before fmt chunk)")
            return fmt, fh.tell(), csize
        else:
            fh.seek(csize + (csize & 1), os.SEEK_CUR)


def _check_layout(name: str, tag: int, channels: int, rate: int, align: int, bits: int) -> str:
    """The encoding of a supported sample layout, or UserError saying what is not."""
    encoding = _encoding_of(tag, bits)
    if encoding is None:
        raise UserError(
            f"{name}: unsupported encoding (format tag 0x{tag:04x}, {bits} bits); "
            "use PCM 16-bit, mu-law or A-law"
        )
    if channels < 1:
        raise UserError(f"{name}: malformed WAV (0 channels)")
    if channels > MAX_CHANNELS:
        raise UserError(f"{name}: too many channels ({channels}; at most {MAX_CHANNELS})")
    if rate not in SUPPORTED_RATES:
        raise UserError(f"{name}: unsupported sample rate {rate} Hz (use 8000 or 16000)")
    if align != channels * ((bits + 7) // 8):
        raise UserError(f"{name}: malformed WAV (block align {align})")
    return encoding


def to_pcm16(native: NDArray[Any], encoding: str) -> NDArray[np.int16]:
    """The DSP's view (int16) of native samples."""
    if encoding in G711_ENCODINGS:
        return g711.decode(native, encoding)
    if native.dtype == np.int16:
        return native
    if native.dtype == np.int32:
        return (native >> 16).astype(np.int16)
    return to_int16(native * 32768.0)


def from_pcm16(pcm16: NDArray[np.int16], encoding: str) -> NDArray[Any]:
    """Native samples of `encoding` for int16 PCM (inverse of to_pcm16)."""
    if encoding in G711_ENCODINGS:
        return g711.encode(pcm16, encoding)
    dtype = _SOUNDFILE[encoding][1]
    if encoding == "pcm_u8":
        return (pcm16.astype(np.int16) >> 8) << 8
    if dtype == np.int16:
        return pcm16.astype(np.int16)
    if dtype == np.int32:
        return pcm16.astype(np.int32) << 16
    # float32/float64 only here; a Python float scalar keeps the array's dtype
    return (pcm16.astype(dtype) / 32768.0).astype(dtype)


def merge_changed(
    processed16: NDArray[np.int16],
    original16: NDArray[np.int16],
    original_native: NDArray[Any],
    encoding: str,
) -> NDArray[Any]:
    """Native output: the input's own samples wherever processing left them equal."""
    same = processed16 == original16
    if same.all():
        return original_native
    return np.where(same, original_native, from_pcm16(processed16, encoding))


class WavReader:
    """Reads a checked WAV file block by block (context manager)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.info = read_info(path)
        self._raw: IO[bytes] | None = None
        self._sf: sf.SoundFile | None = None
        try:
            if self.info.encoding in G711_ENCODINGS:
                self._raw = open(path, "rb")  # noqa: SIM115 - closed in close()
                self._raw.seek(self.info.data_offset)
            else:
                self._sf = sf.SoundFile(path)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise UserError(f"{self.info.path}: cannot read WAV ({_first_line(exc)})") from None
        self._left = self.info.frames

    def __enter__(self) -> WavReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
        if self._sf is not None:
            self._sf.close()

    def blocks(self, frames_per_block: int) -> Iterator[Block]:
        """Blocks of `frames_per_block` sample frames (the last may be shorter)."""
        ch = self.info.channels
        while self._left > 0:
            n = min(frames_per_block, self._left)
            if self._raw is not None:
                data = self._raw.read(n * ch)
                native = np.frombuffer(data, dtype=np.uint8).reshape(-1, ch)
            else:
                dtype = _SOUNDFILE[self.info.encoding][1]
                assert self._sf is not None  # not G.711: opened with soundfile
                try:
                    native = self._sf.read(n, dtype=np.dtype(dtype).name, always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as exc:
                    raise UserError(
                        f"{self.info.path}: cannot read WAV ({_first_line(exc)})"
                    ) from None
            if len(native) == 0:
                raise UserError(f"{self.info.path}: truncated WAV (audio ends early)")
            self._left -= len(native)
            yield Block(to_pcm16(native, self.info.encoding), native)


class WavWriter:
    """Writes a WAV file block by block, atomically: the file appears on close().

    G.711 is written as raw codes with its own RIFF header (format tag 6/7 and a
    fact chunk, as soundfile writes them); everything else through soundfile.
    """

    def __init__(
        self, path: str | os.PathLike[str], sample_rate: int, channels: int, encoding: str
    ) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r}")
        self.path = Path(path)
        self.encoding = encoding
        self.channels = channels
        self.sample_rate = sample_rate
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        self._frames = 0
        self._raw: IO[bytes] | None = None
        self._sf: sf.SoundFile | None = None
        try:
            if encoding in G711_ENCODINGS:
                self._raw = open(self._tmp, "wb")  # noqa: SIM115 - closed in close()
                self._raw.write(self._g711_header(0))
            else:
                subtype = _SOUNDFILE[encoding][0]
                self._sf = sf.SoundFile(
                    self._tmp, "w", sample_rate, channels, subtype=subtype, format="WAV"
                )
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise UserError(f"{self.path}: cannot write ({_first_line(exc)})") from None

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _g711_header(self, frames: int) -> bytes:
        tag = _WAVE_FORMAT_MULAW if self.encoding == "ulaw" else _WAVE_FORMAT_ALAW
        data_bytes = frames * self.channels
        fmt = struct.pack(
            "<HHIIHHH",
            tag,
            self.channels,
            self.sample_rate,
            self.sample_rate * self.channels,
            self.channels,
            8,
            0,
        )
        riff_size = 4 + (8 + len(fmt)) + (8 + 4) + (8 + data_bytes + (data_bytes & 1))
        return (
            struct.pack("<4sI4s", b"RIFF", riff_size, b"WAVE")
            + struct.pack("<4sI", b"fmt ", len(fmt))
            + fmt
            + struct.pack("<4sII", b"fact", 4, frames)
            + struct.pack("<4sI", b"data", data_bytes)
        )

    def write(self, native: NDArray[Any]) -> None:
        """Append native samples, shape (frames, channels)."""
        native = np.asarray(native)
        if native.ndim != 2 or native.shape[1] != self.channels:
            raise ValueError("write() takes an array of shape (frames, channels)")
        try:
            if self._raw is not None:
                self._raw.write(np.ascontiguousarray(native, dtype=np.uint8).tobytes())
            else:
                assert self._sf is not None  # not G.711: opened with soundfile
                self._sf.write(native)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            self.abort()
            raise UserError(f"{self.path}: cannot write ({_first_line(exc)})") from None
        self._frames += len(native)

    def close(self) -> None:
        """Finish the header and move the file into place."""
        try:
            if self._raw is not None:
                if (self._frames * self.channels) & 1:
                    self._raw.write(b"\0")
                self._raw.seek(0)
                self._raw.write(self._g711_header(self._frames))
                self._raw.close()
                self._raw = None
            if self._sf is not None:
                self._sf.close()
                self._sf = None
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.abort()
            raise UserError(f"{self.path}: cannot write ({exc.strerror})") from None

    def abort(self) -> None:
        """Drop the partial output."""
        for handle in (self._raw, self._sf):
            if handle is not None:
                handle.close()
        self._raw = self._sf = None
        self._tmp.unlink(missing_ok=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
