"""This node's side of the directory: its calls' public state, its feed events, its
heartbeat, and the reaping of dead nodes; all on one thread of its own.

The registry's callbacks run on the SIP, media and digits threads, so they only put
the (already public) event on a bounded queue and return: a slow or dead PostgreSQL
can never stall signalling or media.  When the queue is full an event is dropped
and counted, and its call is marked dirty, so the call's state in the directory
still catches up (the feed of a remote desktop may miss that one step; its next
snapshot is right).  While the database is unreachable the thread retries with a
growing pause, and after reconnecting it rewrites every call's state.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog

from masker.api.call_registry import CallRegistry
from masker.api.views import public_call, public_event
from masker.cluster import directory, metrics
from masker.cluster.notice import encode
from masker.cluster.reaper import lost_event, reap
from masker.cluster.schema import migrate

log = structlog.get_logger()

SCAN_INTERVAL_S = 0.5
MAX_BACKOFF_S = 5.0


@dataclass
class PublisherSettings:
    node_id: str
    api_url: str
    dsn: str
    heartbeat_s: float = 1.0
    node_dead_s: float = 5.0
    queue_limit: int = 10_000
    draining: Callable[[], bool] = field(default=lambda: False)


class Publisher:
    """Started once, stopped once; `stop()` leaves the directory as it is (a node that
    stops with calls still up is a node whose calls the survivors will mark lost)."""

    def __init__(self, registry: CallRegistry, settings: PublisherSettings) -> None:
        self._registry = registry
        self._s = settings
        self._events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue(settings.queue_limit)
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()
        self._subscribed: dict[str, Callable[[], None]] = {}
        self._written: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="masker-cluster", daemon=True)
        self._abandoned = False
        self.connected = threading.Event()

    # --- any thread ----------------------------------------------------------------------
    def _on_event(self, call_id: str, event: Any) -> None:
        """Registry callback (SIP/media/digits threads): never blocks."""
        public = public_event(event)
        with self._dirty_lock:
            self._dirty.add(call_id)
        if public is None:
            return
        try:
            self._events.put_nowait((call_id, public))
        except queue.Full:
            metrics.EVENTS_DROPPED.inc()

    def start(self) -> Publisher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        for unsubscribe in self._subscribed.values():
            unsubscribe()
        self._subscribed.clear()

    # --- the publisher thread ------------------------------------------------------------
    @property
    def _max_pause(self) -> float:
        """The longest pause between reconnection attempts: short enough that a live node
        is back well within `node_dead_s` of the database's return."""
        return min(MAX_BACKOFF_S, self._s.node_dead_s / 2)

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with directory.connect(self._s.dsn) as conn:
                    self._serve(conn)
            except Exception as exc:  # this thread must outlive any failure
                if self.connected.is_set():
                    backoff = 0.1
                self.connected.clear()
                if isinstance(exc, psycopg.Error):
                    metrics.DATABASE_ERRORS.labels("publisher").inc()
                    log.warning("cluster directory unreachable", error=type(exc).__name__)
                else:  # a bug: keep heartbeating, or the survivors would call us dead
                    log.error("cluster publisher failed", error=type(exc).__name__)
                self._written.clear()  # rewrite everything once it is back
                self._stop.wait(backoff)
                backoff = min(self._max_pause, backoff * 2)

    def _serve(self, conn: psycopg.Connection[Any]) -> None:
        s = self._s
        migrate(conn)
        directory.heartbeat(conn, s.node_id, s.api_url, s.draining())
        self._abandon_previous_run(conn)
        self.connected.set()
        # A survivor judges others only once it has been connected for node_dead_s plus
        # the longest reconnection pause: after a database restart every live node has
        # heartbeaten again by then, so none is taken for dead because all were cut off.
        judge_from = time.monotonic() + s.node_dead_s + self._max_pause
        next_beat = next_scan = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_scan:
                self._scan(conn)
                next_scan = now + SCAN_INTERVAL_S
            self._publish(conn, timeout=max(0.0, min(next_scan, next_beat) - time.monotonic()))
            if time.monotonic() >= next_beat:
                directory.heartbeat(conn, s.node_id, s.api_url, s.draining())
                lost = (
                    reap(conn, s.node_id, s.node_dead_s) if time.monotonic() >= judge_from else []
                )
                if lost:
                    metrics.CALLS_LOST.inc(len(lost))
                    log.warning("calls of a dead node marked lost", count=len(lost))
                next_beat = time.monotonic() + s.heartbeat_s

    def _abandon_previous_run(self, conn: psycopg.Connection[Any]) -> None:
        """Once per process: what this node id left live before it (re)started is lost."""
        if self._abandoned:
            return
        self._abandoned = True
        gone = directory.abandon_own_calls(conn, self._s.node_id)
        if gone:
            directory.notify(conn, [encode(self._s.node_id, cid, lost_event()) for cid, _ in gone])
            log.warning("calls of this node's previous run marked lost", count=len(gone))

    def _publish(self, conn: psycopg.Connection[Any], timeout: float) -> None:
        """Send what the queue holds (waiting up to `timeout` for the first event), then
        write the state of the calls those events touched."""
        batch: list[tuple[str, dict[str, Any]]] = []
        try:
            batch.append(self._events.get(timeout=timeout))
            while len(batch) < 500:
                batch.append(self._events.get_nowait())
        except queue.Empty:
            pass
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        for call_id in dirty:
            self._write(conn, call_id)
        if batch:
            try:
                directory.notify(conn, [encode(self._s.node_id, cid, ev) for cid, ev in batch])
            except psycopg.Error:
                metrics.EVENTS_DROPPED.inc(len(batch))
                raise
            metrics.EVENTS_PUBLISHED.inc(len(batch))

    def _write(self, conn: psycopg.Connection[Any], call_id: str) -> None:
        try:
            view = public_call(self._registry.get_call(call_id))
        except LookupError:
            return
        self._upsert(conn, view)

    def _upsert(self, conn: psycopg.Connection[Any], view: dict[str, Any]) -> None:
        if self._written.get(view["id"]) != view:
            directory.upsert_call(conn, self._s.node_id, view)
            self._written[view["id"]] = view

    def _scan(self, conn: psycopg.Connection[Any]) -> None:
        """Follow new calls (subscribe before the first write, so a desktop that finds
        the call in the directory misses none of its events) and write changed states."""
        views = [public_call(c) for c in self._registry.list_calls()]
        present = {v["id"] for v in views}
        for call_id in present - self._subscribed.keys():
            try:
                self._subscribed[call_id] = self._registry.subscribe(
                    call_id, functools.partial(self._on_event, call_id)
                )
            except LookupError:
                continue
        for call_id in self._subscribed.keys() - present:
            self._subscribed.pop(call_id)()
            self._written.pop(call_id, None)
        for view in views:
            self._upsert(conn, view)
