"""Helpers for the agent-desktop API tests: a real server on a free port over the real
in-memory call registry, credentials, and small HTTP/WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from masker.api import ApiConfig, ApiKey, start_api_server
from masker.calls.registry import Registry
from tests.support.cards import dev_tokenizer
from tests.support.psp_server import make_tls_material, running_psp
from tokenizer import HttpsJsonGateway

SECRET = b"test-only-jwt-secret-0123456789abcdef"
AUDIENCE = "masker-desktop-test"
AGENT_KEY = "agent-key-for-tests-only-7f3a"
SUPERVISOR_KEY = "supervisor-key-for-tests-only-19c2"

# Test card data (public test numbers); the scans look for exactly these.
TEST_PAN = "4111111111111111"
TEST_EXPIRY = "1230"
TEST_CVV = "737"
# What the caller keys: a Visa PAN may run to 19 digits, so it ends on "#";
# expiry and CVV end on reaching their length.
KEYED_CARD = TEST_PAN + "#" + TEST_EXPIRY + TEST_CVV


def make_jwt(
    sub: str = "agent-1",
    role: str = "agent",
    ttl: float = 600,
    secret: bytes = SECRET,
    aud: Any = AUDIENCE,
    **extra: Any,
) -> str:
    """A signed desktop token: `iat` now, `exp` after `ttl` s; pass a claim as None to
    leave it out (e.g. `aud=None`, `iat=None`)."""
    now = int(time.time())
    claims = {"sub": sub, "role": role, "aud": aud, "iat": now, "exp": now + int(ttl), **extra}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass
class Api:
    url: str
    registry: Registry
    server: Any
    ready: dict[str, bool] = field(default_factory=dict)

    def call(self, agent: str = "agent-1", state: str = "connected", policy: str = "always") -> str:
        """A call as the SIP side would register it: bridged to `agent`."""
        cid = self.registry.add_call(
            trunk_call_id=f"trunk-{time.monotonic_ns()}@test", policy=policy
        )
        self.registry.update_call(cid, state=state, agent_id=agent)
        return cid

    def key(self, call_id: str, digits: str, source: str = "rfc4733") -> None:
        """The caller keys `digits` (what the media plane hands the registry)."""
        for d in digits:
            self.registry.on_digit(call_id, d, source)


class LoopThread:
    """An asyncio loop on a thread, for the PSP server and the sessions' hand-offs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Any, timeout: float = 15.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@contextmanager
def psp_on_thread(tls_dir: Path, behaviour: str = "approve") -> Iterator[Any]:
    """The local HTTPS PSP (self-signed CA in `tls_dir`) on its own loop thread, for
    tests whose client is a separate process; the server carries its `.tls`."""
    tls = make_tls_material(tls_dir)
    lt = LoopThread()
    cm = running_psp(tls, behaviour)
    server = lt.run(cm.__aenter__())
    server.tls = tls
    try:
        yield server
    finally:
        lt.run(cm.__aexit__(None, None, None))
        lt.stop()


@contextmanager
def payment_sessions() -> Iterator[Any]:
    """A session factory over the real tokeniser (dev keys in a temp folder) that hands
    each tokenised card to a local HTTPS PSP, as the service does."""
    with tempfile.TemporaryDirectory(prefix="masker-api-") as tmp:
        folder = Path(tmp)
        tk = dev_tokenizer(folder)
        tls = make_tls_material(folder / "tls")
        lt = LoopThread()
        psp_cm = running_psp(tls)
        psp = lt.run(psp_cm.__aenter__())
        gateway = HttpsJsonGateway(psp.url, ca_file=tls.ca_file, timeout_s=5)

        def factory(
            call_id: str, amount: str, currency: str, reference: str, fields: tuple[str, ...]
        ) -> Any:
            minor = int(Decimal(amount or "0") * 100)
            session = tk.new_session(
                amount_minor=minor,
                currency=currency,
                reference=reference,
                fields=tuple(fields) or None,
            )

            def on_event(event: dict) -> None:
                if event.get("event") == "token":
                    asyncio.run_coroutine_threadsafe(session.hand_off(gateway), lt.loop)

            session.subscribe(on_event)
            return session

        try:
            yield factory
        finally:
            lt.run(psp_cm.__aexit__(None, None, None))
            lt.stop()
            tk.close()


def api_settings(**config: Any) -> ApiConfig:
    """The tests' API settings: any port, the test JWT secret and audience, the agent
    and supervisor keys (plus any `api_keys` given), and `config` on top."""
    return ApiConfig(
        port=0,
        jwt_secret=SECRET,
        jwt_audience=AUDIENCE,
        api_keys=(
            ApiKey.from_clear(AGENT_KEY, "agent-1"),
            ApiKey.from_clear(SUPERVISOR_KEY, "sup-1", "supervisor"),
            *config.pop("api_keys", ()),
        ),
        **config,
    )


@contextmanager
def running_api(**config: Any) -> Iterator[Api]:
    with payment_sessions() as factory, _running_api(factory, **config) as api:
        yield api


@contextmanager
def _running_api(factory: Any, **config: Any) -> Iterator[Api]:
    registry = Registry(session_factory=factory, auto_capture=False)
    ready = {"sip": True, "media": True, "vault": True}
    checks = {name: (lambda n=name: ready[n]) for name in ready}
    server = start_api_server(registry, api_settings(**config), ready_checks=checks)
    try:
        yield Api(server.url, registry, server, ready)
    finally:
        server.stop()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str,
    url: str,
    token: str | None = None,
    body: Any = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One real HTTP request; returns status, headers and body whatever the status."""
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
    if data is not None:
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return Reply(resp.status, dict(resp.headers), resp.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, dict(err.headers), err.read())


async def ws_collect(
    url: str,
    token: str | None,
    until: Any,
    timeout: float = 10.0,
    header_auth: bool = False,
    on_open: Any = None,
) -> list[Any]:
    """Open the feed, authenticate, collect JSON messages until `until(messages)` is true.

    `on_open` runs once the first message has arrived (the server is subscribed by then).
    """
    messages: list[Any] = []
    headers = {"Authorization": f"Bearer {token}"} if header_auth and token else None
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, headers=headers) as ws,
    ):
        if token is not None and not header_auth:
            await ws.send_json({"type": "auth", "token": token})
        deadline = asyncio.get_running_loop().time() + timeout
        while not until(messages):
            if on_open is not None and messages:
                # the first message (state) means the server has subscribed
                await asyncio.get_running_loop().run_in_executor(None, on_open)
                on_open = None
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            try:
                msg = await ws.receive(timeout=left)
            except TimeoutError:
                break
            if msg.type == aiohttp.WSMsgType.TEXT:
                messages.append(json.loads(msg.data))
            elif msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
            ):
                messages.append({"closed": ws.close_code})
                break
    return messages
