"""The panel in a real browser (headless chromium) served by node B of a two-node
cluster, following a call carried by node C: when C falls silent mid-capture, B's
panel says the call was lost, never that it is still keying or waiting."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.api import TEST_CVV, TEST_EXPIRY, TEST_PAN, make_jwt, payment_sessions
from tests.support.cluster_api import cluster_node
from tests.support.desktop import OUTPUT_ROOT, card_data_found, chromium, chromium_page
from tests.support.postgres import postgres_available, running_postgres

pytestmark = pytest.mark.skipif(not postgres_available(), reason="Debian's postgresql missing")


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def cluster():
    with (
        running_postgres() as pg,
        payment_sessions() as factory,
        cluster_node(pg.dsn, "node-b", factory) as b,
    ):
        yield pg, factory, b


def open_panel(page, node, agent):
    page.goto(f"{node.api.url}/desktop#token={make_jwt(agent)}")
    expect(page.locator("#conn")).to_have_text("Live", timeout=10_000)


def test_panel_on_node_b_shows_a_capture_on_a_dead_node_as_lost(browser, cluster, request):
    pg, factory, b = cluster
    output = OUTPUT_ROOT / request.node.name
    with (
        cluster_node(pg.dsn, "node-c", factory) as c,
        chromium_page(browser, output) as (page, network),
    ):
        cid = c.api.call("agent-lost")
        open_panel(page, b, "agent-lost")
        page.get_by_label("Amount").fill("12.50")
        page.get_by_label("Reference").fill("INV-LOST-1")
        page.get_by_role("button", name="Take payment").click()  # forwarded to node C
        page.get_by_text("Caller is keying the card").wait_for()
        c.api.key(cid, TEST_PAN[:6])
        page.locator('li[data-field="pan"] .count', has_text="6 digits keyed").wait_for()
        c.stop_heartbeat()
        try:
            expect(page.locator("#capture-title")).to_have_text("Call lost", timeout=15_000)
            expect(page.locator("#handoff")).to_contain_text("Not sent · call lost")
            expect(page.locator("#call-line")).to_contain_text("Lost")
        finally:
            page.screenshot(path=str(output / "lost-mid-capture.png"))
        assert page.get_by_role("button", name="Cancel payment").is_hidden()
        assert page.get_by_role("button", name="Restart").is_hidden()
        for text in network.texts():
            assert card_data_found(text, TEST_PAN, TEST_EXPIRY, TEST_CVV) == []


def test_panel_on_node_b_shows_a_call_on_a_dead_node_as_lost(browser, cluster, request):
    pg, factory, b = cluster
    output = OUTPUT_ROOT / request.node.name
    with (
        cluster_node(pg.dsn, "node-d", factory) as d,
        chromium_page(browser, output) as (page, _),
    ):
        d.api.call("agent-idle")
        open_panel(page, b, "agent-idle")
        expect(page.locator("#call-line")).to_contain_text("Connected")
        d.stop_heartbeat()
        try:
            expect(page.locator("#call-line")).to_contain_text(
                "Lost (its server stopped)", timeout=15_000
            )
        finally:
            page.screenshot(path=str(output / "lost-call.png"))
        assert page.get_by_role("button", name="Take payment").is_disabled()
