"""The payment panel in a real browser (headless chromium via Playwright): the agent takes a
payment, sees masked progress, brand, ticks, token and hand-off, and never holds the card."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.api import (
    AUDIENCE,
    KEYED_CARD,
    TEST_CVV,
    TEST_EXPIRY,
    TEST_PAN,
    make_jwt,
    running_api,
)
from tests.support.desktop import CHROMIUM, OUTPUT_ROOT, card_data_found, chromium, chromium_page
from tests.support.e2e import start_rig, stop_rig


def test_chromium_is_installed():
    # `make test` installs Debian's chromium: a missing browser fails, never skips.
    assert Path(CHROMIUM).exists()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def api():
    with running_api() as api:
        yield api


@pytest.fixture
def panel(browser, api, request):
    """The agent's panel, signed in through the URL fragment, and the agent's new call."""
    output = OUTPUT_ROOT / request.node.name
    with chromium_page(browser, output) as (page, net):
        agent = f"agent-{request.node.name[-12:]}"
        cid = api.call(agent)
        page.goto(f"{api.url}/desktop#token={make_jwt(agent)}")
        yield page, net, cid, output


def key_slowly(api, cid: str, digits: str, gap_s: float = 0.03) -> threading.Thread:
    """The caller keys digits one by one, as the media plane would deliver them."""

    def run() -> None:
        for d in digits:
            api.key(cid, d)
            time.sleep(gap_s)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def take_payment(page, amount: str = "42.00", reference: str = "INV-2024-001") -> None:
    page.get_by_label("Amount").fill(amount)
    page.get_by_label("Reference").fill(reference)
    page.get_by_role("button", name="Take payment").click()
    page.get_by_text("Caller is keying the card").wait_for()


def test_agent_takes_a_payment_and_never_holds_the_card(api, panel):
    page, net, cid, output = panel
    take_payment(page)

    key_slowly(api, cid, TEST_PAN[:6]).join()
    pan_row = page.locator('li[data-field="pan"]')
    pan_row.locator(".display", has_text="•••• ••").wait_for()
    assert pan_row.locator(".count").inner_text() == "6 digits keyed"
    assert page.locator("#brand").text_content() == "Visa"

    key_slowly(api, cid, KEYED_CARD[6:]).join()
    page.locator("#handoff", has_text="Approved").wait_for(timeout=10_000)
    page.screenshot(path=str(output / "completed-panel.png"))

    marks = page.locator("li.field").evaluate_all("els => els.map(e => e.dataset.result)")
    assert marks == ["ok", "ok", "ok"]
    assert page.locator("#token").inner_text().startswith("tok_")
    assert pan_row.locator(".display").inner_text().endswith("1111")
    dom = page.content()
    leaks = card_data_found(dom, TEST_PAN, TEST_EXPIRY, TEST_CVV)
    leaks += [
        f"net:{x}" for t in net.texts() for x in card_data_found(t, TEST_PAN, TEST_EXPIRY, TEST_CVV)
    ]
    assert net.frames, "the page should have used the WebSocket feed"
    assert any("/capture" in url and body for url, body in net.responses)
    assert leaks == []


def test_invalid_card_number_shows_a_cross_with_the_reason(api, panel):
    page, _, cid, output = panel
    take_payment(page)
    key_slowly(api, cid, "4111111111111112#", gap_s=0.0).join()
    reason = page.locator('li[data-field="pan"] .reason')
    reason.wait_for()
    assert reason.inner_text() == "card number fails check"
    assert page.locator('li[data-field="pan"]').get_attribute("data-result") == "bad"
    page.screenshot(path=str(output / "invalid-pan.png"))


def test_token_in_url_fragment_is_removed_from_the_address_bar(panel):
    page = panel[0]
    page.get_by_role("button", name="Take payment").wait_for()
    assert "#" not in page.url and "token" not in page.url


def test_login_box_signs_in_with_a_pasted_token(browser, api, request):
    with chromium_page(browser, OUTPUT_ROOT / request.node.name) as (page, _):
        api.call("agent-7")
        page.goto(f"{api.url}/desktop")
        page.get_by_label("Access token").fill(make_jwt("agent-7"))
        page.keyboard.press("Enter")
        page.get_by_role("button", name="Take payment").wait_for()
        assert page.locator("#login").is_hidden()


def test_cancel_button_ends_the_capture(api, panel):
    page, _, cid, _ = panel
    take_payment(page)
    api.key(cid, "41")
    page.get_by_role("button", name="Cancel payment").click()
    page.get_by_text("Payment cancelled").wait_for()
    assert api.registry.get_call(cid)["capture"]["state"] == "cancelled"


def test_restart_button_clears_the_field(api, panel):
    page, _, cid, _ = panel
    take_payment(page)
    key_slowly(api, cid, "4111", gap_s=0.0).join()
    page.locator('li[data-field="pan"] .count', has_text="4 digits keyed").wait_for()
    page.get_by_role("button", name="Restart Card number").click()
    page.locator('li[data-field="pan"] .count', has_text="waiting for caller").wait_for()
    assert page.locator('li[data-field="pan"] .display').inner_text() == ""


def test_hang_up_is_shown_and_payment_can_no_longer_start(api, panel):
    page, _, cid, _ = panel
    page.get_by_role("button", name="Take payment").wait_for()
    api.registry.end_call(cid)
    page.locator("#call-line", has_text="Ended").wait_for()
    assert page.get_by_role("button", name="Take payment").is_disabled()


def test_panel_is_keyboard_operable(panel):
    page = panel[0]
    page.get_by_role("button", name="Take payment").wait_for()
    page.get_by_label("Amount").focus()
    page.keyboard.type("10.00")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.type("KB-1")
    page.keyboard.press("Enter")
    page.get_by_text("Caller is keying the card").wait_for()
    assert page.evaluate("document.activeElement.id") == "cancel"


# --- end to end: pjsua2 caller -> `masker serve` -> pjsua2 agent, panel in chromium ------------

E2E_SECRET = b"e2e-desktop-jwt-secret-0123456789abcdef"


@pytest.fixture
def served_call(tmp_path):
    """A real call through `masker serve`: caller and agent are pjsua2 phone processes."""
    (tmp_path / "jwt.key").write_bytes(E2E_SECRET)
    # ServiceProcess ends its TOML with the [api] table: this line lands in it.
    rig = start_rig(
        tmp_path,
        extra_toml=f'jwt_secret_file = "{tmp_path / "jwt.key"}"\njwt_audience = "{AUDIENCE}"\n',
    )
    try:
        c, _a = rig.connect()
        yield rig.service, rig.caller, c
    finally:
        stop_rig(rig)


@pytest.mark.e2e
def test_e2e_caller_keys_card_through_masker_serve_and_panel_shows_only_token(
    request, browser, served_call
):
    service, caller, c = served_call
    output = OUTPUT_ROOT / request.node.name
    with chromium_page(browser, output) as (page, net):
        page.goto(f"{service.api_url}/desktop#token={make_jwt('1000', secret=E2E_SECRET)}")
        take_payment(page, reference="E2E-4242")
        pan_row = page.locator('li[data-field="pan"]')

        # keyed like a person: 100 ms tones, one key every 300 ms
        caller.send_dtmf(c, TEST_PAN[:8], "rfc4733", duration_ms=100, interval_ms=300)
        pan_row.locator(".count", has_text="8 digits keyed").wait_for(timeout=10_000)
        assert pan_row.locator(".display").inner_text() == "•••• ••••"

        caller.send_dtmf(
            c,
            TEST_PAN[8:] + "#" + TEST_EXPIRY + TEST_CVV,
            "rfc4733",
            duration_ms=100,
            interval_ms=300,
        )
        try:
            page.locator("#token", has_text="tok_").wait_for(timeout=15_000)
        except Exception:
            page.screenshot(path=str(output / "failed-panel.png"))
            (output / "failed-frames.txt").write_text("\n".join(net.frames))
            raise
        page.screenshot(path=str(output / "completed-panel.png"))

        marks = page.locator("li.field").evaluate_all("els => els.map(e => e.dataset.result)")
        assert marks == ["ok", "ok", "ok"]
        assert page.locator("#brand").text_content() == "Visa"
        assert pan_row.locator(".display").inner_text() == "•••• •••• •••• 1111"
        texts = [page.content(), *net.texts()]
    leaks = [kind for t in texts for kind in card_data_found(t, TEST_PAN, TEST_EXPIRY, TEST_CVV)]
    assert net.frames and leaks == []


@dataclass
class DesktopHost:
    """A stand-in agent desktop on its own origin that embeds `panel_url` in an iframe."""

    origin: str = ""
    panel_url: str = ""

    def page(self) -> bytes:
        return (
            f'<!doctype html><title>CRM</title><h1>CRM</h1><iframe src="{self.panel_url}" '
            'width="560" height="640" title="payment"></iframe>'
        ).encode()


@contextmanager
def desktop_host() -> Iterator[DesktopHost]:
    """Serve a DesktopHost on another loopback port (so: another origin)."""
    host = DesktopHost()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = host.page()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host.origin = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield host
    finally:
        server.shutdown()
        server.server_close()


def test_panel_works_inside_an_iframe_of_a_configured_origin(browser, request):
    with (
        desktop_host() as host,
        running_api(frame_ancestors=("'self'", host.origin)) as api,
        chromium_page(browser, OUTPUT_ROOT / request.node.name) as (page, _),
    ):
        api.call("agent-embed")
        host.panel_url = f"{api.url}/desktop#token={make_jwt('agent-embed')}"
        page.goto(f"{host.origin}/")
        frame = page.frame_locator("iframe")
        frame.get_by_role("button", name="Take payment").wait_for()
        assert frame.locator("#conn").inner_text() in ("Live", "Connecting…")


def test_panel_refuses_to_be_framed_by_other_origins(browser, api, request):
    with (
        desktop_host() as host,
        chromium_page(browser, OUTPUT_ROOT / request.node.name) as (page, _),
    ):
        host.panel_url = f"{api.url}/desktop"
        with page.expect_console_message(lambda m: "frame-ancestors" in m.text):
            page.goto(f"{host.origin}/")
        assert page.frame_locator("iframe").locator("#title").count() == 0
