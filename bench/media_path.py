"""CPU of the media plane's Python path alone, per call per 20 ms tick, with the
DSP left out: the receive handlers (caller RTP into the playout buffer, agent
RTP relayed) and the tick (frames out of the buffers, encode, packetise, send),
driven on this thread over real loopback sockets, no media thread, no SIP.

    python -m bench.media_path --calls 150 --ticks 500

The batch masker is a stand-in that returns its input (the DSP's own cost is
`make bench`'s), so what is measured is what a compiled per-packet path would
replace: Python bookkeeping plus the syscalls.  Process CPU time, so a busy
machine slows it less than wall-clock figures; still, compare runs made
close together.
"""

from __future__ import annotations

import argparse
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dsp.events import DigitEvent
from masker.media.engine import MediaEngine
from masker.media.ports import PortAllocator
from masker.phones.client import free_udp_port_block
from masker.wire.rtp import build_rtp_fast
from masker.wire.sdp import Negotiated

HOST = "127.0.0.1"


@dataclass
class _Out:
    audio: np.ndarray
    digits: Sequence[DigitEvent] = field(default_factory=tuple)


class _Identity:
    """A batch masker stand-in: output = input, no presses."""

    def __init__(self, n: int, rate: int = 8000) -> None:
        self.n = n

    def process(self, frames: np.ndarray) -> list[_Out]:
        return [_Out(row) for row in frames]

    def grow(self, n: int) -> None:
        self.n = n

    def reset(self, row: int) -> None:
        pass

    def force_mask(self, row: int, start: int, end: int) -> None:
        pass

    def arm(self, row: int) -> None:
        pass

    def disarm(self, row: int) -> None:
        pass


def _peer() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return s


def _sdp(sock: socket.socket) -> Negotiated:
    port = sock.getsockname()[1]
    return Negotiated(HOST, port, 0, "PCMU", 101, 20, "sendrecv", ((0, "PCMU"),))


def _drain(socks: list[socket.socket]) -> None:
    for s in socks:
        while True:
            try:
                s.recv(4096)
            except BlockingIOError:
                break


def run(n_calls: int, ticks: int) -> dict[str, float]:
    ports = 4 * n_calls + 64
    base = free_udp_port_block(ports)
    eng = MediaEngine(PortAllocator(HOST, base, base + ports - 1), _Identity, max_calls=n_calls)
    calls = [eng.open_call(f"c{i}") for i in range(n_calls)]  # ports first: the
    eng.loop.run_commands()  # peers' ephemeral ports must not take the block's
    peers = []
    for media in calls:  # the media thread's commands, run here
        caller, agent = _peer(), _peer()
        eng.table.caller_sdp(media, _sdp(caller))
        eng.table.agent_sdp(media, _sdp(agent))
        peers.append((caller, agent, media))
    payload = bytes(0x70 + i % 64 for i in range(160))  # quiet mu-law noise
    receive = tick = 0.0
    now = time.monotonic()
    for t in range(ticks + 50):
        for i, (caller, agent, media) in enumerate(peers):
            pkt = build_rtp_fast(0, t, 160 * t, 0x1000 + i, payload, t == 0)
            caller.sendto(pkt, (HOST, media.caller_port))
            agent.sendto(pkt, (HOST, media.agent_port))
        c0 = time.process_time()
        while eng.loop.dispatch(0):
            pass
        c1 = time.process_time()
        now += 0.020
        eng._tick(now)
        c2 = time.process_time()
        if t >= 50:  # after the warm-up
            receive += c1 - c0
            tick += c2 - c1
        _drain([s for c, a, _ in peers for s in (c, a)])
    eng.table.close_all()
    eng.loop.close()
    per = 1e6 / (ticks * n_calls)
    return {"receive_us": receive * per, "tick_us": tick * per}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.media_path", description=__doc__.split("\n")[0]
    )
    p.add_argument("--calls", type=int, default=150)
    p.add_argument("--ticks", type=int, default=500)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    for _ in range(args.repeat):
        r = run(args.calls, args.ticks)
        total = r["receive_us"] + r["tick_us"]
        print(
            f"{args.calls} calls: per call per tick {total:.1f} us CPU"
            f" (receive both legs {r['receive_us']:.1f}, tick {r['tick_us']:.1f});"
            f" {total / 200:.3f} % of a core per call without the DSP"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
