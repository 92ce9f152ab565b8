"""RTP helpers for media tests: packetise G.711, send paced, collect what arrives."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import numpy as np

from dsp import g711
from masker.rfc4733 import TelephoneEvent, build_event, digit_event
from masker.rtp import RtpPacket, build_rtp, parse_rtp

HOST = "127.0.0.1"


def rtp_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    return s


def audio_packets(pcm: np.ndarray, pt: int = 0, ssrc: int = 0x1234, seq0: int = 100,
                  ts0: int = 5000, frame: int = 160, law: str = "ulaw") -> list[bytes]:
    codes = g711.encode(pcm, law)
    out = []
    for i in range(len(codes) // frame):
        out.append(build_rtp(RtpPacket(
            payload_type=pt, sequence=(seq0 + i) & 0xFFFF, timestamp=(ts0 + i * frame) & 0xFFFFFFFF,
            ssrc=ssrc, payload=codes[i * frame:(i + 1) * frame].tobytes(), marker=i == 0)))
    return out


def event_packets(digit: str, ts: int, seq0: int, ssrc: int = 0x1234, pt: int = 101,
                  duration: int = 1280, step: int = 160) -> list[bytes]:
    """One RFC 4733 key press: updates every `step` samples and three end packets."""
    code = digit_event(digit)
    out = []
    seq = seq0
    for d in range(step, duration + 1, step):
        end = d == duration
        for _ in range(3 if end else 1):
            out.append(build_rtp(RtpPacket(
                payload_type=pt, sequence=seq & 0xFFFF, timestamp=ts, ssrc=ssrc,
                payload=build_event(TelephoneEvent(code, end, 10, d)), marker=d == step)))
            seq += 1
    return out


def send_paced(sock: socket.socket, dest: tuple[str, int], packets: list[bytes],
               interval: float = 0.02, probe: Callable[[], int] | None = None) -> list[int]:
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
        out[off:off + len(p.payload)] = g711.decode(p.payload, law)
    return out


def keyed_packets(keys: str, *, inband: bool, rfc4733: bool, on: int = 640, off: int = 640,
                  lead: int = 1600, tail: int = 3200, ssrc: int = 0x1234,
                  seed: int = 0) -> list[bytes]:
    """Packets of a caller keying `keys` in-band, by RFC 4733, or both at once
    (as many phones do), in send order; one 20 ms audio packet per step."""
    from dsp.tonegen import dtmf, to_int16

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
