"""Live feed of one call to a desktop: WebSocket, with Server-Sent Events as fallback.

The registry calls back from the SIP/media threads; events hop onto the API's
event loop with call_soon_threadsafe and are sent in order, masked (views.py).
A connecting client first gets the call's current state, so reconnecting
after a network blip loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from masker.api.context import (
    authenticated,
    check_credential,
    in_thread,
    registry_call,
    state,
    visible_call,
)
from masker.api.errors import ApiError
from masker.api.views import public_call, public_event

log = structlog.get_logger()

CLOSE_CODES = {401: 4401, 403: 4403, 404: 4404, 429: 4429}
SSE_KEEPALIVE_S = 15.0
OPEN_FEEDS = web.AppKey("masker_open_feeds", weakref.WeakSet)
OPEN_STREAMS = web.AppKey("masker_open_streams", weakref.WeakSet)


class FeedQueue:
    """Events from any thread, delivered in order to one coroutine."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int):
        self._loop = loop
        self._limit = limit
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.overflowed = False

    def push(self, event: Any) -> None:
        """Registry callback: safe to call from any thread."""
        public = public_event(event)
        if public is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed: server stopping
            self._loop.call_soon_threadsafe(self._put, public)

    def _put(self, event: dict[str, Any]) -> None:
        if self.queue.qsize() >= self._limit:
            self.overflowed = True
            self.queue.put_nowait(None)  # a client too slow to keep up is disconnected
            return
        self.queue.put_nowait(event)


async def _subscribe(request: web.Request) -> tuple[FeedQueue, Callable[[], None]]:
    st = state(request)
    feed = FeedQueue(asyncio.get_running_loop(), st.config.feed_queue_limit)
    unsubscribe = await registry_call(st.registry.subscribe, request.match_info["call_id"],
                                      feed.push)
    return feed, unsubscribe if callable(unsubscribe) else (lambda: None)


async def _snapshot(request: web.Request, principal) -> dict[str, Any]:
    return {"type": "state", "call": public_call(await visible_call(request, principal))}


async def _authenticate_ws(request: web.Request, ws: web.WebSocketResponse):
    """The principal from the first message `{"type": "auth", "token": ...}`."""
    timeout = state(request).config.ws_auth_timeout_s
    try:
        msg = await asyncio.wait_for(ws.receive(), timeout)
    except TimeoutError:
        raise ApiError(401, "unauthenticated", "no auth message received in time") from None
    token = None
    if msg.type == WSMsgType.TEXT:
        with contextlib.suppress(ValueError):
            body = json.loads(msg.data)
            if isinstance(body, dict) and body.get("type") == "auth":
                token = body.get("token") if isinstance(body.get("token"), str) else ""
    if token is None:
        raise ApiError(401, "unauthenticated", 'first message must be {"type": "auth", ...}')
    return check_credential(request, token)


async def _close_with_error(ws: web.WebSocketResponse, exc: ApiError) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_json({"type": "error", "error": {"code": exc.code, "message": exc.message}})
        await ws.close(code=CLOSE_CODES.get(exc.status, WSCloseCode.POLICY_VIOLATION),
                       message=exc.code.encode())


async def websocket_feed(request: web.Request) -> web.StreamResponse:
    principal = None
    if request.headers.get("Authorization"):
        principal = authenticated(request)
        await visible_call(request, principal)  # plain HTTP 404 before upgrading
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096)
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "websocket_required", "this endpoint speaks WebSocket only")
    await ws.prepare(request)
    request.app[OPEN_FEEDS].add(ws)
    unsubscribe: Callable[[], None] = lambda: None  # noqa: E731
    try:
        if principal is None:
            principal = await _authenticate_ws(request, ws)
        feed, unsubscribe = await _subscribe(request)
        await ws.send_json(await _snapshot(request, principal))
        await _pump(ws, feed)
    except ApiError as exc:
        await _close_with_error(ws, exc)
    except ConnectionError:
        pass
    finally:
        await in_thread(unsubscribe)
        request.app[OPEN_FEEDS].discard(ws)
        if not ws.closed:
            await ws.close()
    return ws


async def _pump(ws: web.WebSocketResponse, feed: FeedQueue) -> None:
    """Send events until the client goes away; incoming messages are ignored."""
    async def read_until_closed() -> None:
        async for _ in ws:
            pass

    reader = asyncio.create_task(read_until_closed())
    try:
        while not reader.done():
            getter = asyncio.ensure_future(feed.queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            event = getter.result()
            if event is None:
                await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"slow_consumer")
                break
            await ws.send_json(event)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await reader


async def sse_feed(request: web.Request) -> web.StreamResponse:
    principal = authenticated(request)
    snapshot = await _snapshot(request, principal)
    feed, unsubscribe = await _subscribe(request)
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
    })
    request.app[OPEN_STREAMS].add(feed)
    try:
        await response.prepare(request)
        await response.write(_sse(snapshot))
        while True:
            try:
                event = await asyncio.wait_for(feed.queue.get(), SSE_KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if event is None:
                break
            await response.write(_sse(event))
    except ConnectionError:
        pass
    finally:
        request.app[OPEN_STREAMS].discard(feed)
        await in_thread(unsubscribe)
    return response


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event.get('type', 'message')}\ndata: {json.dumps(event)}\n\n".encode()


async def _close_feeds(app: web.Application) -> None:
    for stream in list(app[OPEN_STREAMS]):
        stream.queue.put_nowait(None)
    for ws in list(app[OPEN_FEEDS]):
        with contextlib.suppress(Exception):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server_shutdown")


def add_routes(app: web.Application) -> None:
    app[OPEN_FEEDS] = weakref.WeakSet()
    app[OPEN_STREAMS] = weakref.WeakSet()
    app.on_shutdown.append(_close_feeds)
    app.router.add_get("/api/calls/{call_id}/feed", websocket_feed)
    app.router.add_get("/api/calls/{call_id}/events", sse_feed)
