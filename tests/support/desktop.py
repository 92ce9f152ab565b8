"""Browser-side helpers for the /desktop tests: launch Debian's chromium through Playwright,
record every byte the page receives, and scan text for card data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.paths import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT_ROOT = PROJECT_ROOT / "test-output"


@dataclass
class NetworkLog:
    """Everything the page received: HTTP response bodies and WebSocket frames."""

    responses: list[tuple[str, bytes]] = field(default_factory=list)
    frames: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        def on_finished(request) -> None:
            # only finished requests: their body is complete, reading it cannot block
            response = request.response()
            try:
                body = response.body() if response is not None else b""
            except Exception:  # redirects have no body
                body = b""
            self.responses.append((request.url, body))

        def on_websocket(ws) -> None:
            ws.on("framereceived", lambda payload: self.frames.append(_text(payload)))
            ws.on("framesent", lambda payload: self.frames.append(_text(payload)))

        page.on("requestfinished", on_finished)
        page.on("websocket", on_websocket)

    def texts(self) -> list[str]:
        return [body.decode("utf-8", "replace") for _, body in self.responses] + self.frames


def _text(payload: str | bytes) -> str:
    return payload if isinstance(payload, str) else payload.decode("utf-8", "replace")


def card_data_found(text: str, pan: str, expiry: str, cvv: str) -> list[str]:
    """Which of the card's values appear in `text` (PAN in any grouping, expiry, CVV)."""
    found = []
    digits_only = re.sub(r"[\s\-]", "", text)
    if pan in digits_only or pan[:6] + pan[6:12] in digits_only:
        found.append("pan")
    mm, yy = expiry[:2], expiry[2:]
    alone = r"(?<![0-9A-Za-z.]){}(?![0-9A-Za-z.])"  # a value on its own, not inside a number
    if re.search(alone.format(expiry), text) or re.search(rf"{mm}\s*/\s*(20)?{yy}", text):
        found.append("expiry")
    if re.search(alone.format(cvv), text):
        found.append("cvv")
    return found


@contextmanager
def chromium() -> Iterator[object]:
    """Headless Debian chromium driven by Playwright, for one test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def chromium_page(browser, output: Path) -> Iterator[tuple[object, NetworkLog]]:
    """A fresh page in its own browser context (no shared storage), with its network log;
    `output` is where the test saves screenshots (Playwright creates it on the first one)."""
    context = browser.new_context(viewport={"width": 560, "height": 700})
    try:
        page = context.new_page()
        log = NetworkLog()
        log.attach(page)
        yield page, log
    finally:
        context.close()
