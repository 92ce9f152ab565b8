"""Runs the API app on its own thread and event loop (sippy owns the main thread)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from masker.api.app import build_app
from masker.api.call_registry import CallRegistry
from masker.api.settings import ApiConfig
from masker.errors import UserError

if TYPE_CHECKING:
    from masker.cluster import ClusterNode

log = structlog.get_logger()
START_TIMEOUT_S = 10.0


class ApiServer:
    """Handle on a running API server: its URL, and stop()."""

    def __init__(self, app: web.Application, host: str, port: int):
        self._app = app
        self._host = host
        self._requested_port = port
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._stopped = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="masker-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def start(self) -> ApiServer:
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            raise UserError("API server did not start in time")
        if self._error is not None:
            raise UserError(
                f"cannot start the API on {self._host}:{self._requested_port}: "
                f"{getattr(self._error, 'strerror', None) or self._error}"
            )
        log.info("api listening", url=self.url)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        try:
            await self._runner.setup()
            site = web.TCPSite(self._runner, self._host, self._requested_port)
            await site.start()
            self.port = self._runner.addresses[0][1]
        except BaseException as exc:  # report bind errors to the starting thread
            self._error = exc
            self._started.set()
            await self._runner.cleanup()
            return
        self._started.set()
        await self._stopped.wait()
        await self._runner.cleanup()

    def stop(self) -> None:
        """Close feeds and the listener; returns when the thread has ended."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout=10.0)


def start_api_server(
    registry: CallRegistry,
    config: ApiConfig | Mapping[str, Any] | None = None,
    *,
    ready_checks: Mapping[str, Callable[[], Any]] | None = None,
    cluster: ClusterNode | None = None,
) -> ApiServer:
    """Start serving the desktop API for `registry` (or, with a started `cluster` node,
    for the whole cluster); call `.stop()` on the result to end it."""
    if config is None:
        config = ApiConfig()
    elif not isinstance(config, ApiConfig):
        config = ApiConfig.from_mapping(config)
    if not config.jwt_secret and not config.api_keys:
        log.warning(
            "api has no credentials configured: every /api request will get 401",
            hint="set [api] jwt_secret_file/jwt_secret_env or keys",
        )
    app = build_app(registry, config, ready_checks, cluster)
    return ApiServer(app, config.host, config.port).start()
