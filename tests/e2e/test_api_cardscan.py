"""Every byte the desktop receives during a full payment (HTTP bodies and headers, WebSocket
frames, SSE, /metrics) is scanned: no PAN, expiry or CVV may appear in it."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request

from tests.support.api import (
    KEYED_CARD,
    SUPERVISOR_KEY,
    TEST_CVV,
    TEST_EXPIRY,
    TEST_PAN,
    http,
    make_jwt,
    running_api,
    ws_collect,
)
from tests.support.desktop import card_data_found


def _sse_lines(url: str, token: str, sink: list[str], stop: threading.Event) -> None:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=15) as resp:
        while not stop.is_set():
            line = resp.readline().decode()
            if not line:
                return
            sink.append(line)
            if '"type": "handoff"' in line:
                return


def test_no_card_data_in_anything_sent_to_the_desktop():
    seen: list[str] = []
    with running_api() as api:
        token = make_jwt("agent-1")
        cid = api.call("agent-1")

        def get(path: str, credential: str = token) -> None:
            reply = http("GET", f"{api.url}{path}", credential)
            headers = {k: v for k, v in reply.headers.items() if k != "Content-Length"}
            seen.append(json.dumps(headers) + reply.body.decode())

        started = http(
            "POST",
            f"{api.url}/api/calls/{cid}/capture",
            token,
            {"amount": "42.00", "currency": "GBP", "reference": "SCAN-1"},
        )
        seen.append(started.body.decode())
        sse: list[str] = []
        stop = threading.Event()
        reader = threading.Thread(
            target=_sse_lines,
            daemon=True,
            args=(f"{api.url}/api/calls/{cid}/events", token, sse, stop),
        )
        reader.start()

        def key_and_poll() -> None:
            for i, d in enumerate(KEYED_CARD):
                api.key(cid, d)
                if i % 4 == 0:
                    get(f"/api/calls/{cid}")
                    get(f"/api/calls/{cid}/capture")

        frames = asyncio.run(
            ws_collect(
                api.url.replace("http", "ws") + f"/api/calls/{cid}/feed",
                token,
                lambda m: any(x.get("type") == "handoff" for x in m),
                on_open=key_and_poll,
            )
        )
        reader.join(10)
        stop.set()
        for path in ("/api/calls", f"/api/calls/{cid}", f"/api/calls/{cid}/capture"):
            get(path)
        get("/metrics", SUPERVISOR_KEY)  # /metrics needs a role that may read it
    seen += [json.dumps(f, ensure_ascii=False) for f in frames] + sse
    assert any('"type": "handoff"' in line for line in sse), "SSE should have seen the payment"
    assert any(f.get("type") == "token" for f in frames)
    leaks = [
        (i, kind)
        for i, text in enumerate(seen)
        for kind in card_data_found(text, TEST_PAN, TEST_EXPIRY, TEST_CVV)
    ]
    assert leaks == []
