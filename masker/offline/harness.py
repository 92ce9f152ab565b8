"""The offline harness: run the live-call detector and masker over WAV files.

A file is fed in 20 ms frames, exactly as RTP packets reach the masker on a live
call, one detector/masker per channel (caller and agent legs of a stereo
recording are independent calls).  For `mask`, the masker's look-ahead delay is
removed again so that sample i of the output lines up with sample i of the input,
and wherever the masker left the audio alone the input's own samples are written
back (bit-exact PCM, code-exact G.711).  Files are streamed block by block.

Reports carry positions and counts only, never digit values, except
`DetectedDigit.digit`, which the caller shows masked unless told to reveal it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from masker.errors import UserError
from masker.offline.wavfile import WavReader, WavWriter, frame_size, merge_changed

if TYPE_CHECKING:
    from dsp.events import DigitEvent
    from dsp.tone_masker import BatchMasker, MaskResult


class TickMasker(Protocol):
    """What `mask_file` needs of a masker: dsp.tone_masker.BatchMasker's interface."""

    @property
    def frame_size(self) -> int: ...

    @property
    def delay(self) -> int: ...

    def process(self, frames: NDArray[np.int16], /) -> list[MaskResult]: ...

    def flush(self) -> list[MaskResult]: ...


#: `new_masker(rate, channels, mode, lookahead_ms)`
MaskerFactory = Callable[[int, int, str, int], TickMasker]

MASK_MODES = ("tone", "silence", "noise", "cadence")
DEFAULT_LOOKAHEAD_MS = 40
#: Frames per file read: one second of audio keeps I/O calls few and memory flat.
_FRAMES_PER_BLOCK = 50


def _ms(sample: int, rate: int) -> float:
    return round(sample * 1000.0 / rate, 3)


@dataclass(frozen=True)
class DetectedDigit:
    """One key press found in a channel (sample indices, end exclusive)."""

    digit: str = field(repr=False)
    start: int
    end: int
    source: str


@dataclass
class DetectReport:
    path: str
    sample_rate: int
    channels: list[list[DetectedDigit]]

    def to_json(self, reveal: bool = False) -> dict[str, Any]:
        return {
            "file": self.path,
            "sample_rate": self.sample_rate,
            "channels": [
                {
                    "channel": c,
                    "digits": [
                        {
                            "digit": d.digit if reveal else "*",
                            "start_ms": _ms(d.start, self.sample_rate),
                            "end_ms": _ms(d.end, self.sample_rate),
                            "source": d.source,
                        }
                        for d in digits
                    ],
                }
                for c, digits in enumerate(self.channels)
            ],
        }


@dataclass(frozen=True)
class MaskedSpan:
    """Input samples [start, end) of one channel that the masker replaced."""

    channel: int
    start: int
    end: int


@dataclass
class MaskReport:
    sample_rate: int
    lookahead_ms: int
    mode: str
    masked: list[MaskedSpan]
    digits_masked: int
    #: spans where only the keypad bands were removed (a key may be under louder
    #: talk or music; dsp.bandstop): the rest of the audio there is kept
    band_stopped: list[MaskedSpan] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "lookahead_ms": self.lookahead_ms,
            "mode": self.mode,
            "masked": self._spans_json(self.masked),
            "band_stopped": self._spans_json(self.band_stopped),
            "digits_masked": self.digits_masked,
        }

    def _spans_json(self, spans: list[MaskedSpan]) -> list[dict[str, Any]]:
        return [
            {
                "channel": s.channel,
                "start_ms": _ms(s.start, self.sample_rate),
                "end_ms": _ms(s.end, self.sample_rate),
            }
            for s in spans
        ]


def _ticks(block: NDArray[np.int16], size: int) -> list[NDArray[np.int16]]:
    """(channels, 20 ms) arrays, one per tick, from a (frames, channels) block.

    The last tick is zero-padded to a full frame.
    """
    pad = -len(block) % size
    if pad:
        block = np.concatenate([block, np.zeros((pad, block.shape[1]), dtype=block.dtype)])
    per_channel = np.ascontiguousarray(block.T)
    return [per_channel[:, k : k + size] for k in range(0, per_channel.shape[1], size)]


def detect_file(path: str | os.PathLike[str]) -> DetectReport:
    """Every key press in every channel of a WAV file."""
    from dsp.detector import BatchDtmfDetector

    with WavReader(path) as reader:
        info = reader.info
        size = frame_size(info.sample_rate)
        detector = BatchDtmfDetector(info.channels, sample_rate=info.sample_rate)
        found: list[list[DetectedDigit]] = [[] for _ in range(info.channels)]

        def keep(per_channel: list[list[DigitEvent]]) -> None:
            for channel, events in enumerate(per_channel):
                found[channel].extend(
                    DetectedDigit(e.digit, e.start, min(e.end, info.frames), e.source)
                    for e in events
                    if e.start < info.frames
                )

        for block in reader.blocks(size * _FRAMES_PER_BLOCK):
            for frames in _ticks(block.pcm16, size):
                keep(detector.process(frames))
        keep(detector.flush())
    return DetectReport(info.path, info.sample_rate, found)


class _DelayRemover:
    """Lines masker output up with the input and writes it.

    Holds the input samples (int16 and native) that are still inside the
    masker's look-ahead, so each output sample can be compared with the input
    sample it stands for.
    """

    def __init__(self, writer: WavWriter, delay: int, channels: int, encoding: str):
        self._writer = writer
        self._skip = delay
        self._encoding = encoding
        self._in16 = np.empty((0, channels), dtype=np.int16)
        self._native: NDArray[Any] | None = None
        self.written = 0

    def add_input(self, pcm16: NDArray[np.int16], native: NDArray[Any]) -> None:
        self._in16 = np.concatenate([self._in16, pcm16])
        self._native = native if self._native is None else np.concatenate([self._native, native])

    def add_output(self, out16: NDArray[np.int16]) -> None:
        if self._skip:
            drop = min(self._skip, len(out16))
            out16 = out16[drop:]
            self._skip -= drop
        n = min(len(out16), len(self._in16))
        if n == 0:
            return
        assert self._native is not None  # n > 0: add_input() has run
        self._writer.write(
            merge_changed(out16[:n], self._in16[:n], self._native[:n], self._encoding)
        )
        self._in16 = self._in16[n:]
        self._native = self._native[n:]
        self.written += n

    @property
    def pending(self) -> int:
        return len(self._in16)


def live_masker(rate: int, channels: int, mode: str, lookahead_ms: int) -> BatchMasker:
    """The live call's masker, one call per channel (dsp.tone_masker.BatchMasker).

    StreamingMasker is BatchMasker for one call; running the channels of a
    file as one batch keeps an hour of stereo audio quick.
    """
    from dsp.tone_masker import BatchMasker

    return BatchMasker(channels, sample_rate=rate, lookahead_ms=lookahead_ms, mode=mode)


def mask_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    mode: str = "tone",
    lookahead_ms: int = DEFAULT_LOOKAHEAD_MS,
    new_masker: MaskerFactory = live_masker,
) -> MaskReport:
    """Mask every keypad tone in `src`, writing `dst` in the same format.

    `new_masker(rate, channels, mode, lookahead_ms)` builds the masker (the
    BatchMasker interface plus `flush() -> list[MaskResult]`); tests pass a
    reference masker to check the harness on its own.
    """
    if mode not in MASK_MODES:
        raise UserError(f"unknown mask mode {mode!r} (use one of {', '.join(MASK_MODES)})")
    if os.path.exists(dst) and os.path.exists(src) and os.path.samefile(src, dst):
        raise UserError("output file must not be the input file")
    with WavReader(src) as reader:
        info = reader.info
        try:
            batch = new_masker(info.sample_rate, info.channels, mode, lookahead_ms)
        except ValueError as exc:
            raise UserError(f"cannot build the masker: {exc}") from None
        size = batch.frame_size
        if size != frame_size(info.sample_rate):
            raise RuntimeError(f"masker frame size {size} is not 20 ms at {info.sample_rate} Hz")
        masked: list[MaskedSpan] = []
        stopped: list[MaskedSpan] = []
        digits = 0

        def keep(results: list[MaskResult]) -> NDArray[np.int16]:
            """Record digits and spans of one tick; return its audio, (n, channels)."""
            nonlocal digits
            for channel, result in enumerate(results):
                digits += len(result.digits)
                for spans, into in ((result.masked, masked), (result.stopped, stopped)):
                    into.extend(
                        MaskedSpan(channel, int(s), int(min(e, info.frames)))
                        for s, e in spans
                        if s < info.frames and e > s
                    )
            return np.stack([np.asarray(r.audio, dtype=np.int16) for r in results], axis=1)

        with WavWriter(dst, info.sample_rate, info.channels, info.encoding) as writer:
            sink = _DelayRemover(writer, batch.delay, info.channels, info.encoding)
            for block in reader.blocks(size * _FRAMES_PER_BLOCK):
                sink.add_input(block.pcm16, block.native)
                sink.add_output(
                    np.concatenate([keep(batch.process(t)) for t in _ticks(block.pcm16, size)])
                )
            sink.add_output(keep(batch.flush()))
            if sink.pending or sink.written != info.frames:
                raise RuntimeError(
                    f"masker returned {sink.written} of {info.frames} samples after flush()"
                )
    for spans in (masked, stopped):
        spans.sort(key=lambda s: (s.start, s.channel))
    return MaskReport(
        info.sample_rate, lookahead_ms, mode, _merge_spans(masked), digits, _merge_spans(stopped)
    )


def _merge_spans(spans: list[MaskedSpan]) -> list[MaskedSpan]:
    """Join overlapping or touching spans of the same channel."""
    merged: dict[int, list[MaskedSpan]] = {}
    for s in spans:
        runs = merged.setdefault(s.channel, [])
        if runs and s.start <= runs[-1].end:
            last = runs[-1]
            runs[-1] = MaskedSpan(s.channel, last.start, max(last.end, s.end))
        else:
            runs.append(s)
    return sorted((s for runs in merged.values() for s in runs), key=lambda s: (s.start, s.channel))
