"""Gateway hand-off in the service: the `[gateway]` adapter, the worker that runs hand-offs off
the SIP/media threads, and the registry's part (hand off once tokenised, `not_configured`
without a gateway, retry after a retryable failure), over the real tokeniser and a local
HTTPS PSP."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from masker.calls.handoff import HandoffWorker, build_gateway, result_label
from masker.calls.registry import CaptureConflict, Registry
from masker.errors import UserError
from masker.runtime import metrics
from masker.runtime.service_config import GatewayConfig
from tests.support.api import KEYED_CARD, TEST_PAN
from tokenizer import HttpsJsonGateway


def registry_with(tokenizer, worker) -> Registry:
    def factory(*, call_id, amount, currency, reference, fields):
        return tokenizer.new_session(
            amount_minor=int(Decimal(amount or "0") * 100),
            currency=currency,
            reference=reference,
            fields=tuple(fields) or None,
        )

    return Registry(factory, auto_capture=True, handoff=worker)


def connected_call(reg: Registry) -> tuple[str, list[dict]]:
    cid = reg.add_call("trunk@test")
    reg.update_call(cid, state="connected", agent_id="agent-1")
    events: list[dict] = []
    reg.subscribe(cid, events.append)
    return cid, events


def handoffs(events: list[dict]) -> list[dict]:
    return [
        e["event"]
        for e in events
        if isinstance(e.get("event"), dict) and e["event"].get("event") == "handoff"
    ]


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def key_card(reg: Registry, cid: str) -> None:
    for d in KEYED_CARD:
        reg.on_digit(cid, d, "rfc4733")


def counter(label: str) -> float:
    return (
        metrics.REGISTRY.get_sample_value("masker_handoff_results_total", {"result": label}) or 0.0
    )


# --- adapter from config ----------------------------------------------------------------
def test_no_url_means_no_gateway():
    assert build_gateway(GatewayConfig()) is None


def test_url_and_ca_bundle_build_the_https_adapter(psp):
    gw = build_gateway(GatewayConfig(url=psp.url, ca_file=psp.tls.ca_file, timeout_s=3))
    assert isinstance(gw, HttpsJsonGateway) and gw.url == psp.url and gw.timeout_s == 3


def test_missing_ca_bundle_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="ca_file"):
        build_gateway(
            GatewayConfig(url="https://psp.test/charge", ca_file=str(tmp_path / "nope.pem"))
        )


def test_empty_credential_environment_variable_is_a_user_error(monkeypatch):
    monkeypatch.delenv("PSP_KEY_FOR_TEST", raising=False)
    with pytest.raises(UserError, match="PSP_KEY_FOR_TEST"):
        build_gateway(GatewayConfig(url="https://psp.test/charge", api_key_env="PSP_KEY_FOR_TEST"))


def test_credential_file_is_read_and_never_shown_in_repr(tmp_path):
    (tmp_path / "psp.key").write_text("secret-psp-credential\n")
    gw = build_gateway(
        GatewayConfig(url="https://psp.test/charge", api_key_file=str(tmp_path / "psp.key"))
    )
    assert gw._api_key == "secret-psp-credential" and "secret" not in repr(gw)


@pytest.mark.parametrize(
    ("event", "label"),
    [
        ({"status": "approved"}, "ok"),
        ({"status": "declined"}, "declined"),
        ({"status": "failed", "reason": "timeout"}, "timeout"),
        ({"status": "failed", "reason": "psp_server_error"}, "error"),
        ({"status": "not_configured"}, "not_configured"),
    ],
)
def test_handoff_events_map_to_a_fixed_metric_vocabulary(event, label):
    assert result_label(event) == label


# --- registry + worker ------------------------------------------------------------------
def test_tokenised_card_of_a_capture_with_an_amount_is_handed_to_the_psp(tokenizer, psp):
    worker = HandoffWorker(build_gateway(GatewayConfig(url=psp.url, ca_file=psp.tls.ca_file)))
    psp.behaviour = "approve"
    before, ok_before = len(psp.requests), counter("ok")
    reg = registry_with(tokenizer, worker)
    cid, events = connected_call(reg)
    try:
        reg.start_capture(cid, "9.99", "GBP", "R-1", ())
        key_card(reg, cid)
        wait_for(lambda: handoffs(events))
    finally:
        worker.stop()
    assert handoffs(events)[0]["status"] == "approved"
    assert psp.requests[before]["pan"] == TEST_PAN and psp.requests[before]["amount"] == 999
    assert counter("ok") == ok_before + 1


def test_retryable_failure_holds_the_card_and_a_retry_sends_it_again(tokenizer, psp):
    worker = HandoffWorker(build_gateway(GatewayConfig(url=psp.url, ca_file=psp.tls.ca_file)))
    psp.behaviour = "status:503"
    reg = registry_with(tokenizer, worker)
    cid, events = connected_call(reg)
    try:
        reg.start_capture(cid, "1.00", "GBP", "R-2", ())
        key_card(reg, cid)
        wait_for(lambda: handoffs(events))
        state_after_failure = reg.get_call(cid)["capture"]["state"]
        psp.behaviour = "approve"
        reg.retry_handoff(cid)
        wait_for(lambda: len(handoffs(events)) == 2)
    finally:
        worker.stop()
    first, second = handoffs(events)
    assert (first["status"], first["retryable"], state_after_failure) == (
        "failed",
        True,
        "handoff_failed",
    )
    assert second["status"] == "approved" and psp.requests[-1]["pan"] == TEST_PAN


def test_without_a_gateway_the_capture_ends_at_its_token_as_not_configured(tokenizer):
    worker = HandoffWorker(None)
    reg = registry_with(tokenizer, worker)
    cid, events = connected_call(reg)
    try:
        reg.start_capture(cid, "2.00", "GBP", "R-3", ())
        key_card(reg, cid)
        capture = reg.get_call(cid)["capture"]
        session = reg._calls[cid].session
    finally:
        worker.stop()
    assert [h["status"] for h in handoffs(events)] == ["not_configured"]
    assert capture["handoff"]["status"] == "not_configured" and capture["token"]["token"]
    assert session.capture.value_of_kind("cvv").reveal() == ""  # wiped
    assert session.capture.value_of_kind("pan").reveal() == ""


def test_a_capture_ended_without_a_gateway_is_not_expired_later(tokenizer):
    worker = HandoffWorker(None)
    reg = registry_with(tokenizer, worker)
    cid, events = connected_call(reg)
    try:
        reg.start_capture(cid, "2.00", "GBP", "R-4", ())
        key_card(reg, cid)
        reg._calls[cid].session.hold_timeout_s = 0.0
        reg.poll()
    finally:
        worker.stop()
    kinds = [e["event"].get("event") for e in events if isinstance(e.get("event"), dict)]
    assert "expired" not in kinds and kinds[-1] == "handoff"


def test_automatic_capture_without_an_amount_is_not_handed_off(tokenizer, psp):
    worker = HandoffWorker(build_gateway(GatewayConfig(url=psp.url, ca_file=psp.tls.ca_file)))
    reg = registry_with(tokenizer, worker)
    cid, events = connected_call(reg)
    before = len(psp.requests)
    try:
        key_card(reg, cid)  # first key press starts an automatic capture (no amount)
        time.sleep(0.3)
    finally:
        worker.stop()
    assert reg.get_call(cid)["capture"]["state"] == "tokenised"
    assert handoffs(events) == [] and len(psp.requests) == before


def test_retry_without_a_gateway_is_a_conflict(tokenizer):
    worker = HandoffWorker(None)
    reg = registry_with(tokenizer, worker)
    cid, _ = connected_call(reg)
    try:
        with pytest.raises(CaptureConflict):
            reg.retry_handoff(cid)
    finally:
        worker.stop()


def test_retry_when_nothing_failed_is_a_conflict(tokenizer, psp):
    worker = HandoffWorker(build_gateway(GatewayConfig(url=psp.url, ca_file=psp.tls.ca_file)))
    reg = registry_with(tokenizer, worker)
    cid, _ = connected_call(reg)
    try:
        reg.start_capture(cid, "1.00", "GBP", "R-5", ())
        with pytest.raises(CaptureConflict):
            reg.retry_handoff(cid)
    finally:
        worker.stop()
