"""A media worker process: one MediaEngine (its own media thread) driven by the
service's commands over a control channel (masker.media.channel).

The service binds each call's four sockets and hands them over with the call;
the worker's engine receives, masks and sends exactly as the in-process media
thread would, and its digits, losses and timeouts go back as messages.  The
process hardens itself first (no core dumps, nothing of the service's MASKER_*
environment, the KEK's among them), ignores the terminal's and the service
manager's SIGINT/SIGTERM (the service drains its calls and then stops it), and
exits when the channel closes: the service stopped it, or died.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from masker.media import channel as ch
from masker.media.call_media import CallMedia
from masker.media.channel import Channel, ChannelClosed, Message
from masker.media.engine import MediaEngine
from masker.media.maskbank import BatchFactory
from masker.media.ports import HandedPorts, PortPair
from masker.runtime.allocator import one_malloc_arena
from masker.runtime.hardening import disable_core_dumps, forget_environment
from masker.wire.sdes import SrtpKeys
from masker.wire.sdp import Negotiated

log = structlog.get_logger()

#: How often the worker reports its late ticks (the service's late-packet metric).
REPORT_S = 1.0
#: Signals the service handles (drain, stats, stacks): a worker leaves them alone.
IGNORED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to build its engine (pickled into the new process)."""

    index: int
    batch_factory: BatchFactory
    #: MediaEngine's keyword arguments other than the sinks
    options: dict[str, Any] = field(default_factory=dict)
    log_level: str = "info"


def run(sock: socket.socket, spec: WorkerSpec) -> None:
    """The worker process's entry point (multiprocessing "spawn")."""
    for signum in IGNORED_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    disable_core_dumps()
    one_malloc_arena()  # before the media thread starts
    forget_environment([name for name in os.environ if name.startswith("MASKER_")])
    from masker.runtime.logs import configure_logging

    configure_logging(json=True, level=spec.log_level)
    MediaWorker(Channel(sock, timeout=REPORT_S), spec).serve()


def _with_keys(
    neg: Negotiated, suite: str | None, keys: list[bytearray] | None = None
) -> Negotiated:
    """The SDP as the service had it: its SRTP keys came raw beside the pickle."""
    if suite is None or keys is None:
        return neg
    return dataclasses.replace(neg, srtp=SrtpKeys(suite, keys[0], keys[1]))


class MediaWorker:
    """The engine and the command loop of one worker process."""

    def __init__(self, channel: Channel, spec: WorkerSpec) -> None:
        self.channel = channel
        self.index = spec.index
        self.ports = HandedPorts()
        self.engine = MediaEngine(
            self.ports,
            spec.batch_factory,
            on_digit=self._digit,
            on_lost=self._lost,
            on_timeout=lambda call_id: self._tell(ch.TIMEOUT, call_id),
            on_hold_timeout=lambda call_id: self._tell(ch.HOLD_TIMEOUT, call_id),
            **spec.options,
        )
        self.calls: dict[str, CallMedia] = {}
        self._late_reported = 0

    def serve(self) -> None:
        from masker.runtime.service import calm_garbage_collector

        calm_garbage_collector()  # as the service: short, rare full collections
        self.engine.start()
        try:
            self._tell(ch.READY, os.getpid())
            reported = time.monotonic()
            while True:
                if time.monotonic() - reported >= REPORT_S:
                    reported = time.monotonic()
                    self._report_late()
                try:
                    message, fds = self.channel.recv()
                except TimeoutError:
                    continue
                if message[0] == ch.STOP:
                    break
                try:
                    self.handle(message, fds)
                except Exception:
                    log.exception("media worker command failed", worker=self.index)
        except ChannelClosed:
            log.warning("media worker orphaned: the service is gone", worker=self.index)
        finally:
            self.engine.stop()
            self.channel.close()

    def handle(self, message: Message, fds: list[int]) -> None:
        kind, call_id, *args = message
        if kind == ch.OPEN:
            self._open(call_id, fds)
            return
        for fd in fds:  # only OPEN carries sockets
            socket.close(fd)
        if kind == ch.SNAPSHOT:  # on the media thread: after the commands sent before it
            engine = self.engine
            engine.run_in_thread(lambda: self._tell(ch.SNAPSHOT, call_id, engine.snapshot()))
            return
        call = self.calls.get(call_id)
        if kind in (ch.CALLER_SDP, ch.AGENT_SDP):
            neg = _with_keys(*args)
            if call is None:
                if neg.srtp is not None:
                    neg.srtp.wipe()
                return
        if call is None:
            return
        engine = self.engine
        if kind == ch.CALLER_SDP:
            engine.set_caller_sdp(call, neg)
        elif kind == ch.AGENT_SDP:
            engine.set_agent_sdp(call, neg)
        elif kind == ch.ARM:
            engine.arm(call, args[0])
        elif kind == ch.EXTERNAL_DIGIT:
            engine.external_digit(call, args[0], args[1])
        elif kind == ch.LOST_DIGITS:
            engine.lost_digits(call, args[0], args[1])
        elif kind == ch.CLOSE:
            del self.calls[call_id]
            engine.close_call(call)
        else:
            raise ValueError(f"unknown media command {kind!r}")

    def _open(self, call_id: str, fds: list[int]) -> None:
        if len(fds) != 4 or call_id in self.calls:
            for fd in fds:
                socket.close(fd)
            raise ValueError("a call opens with four new sockets")
        socks = [socket.socket(fileno=fd) for fd in fds]
        for s in socks:
            s.setblocking(False)
        caller = self.ports.adopt(PortPair(socks[0], socks[1]))
        agent = self.ports.adopt(PortPair(socks[2], socks[3]))
        self.calls[call_id] = self.engine.adopt(call_id, caller, agent)

    # --- sinks, on the media thread -------------------------------------------------------
    def _digit(self, call_id: str, digit: str, source: str) -> None:
        self._tell(ch.DIGIT, call_id, digit, source)

    def _lost(self, call_id: str, count: int, source: str) -> None:
        self._tell(ch.LOST_DIGITS, call_id, count, source)

    def _report_late(self) -> None:
        late = self.engine.loop.late_ticks
        if late > self._late_reported:
            self._tell(ch.LATE_TICKS, late - self._late_reported)
            self._late_reported = late

    def _tell(self, *message: Any) -> None:
        try:
            self.channel.send(message)
        except (ChannelClosed, TimeoutError):
            log.error("media worker cannot reach the service", worker=self.index, kind=message[0])
