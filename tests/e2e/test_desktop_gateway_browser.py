"""The payment panel's final states in a real browser against a real `masker serve` signed in
with the generated development key: a PSP outage offers "Retry payment" and the retry ends
approved; with no gateway configured the panel says so instead of waiting forever."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.api import KEYED_CARD, TEST_CVV, TEST_EXPIRY, TEST_PAN, psp_on_thread
from tests.support.desktop import OUTPUT_ROOT, card_data_found, chromium, chromium_page
from tests.support.serve import MediaCall, Served
from tests.support.serve_api import dev_key, served_with_api

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def psp(tmp_path):
    with psp_on_thread(tmp_path / "tls", behaviour="status:503") as server:
        yield server


def serve(workdir: Path, gateway_env: dict[str, str]) -> Served:
    workdir.mkdir(parents=True, exist_ok=True)
    return served_with_api(workdir, gateway_env)


def pay(page, served: Served, reference: str) -> MediaCall:
    call = MediaCall(served)
    page.goto(f"{served.api}/desktop#token={dev_key(served)}")
    page.get_by_label("Amount").fill("20.00")
    page.get_by_label("Reference").fill(reference)
    page.get_by_role("button", name="Take payment").click()
    page.get_by_text("Caller is keying the card").wait_for()
    call.key(KEYED_CARD)
    return call


def leaks(page, net) -> list[str]:
    texts = [page.content(), *net.texts()]
    return [k for t in texts for k in card_data_found(t, TEST_PAN, TEST_EXPIRY, TEST_CVV)]


def test_panel_offers_a_retry_after_a_psp_outage_and_shows_the_approval(
    browser, psp, tmp_path, request
):
    served = serve(
        tmp_path / "svc", {"MASKER_GATEWAY_URL": psp.url, "MASKER_GATEWAY_CA_FILE": psp.tls.ca_file}
    )
    try:
        with chromium_page(browser, OUTPUT_ROOT / request.node.name) as (page, net):
            call = pay(page, served, "INV-RETRY-UI")
            retry = page.get_by_role("button", name="Retry payment")
            retry.wait_for(timeout=20_000)
            failed_text = page.locator("#handoff").inner_text()
            psp.behaviour = "approve"
            retry.click()
            page.locator("#handoff", has_text="Approved").wait_for(timeout=10_000)
            page.screenshot(path=str(OUTPUT_ROOT / request.node.name / "retried-panel.png"))
            title = page.locator("#capture-title").inner_text()
            retry_hidden = retry.is_hidden()
            found = leaks(page, net)
            call.hangup()
    finally:
        served.stop()
    assert "gateway unavailable" in failed_text
    assert title == "Payment sent" and retry_hidden and found == []


def test_panel_shows_a_final_state_when_no_gateway_is_configured(browser, tmp_path, request):
    served = serve(tmp_path / "svc", {})
    try:
        with chromium_page(browser, OUTPUT_ROOT / request.node.name) as (page, net):
            call = pay(page, served, "INV-NOGW-UI")
            page.locator("#handoff", has_text="no payment gateway").wait_for(timeout=20_000)
            title = page.locator("#capture-title").inner_text()
            new_payment = page.get_by_role("button", name="New payment").is_visible()
            found = leaks(page, net)
            call.hangup()
    finally:
        served.stop()
    assert title == "Card tokenised — no payment gateway"
    assert new_payment and found == []
