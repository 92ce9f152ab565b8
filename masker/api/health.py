"""Operational endpoints: liveness, readiness (checks supplied by the service), metrics.

/metrics needs a credential whose role may read it (supervisor, metrics, the
generated developer key): its counters (masked digits by source, captures) show
live how many keys callers press, and when.  `[api] metrics_public = true` opens it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from masker.api.app_state import authenticated, in_thread, state
from masker.errors import ApiError
from masker.runtime.metrics import REGISTRY

log = structlog.get_logger()
CHECK_TIMEOUT_S = 2.0


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _run_check(check: Callable[[], object]) -> bool:
    try:
        return bool(check())
    except Exception as exc:  # a failing check means "not ready", never a 500
        log.warning("readiness check raised", error=type(exc).__name__)
        return False


async def _check(name: str, check: Callable[[], object]) -> tuple[str, bool]:
    try:
        return name, await asyncio.wait_for(in_thread(_run_check, check), CHECK_TIMEOUT_S)
    except TimeoutError:
        log.warning("readiness check timed out", check=name)
        return name, False


async def readyz(request: web.Request) -> web.Response:
    checks = state(request).ready_checks
    results = dict(await asyncio.gather(*(_check(n, c) for n, c in checks.items())))
    ready = all(results.values())
    return web.json_response(
        {"status": "ready" if ready else "not_ready", "checks": results},
        status=200 if ready else 503,
    )


async def metrics(request: web.Request) -> web.Response:
    if not state(request).config.metrics_public:
        principal = authenticated(request, api=False)
        if not principal.may_read_metrics:
            raise ApiError(403, "forbidden", "this credential may not read /metrics")
    body = await in_thread(generate_latest, REGISTRY)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
