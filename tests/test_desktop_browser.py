"""The payment panel in a real browser (headless chromium via Playwright): the agent takes a
payment, sees masked progress, brand, ticks, token and hand-off, and never holds the card."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from api_support import KEYED_CARD, TEST_CVV, TEST_EXPIRY, TEST_PAN, make_jwt, running_api
from desktop_support import CHROMIUM, OUTPUT_ROOT, card_data_found, chromium_page

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed")


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


def test_agent_takes_a_payment_and_never_holds_the_card(request):
    output = OUTPUT_ROOT / request.node.name
    with running_api() as api, chromium_page(output) as (page, net):
        cid = api.call("agent-7")
        page.goto(f"{api.url}/desktop#token={make_jwt('agent-7')}")
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
        leaks += [f"net:{x}" for t in net.texts() for x in card_data_found(t, TEST_PAN,
                                                                          TEST_EXPIRY, TEST_CVV)]
    assert net.frames, "the page should have used the WebSocket feed"
    assert leaks == []


def test_invalid_card_number_shows_a_cross_with_the_reason(request):
    output = OUTPUT_ROOT / request.node.name
    with running_api() as api, chromium_page(output) as (page, _):
        cid = api.call("agent-7")
        page.goto(f"{api.url}/desktop#token={make_jwt('agent-7')}")
        take_payment(page)
        key_slowly(api, cid, "4111111111111112#", gap_s=0.0).join()
        reason = page.locator('li[data-field="pan"] .reason')
        reason.wait_for()
        assert reason.inner_text() == "card number fails check"
        assert page.locator('li[data-field="pan"]').get_attribute("data-result") == "bad"
        page.screenshot(path=str(output / "invalid-pan.png"))


def test_token_in_url_fragment_is_removed_from_the_address_bar(request):
    with running_api() as api, chromium_page(OUTPUT_ROOT / request.node.name) as (page, _):
        api.call("agent-7")
        page.goto(f"{api.url}/desktop#token={make_jwt('agent-7')}")
        page.get_by_role("button", name="Take payment").wait_for()
        assert "#" not in page.url and "token" not in page.url


def test_login_box_signs_in_with_a_pasted_token(request):
    with running_api() as api, chromium_page(OUTPUT_ROOT / request.node.name) as (page, _):
        api.call("agent-7")
        page.goto(f"{api.url}/desktop")
        page.get_by_label("Access token").fill(make_jwt("agent-7"))
        page.keyboard.press("Enter")
        page.get_by_role("button", name="Take payment").wait_for()
        assert page.locator("#login").is_hidden()


def test_cancel_button_ends_the_capture(request):
    with running_api() as api, chromium_page(OUTPUT_ROOT / request.node.name) as (page, _):
        cid = api.call("agent-7")
        page.goto(f"{api.url}/desktop#token={make_jwt('agent-7')}")
        take_payment(page)
        api.key(cid, "41")
        page.get_by_role("button", name="Cancel payment").click()
        page.get_by_text("Payment cancelled").wait_for()
        assert api.registry.get_call(cid)["capture"]["state"] == "cancelled"


def test_restart_button_clears_the_field(request):
    with running_api() as api, chromium_page(OUTPUT_ROOT / request.node.name) as (page, _):
        cid = api.call("agent-7")
        page.goto(f"{api.url}/desktop#token={make_jwt('agent-7')}")
        take_payment(page)
        key_slowly(api, cid, "4111", gap_s=0.0).join()
        page.locator('li[data-field="pan"] .count', has_text="4 digits keyed").wait_for()
        page.get_by_role("button", name="Restart Card number").click()
        page.locator('li[data-field="pan"] .count', has_text="waiting for caller").wait_for()
        assert page.locator('li[data-field="pan"] .display').inner_text() == ""


def test_panel_is_keyboard_operable(request):
    with running_api() as api, chromium_page(OUTPUT_ROOT / request.node.name) as (page, _):
        api.call("agent-7")
        page.goto(f"{api.url}/desktop#token={make_jwt('agent-7')}")
        page.get_by_role("button", name="Take payment").wait_for()
        page.get_by_label("Amount").focus()
        page.keyboard.type("10.00")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        page.keyboard.type("KB-1")
        page.keyboard.press("Enter")
        page.get_by_text("Caller is keying the card").wait_for()
        assert page.evaluate("document.activeElement.id") == "cancel"
