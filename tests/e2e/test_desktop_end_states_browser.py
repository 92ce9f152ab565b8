"""Every way a payment can end, as the panel shows it in a real browser (headless chromium via
Playwright), against the real registry, tokeniser, hand-off worker and a local HTTPS PSP.

The finding (issue 13): on the embedded defaults (no [gateway]) an automatic capture ended
with the panel saying "Payment: Waiting for the gateway…", still after the call had ended.
Each end state the feed carries now has its own title and "Payment" line, and no final
state ever says it is waiting.  Also: the "End payment" button of a `capture`-policy call.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from masker.api import ApiConfig, start_api_server
from masker.calls.handoff import HandoffWorker
from masker.calls.registry import Registry
from tests.support.api import AUDIENCE, KEYED_CARD, SECRET, TEST_PAN, make_jwt, psp_on_thread
from tests.support.cards import dev_tokenizer
from tests.support.desktop import OUTPUT_ROOT, chromium, chromium_page
from tokenizer import HttpsJsonGateway

WAITING = "Waiting for the gateway"
INVALID_PAN = "4111111111111112#"  # fails Luhn


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@dataclass
class Service:
    """The API over a registry wired like `masker serve`'s, and its PSP."""

    url: str
    registry: Registry
    psp: Any

    def call(self, agent: str, policy: str = "always") -> str:
        cid = self.registry.add_call(trunk_call_id=f"t-{time.monotonic_ns()}@test", policy=policy)
        self.registry.update_call(cid, state="connected", agent_id=agent)
        return cid

    def key(self, cid: str, digits: str) -> None:
        for d in digits:
            self.registry.on_digit(cid, d, "rfc4733")


@contextmanager
def service(
    *, gateway: bool = True, auto_capture: bool = False, hold_timeout_s: float = 300.0
) -> Iterator[Service]:
    with (
        tempfile.TemporaryDirectory(prefix="masker-panel-") as tmp,
        psp_on_thread(Path(tmp) / "tls") as psp,
    ):
        folder = Path(tmp)
        tk = dev_tokenizer(folder, hold_timeout_s=hold_timeout_s)
        worker = HandoffWorker(
            HttpsJsonGateway(psp.url, ca_file=psp.tls.ca_file, timeout_s=5) if gateway else None
        )

        def factory(
            *, call_id: str, amount: str, currency: str, reference: str, fields: tuple[str, ...]
        ) -> Any:
            return tk.new_session(
                amount_minor=int(Decimal(amount or "0") * 100),
                currency=currency or "GBP",
                reference=reference or call_id,
                fields=tuple(fields) or None,
            )

        registry = Registry(session_factory=factory, auto_capture=auto_capture, handoff=worker)
        server = start_api_server(
            registry, ApiConfig(port=0, jwt_secret=SECRET, jwt_audience=AUDIENCE)
        )
        try:
            yield Service(server.url, registry, psp)
        finally:
            server.stop()
            worker.stop()
            tk.close()


def open_panel(page, svc: Service, agent: str) -> None:
    page.goto(f"{svc.url}/desktop#token={make_jwt(agent)}")
    expect(page.locator("#conn")).to_have_text("Live", timeout=10_000)


def take_payment(page, svc: Service, cid: str, keys: str = KEYED_CARD) -> None:
    page.get_by_label("Amount").fill("12.50")
    page.get_by_label("Reference").fill("INV-END-1")
    page.get_by_role("button", name="Take payment").click()
    page.get_by_text("Caller is keying the card").wait_for()
    if keys:
        svc.key(cid, keys)


# --- how each end state is reached -------------------------------------------------------------


def automatic_capture(page, svc, cid):
    svc.key(cid, KEYED_CARD)  # the first key press starts a capture with no amount


def automatic_capture_then_hang_up(page, svc, cid):
    automatic_capture(page, svc, cid)
    page.locator("#token", has_text="tok_").wait_for(timeout=10_000)
    svc.registry.end_call(cid)


def paid(page, svc, cid):
    take_payment(page, svc, cid)


def declined(page, svc, cid):
    svc.psp.behaviour = "decline"
    take_payment(page, svc, cid)


def hang_up_while_keying(page, svc, cid):
    take_payment(page, svc, cid, TEST_PAN[:6])
    page.locator('li[data-field="pan"] .count', has_text="6 digits keyed").wait_for()
    svc.registry.end_call(cid)


def three_invalid_card_numbers(page, svc, cid):
    take_payment(page, svc, cid, "")
    for _ in range(3):
        svc.key(cid, INVALID_PAN)


def agent_cancels(page, svc, cid):
    take_payment(page, svc, cid, TEST_PAN[:4])
    page.get_by_role("button", name="Cancel payment").click()


def held_card_expires(page, svc, cid):
    svc.psp.behaviour = "status:503"  # retryable: the card is held for a retry
    take_payment(page, svc, cid)
    page.get_by_role("button", name="Retry payment").wait_for(timeout=10_000)
    time.sleep(1.6)  # past the hold timeout
    svc.registry.poll()


@dataclass(frozen=True)
class EndState:
    drive: Callable[..., None]
    title: str
    payment: str  # the start of the "Payment" line
    setup: tuple[tuple[str, Any], ...] = ()


END_STATES = {
    "token_only": EndState(
        automatic_capture,
        "Card tokenised — token only",
        "Not sent · no amount was asked for",
        (("auto_capture", True),),
    ),
    "token_only_call_ended": EndState(
        automatic_capture_then_hang_up,
        "Card tokenised — token only · call ended",
        "Not sent · no amount was asked for",
        (("auto_capture", True),),
    ),
    "gateway_not_configured": EndState(
        paid,
        "Card tokenised — no payment gateway",
        "Not sent · no payment gateway configured",
        (("gateway", False),),
    ),
    "call_ended": EndState(hang_up_while_keying, "Call ended", "Not sent · call ended"),
    "approved": EndState(paid, "Payment sent", "Approved · auth AUTH"),
    "declined": EndState(declined, "Payment declined", "Declined · insufficient funds"),
    "failed": EndState(
        three_invalid_card_numbers, "Capture failed", "Not sent · too many invalid entries"
    ),
    "cancelled": EndState(agent_cancels, "Payment cancelled", "Not sent · cancelled"),
    "expired": EndState(
        held_card_expires,
        "Card no longer held",
        "Not sent · the card is no longer held",
        (("hold_timeout_s", 1.0),),
    ),
}


@pytest.mark.parametrize("name", list(END_STATES))
def test_panel_shows_each_end_state_as_it_is_never_waiting(browser, request, name):
    end = END_STATES[name]
    output = OUTPUT_ROOT / request.node.name
    with service(**dict(end.setup)) as svc, chromium_page(browser, output) as (page, _):
        agent = f"agent-{name}"
        cid = svc.call(agent)
        open_panel(page, svc, agent)
        end.drive(page, svc, cid)
        title = page.locator("#capture-title")
        try:
            expect(title).to_have_text(end.title, timeout=15_000)
            expect(page.locator("#handoff")).to_contain_text(end.payment, timeout=5_000)
        finally:
            page.screenshot(path=str(output / f"{name}.png"))
        time.sleep(0.3)  # a late event (e.g. the call's end cancelling the session) lands
        assert title.inner_text() == end.title
        assert WAITING not in page.locator("#capture").inner_text()
        assert page.locator("#outcome").is_visible()


def test_a_start_reply_older_than_the_feed_does_not_undo_the_capture_it_shows(browser, request):
    """The reply to "Take payment" can come after the feed has brought the capture and the
    caller's keys after it (CI saw it: the panel went back to "keying" after a failure)."""
    output = OUTPUT_ROOT / request.node.name
    with service() as svc, chromium_page(browser, output) as (page, _):
        cid = svc.call("agent-late-reply")
        open_panel(page, svc, "agent-late-reply")

        def reply_after_the_failure(route):
            response = route.fetch()  # the capture has started
            for _ in range(3):
                svc.key(cid, INVALID_PAN)
            page.wait_for_timeout(500)  # the feed's events reach the page first
            route.fulfill(response=response)

        page.route("**/capture", reply_after_the_failure)
        page.get_by_label("Amount").fill("12.50")
        page.get_by_label("Reference").fill("INV-LATE-1")
        with page.expect_response(lambda r: r.url.endswith("/capture")):
            page.get_by_role("button", name="Take payment").click()
        page.wait_for_timeout(300)  # the panel has read the late reply
        title = page.locator("#capture-title")
        expect(title).to_have_text("Capture failed", timeout=15_000)


# --- "End payment" -------------------------------------------------------------------------------


def test_end_payment_button_disarms_a_capture_policy_call(browser, request):
    output = OUTPUT_ROOT / request.node.name
    with service() as svc, chromium_page(browser, output) as (page, _):
        cid = svc.call("agent-end", policy="capture")
        open_panel(page, svc, "agent-end")
        end_payment = page.get_by_role("button", name="End payment")
        assert end_payment.is_hidden()  # nothing armed yet
        take_payment(page, svc, cid, TEST_PAN[:4])
        end_payment.wait_for()
        assert end_payment.is_disabled()  # refused while the caller is keying
        page.get_by_role("button", name="Cancel payment").click()
        page.get_by_text("Payment cancelled").wait_for()
        expect(end_payment).to_be_enabled()
        assert svc.registry.get_call(cid)["armed"] is True  # a cancelled capture stays armed
        end_payment.click()
        page.get_by_text("the caller's keypad is heard again").wait_for()
        page.screenshot(path=str(output / "payment-ended.png"))
        assert end_payment.is_hidden()
        assert svc.registry.get_call(cid)["armed"] is False


def test_end_payment_button_is_not_offered_when_the_call_is_always_masked(browser, request):
    with service() as svc, chromium_page(browser, OUTPUT_ROOT / request.node.name) as (page, _):
        cid = svc.call("agent-always")
        open_panel(page, svc, "agent-always")
        take_payment(page, svc, cid)
        expect(page.locator("#capture-title")).to_have_text("Payment sent", timeout=15_000)
        assert page.get_by_role("button", name="End payment").is_hidden()
