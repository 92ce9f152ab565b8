"""The media thread itself: one epoll over every call's sockets, a wake pipe, the
command queue, and the tick clock.

Other threads never touch call state: they `submit` a command, which the media
thread runs between packets (before the handlers of each poll, so a packet finds
the SDP that came with it).  Each readable socket gets one handler call per
readiness event (one datagram).

The tick callback runs `lanes` times per TICK_S frame on the monotonic clock, as
`on_tick(now, lane)`: lane k's sub-tick comes k * TICK_S / lanes into the frame.
Each call's frames are masked in the lane that comes next after its packets arrive
(`lane_after`): with 4 lanes a packet waits at most a quarter frame for its tick
instead of up to a whole one (`[media] lanes`; each lane in use costs a batch
`process` a frame, on a batch of its own, partly filled).  After a stall the
queued packets are handled first and missed sub-ticks are caught up, lane by lane
(up to MAX_CATCH_UP frames, then the clock skips ahead by whole frames and
`on_skip(frames)` tells the engine, whose streams' timestamps must move on by them).
"""

from __future__ import annotations

import contextlib
import math
import queue
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable

import structlog

from masker.media.call_media import CallMedia
from masker.media.stalls import STALL_S, Stall, StallWatch
from masker.runtime import metrics

log = structlog.get_logger()

TICK_S = 0.020
#: Sub-ticks per frame a loop may have: a call's frame is masked in one (its lane).
LANE_CHOICES = (1, 2, 4)
#: Missed frames are caught up (a burst of frames) up to this many; beyond, the clock
#: skips ahead, the playout buffers shed the backlog and the outgoing streams'
#: timestamps move on by the frames skipped (`on_skip`).
MAX_CATCH_UP = 50

#: A socket's handler: (the call it belongs to, the readable socket).
Handler = Callable[[CallMedia, socket.socket], None]


class MediaLoop:
    """Selector loop, wake pipe and command queue of the media thread.

    `on_tick(now, lane)` is called once per sub-tick and `on_skip(frames)` when the
    clock skips frames; their exceptions are logged and counted (`tick_errors`), as
    are those of handlers and commands, in `counters`.
    """

    def __init__(
        self,
        counters: Counter[str],
        on_tick: Callable[[float, int], None],
        lanes: int = 1,
        on_skip: Callable[[int], None] | None = None,
        stall_s: float = STALL_S,
    ) -> None:
        if lanes not in LANE_CHOICES:
            raise ValueError(f"lanes must be one of {LANE_CHOICES}")
        self.lanes = lanes
        self.sub_tick = TICK_S / lanes
        self.counters = counters
        self.on_tick = on_tick
        self.on_skip = on_skip
        #: a tick this far behind is logged as `media.stalled` (looked at only for
        #: ticks a frame or more behind)
        self.stall_s = stall_s
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
        self.ticks = 0  # frames (every lane's sub-tick run once)
        self.late_ticks = 0
        #: when the next sub-tick is due (monotonic), and its lane
        self.next_tick = time.monotonic() + self.sub_tick
        self.lane = 0

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

    def lane_after(self, t: float, margin: float) -> int:
        """The lane whose next sub-tick is the first at least `margin` seconds after
        `t` (a packet's arrival): the one that finds that packet's frame there."""
        ahead = max(0, math.ceil((t + margin - self.next_tick) / self.sub_tick - 1e-9))
        return (self.lane + ahead) % self.lanes

    def move_tick(self, seconds: float) -> None:
        """Move the tick clock's phase (masker.media.phase): called from `on_tick`,
        it moves the sub-tick after this one (< 0: earlier)."""
        self.next_tick += seconds

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
        self.next_tick = time.monotonic() + self.sub_tick
        self.lane = 0
        catching_up = False
        stalls = StallWatch()
        stalls.mark(time.monotonic())
        try:
            while self._running:
                catching_up = self._step(catching_up, stalls)
        finally:
            stalls.close()
        self.run_commands()

    def _step(self, catching_up: bool, stalls: StallWatch) -> bool:
        """One wait-and-dispatch, and the sub-tick when it is due; whether the loop
        is catching up missed sub-ticks."""
        self.dispatch(max(0.0, self.next_tick - time.monotonic()))
        now = time.monotonic()
        if now < self.next_tick:
            return catching_up
        if now - self.next_tick >= TICK_S:  # a stall of a frame or more: catch up
            self.late_ticks += 1
            metrics.MEDIA_LATE_PACKETS.inc()
            if not catching_up:  # the backlog of packets first, so frames are there
                catching_up = True
                if now - self.next_tick >= self.stall_s:
                    self._stalled(now - self.next_tick, stalls.since_mark(now))
                behind = int((now - self.next_tick) / TICK_S)
                for _ in range(min(behind, MAX_CATCH_UP) + 1):
                    if not self.dispatch(0):
                        break
        else:
            catching_up = False
        stalls.mark(now)
        try:
            self.on_tick(now, self.lane)
        except Exception:
            self.counters["tick_errors"] += 1
            log.exception("media tick failed")
        self.tick_seconds += time.monotonic() - now
        self.lane = (self.lane + 1) % self.lanes
        self.ticks += self.lane == 0
        self.next_tick += self.sub_tick
        if now - self.next_tick > MAX_CATCH_UP * TICK_S:  # hopelessly behind: skip ahead
            frames = int((now - self.next_tick) / TICK_S)  # whole frames: lanes keep phase
            self.counters["ticks_skipped"] += frames
            self.next_tick += frames * TICK_S
            self._skipped(frames)
        return catching_up

    def _stalled(self, behind: float, stall: Stall) -> None:
        """A tick `stall_s` or more behind: say where the time went (masker.media.stalls)."""
        self.counters["stalls"] += 1
        log.warning("media.stalled", behind_ms=round(behind * 1e3, 1), **stall.fields())

    def _skipped(self, frames: int) -> None:
        if self.on_skip is None:
            return
        try:
            self.on_skip(frames)
        except Exception:
            self.counters["tick_errors"] += 1
            log.exception("media skip failed")
