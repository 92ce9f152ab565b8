"""RTP/RTCP port pairs from the configured range (even RTP port, RTCP on the next).

Each pair is chosen at random (from the operating system's CSPRNG) among the
free pairs of the range: the ports of the next call cannot be guessed from
the ports of the last one, so nobody can spray them ahead of the caller.  A
pair freed recently is not reused while other pairs are free (late packets of
the old call would land in the new call).  Ports in use by anyone else (bind
fails) are skipped and the next random pair is tried.
"""

from __future__ import annotations

import secrets
import socket
import threading
from collections import deque
from dataclasses import dataclass
from typing import Protocol

#: Random draws before falling back to a shuffled list of every free pair (a range
#: that is nearly full or mostly taken by other programs).
RANDOM_TRIES = 16


class PortsExhausted(RuntimeError):
    """No free RTP/RTCP port pair in the configured range."""


@dataclass
class PortPair:
    """A bound, non-blocking RTP socket and its RTCP socket (port + 1)."""

    rtp: socket.socket
    rtcp: socket.socket

    @property
    def port(self) -> int:
        port: int = self.rtp.getsockname()[1]
        return port

    def close(self) -> None:
        self.rtp.close()
        self.rtcp.close()


class PortSource(Protocol):
    """Where a media engine's port pairs come from and go back to."""

    @property
    def in_use(self) -> int: ...

    def allocate(self) -> PortPair: ...

    def release(self, pair: PortPair) -> None: ...


def allocate_legs(ports: PortSource) -> tuple[PortPair, PortPair]:
    """A call's two port pairs (caller leg, agent leg), both or neither."""
    caller = ports.allocate()
    try:
        agent = ports.allocate()
    except Exception:
        ports.release(caller)
        raise
    return caller, agent


class PortAllocator:
    """Thread-safe allocator of PortPairs on one address within [port_min, port_max]."""

    def __init__(self, address: str, port_min: int, port_max: int) -> None:
        self.address = address
        self.first = port_min + (port_min % 2)
        self.last = port_max - 1  # the RTCP port of the last pair must be in range
        if self.first > self.last:
            raise ValueError("port range holds no RTP/RTCP pair")
        self.span = (self.last - self.first) // 2 + 1
        self._in_use: set[int] = set()
        #: recently released pairs, oldest first: reused only when nothing else is free
        self._recent: deque[int] = deque(maxlen=max(1, self.span // 2))
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        with self._lock:
            return len(self._in_use)

    def allocate(self) -> PortPair:
        with self._lock:
            busy = self._in_use
            recent = set(self._recent)
            tried: set[int] = set()
            for _ in range(RANDOM_TRIES):
                port = self.first + 2 * secrets.randbelow(self.span)
                if port in busy or port in recent or port in tried:
                    continue
                tried.add(port)
                pair = self._take(port)
                if pair is not None:
                    return pair
            rest = [
                p
                for p in range(self.first, self.last + 1, 2)
                if p not in busy and p not in tried and p not in recent
            ]
            _shuffle(rest)
            for port in rest + [p for p in self._recent if p not in busy]:
                pair = self._take(port)
                if pair is not None:
                    return pair
        raise PortsExhausted("no free RTP port pair")

    def _take(self, port: int) -> PortPair | None:
        pair = self._bind(port)
        if pair is not None:
            self._in_use.add(port)
        return pair

    def release(self, pair: PortPair) -> None:
        port = pair.port
        pair.close()
        with self._lock:
            self._in_use.discard(port)
            self._recent.append(port)

    def _bind(self, port: int) -> PortPair | None:
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        socks = []
        try:
            for p in (port, port + 1):
                s = socket.socket(family, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((self.address, p))
                s.setblocking(False)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        except OSError:
            for s in socks:
                s.close()
            return None
        return PortPair(socks[0], socks[1])


class HandedPorts:
    """The port source of a media worker process: its pairs were bound by the service
    (a PortAllocator there) and handed over with the call, so it allocates none;
    releasing a pair closes the worker's copies of its sockets."""

    def __init__(self) -> None:
        self._in_use = 0
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        return self._in_use

    def allocate(self) -> PortPair:
        raise PortsExhausted("a media worker is handed its ports")

    def adopt(self, pair: PortPair) -> PortPair:
        with self._lock:
            self._in_use += 1
        return pair

    def release(self, pair: PortPair) -> None:
        pair.close()
        with self._lock:
            self._in_use -= 1


def _shuffle(items: list[int]) -> None:
    """Fisher-Yates with the CSPRNG."""
    for i in range(len(items) - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        items[i], items[j] = items[j], items[i]
