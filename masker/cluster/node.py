"""One node's cluster layer, started and stopped with the service: the publisher
thread, and the hook that turns the node's desktop API into the cluster's.

`ClusterNode(config)` does nothing until `start(registry)`; the API takes the node as
`cluster=` (masker.api.build_app) and gets from it the registry it serves, the
forwarding middleware and the feed listener that runs on the API's own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiohttp import web

from masker.api.app_state import in_thread
from masker.api.call_registry import CallRegistry
from masker.cluster import directory
from masker.cluster.fanout import RemoteFeeds, listen
from masker.cluster.forward import Forwarder
from masker.cluster.publisher import Publisher, PublisherSettings
from masker.cluster.view import ClusterRegistry
from masker.runtime.service_config import ClusterConfig

LISTENER: web.AppKey[asyncio.Task[None]] = web.AppKey("masker_cluster_listener", asyncio.Task)


class ClusterNode:
    def __init__(self, config: ClusterConfig, queue_limit: int = 10_000) -> None:
        """`queue_limit`: feed events held for the directory while it is slow or away."""
        self.config = config
        self._queue_limit = queue_limit
        self.feeds = RemoteFeeds()
        self._reader = directory.SharedConnection(config.dsn)
        self.publisher: Publisher | None = None
        self.registry: ClusterRegistry | None = None
        self.forwarder: Forwarder | None = None
        self.listening = asyncio.Event()

    def start(
        self, local: CallRegistry, draining: Callable[[], bool] = lambda: False
    ) -> ClusterNode:
        """Start publishing `local`'s calls (returns at once: the database may be down)."""
        c = self.config
        self.registry = ClusterRegistry(local, c.node_id, self._reader, self.feeds)
        self.forwarder = Forwarder(self.registry)
        self.publisher = Publisher(
            local,
            PublisherSettings(
                node_id=c.node_id,
                api_url=c.api_url,
                dsn=c.dsn,
                heartbeat_s=c.heartbeat_s,
                node_dead_s=c.node_dead_s,
                queue_limit=self._queue_limit,
                draining=draining,
            ),
        ).start()
        return self

    def stop(self) -> None:
        if self.publisher is not None:
            self.publisher.stop()
        self._reader.close()

    # --- the API's side --------------------------------------------------------------------
    def install(self, app: web.Application) -> CallRegistry:
        """Wire the node into an API app being built: returns the registry to serve."""
        assert self.registry is not None and self.forwarder is not None, "start() first"
        app.middlewares.append(self.forwarder.middleware)
        app.on_startup.append(self.forwarder.on_startup)
        app.on_startup.append(self._start_listener)
        app.on_cleanup.append(self._stop_listener)
        app.on_cleanup.append(self.forwarder.on_cleanup)
        return self.registry

    async def _read_state(self, call_id: str) -> dict[str, Any] | None:
        return await in_thread(self._reader.run, directory.get_call, call_id)

    async def _start_listener(self, app: web.Application) -> None:
        self.listening = asyncio.Event()
        app[LISTENER] = asyncio.create_task(
            listen(
                self.config.dsn, self.config.node_id, self.feeds, self._read_state, self.listening
            )
        )

    async def _stop_listener(self, app: web.Application) -> None:
        task = app[LISTENER]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
