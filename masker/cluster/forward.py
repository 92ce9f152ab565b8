"""Desktop actions on another node's call go to that node's API, so a desktop never
needs to know which node carries its call.

An aiohttp middleware on every node: a request that changes a call (anything but
GET under /api/calls/{call_id}) for a call this node does not carry, and that the
directory says runs on another node, is authenticated here (a bad credential never
travels), then replayed on the owner's `api_url` with the caller's own credential
and answered with the owner's answer.  What crosses is what the desktop sent
(amount, currency, reference, a field name) and what the owner answers (the public
capture status): never card data.  A forwarded request carries `X-Masker-Forwarded`
and is never forwarded again.
"""

from __future__ import annotations

import aiohttp
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from masker.api.app_state import authenticated, in_thread
from masker.api.requests import MAX_BODY
from masker.cluster import metrics
from masker.cluster.view import ClusterRegistry
from masker.errors import ApiError

log = structlog.get_logger()

FORWARDED_HEADER = "X-Masker-Forwarded"
TIMEOUT_S = 5.0
_PASSED_HEADERS = ("Authorization", "Content-Type", "Accept")


class Forwarder:
    """The middleware and the HTTP client it replays requests with (one per app)."""

    def __init__(self, registry: ClusterRegistry) -> None:
        self.registry = registry
        self._session: aiohttp.ClientSession | None = None

    async def on_startup(self, app: web.Application) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
            auto_decompress=False,
        )

    async def on_cleanup(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        call_id = request.match_info.get("call_id")
        if (
            call_id is None
            or request.method in ("GET", "HEAD", "OPTIONS")
            or FORWARDED_HEADER in request.headers
            or not request.path.startswith("/api/calls/")
        ):
            return await handler(request)
        registry = self.registry
        if await in_thread(registry.is_local, call_id):
            return await handler(request)
        owner = await in_thread(registry.owner, call_id)
        if owner is None or owner.ended or owner.node_id == registry.node_id or not owner.api_url:
            return await handler(request)  # 404 / 409 from the registry, as on one node
        principal = authenticated(request)
        log.info("forwarding action", call=call_id, node=owner.node_id, agent=principal.sub)
        return await self._replay(request, owner.api_url)

    async def _replay(self, request: web.Request, base_url: str) -> web.Response:
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            raise ApiError(413, "payload_too_large", f"body larger than {MAX_BODY} bytes")
        headers = {h: request.headers[h] for h in _PASSED_HEADERS if h in request.headers}
        headers[FORWARDED_HEADER] = self.registry.node_id
        assert self._session is not None  # created on startup
        try:
            async with self._session.request(
                request.method,
                base_url.rstrip("/") + request.path_qs,
                data=body or None,
                headers=headers,
                allow_redirects=False,
            ) as answer:
                payload = await answer.read()
                status = answer.status
                content_type = answer.headers.get("Content-Type", "application/json")
                passed = {
                    h: answer.headers[h]
                    for h in ("WWW-Authenticate", "Retry-After")
                    if h in answer.headers
                }
        except (aiohttp.ClientError, TimeoutError):
            metrics.FORWARDED.labels("unavailable").inc()
            raise ApiError(
                503, "node_unavailable", "the node carrying this call did not answer"
            ) from None
        metrics.FORWARDED.labels("ok").inc()
        response = web.Response(body=payload, status=status, headers=passed)
        response.headers["Content-Type"] = content_type
        return response
