"""The media thread itself: one epoll over every call's sockets, a wake pipe, the
command queue, and the 20 ms tick clock.

Other threads never touch call state: they `submit` a command, which the media
thread runs between packets (before the handlers of each poll, so a packet finds
the SDP that came with it).  Each readable socket gets one handler call per
readiness event (one datagram).  The tick callback runs every TICK_S on the
monotonic clock; after a stall the queued packets are handled first and missed
ticks are caught up (up to MAX_CATCH_UP, then the clock skips ahead).
"""

from __future__ import annotations

import contextlib
import queue
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable

import structlog

from masker.media.call_media import CallMedia
from masker.runtime import metrics

log = structlog.get_logger()

TICK_S = 0.020
#: Missed ticks are caught up (a burst of frames) up to this many; beyond, the clock
#: skips ahead and the playout buffers shed the backlog.
MAX_CATCH_UP = 50

#: A socket's handler: (the call it belongs to, the readable socket).
Handler = Callable[[CallMedia, socket.socket], None]


class MediaLoop:
    """Selector loop, wake pipe and command queue of the media thread.

    `on_tick(now)` is called once per tick; its exceptions are logged and counted
    (`tick_errors`), as are those of handlers and commands, in `counters`.
    """

    def __init__(self, counters: Counter[str], on_tick: Callable[[float], None]) -> None:
        self.counters = counters
        self.on_tick = on_tick
        self._cmds: queue.SimpleQueue[tuple[Callable[..., object], tuple[object, ...]]] = (
            queue.SimpleQueue()
        )
        # epoll directly (not selectors): per event one dict lookup, no key objects
        self._epoll = select.epoll()
        self.handlers: dict[int, tuple[Handler, CallMedia, socket.socket]] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_fd = self._wake_r.fileno()  # not in `handlers`: drained by dispatch
        self._epoll.register(self._wake_fd, select.EPOLLIN)
        self._thread: threading.Thread | None = None
        self._running = False
        self.tick_seconds = 0.0  # CPU-ish wall time spent in ticks (for the benchmark)
        self.ticks = 0
        self.late_ticks = 0

    # --- lifecycle ----------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name="media", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the thread (it runs the commands still queued) and wait for it."""
        self._running = False
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def close(self) -> None:
        """Release the epoll and the wake pipe (after stop)."""
        self._epoll.close()
        self._wake_r.close()
        self._wake_w.close()

    # --- from any thread ----------------------------------------------------------------
    def submit(self, fn: Callable[..., object], *args: object) -> None:
        self._cmds.put((fn, args))
        self.wake()

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")

    # --- on the media thread --------------------------------------------------------------
    def watch(self, sock: socket.socket, handler: Handler, call: CallMedia) -> None:
        self.handlers[sock.fileno()] = (handler, call, sock)
        self._epoll.register(sock.fileno(), select.EPOLLIN)

    def unwatch(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        if self.handlers.pop(fd, None) is not None:
            with contextlib.suppress(OSError, ValueError):
                self._epoll.unregister(fd)

    def dispatch(self, timeout: float) -> int:
        """Run the handler of every readable socket (one datagram each); the count."""
        try:
            events = self._epoll.poll(timeout)
        except OSError:
            return 0
        self.run_commands()  # first: a packet may need the SDP that came with it
        handlers = self.handlers
        for fd, _ in events:
            h = handlers.get(fd)
            if h is None:
                if fd == self._wake_fd:
                    self._drain_wake()
                continue
            try:
                h[0](h[1], h[2])
            except Exception:
                self.counters["handler_errors"] += 1
                log.exception("media handler failed")
        return len(events)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def run_commands(self) -> None:
        while True:
            try:
                fn, args = self._cmds.get_nowait()
            except queue.Empty:
                return
            try:
                fn(*args)
            except Exception:
                self.counters["command_errors"] += 1
                log.exception("media command failed")

    def _run(self) -> None:
        next_tick = time.monotonic() + TICK_S
        catching_up = False
        while self._running:
            self.dispatch(max(0.0, next_tick - time.monotonic()))
            now = time.monotonic()
            if now >= next_tick:
                behind = int((now - next_tick) / TICK_S)
                if behind:  # a stall: catch up, tick by tick
                    self.late_ticks += 1
                    metrics.MEDIA_LATE_PACKETS.inc()
                    if not catching_up:  # the backlog of packets first, so frames are there
                        catching_up = True
                        for _ in range(min(behind, MAX_CATCH_UP) + 1):
                            if not self.dispatch(0):
                                break
                else:
                    catching_up = False
                try:
                    self.on_tick(now)
                except Exception:
                    self.counters["tick_errors"] += 1
                    log.exception("media tick failed")
                self.tick_seconds += time.monotonic() - now
                self.ticks += 1
                next_tick += TICK_S
                if now - next_tick > MAX_CATCH_UP * TICK_S:  # hopelessly behind: skip ahead
                    self.counters["ticks_skipped"] += int((now - next_tick) / TICK_S)
                    next_tick = now + TICK_S
        self.run_commands()
