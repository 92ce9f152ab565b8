"""Helpers for tests that drive `masker serve` through its desktop API: a scripted caller
keying by RFC 4733, the call's WebSocket feed read on a thread, and card-data scans."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import aiohttp

from tests.support.api import TEST_PAN, http
from tests.support.serve import Served

#: `masker serve` with its desktop API on a free port, captures started by the agent only.
API_ENV = {
    "MASKER_SERVICE_API_ENABLED": "true",
    "MASKER_API_PORT": "0",
    "MASKER_MASKING_AUTO_CAPTURE": "false",
}


def served_with_api(workdir: Path, env: dict[str, str] | None = None) -> Served:
    """A running `masker serve` with its desktop API: its URL in `.api`, the development
    key it printed in `.key`."""
    s = Served(workdir, env_extra={**API_ENV, **(env or {})})
    s.api = s.wait_log("service ready")["api"]
    s.key = dev_key(s)
    return s


def dev_key(s: Served) -> str:
    """The development API key from the /desktop URL the service printed."""
    line = next(x for x in s.raw if "/desktop#token=" in x)
    return line.split("#token=", 1)[1].split()[0]


class Feed:
    """The call's WebSocket feed read on a thread: raw frames (for scans) and events."""

    def __init__(self, url: str, token: str):
        self.raw: list[str] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._run(url, token),), daemon=True
        )
        self._thread.start()
        self.wait(lambda evs: evs, "the initial state")

    async def _run(self, url: str, token: str) -> None:
        async with aiohttp.ClientSession() as http_session, http_session.ws_connect(url) as ws:
            await ws.send_json({"type": "auth", "token": token})
            while not self._stop.is_set():
                try:
                    msg = await ws.receive(timeout=0.2)
                except TimeoutError:
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return
                with self._cond:
                    self.raw.append(msg.data)
                    self._cond.notify_all()

    @property
    def events(self) -> list[dict]:
        return [json.loads(r) for r in self.raw]

    def wait(self, predicate, what: str, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.events):
                left = deadline - time.monotonic()
                assert left > 0, f"feed never showed {what}: {[e.get('type') for e in self.events]}"
                self._cond.wait(left)
            return self.events

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def handoffs(events: list[dict]) -> list[dict]:
    return [e for e in events if e.get("type") == "handoff"]


def call_of(served: Served, user: str) -> str:
    calls = http("GET", f"{served.api}/api/calls", served.key).json()["calls"]
    return next(c["id"] for c in calls if c["agent"] == user and c["state"] == "connected")


def assert_no_card_data(*texts: str) -> None:
    """No clear TEST_PAN, nor eight of its digits in a row, in what the service wrote.

    Not its six-digit BIN alone: PCI DSS allows it to be shown, and any six digits
    turn up by chance in the logs' microsecond timestamps (a CI run found 411111 there).
    """
    blob = "\n".join(texts)
    assert TEST_PAN not in blob
    assert TEST_PAN[-8:] not in blob.replace(" ", "")  # no long run of the card either
