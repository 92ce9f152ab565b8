"""Live feed of one call to a desktop: WebSocket, with Server-Sent Events as fallback.

The registry calls back from the SIP/media threads; events hop onto the API's
event loop with call_soon_threadsafe and are sent in order, masked (views.py).
A connecting client first gets the call's current state, so reconnecting
after a network blip loses nothing.

Admission: a WebSocket with an `Authorization` header is authenticated before the
upgrade; one that authenticates with its first message holds one of the few
"pending" slots of its address (`ws_pending_per_address`) until that message
arrives (`ws_auth_timeout_s`), and counts toward nothing else until then.  An
authenticated feed (WebSocket or SSE) counts toward its principal's and its
address's caps (`ws_feeds_per_principal`, `ws_feeds_per_address`); over a cap it is
refused (HTTP 429 before the upgrade, close code 4429 after it).  A feed opened
with an expiring credential (a JWT) is closed when it expires (close code 4001,
`token_expired`; an SSE stream simply ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from masker.api.app_state import (
    STATE,
    authenticated,
    check_credential,
    client_of,
    in_thread,
    registry_call,
    state,
    visible_call,
)
from masker.api.auth import FailureLimiter, Principal
from masker.api.views import public_call, public_event
from masker.errors import ApiError

log = structlog.get_logger()

CLOSE_CODES = {401: 4401, 403: 4403, 404: 4404, 429: 4429}
CLOSE_TOKEN_EXPIRED = 4001
SSE_KEEPALIVE_S = 15.0
OPEN_FEEDS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey(
    "masker_open_feeds", weakref.WeakSet
)
OPEN_STREAMS: web.AppKey[weakref.WeakSet[FeedQueue]] = web.AppKey(
    "masker_open_streams", weakref.WeakSet
)


class FeedSlots:
    """Counts of open feeds per principal and per address, and of WebSockets per address
    still waiting for their auth message.  Used on the API's event loop only."""

    def __init__(self, per_principal: int, per_address: int, pending_per_address: int):
        self.limits = (per_principal, per_address, pending_per_address)
        self.by_principal: Counter[str] = Counter()
        self.by_address: Counter[str] = Counter()
        self.pending: Counter[str] = Counter()

    @staticmethod
    def _drop(counter: Counter[str], key: str) -> None:
        counter[key] -= 1
        if counter[key] <= 0:
            del counter[key]

    def take_pending(self, address: str) -> None:
        if self.pending[address] >= self.limits[2]:
            raise ApiError(
                429, "too_many_feeds", "too many unauthenticated connections from this address"
            )
        self.pending[address] += 1

    def release_pending(self, address: str) -> None:
        self._drop(self.pending, address)

    def take(self, principal: Principal, address: str) -> tuple[str, str]:
        who = f"{principal.role}:{principal.sub}"
        if self.by_principal[who] >= self.limits[0]:
            raise ApiError(429, "too_many_feeds", "too many open feeds for this credential")
        if self.by_address[address] >= self.limits[1]:
            raise ApiError(429, "too_many_feeds", "too many open feeds from this address")
        self.by_principal[who] += 1
        self.by_address[address] += 1
        return who, address

    def release(self, slot: tuple[str, str] | None) -> None:
        if slot is not None:
            self._drop(self.by_principal, slot[0])
            self._drop(self.by_address, slot[1])


FEED_SLOTS = web.AppKey("masker_feed_slots", FeedSlots)


def _address(request: web.Request) -> str:
    return FailureLimiter.address_key(client_of(request))


def _feed_principal(request: web.Request, principal: Principal) -> Principal:
    if principal.role == "metrics":
        raise ApiError(403, "forbidden", "this credential may read /metrics only")
    return principal


def _seconds_left(principal: Principal) -> float | None:
    """Seconds until the principal's credential expires (None: it does not)."""
    if principal.expires_at is None:
        return None
    return max(0.0, principal.expires_at - time.time())


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
    unsubscribe = await registry_call(
        st.registry.subscribe, request.match_info["call_id"], feed.push
    )
    return feed, unsubscribe if callable(unsubscribe) else (lambda: None)


async def _snapshot(request: web.Request, principal: Principal) -> dict[str, Any]:
    return {"type": "state", "call": public_call(await visible_call(request, principal))}


async def _authenticate_ws(request: web.Request, ws: web.WebSocketResponse) -> Principal:
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
    return _feed_principal(request, check_credential(request, token))


async def _close_with_error(
    ws: web.WebSocketResponse, exc: ApiError, code: int | None = None
) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_json({"type": "error", "error": {"code": exc.code, "message": exc.message}})
        await ws.close(
            code=code or CLOSE_CODES.get(exc.status, WSCloseCode.POLICY_VIOLATION),
            message=exc.code.encode(),
        )


class TokenExpired(Exception):
    """The feed's credential expired while it was open."""


async def websocket_feed(request: web.Request) -> web.StreamResponse:
    slots = request.app[FEED_SLOTS]
    address = _address(request)
    principal: Principal | None = None
    slot: tuple[str, str] | None = None
    pending = False
    if request.headers.get("Authorization"):
        principal = _feed_principal(request, authenticated(request))
        await visible_call(request, principal)  # plain HTTP 404 before upgrading
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096)
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "websocket_required", "this endpoint speaks WebSocket only")
    if principal is not None:
        slot = slots.take(principal, address)  # HTTP 429 before upgrading
    else:
        slots.take_pending(address)
        pending = True
    unsubscribe: Callable[[], None] = lambda: None  # noqa: E731
    try:
        await ws.prepare(request)
        request.app[OPEN_FEEDS].add(ws)
        if principal is None:
            try:
                principal = await _authenticate_ws(request, ws)
            finally:
                slots.release_pending(address)
                pending = False
            await visible_call(request, principal)
            slot = slots.take(principal, address)
        feed, unsubscribe = await _subscribe(request)
        await ws.send_json(await _snapshot(request, principal))
        await _pump(ws, feed, _seconds_left(principal))
    except TokenExpired:
        await _close_with_error(
            ws, ApiError(401, "token_expired", "the credential expired"), CLOSE_TOKEN_EXPIRED
        )
    except ApiError as exc:
        await _close_with_error(ws, exc)
    except ConnectionError:
        pass
    finally:
        if pending:
            slots.release_pending(address)
        slots.release(slot)
        await in_thread(unsubscribe)
        request.app[OPEN_FEEDS].discard(ws)
        if ws.prepared and not ws.closed:
            await ws.close()
    return ws


async def _pump(ws: web.WebSocketResponse, feed: FeedQueue, seconds_left: float | None) -> None:
    """Send events until the client goes away; incoming messages are ignored.  Raises
    TokenExpired when the credential's lifetime (`seconds_left`) is over."""

    async def read_until_closed() -> None:
        async for _ in ws:
            pass

    loop = asyncio.get_running_loop()
    deadline = None if seconds_left is None else loop.time() + seconds_left
    reader = asyncio.create_task(read_until_closed())
    try:
        while not reader.done():
            timeout = None if deadline is None else deadline - loop.time()
            if timeout is not None and timeout <= 0:
                raise TokenExpired
            getter = asyncio.ensure_future(feed.queue.get())
            done, _ = await asyncio.wait(
                {getter, reader}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if getter not in done:
                getter.cancel()
                if not done:
                    raise TokenExpired
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
    principal = _feed_principal(request, authenticated(request))
    slots = request.app[FEED_SLOTS]
    await visible_call(request, principal)
    slot = slots.take(principal, _address(request))
    try:
        return await _sse_stream(request, principal)
    finally:
        slots.release(slot)


async def _sse_stream(request: web.Request, principal: Principal) -> web.StreamResponse:
    snapshot = await _snapshot(request, principal)
    feed, unsubscribe = await _subscribe(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    request.app[OPEN_STREAMS].add(feed)
    loop = asyncio.get_running_loop()
    left = _seconds_left(principal)
    deadline = None if left is None else loop.time() + left
    try:
        await response.prepare(request)
        await response.write(_sse(snapshot))
        while True:
            wait = SSE_KEEPALIVE_S
            if deadline is not None:
                wait = min(wait, deadline - loop.time())
                if wait <= 0:  # the credential expired: end the stream
                    await response.write(
                        _sse(
                            {
                                "type": "error",
                                "error": {
                                    "code": "token_expired",
                                    "message": "the credential expired",
                                },
                            }
                        )
                    )
                    break
            try:
                event = await asyncio.wait_for(feed.queue.get(), wait)
            except TimeoutError:
                if deadline is None or deadline - loop.time() > 0:
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
    streams: weakref.WeakSet[FeedQueue] = app[OPEN_STREAMS]
    for stream in list(streams):
        stream.queue.put_nowait(None)
    feeds: weakref.WeakSet[web.WebSocketResponse] = app[OPEN_FEEDS]
    for ws in list(feeds):
        with contextlib.suppress(Exception):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server_shutdown")


def add_routes(app: web.Application) -> None:
    cfg = app[STATE].config
    app[FEED_SLOTS] = FeedSlots(
        cfg.ws_feeds_per_principal, cfg.ws_feeds_per_address, cfg.ws_pending_per_address
    )
    app[OPEN_FEEDS] = weakref.WeakSet()
    app[OPEN_STREAMS] = weakref.WeakSet()
    app.on_shutdown.append(_close_feeds)
    app.router.add_get("/api/calls/{call_id}/feed", websocket_feed)
    app.router.add_get("/api/calls/{call_id}/events", sse_feed)
