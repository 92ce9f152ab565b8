"""Feed events of other nodes' calls, delivered to this node's desktops.

`RemoteFeeds` holds this node's feed subscribers of calls carried elsewhere (the
feed routes subscribed them after the usual per-agent check, exactly as for a local
call).  `listen()` runs on the API's event loop: it LISTENs on the feed channel and
hands each notice of another node to the call's subscribers.  A notice too large for
NOTIFY arrives empty and is replaced by the call's current state from the directory;
after a lost connection every subscriber gets the current state too, so a desktop
misses no end of a call while PostgreSQL was away.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import structlog

from masker.cluster import metrics
from masker.cluster.notice import CHANNEL, decode

log = structlog.get_logger()

Event = dict[str, Any]
Callback = Callable[[Event], None]
#: Fetches a call's public view from the directory (None when unknown).
StateReader = Callable[[str], Awaitable[Event | None]]


class RemoteFeeds:
    """call id -> this node's subscribers of that remote call.  Thread-safe: the API's
    executor threads subscribe, the listener delivers on the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, list[Callback]] = {}

    def subscribe(self, call_id: str, callback: Callback) -> Callable[[], None]:
        with self._lock:
            self._subs.setdefault(call_id, []).append(callback)

        def unsubscribe() -> None:
            with self._lock:
                subs = self._subs.get(call_id, [])
                if callback in subs:
                    subs.remove(callback)
                if not subs:
                    self._subs.pop(call_id, None)

        return unsubscribe

    def calls(self) -> list[str]:
        with self._lock:
            return list(self._subs)

    def deliver(self, call_id: str, event: Event) -> None:
        with self._lock:
            subs = list(self._subs.get(call_id, ()))
        for callback in subs:
            try:
                callback(event)
            except Exception:
                log.error("remote feed subscriber failed", event_type=event.get("type"))


async def _refresh(feeds: RemoteFeeds, read_state: StateReader, call_ids: list[str]) -> None:
    for call_id in call_ids:
        try:
            view = await read_state(call_id)
        except psycopg.Error:
            metrics.DATABASE_ERRORS.labels("listener").inc()
            return
        if view is not None:
            feeds.deliver(call_id, {"type": "state", "call": view})


async def listen(
    dsn: str,
    node_id: str,
    feeds: RemoteFeeds,
    read_state: StateReader,
    listening: asyncio.Event | None = None,
) -> None:
    """LISTEN until cancelled, reconnecting with a growing pause."""
    backoff = 0.2
    first = True
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(
                dsn, autocommit=True, connect_timeout=2, application_name="masker-cluster-feed"
            )
        except psycopg.Error as exc:
            metrics.DATABASE_ERRORS.labels("listener").inc()
            log.warning("cluster feed cannot listen", error=type(exc).__name__)
            await asyncio.sleep(backoff)
            backoff = min(5.0, backoff * 2)
            continue
        try:
            async with conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                if listening is not None:
                    listening.set()
                if not first:  # what happened while we were away: the current state
                    await _refresh(feeds, read_state, feeds.calls())
                first, backoff = False, 0.2
                async for note in conn.notifies():
                    notice = decode(note.payload)
                    if notice is None or notice.node == node_id:
                        continue  # our own calls reach our desktops through the registry
                    if notice.event is None:
                        await _refresh(feeds, read_state, [notice.call_id])
                    else:
                        feeds.deliver(notice.call_id, notice.event)
        except psycopg.Error as exc:
            metrics.DATABASE_ERRORS.labels("listener").inc()
            log.warning("cluster feed connection lost", error=type(exc).__name__)
            await asyncio.sleep(backoff)
