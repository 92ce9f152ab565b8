"""Card data lifetime over the real registry, tokeniser, hand-off worker and a local HTTPS PSP:
whatever path a call takes, once the path is over no payment session still holds a clear
digit, and none was dropped still holding one (checked through tokenizer.lifetime, which
counts digits and never shows them).

Each path first proves that digits really were held at some point (`probe`), so a path that
never held any cannot pass vacuously."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from masker.calls.handoff import HandoffWorker, build_gateway
from masker.calls.registry import Registry
from masker.runtime.service_config import GatewayConfig
from tests.support.api import KEYED_CARD, TEST_PAN
from tokenizer import lifetime


@dataclass
class Walk:
    """One call through the registry; `probe()` records that digits are held right now."""

    reg: Registry
    psp: object
    since: int
    cid: str = ""
    events: list[dict] = field(default_factory=list)
    held_peak: int = 0

    def probe(self) -> None:
        self.held_peak = max(self.held_peak, lifetime.held_digit_count(self.since))

    def key(self, digits: str) -> None:
        for d in digits:
            self.reg.on_digit(self.cid, d, "rfc4733")

    def capture(self, amount: str = "9.99", reference: str = "R-1") -> None:
        self.reg.start_capture(self.cid, amount, "GBP", reference, ())

    def handoffs(self) -> list[dict]:
        return [
            e["event"]
            for e in self.events
            if isinstance(e.get("event"), dict) and e["event"].get("event") == "handoff"
        ]

    def wait_for_handoffs(self, n: int = 1) -> None:
        deadline = time.monotonic() + 10
        while len(self.handoffs()) < n:
            assert time.monotonic() < deadline, "no hand-off result"
            time.sleep(0.02)

    def session(self):
        return self.reg._calls[self.cid].session

    def state(self) -> str:
        return self.reg.get_call(self.cid)["capture"]["state"]


# --- the paths ----------------------------------------------------------------------------
def replace_after_a_failed_handoff(w: Walk) -> None:
    w.psp.behaviour = "status:503"
    w.capture()
    w.key(KEYED_CARD)
    w.wait_for_handoffs()
    w.probe()  # the card is held for a retry...
    w.capture(reference="R-2")  # ...until the agent starts another capture over it


def automatic_capture_then_manual(w: Walk) -> None:
    w.key(TEST_PAN + "#")  # the first key press starts an automatic capture
    w.probe()
    w.key(KEYED_CARD[len(TEST_PAN) + 1 :])
    assert w.state() == "tokenised"
    w.capture()


def automatic_capture_tokenised(w: Walk) -> None:
    w.key(TEST_PAN + "#")
    w.probe()
    w.key(KEYED_CARD[len(TEST_PAN) + 1 :])
    assert w.state() == "tokenised"


def cancel_while_keying(w: Walk) -> None:
    w.capture()
    w.key(TEST_PAN + "#")
    w.probe()
    w.reg.cancel_capture(w.cid)


def psp_failure_then_call_end(w: Walk) -> None:
    w.psp.behaviour = "status:503"
    w.capture()
    w.key(KEYED_CARD)
    w.wait_for_handoffs()
    w.probe()
    w.reg.end_call(w.cid, "caller")


def redirect_then_call_end(w: Walk) -> None:
    w.psp.behaviour = "redirect:307:https://127.0.0.1:9/charge"
    w.capture()
    w.key(KEYED_CARD)
    w.wait_for_handoffs()
    w.probe()
    w.reg.end_call(w.cid, "caller")


def failed_handoff_held_until_expiry(w: Walk) -> None:
    w.psp.behaviour = "status:503"
    w.capture()
    w.key(KEYED_CARD)
    w.wait_for_handoffs()
    w.probe()
    w.session().hold_timeout_s = 0.0
    w.reg.poll()
    assert w.state() == "expired"


def approved(w: Walk) -> None:
    w.psp.behaviour = "approve"
    w.capture()
    w.key(KEYED_CARD[:-1])
    w.probe()
    w.key(KEYED_CARD[-1])
    w.wait_for_handoffs()


def declined(w: Walk) -> None:
    w.psp.behaviour = "decline"
    w.capture()
    w.key(KEYED_CARD[:-1])
    w.probe()
    w.key(KEYED_CARD[-1])
    w.wait_for_handoffs()


def call_end_while_keying(w: Walk) -> None:
    w.capture()
    w.key(TEST_PAN[:8])
    w.probe()
    w.reg.end_call(w.cid, "caller")


def too_many_invalid_attempts(w: Walk) -> None:
    w.capture()
    w.key("4111111111111112#" * 2)
    w.key("41111111")
    w.probe()
    w.key("11111112#")
    assert w.state() == "failed"


PATHS: dict[str, Callable[[Walk], None]] = {
    f.__name__: f
    for f in (
        replace_after_a_failed_handoff,
        automatic_capture_then_manual,
        automatic_capture_tokenised,
        cancel_while_keying,
        psp_failure_then_call_end,
        redirect_then_call_end,
        failed_handoff_held_until_expiry,
        approved,
        declined,
        call_end_while_keying,
        too_many_invalid_attempts,
    )
}


def walk(path: Callable[[Walk], None], tokenizer, psp, gateway: bool = True) -> Walk:
    def factory(*, call_id, amount, currency, reference, fields):
        return tokenizer.new_session(
            amount_minor=int(Decimal(amount or "0") * 100),
            currency=currency,
            reference=reference,
            fields=tuple(fields) or None,
        )

    worker = HandoffWorker(
        build_gateway(GatewayConfig(url=psp.url, ca_file=psp.tls.ca_file)) if gateway else None
    )
    w = Walk(Registry(factory, auto_capture=True, handoff=worker), psp, lifetime.mark())
    w.cid = w.reg.add_call("trunk@test")
    w.reg.update_call(w.cid, state="connected", agent_id="agent-1")
    w.reg.subscribe(w.cid, w.events.append)
    try:
        path(w)
    finally:
        worker.stop()
    return w


@pytest.mark.parametrize("name", PATHS)
def test_no_session_holds_card_digits_once_the_path_is_over(name, tokenizer, psp):
    w = walk(PATHS[name], tokenizer, psp)
    held_after = lifetime.held_digit_count(w.since)
    since, peak = w.since, w.held_peak
    del w
    gc.collect()
    assert peak > 0, "the path never held a digit: it proves nothing"
    assert (held_after, lifetime.dropped_holding_digits(since)) == (0, 0)


def test_no_session_holds_card_digits_after_a_capture_ended_without_a_gateway(tokenizer, psp):
    def without_gateway(w: Walk) -> None:
        w.capture()
        w.key(KEYED_CARD[:-1])
        w.probe()
        w.key(KEYED_CARD[-1])
        assert w.handoffs()[0]["status"] == "not_configured"

    w = walk(without_gateway, tokenizer, psp, gateway=False)
    assert w.held_peak > 0 and lifetime.held_digit_count(w.since) == 0
