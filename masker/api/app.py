"""Builds the aiohttp application of the agent-desktop API."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from masker.api import calls, desktop, feed, health
from masker.api.app_state import STATE, ApiState
from masker.api.auth import Authenticator, FailureLimiter
from masker.api.call_registry import CallRegistry
from masker.api.openapi import openapi_document
from masker.api.responses import json_errors
from masker.api.settings import ApiConfig

if TYPE_CHECKING:
    from masker.cluster import ClusterNode


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def _root(request: web.Request) -> web.Response:
    raise web.HTTPFound("/desktop")


def build_app(
    registry: CallRegistry,
    config: ApiConfig,
    ready_checks: Mapping[str, Callable[[], Any]] | None = None,
    cluster: ClusterNode | None = None,
) -> web.Application:
    """The app serving `registry`; with a started `cluster` node it serves the whole
    cluster's calls instead (masker/cluster/)."""
    app = web.Application(middlewares=[json_errors], client_max_size=64 * 1024)
    if cluster is not None:
        registry = cluster.install(app)
    app[STATE] = ApiState(
        registry=registry,
        config=config,
        authenticator=Authenticator(config),
        limiter=FailureLimiter(
            config.auth_failures, config.auth_window_s, capacity=config.auth_table_size
        ),
        ready_checks=dict(ready_checks or {}),
    )
    app.router.add_get("/openapi.json", _openapi)
    app.router.add_get("/", _root)
    calls.add_routes(app)
    feed.add_routes(app)
    health.add_routes(app)
    desktop.add_routes(app)
    return app
