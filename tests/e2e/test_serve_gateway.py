"""The whole payment path through a real `masker serve`: the agent desktop starts a capture
with an amount, a scripted caller keys the card by RFC 4733, the service tokenises it and
hands it to a local HTTPS PSP; a PSP outage is a retryable failure the desktop retries.
Neither the log nor anything the desktop receives ever holds the card."""

from __future__ import annotations

import pytest

from tests.support.api import KEYED_CARD, TEST_CVV, TEST_EXPIRY, TEST_PAN, http
from tests.support.serve import MediaCall, Served
from tests.support.serve_api import Feed, assert_no_card_data, call_of, handoffs, served_with_api

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(tmp_path_factory, psp):
    s = served_with_api(
        tmp_path_factory.mktemp("serve-gateway"),
        {
            "MASKER_GATEWAY_URL": psp.url,
            "MASKER_GATEWAY_CA_FILE": psp.tls.ca_file,
            "MASKER_GATEWAY_TIMEOUT_S": "5",
            "MASKER_TOKENIZER_PURGE_INTERVAL_S": "0.3",
        },
    )
    yield s
    s.stop()


def take_payment(served: Served, psp, reference: str) -> tuple[str, Feed]:
    call = MediaCall(served)
    cid = call_of(served, call.user)
    feed = Feed(f"{served.api.replace('http', 'ws', 1)}/api/calls/{cid}/feed", served.key)
    reply = http(
        "POST",
        f"{served.api}/api/calls/{cid}/capture",
        served.key,
        {"amount": "12.50", "currency": "GBP", "reference": reference},
    )
    assert reply.status == 201, reply.body
    call.key(KEYED_CARD)
    return call, cid, feed


def test_keyed_card_is_approved_at_the_psp_and_the_feed_says_so(served, psp):
    psp.behaviour = "approve"
    before = len(psp.requests)
    call, cid, feed = take_payment(served, psp, "INV-APPROVE")
    try:
        events = feed.wait(lambda evs: handoffs(evs), "a hand-off")
    finally:
        feed.close()
        call.hangup()
    charge = psp.requests[before]
    assert (
        charge["pan"],
        charge["expiry_month"] + charge["expiry_year"][2:],
        charge["cvv"],
        charge["amount"],
        charge["reference"],
    ) == (TEST_PAN, TEST_EXPIRY, TEST_CVV, 1250, "INV-APPROVE")
    assert handoffs(events)[-1]["status"] == "approved"
    assert_no_card_data(*feed.raw, *served.raw)
    metrics = http("GET", f"{served.api}/metrics", served.key).body.decode()
    assert 'masker_handoff_results_total{result="ok"}' in metrics


def test_psp_outage_is_retryable_and_a_retry_is_approved(served, psp):
    psp.behaviour = "status:503"
    before = len(psp.requests)
    call, cid, feed = take_payment(served, psp, "INV-RETRY")
    try:
        failed = handoffs(feed.wait(lambda evs: handoffs(evs), "the failed hand-off"))[-1]
        status = http("GET", f"{served.api}/api/calls/{cid}/capture", served.key).json()
        psp.behaviour = "approve"
        retry = http("POST", f"{served.api}/api/calls/{cid}/capture/retry", served.key)
        final = handoffs(feed.wait(lambda evs: len(handoffs(evs)) >= 2, "the retry"))[-1]
    finally:
        feed.close()
        call.hangup()
    assert (failed["status"], failed["retryable"], failed["reason"]) == (
        "failed",
        True,
        "psp_server_error",
    )
    assert status["capture"]["state"] == "handoff_failed"
    assert retry.status == 202
    assert final["status"] == "approved"
    assert [r["pan"] for r in psp.requests[before:]] == [TEST_PAN, TEST_PAN]
    assert_no_card_data(*feed.raw, *served.raw)


def test_retry_without_a_failed_hand_off_is_a_conflict(served):
    call = MediaCall(served)
    try:
        cid = call_of(served, call.user)
        reply = http("POST", f"{served.api}/api/calls/{cid}/capture/retry", served.key)
    finally:
        call.hangup()
    assert reply.status == 409


def test_the_vault_is_purged_periodically(served):
    ran = served.wait_log("periodic job ran", timeout=10, job="vault-purge")
    assert ran["result"] == 0  # nothing past its 24 h TTL yet
