"""RTP/RTCP port pairs from the configured range (even RTP port, RTCP on the next).

Allocation rotates through the range so that a port freed by one call is not
handed straight to the next one (late packets of the old call would land in
the new call).  Ports in use by anyone else are skipped.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass


class PortsExhausted(RuntimeError):
    """No free RTP/RTCP port pair in the configured range."""


@dataclass
class PortPair:
    """A bound, non-blocking RTP socket and its RTCP socket (port + 1)."""

    rtp: socket.socket
    rtcp: socket.socket

    @property
    def port(self) -> int:
        return self.rtp.getsockname()[1]

    def close(self) -> None:
        self.rtp.close()
        self.rtcp.close()


class PortAllocator:
    """Thread-safe allocator of PortPairs on one address within [port_min, port_max]."""

    def __init__(self, address: str, port_min: int, port_max: int) -> None:
        self.address = address
        self.first = port_min + (port_min % 2)
        self.last = port_max - 1  # the RTCP port of the last pair must be in range
        if self.first > self.last:
            raise ValueError("port range holds no RTP/RTCP pair")
        self._next = self.first
        self._in_use: set[int] = set()
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        with self._lock:
            return len(self._in_use)

    def allocate(self) -> PortPair:
        with self._lock:
            span = (self.last - self.first) // 2 + 1
            for _ in range(span):
                port = self._next
                self._next = port + 2 if port + 2 <= self.last else self.first
                if port in self._in_use:
                    continue
                pair = self._bind(port)
                if pair is not None:
                    self._in_use.add(port)
                    return pair
        raise PortsExhausted("no free RTP port pair")

    def release(self, pair: PortPair) -> None:
        port = pair.port
        pair.close()
        with self._lock:
            self._in_use.discard(port)

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
