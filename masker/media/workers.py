"""The media plane in worker processes (`[media] workers` >= 1): signalling and media
no longer share one GIL, and every core can carry calls.

`MediaWorkers` has MediaEngine's command interface (masker.media.plane), so the SIP
side cannot tell them apart.  Each call goes to the ready worker with the fewest
calls.  Its four sockets are bound here, from the service's one PortAllocator
(ports stay unique and random across workers), and handed to the worker with the
call (SCM_RIGHTS), so `open_call` returns the port numbers at once as before; the
service keeps its copies until the call closes, so a port is never reused while
any process still holds it.  Every command is one message on the worker's control
channel (masker.media.channel); digits, losses and timeouts come back the same way
and reach the same sinks as the media thread's.

A supervisor thread reads every worker's messages and watches the processes: a
worker that dies has each of its calls ended through `on_worker_lost` (the service
hangs up both legs, as on an RTP timeout, and the registry wipes the capture), the
other workers' calls carry on, and a replacement is started.  Workers are started
with "spawn" (a fresh interpreter, never a fork of this threaded process).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import multiprocessing
import os
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

import structlog

from masker.media import channel as ch
from masker.media.channel import Channel, ChannelClosed, Message, channel_pair
from masker.media.digits import DigitSink, LostSink
from masker.media.maskbank import BatchFactory, SlotsExhausted
from masker.media.ports import PortAllocator, PortPair, allocate_legs
from masker.media.timeouts import TimeoutSink
from masker.media.worker_main import WorkerSpec, run
from masker.runtime import metrics
from masker.wire.sdp import Negotiated

log = structlog.get_logger()

#: A worker has this long to import and report ready (a loaded machine is slow).
START_TIMEOUT_S = 60.0
#: A command the worker does not take within this long: the worker is killed (and
#: replaced) rather than the SIP thread kept waiting.
SEND_TIMEOUT_S = 2.0
#: Snapshot replies are awaited this long; a worker that misses it counts as empty.
SNAPSHOT_TIMEOUT_S = 1.0
#: A dead worker is replaced after this pause (no respawn storm when one keeps dying).
RESPAWN_DELAY_S = 1.0
#: The supervisor's poll: how soon a respawn or a stop is noticed.
POLL_S = 0.2


class NoMediaWorker(SlotsExhausted):
    """No media worker is running to take a call (the SIP side answers 503)."""


def worker_count(setting: str) -> int:
    """`[media] workers`: "auto" is one per core this process may run on."""
    if setting == "auto":
        return len(os.sched_getaffinity(0))
    return int(setting)


#: Snapshot values of a worker that are levels, not counts: not kept after it dies.
WORKER_GAUGES = frozenset({"calls", "ports_in_use", "tick_us_avg"})


@dataclasses.dataclass(slots=True)
class WorkerCall:
    """The service's handle of a call whose media runs in a worker: its id and its
    ports (bound here, passed to the worker), nothing of its media state."""

    call_id: str
    caller: PortPair
    agent: PortPair
    closed: bool = False

    @property
    def caller_port(self) -> int:
        return self.caller.port

    @property
    def agent_port(self) -> int:
        return self.agent.port


class _Worker:
    """The service's side of one worker process."""

    def __init__(self, index: int, process: BaseProcess, channel: Channel) -> None:
        self.index = index
        self.process = process
        self.channel = channel
        self.calls: set[str] = set()
        self.ready = threading.Event()
        self.dead = False
        self.pid = process.pid or 0
        #: its counters as of its last snapshot (kept in the totals if it dies)
        self.last_counters: dict[str, int] = {}

    @property
    def usable(self) -> bool:
        return self.ready.is_set() and not self.dead


class MediaWorkers:
    """N media worker processes behind MediaEngine's interface."""

    def __init__(
        self,
        ports: PortAllocator,
        batch_factory: BatchFactory,
        workers: int,
        *,
        on_digit: DigitSink | None = None,
        on_lost: LostSink | None = None,
        on_timeout: TimeoutSink | None = None,
        on_hold_timeout: TimeoutSink | None = None,
        on_worker_lost: TimeoutSink | None = None,
        log_level: str = "info",
        **engine_options: Any,
    ) -> None:
        if workers < 1:
            raise ValueError("media workers must be at least 1")
        self.ports = ports
        self.count = workers
        self.batch_factory = batch_factory
        self.engine_options = engine_options
        self.log_level = log_level
        self.on_digit = on_digit
        self.on_lost = on_lost
        self.on_timeout = on_timeout
        self.on_hold_timeout = on_hold_timeout or on_timeout
        self.on_worker_lost = on_worker_lost or on_timeout
        self.counters: Counter[str] = Counter()
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker | None] = [None] * workers
        self._where: dict[str, _Worker] = {}
        self._lock = threading.Lock()
        self._replies: dict[int, dict[str, int]] = {}
        self._reply_cond = threading.Condition()
        self._request_ids = itertools.count(1)
        self._respawn_at: dict[int, float] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._running = False
        self._supervisor: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        """Every worker is up and the supervisor runs (readiness)."""
        sup = self._supervisor
        return (
            sup is not None
            and sup.is_alive()
            and all(w is not None and w.usable for w in self._workers)
        )

    def start(self) -> None:
        """Start every worker and wait until each reports ready."""
        self._running = True
        for index in range(self.count):
            self._spawn(index)
        self._supervisor = threading.Thread(target=self._supervise, name="media-supervisor")
        self._supervisor.daemon = True
        self._supervisor.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        for w in list(self._workers):
            while w is not None and not w.ready.wait(POLL_S):
                if w.process.exitcode is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"media worker {w.index} did not start")

    def stop(self) -> None:
        """Stop every worker (each closes its calls' sockets), then the supervisor."""
        if self._wake_w.fileno() < 0:
            return  # stopped already
        self._running = False
        with self._lock:
            workers = [w for w in self._workers if w is not None and not w.dead]
            for w in workers:
                w.dead = True  # the supervisor leaves them to this
        for w in workers:
            with contextlib.suppress(OSError):
                w.channel.send((ch.STOP,))
        for w in workers:
            w.process.join(5)
            if w.process.is_alive():
                w.process.kill()
                w.process.join(5)
        self._wake()
        if self._supervisor is not None:
            self._supervisor.join(5)
        for w in workers:
            w.channel.close()
        with self._lock:
            self._where.clear()
        self._wake_r.close()
        self._wake_w.close()

    # --- commands (any thread) ----------------------------------------------------------
    def open_call(self, call_id: str) -> WorkerCall:
        with self._lock:
            live = [w for w in self._workers if w is not None and w.usable]
            if not live:
                raise NoMediaWorker("no media worker is running")
            worker = min(live, key=lambda w: len(w.calls))
            caller, agent = allocate_legs(self.ports)
            call = WorkerCall(call_id, caller, agent)
            worker.calls.add(call_id)
            self._where[call_id] = worker
        fds = [caller.rtp.fileno(), caller.rtcp.fileno(), agent.rtp.fileno(), agent.rtcp.fileno()]
        self._send(worker, (ch.OPEN, call_id), fds)
        return call

    def set_caller_sdp(self, call: WorkerCall, neg: Negotiated) -> None:
        self._send_sdp(ch.CALLER_SDP, call, neg)

    def set_agent_sdp(self, call: WorkerCall, neg: Negotiated) -> None:
        self._send_sdp(ch.AGENT_SDP, call, neg)

    def arm(self, call: WorkerCall, armed: bool) -> None:
        self._command(call, ch.ARM, armed)

    def external_digit(self, call: WorkerCall, digit: str, source: str) -> None:
        self._command(call, ch.EXTERNAL_DIGIT, digit, source)

    def lost_digits(self, call: WorkerCall, count: int, source: str) -> None:
        self._command(call, ch.LOST_DIGITS, count, source)

    def close_call(self, call: WorkerCall) -> None:
        with self._lock:
            if call.closed:
                return
            call.closed = True
            worker = self._where.pop(call.call_id, None)
            if worker is not None:
                worker.calls.discard(call.call_id)
        if worker is not None and not worker.dead:
            self._send(worker, (ch.CLOSE, call.call_id))
        self.ports.release(call.caller)
        self.ports.release(call.agent)

    def snapshot(self) -> dict[str, int]:
        """The workers' counters summed (the ones that do not answer in time count as
        none), closed workers' totals, and the service's own port count."""
        with self._lock:
            live = [w for w in self._workers if w is not None and w.usable]
        asked = []
        for w in live:
            request = next(self._request_ids)
            try:
                w.channel.send((ch.SNAPSHOT, request))
            except (OSError, TimeoutError):
                continue
            asked.append((w, request))
        deadline = time.monotonic() + SNAPSHOT_TIMEOUT_S
        replies = []
        total: Counter[str] = Counter(self.counters)
        with self._reply_cond:
            for late in [r for r in self._replies if not asked or r < asked[0][1]]:
                del self._replies[late]  # replies that came after an earlier wait gave up
            for w, request in asked:
                while request not in self._replies and time.monotonic() < deadline:
                    self._reply_cond.wait(max(0.0, deadline - time.monotonic()))
                reply = self._replies.pop(request, None)
                if reply is not None:
                    replies.append(reply)
                    w.last_counters = reply
                    total[f"calls_worker_{w.index}"] = reply.get("calls", 0)
        ticks = sum(r.get("ticks", 0) for r in replies)
        for r in replies:
            total.update(r)
        total["tick_us_avg"] = (
            int(sum(r.get("tick_us_avg", 0) * r.get("ticks", 0) for r in replies) / ticks)
            if ticks
            else 0
        )
        total["ports_in_use"] = self.ports.in_use * 2
        total["media_workers"] = len(replies)
        return dict(total)

    # --- sending ------------------------------------------------------------------------
    def _command(self, call: WorkerCall, kind: str, *args: Any) -> None:
        worker = self._where.get(call.call_id)
        if worker is not None and not worker.dead:
            self._send(worker, (kind, call.call_id, *args))

    def _send_sdp(self, kind: str, call: WorkerCall, neg: Negotiated) -> None:
        """The worker gets its own copy of the SDP; SRTP keys go raw, never pickled, and
        ours are wiped (the media plane owns them, as MediaEngine would)."""
        keys = neg.srtp
        worker = self._where.get(call.call_id)
        try:
            if worker is None or worker.dead:
                return
            if keys is None:
                self._send(worker, (kind, call.call_id, neg, None))
            else:
                plain = dataclasses.replace(neg, srtp=None)
                self._send(worker, (kind, call.call_id, plain, keys.suite), [], [keys.tx, keys.rx])
        finally:
            if keys is not None:
                keys.wipe()

    def _send(
        self,
        worker: _Worker,
        message: Message,
        fds: list[int] | None = None,
        secrets: list[bytearray] | None = None,
    ) -> None:
        try:
            worker.channel.send(message, fds or (), secrets or ())
        except ChannelClosed:
            pass  # the supervisor ends its calls
        except TimeoutError:
            self.counters["media_worker_stuck"] += 1
            log.error("media worker does not take commands: killed", worker=worker.index)
            with contextlib.suppress(OSError):
                worker.process.kill()

    # --- processes ----------------------------------------------------------------------
    def _spawn(self, index: int) -> None:
        ours, theirs = channel_pair()
        spec = WorkerSpec(index, self.batch_factory, self.engine_options, self.log_level)
        process = self._context.Process(
            target=run, args=(theirs, spec), name=f"media-worker-{index}", daemon=True
        )
        process.start()
        theirs.close()
        self._workers[index] = _Worker(index, process, Channel(ours, timeout=SEND_TIMEOUT_S))
        log.info("media worker started", worker=index, pid=process.pid)

    def _supervise(self) -> None:
        poller = select.poll()
        watched: dict[int, tuple[_Worker, bool]] = {}  # fd -> (worker, is its channel)
        poller.register(self._wake_r.fileno(), select.POLLIN)
        while self._running:
            try:
                self._supervise_once(poller, watched)
            except Exception:
                log.exception("media supervisor failed")
                time.sleep(POLL_S)

    def _supervise_once(
        self, poller: select.poll, watched: dict[int, tuple[_Worker, bool]]
    ) -> None:
        current = {w.index: w for w in self._workers if w is not None and not w.dead}
        for fd, (w, _) in list(watched.items()):
            if current.get(w.index) is not w:
                poller.unregister(fd)
                del watched[fd]
        for w in current.values():
            if w.channel.fileno() not in watched:
                watched[w.channel.fileno()] = (w, True)
                poller.register(w.channel.fileno(), select.POLLIN)
                watched[w.process.sentinel] = (w, False)
                poller.register(w.process.sentinel, select.POLLIN)
        for fd, _ in poller.poll(POLL_S * 1000):
            if fd == self._wake_r.fileno():
                with contextlib.suppress(OSError):
                    self._wake_r.recv(64)
                continue
            entry = watched.get(fd)
            if entry is None or entry[0].dead:
                continue
            worker, is_channel = entry
            self._read(worker)  # a process that ended: what it said before it went
            if not is_channel:
                self._lost(worker)
        self._respawn_due()

    def _read(self, worker: _Worker) -> None:
        """Every message waiting from the worker; its end: the worker is lost."""
        sock = worker.channel.sock
        while not worker.dead:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return
            try:
                message, fds = worker.channel.recv()
            except (ChannelClosed, OSError):
                self._lost(worker)
                return
            except Exception:
                log.exception("media worker message unreadable", worker=worker.index)
                continue
            for fd in fds:
                socket.close(fd)
            try:
                self._dispatch(worker, message)
            except Exception:
                log.exception("media worker message failed", worker=worker.index)

    def _dispatch(self, worker: _Worker, message: Message) -> None:
        kind = message[0]
        if kind == ch.READY:
            worker.ready.set()
            log.info("media worker ready", worker=worker.index, pid=worker.pid)
        elif kind == ch.SNAPSHOT:
            with self._reply_cond:
                self._replies[message[1]] = message[2]
                self._reply_cond.notify_all()
        elif kind == ch.LATE_TICKS:
            metrics.MEDIA_LATE_PACKETS.inc(message[1])
        elif message[1] not in worker.calls:
            return  # a call already closed here: its last digits or timeout go nowhere
        elif kind == ch.DIGIT:
            _call(self.on_digit, *message[1:])
        elif kind == ch.LOST_DIGITS:
            _call(self.on_lost, *message[1:])
        elif kind == ch.TIMEOUT:
            _call(self.on_timeout, message[1])
        elif kind == ch.HOLD_TIMEOUT:
            _call(self.on_hold_timeout, message[1])

    def _lost(self, worker: _Worker) -> None:
        """The worker died: each of its calls is ended, a replacement comes later."""
        with self._lock:
            if worker.dead or not self._running:
                return  # stopping: stop() waits for it
            worker.dead = True
            calls = sorted(worker.calls)
        process = worker.process
        if process.is_alive():  # it closed its channel but lingers
            process.kill()
        process.join(1)
        exitcode = process.exitcode
        if exitcode is not None:
            process.close()  # its sentinel descriptor
        self.counters["media_worker_deaths"] += 1
        # its counters as last reported stay in the totals (they only ever grow)
        self.counters.update(
            {k: v for k, v in worker.last_counters.items() if k not in WORKER_GAUGES}
        )
        log.error(
            "media worker lost",
            worker=worker.index,
            pid=worker.pid,
            exitcode=exitcode,
            calls=len(calls),
        )
        for call_id in calls:
            _call(self.on_worker_lost, call_id)
        worker.channel.close()
        if self._running:
            self._respawn_at[worker.index] = time.monotonic() + RESPAWN_DELAY_S

    def _respawn_due(self) -> None:
        now = time.monotonic()
        for index, at in list(self._respawn_at.items()):
            if now >= at and self._running:
                del self._respawn_at[index]
                try:
                    self._spawn(index)
                except Exception:
                    log.exception("media worker respawn failed", worker=index)
                    self._respawn_at[index] = now + RESPAWN_DELAY_S
                    continue
                self.counters["media_worker_restarts"] += 1

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")


def _call(sink: Callable[..., object] | None, *args: Any) -> None:
    if sink is None:
        return
    try:
        sink(*args)
    except Exception:
        log.error("media sink failed", sink=getattr(sink, "__name__", "?"))
