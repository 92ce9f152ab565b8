"""RTP helpers for media tests: packetise G.711, send paced, collect what arrives."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from dsp import g711
from masker.media.engine import MediaEngine
from masker.media.maskbank import BatchFactory
from masker.media.ports import PortAllocator
from masker.phones.client import free_udp_port_block
from masker.wire.rfc4733 import TelephoneEvent, build_event, digit_event
from masker.wire.rtp import RtpPacket, build_rtp, parse_rtp
from masker.wire.sdp import Negotiated

HOST = "127.0.0.1"


def rtp_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    return s


def packetise(
    payload: bytes, frame: int, pt: int, ssrc: int = 0x1234, seq0: int = 100, ts0: int = 5000
) -> list[bytes]:
    """RTP packets of `frame` payload bytes each (a partial last frame is left out); the
    timestamp advances by `frame` a packet, as for G.711 and for G.722's 8 kHz clock."""
    return [
        build_rtp(
            RtpPacket(
                payload_type=pt,
                sequence=(seq0 + i) & 0xFFFF,
                timestamp=(ts0 + i * frame) & 0xFFFFFFFF,
                ssrc=ssrc,
                payload=payload[i * frame : (i + 1) * frame],
                marker=i == 0,
            )
        )
        for i in range(len(payload) // frame)
    ]


def audio_packets(
    pcm: np.ndarray,
    pt: int = 0,
    ssrc: int = 0x1234,
    seq0: int = 100,
    ts0: int = 5000,
    frame: int = 160,
    law: str = "ulaw",
) -> list[bytes]:
    return packetise(g711.encode(pcm, law).tobytes(), frame, pt, ssrc, seq0, ts0)


def event_packets(
    digit: str,
    ts: int,
    seq0: int,
    ssrc: int = 0x1234,
    pt: int = 101,
    duration: int = 1280,
    step: int = 160,
) -> list[bytes]:
    """One RFC 4733 key press: updates every `step` samples and three end packets."""
    code = digit_event(digit)
    out = []
    seq = seq0
    for d in range(step, duration + 1, step):
        end = d == duration
        for _ in range(3 if end else 1):
            out.append(
                build_rtp(
                    RtpPacket(
                        payload_type=pt,
                        sequence=seq & 0xFFFF,
                        timestamp=ts,
                        ssrc=ssrc,
                        payload=build_event(TelephoneEvent(code, end, 10, d)),
                        marker=d == step,
                    )
                )
            )
            seq += 1
    return out


def send_paced(
    sock: socket.socket,
    dest: tuple[str, int],
    packets: list[bytes],
    interval: float = 0.02,
    probe: Callable[[], int] | None = None,
) -> list[int]:
    """Send at the given pace; `probe()` (e.g. a buffer level) is read after each packet
    and the readings returned."""
    start = time.monotonic()
    readings = []
    for i, pkt in enumerate(packets):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sock.sendto(pkt, dest)
        if probe is not None:
            readings.append(probe())
    return readings


class Collector:
    """Receives every datagram on a socket in a thread until stopped."""

    def __init__(self, sock: socket.socket, source: tuple[str, int] | None = None) -> None:
        """Keep datagrams from `source` only (when given): with ports reused quickly by
        parallel tests, a stray packet meant for an earlier socket must not count."""
        self.sock = sock
        self.source = source
        self.items: list[tuple[float, bytes, tuple[str, int]]] = []
        self._stop = False
        sock.settimeout(0.05)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data, src = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            if self.source is None or src == self.source:
                self.items.append((time.monotonic(), data, src))

    def stop(self) -> list[tuple[float, bytes, tuple[str, int]]]:
        self._stop = True
        self._thread.join()
        return self.items

    def rtp(self) -> list[RtpPacket]:
        out = []
        for _, data, _ in self.items:
            if len(data) >= 2 and 200 <= data[1] <= 204:
                continue  # RTCP
            out.append(parse_rtp(data))
        return out


def decode_stream(packets: list[RtpPacket], law: str = "ulaw") -> np.ndarray:
    """The audio of a stream laid out by timestamp (gaps become silence)."""
    if not packets:
        return np.zeros(0, dtype=np.int16)
    pkts = sorted(packets, key=lambda p: (p.timestamp - packets[0].timestamp) & 0xFFFFFFFF)
    t0 = pkts[0].timestamp
    end = max(((p.timestamp - t0) & 0xFFFFFFFF) + len(p.payload) for p in pkts)
    out = np.zeros(end, dtype=np.int16)
    for p in pkts:
        off = (p.timestamp - t0) & 0xFFFFFFFF
        out[off : off + len(p.payload)] = g711.decode(p.payload, law)
    return out


def keyed_packets(
    keys: str,
    *,
    inband: bool,
    rfc4733: bool,
    on: int = 640,
    off: int = 640,
    lead: int = 1600,
    tail: int = 3200,
    ssrc: int = 0x1234,
    seed: int = 0,
) -> list[bytes]:
    """Packets of a caller keying `keys` in-band, by RFC 4733, or both at once
    (as many phones do), in send order; one 20 ms audio packet per step."""
    from dsp.testsignals import dtmf, to_int16

    rng = np.random.default_rng(seed)
    audio = [np.zeros(lead, np.int16)]
    spans = []
    pos = lead
    for k in keys:
        tone = to_int16(dtmf(k, on, 8000, -10.0, 0.0, 0.0, tuple(rng.uniform(0, 6.28, 2))))
        audio.append(tone if inband else np.zeros(on, np.int16))
        audio.append(np.zeros(off, np.int16))
        spans.append((k, pos))
        pos += on + off
    audio.append(np.zeros(tail, np.int16))
    pcm = np.concatenate(audio)
    ts0 = 16000
    pkts = audio_packets(pcm, ssrc=ssrc, ts0=ts0)
    if not rfc4733:
        return pkts
    by_ts: dict[int, list[bytes]] = {}
    seq = 30000
    for k, start in spans:
        evs = event_packets(k, ts=ts0 + start, seq0=seq, ssrc=ssrc, duration=on)
        seq += len(evs)
        # the i-th update goes out with the audio packet covering the same time
        for i, e in enumerate(evs):
            by_ts.setdefault(start // 160 + min(i, on // 160 - 1), []).append(e)
    out = []
    for i, p in enumerate(pkts):
        out.append(p)
        out.extend(by_ts.get(i, []))
    return out


class RecordingMasker:
    """A BatchMasker stand-in for engine tests: no delay, no detection, records the
    spans the engine force-masks as (slot, start, end)."""

    instances: list = []

    def __init__(self, n):
        self.n = n
        self.forced: list[tuple[int, int, int]] = []
        RecordingMasker.instances.append(self)

    def reset(self, call):
        self.forced = [f for f in self.forced if f[0] != call]

    def force_mask(self, call, start, end):
        self.forced.append((call, start, end))

    def arm(self, call):
        pass

    def disarm(self, call):
        pass

    def grow(self, n):
        self.n = n

    def process(self, frames):
        return [_Passed(frames[i].copy()) for i in range(self.n)]


class _Passed:
    def __init__(self, audio):
        self.audio, self.digits, self.masked = audio, [], []


def covered(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    """[start, end) lies inside the union of the spans."""
    pos = start
    for s, e in sorted(spans):
        if s <= pos < e:
            pos = e
        if pos >= end:
            return True
    return pos >= end


SILENCE = b"\xff" * 160  # mu-law digital silence


class EventStream:
    """A caller's RTP stream: one sequence space and one clock for audio and events
    (as a phone sends them); packets are appended in send order."""

    def __init__(
        self, ssrc: int = 0x1234, seq: int = 4000, ts: int = 160_000, event_pt: int = 101
    ) -> None:
        self.ssrc, self.seq, self.ts, self.event_pt = ssrc, seq, ts, event_pt
        self.packets: list[bytes] = []

    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFFFF
        return self.seq

    def audio(self, n: int = 1) -> None:
        for _ in range(n):
            self.packets.append(
                build_rtp(RtpPacket(0, self._next_seq(), self.ts, self.ssrc, SILENCE))
            )
            self.ts = (self.ts + 160) & 0xFFFFFFFF

    def event(
        self,
        payload: bytes,
        ts: int,
        seq: int | None = None,
        marker: bool = False,
        pt: int | None = None,
    ) -> bytes:
        pkt = build_rtp(
            RtpPacket(
                self.event_pt if pt is None else pt,
                self._next_seq() if seq is None else seq,
                ts,
                self.ssrc,
                payload,
                marker,
            )
        )
        self.packets.append(pkt)
        return pkt

    def press(
        self,
        digit: str,
        updates: int = 4,
        zero_first: int = 0,
        ends: int = 3,
        same_end_seq: bool = False,
    ) -> list[bytes]:
        """One key press starting now: `zero_first` duration-0 packets, an update per
        20 ms, then `ends` end packets (the clock runs on; no audio meanwhile)."""
        code, ts, out = digit_event(digit), self.ts, []
        for i in range(zero_first):
            out.append(
                self.event(build_event(TelephoneEvent(code, False, 10, 0)), ts, marker=i == 0)
            )
        for k in range(1, updates + 1):
            out.append(
                self.event(
                    build_event(TelephoneEvent(code, False, 10, 160 * k)),
                    ts,
                    marker=k == 1 and not zero_first,
                )
            )
        final = build_event(TelephoneEvent(code, True, 10, 160 * (updates + 1)))
        end_seq = None
        for _ in range(ends):
            out.append(self.event(final, ts, seq=end_seq))
            if same_end_seq:
                end_seq = self.seq
        self.ts = (self.ts + 160 * (updates + 1)) & 0xFFFFFFFF
        return out

    def keys(self, keys: str, gap: int = 2, **press) -> None:
        self.audio(3)
        for k in keys:
            self.press(k, **press)
            self.audio(gap)
        self.audio(3)


@contextmanager
def running_engine(factory: BatchFactory, ports: int = 16, **options: Any) -> Iterator[MediaEngine]:
    """A started media engine on a free block of `ports` loopback UDP ports, stopped after;
    `options` are MediaEngine's keyword arguments."""
    base = free_udp_port_block(ports)
    engine = MediaEngine(PortAllocator(HOST, base, base + ports - 1), factory, **options)
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()


def pcmu_sdp(
    port: int, event_pt: int | None = 101, pts: tuple[tuple[int, str], ...] = ((0, "PCMU"),)
) -> Negotiated:
    """What a plain RTP peer on loopback `port` negotiated: `pts` (first one preferred),
    telephone-events on `event_pt`, 20 ms packets, both ways."""
    return Negotiated(HOST, port, pts[0][0], pts[0][1], event_pt, 20, "sendrecv", pts)
