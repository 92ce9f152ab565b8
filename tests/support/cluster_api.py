"""Two (or more) desktop APIs sharing one call directory, in-process: each node is the
real registry, the real cluster layer (masker/cluster) and the real API server, and
the other nodes reach its API through a recording TCP relay, so a test can scan every
byte that crossed between nodes."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from masker.api import start_api_server
from masker.calls.registry import Registry
from masker.cluster import ClusterNode
from masker.phones.service_process import free_port
from masker.runtime.service_config import ClusterConfig
from tests.support.api import Api, LoopThread, api_settings
from tests.support.paths import PROJECT_ROOT

NGINX_CLUSTER = PROJECT_ROOT / "scripts" / "nginx-cluster.sh"


@dataclass
class Relay:
    """A TCP relay on loopback that keeps every byte it carried, both ways."""

    port: int = 0
    target_port: int = 0
    carried: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def text(self) -> str:
        return b"".join(self.carried).decode("utf-8", "replace")

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                self.carried.append(chunk)
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def close(server: asyncio.Server) -> None:
        """Stop listening and end the connections still open (HTTP keep-alive), so no
        task outlives the loop. Runs on the loop's own thread: `Server.close` is not
        thread-safe (closing it from another thread raced its last connection's detach)."""
        server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@contextmanager
def relay() -> Iterator[Relay]:
    loop = LoopThread()
    r = Relay()
    server = loop.run(asyncio.start_server(r._client, "127.0.0.1", 0))
    r.port = server.sockets[0].getsockname()[1]
    try:
        yield r
    finally:
        loop.run(r.close(server))
        loop.stop()


@dataclass
class Node:
    """One node: its API (`api.url`, `api.registry`, `api.call()`, `api.key()`), its
    cluster layer and the relay the other nodes reach it through."""

    api: Api
    cluster: ClusterNode
    relay: Relay

    def stop_heartbeat(self) -> None:
        """What a SIGKILL does to the directory: this node falls silent."""
        assert self.cluster.publisher is not None
        self.cluster.publisher.stop()


def wait_until(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def cluster_node(
    dsn: str,
    node_id: str,
    factory: Any,
    *,
    heartbeat_s: float = 0.2,
    node_dead_s: float = 1.0,
    queue_limit: int = 10_000,
    **api: Any,
) -> Iterator[Node]:
    registry = Registry(session_factory=factory, auto_capture=False)
    with relay() as r:
        config = ClusterConfig(
            node_id=node_id,
            dsn=dsn,
            api_url=r.url,
            heartbeat_s=heartbeat_s,
            node_dead_s=node_dead_s,
        )
        cluster = ClusterNode(config, queue_limit).start(registry)
        server = start_api_server(registry, api_settings(**api), cluster=cluster)
        r.target_port = server.port
        try:
            assert cluster.publisher is not None
            wait_until(cluster.publisher.connected.is_set, what="the directory")
            wait_until(cluster.listening.is_set, what="LISTEN")
            yield Node(Api(server.url, registry, server), cluster, r)
        finally:
            server.stop()
            cluster.stop()


@contextmanager
def running_nginx(*nodes: Node) -> Iterator[str]:
    """Debian's nginx in front of the nodes' APIs (scripts/nginx-cluster.sh, the
    cluster's one desktop address); yields its URL."""
    root = Path(tempfile.mkdtemp(prefix="masker-nginx-"))
    root.chmod(0o711)  # as root, nginx's workers run as nobody
    listen = f"127.0.0.1:{free_port(socket.SOCK_STREAM)}"
    upstreams = [n.api.url.removeprefix("http://") for n in nodes]
    out = subprocess.run(
        [str(NGINX_CLUSTER), "start", str(root), listen, *upstreams],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    try:
        yield out.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(NGINX_CLUSTER), "stop", str(root)], capture_output=True, timeout=30)
        shutil.rmtree(root, ignore_errors=True)
