"""The control channel between the service and one media worker process.

An AF_UNIX SOCK_SEQPACKET socketpair: one pickled tuple per datagram (the kernel
keeps message boundaries, so no framing), with up to four file descriptors
(a call's RTP/RTCP sockets) passed alongside as SCM_RIGHTS.  Only the two ends
of the pair can use it: no address, nothing another process can connect to.

Card digits cross it (a key press the worker found, a SIP INFO digit for it to
deduplicate): the receive buffer is overwritten after every message, and nothing
here logs a message's contents.  Key material (a leg's SRTP keys) is not pickled:
`send` passes the sender's own bytearrays to the kernel after the pickle (`secrets`),
so the sender never holds an immutable copy it could not overwrite, and `recv` hands
the receiver fresh bytearrays in their place.
"""

from __future__ import annotations

import array
import pickle
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Largest message (an SDP's `Negotiated` pickles to about 1 KB, a snapshot to 2).
MAX_MESSAGE = 1 << 16
#: File descriptors one message may carry (a call's four sockets).
MAX_FDS = 4

Message = tuple[Any, ...]

# Service -> worker: (kind, call_id, ...) for a call; OPEN carries the call's four
# sockets (caller RTP, caller RTCP, agent RTP, agent RTCP).
OPEN = "open"
CALLER_SDP = "caller_sdp"  # (kind, call_id, Negotiated)
AGENT_SDP = "agent_sdp"  # (kind, call_id, Negotiated)
ARM = "arm"  # (kind, call_id, armed)
EXTERNAL_DIGIT = "external_digit"  # (kind, call_id, digit, source)
CLOSE = "close"  # (kind, call_id)
SNAPSHOT = "snapshot"  # (kind, request id); the reply adds the counters
STOP = "stop"  # (kind,)
# Both ways: LOST_DIGITS (kind, call_id, count, source).
LOST_DIGITS = "lost_digits"
# Worker -> service.
READY = "ready"  # (kind, pid)
DIGIT = "digit"  # (kind, call_id, digit, source)
TIMEOUT = "timeout"  # (kind, call_id)
HOLD_TIMEOUT = "hold_timeout"  # (kind, call_id)
LATE_TICKS = "late_ticks"  # (kind, late ticks since the last report)


@dataclass(frozen=True)
class Secrets:
    """The last item of a pickled message that has byte strings sent raw after the
    pickle: their lengths.  `recv` replaces it with the byte strings (bytearrays)."""

    sizes: tuple[int, ...]


class ChannelClosed(OSError):
    """The other end is gone (its process exited or closed the channel)."""


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """(service end, worker end)."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


class Channel:
    """Messages over one end of a channel_pair.  `send` may be called from any thread;
    `recv` from one thread at a time.  `timeout` bounds both (None: wait for ever)."""

    def __init__(self, sock: socket.socket, timeout: float | None = None) -> None:
        self.sock = sock
        sock.settimeout(timeout)
        self._send_lock = threading.Lock()
        self._buf = bytearray(MAX_MESSAGE)
        self._fd_space = socket.CMSG_SPACE(MAX_FDS * array.array("i").itemsize)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(
        self, message: Message, fds: Sequence[int] = (), secrets: Sequence[bytearray] = ()
    ) -> None:
        """`secrets` travel raw after the pickle and arrive as the message's last item (a
        list of bytearrays).  Raises TimeoutError when the other end does not take it in
        time, ChannelClosed when it is gone."""
        if secrets:
            message = (*message, Secrets(tuple(len(s) for s in secrets)))
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        try:
            with self._send_lock:
                self.sock.sendmsg([data, *secrets], anc)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ChannelClosed("media channel closed") from exc

    def recv(self) -> tuple[Message, list[int]]:
        """The next message and the descriptors that came with it (the caller owns them).
        Raises ChannelClosed at the end, TimeoutError when nothing came in time."""
        buf = self._buf
        try:
            size, anc, flags, _ = self.sock.recvmsg_into([buf], self._fd_space)
        except ConnectionResetError as exc:
            raise ChannelClosed("media channel closed") from exc
        fds = _fds(anc)
        if size == 0:
            for fd in fds:
                socket.close(fd)
            raise ChannelClosed("media channel closed")
        try:
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                raise ValueError("media channel message too long")
            message = pickle.loads(memoryview(buf)[:size])  # ignores the raw bytes after it
            if not isinstance(message, tuple) or not message:
                raise ValueError("media channel message is not a tuple")
            if isinstance(message[-1], Secrets):
                message = (*message[:-1], _split(buf, size, message[-1].sizes))
        except Exception:
            for fd in fds:
                socket.close(fd)
            raise
        finally:
            buf[:size] = bytes(size)  # a digit or a key must not linger in the buffer
        return message, fds

    def close(self) -> None:
        self.sock.close()


def _split(buf: bytearray, end: int, sizes: tuple[int, ...]) -> list[bytearray]:
    """The raw byte strings at the end of the message, each in a new bytearray."""
    start = end - sum(sizes)
    if start < 0:
        raise ValueError("media channel message shorter than its secrets")
    out = []
    for size in sizes:
        out.append(bytearray(memoryview(buf)[start : start + size]))
        start += size
    return out


def _fds(anc: list[tuple[int, int, bytes]]) -> list[int]:
    fds = array.array("i")
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return list(fds)
