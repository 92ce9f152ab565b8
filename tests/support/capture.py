"""A packet capture on the loopback interface (AF_PACKET, needs CAP_NET_RAW: the
test containers run as root): the UDP datagrams to or from some ports, as a
sniffer on the wire would see them."""

from __future__ import annotations

import socket
import struct
import threading

ETH_P_ALL = 0x0003
_ETH = 14  # loopback frames carry an Ethernet header with zero addresses


def can_capture() -> bool:
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)).close()
    except (OSError, AttributeError):
        return False
    return True


class LoopbackCapture:
    """UDP payloads over IPv4 on `lo` whose source or destination port is in `ports`,
    as (source port, destination port, payload), until stopped."""

    def __init__(self, ports: set[int]) -> None:
        self.ports = ports
        self.datagrams: list[tuple[int, int, bytes]] = []
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sock.bind(("lo", 0))
        self._sock.settimeout(0.1)
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                frame, addr = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if addr[2] == socket.PACKET_OUTGOING:  # each loopback frame shows up twice
                continue
            ip = frame[_ETH:]
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_UDP:
                continue
            udp = ip[(ip[0] & 0x0F) * 4 :]
            sport, dport, length = struct.unpack_from("!HHH", udp)
            if sport in self.ports or dport in self.ports:
                self.datagrams.append((sport, dport, bytes(udp[8:length])))

    def stop(self) -> list[tuple[int, int, bytes]]:
        self._stop = True
        self._thread.join()
        self._sock.close()
        return self.datagrams
