"""`masker serve` on embedded (development) defaults is usable from the desktop: it makes a
development API key under ./var/, prints the /desktop sign-in URL, answers /readyz from
real checks, and with no gateway configured a capture ends cleanly at its token."""

from __future__ import annotations

import os
import signal
import stat

import pytest

from tests.support.api import KEYED_CARD, TEST_PAN, http
from tests.support.serve import MediaCall, Served
from tests.support.serve_api import Feed, assert_no_card_data, call_of, handoffs, served_with_api

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("serve-dev")
    s = served_with_api(workdir)
    s.key = (workdir / "var" / "dev-api-key").read_text().strip()
    yield s
    s.stop()


def test_a_development_key_is_generated_under_var_readable_only_by_the_owner(served):
    mode = stat.S_IMODE(os.stat(served.workdir / "var" / "dev-api-key").st_mode)
    assert len(served.key) >= 32 and mode == 0o600


def test_the_banner_gives_the_desktop_url_with_the_key_and_a_development_warning(served):
    text = "".join(served.raw)
    assert f"{served.api}/desktop#token={served.key}" in text
    assert "for DEVELOPMENT only" in text


def test_the_desktop_page_is_served(served):
    reply = http("GET", f"{served.api}/desktop")
    assert reply.status == 200 and b"Take payment" in reply.body


def test_the_generated_key_lists_every_call(served):
    call = MediaCall(served)
    try:
        reply = http("GET", f"{served.api}/api/calls", served.key)
    finally:
        call.hangup()
    assert reply.status == 200
    assert call.user in [c["agent"] for c in reply.json()["calls"]]


def test_api_without_the_key_is_refused(served):
    assert http("GET", f"{served.api}/api/calls").status == 401


def test_readyz_reports_sip_media_and_vault_ready(served):
    reply = http("GET", f"{served.api}/readyz")
    assert reply.status == 200
    assert reply.json()["checks"] == {"sip": True, "media": True, "vault": True}


def test_capture_without_a_gateway_ends_at_the_token_with_not_configured(served):
    call = MediaCall(served)
    cid = call_of(served, call.user)
    feed = Feed(f"{served.api.replace('http', 'ws', 1)}/api/calls/{cid}/feed", served.key)
    try:
        reply = http(
            "POST",
            f"{served.api}/api/calls/{cid}/capture",
            served.key,
            {"amount": "5.00", "currency": "GBP", "reference": "INV-NOGW"},
        )
        assert reply.status == 201
        call.key(KEYED_CARD)
        handoff = handoffs(feed.wait(lambda evs: handoffs(evs), "the hand-off"))[-1]
        capture = http("GET", f"{served.api}/api/calls/{cid}/capture", served.key).json()
    finally:
        feed.close()
        call.hangup()
    assert (handoff["status"], handoff["retryable"]) == ("not_configured", False)
    assert capture["capture"]["handoff"]["status"] == "not_configured"
    assert capture["capture"]["token"]["token"].startswith("tok_")
    assert_no_card_data(*feed.raw, *served.raw)
    assert TEST_PAN not in (served.workdir / "vault.sqlite").read_bytes().decode("latin-1")


def test_readyz_is_not_ready_once_the_service_drains(tmp_path):
    s = Served(
        tmp_path,
        env_extra={
            "MASKER_SERVICE_API_ENABLED": "true",
            "MASKER_API_PORT": "0",
            "MASKER_SERVICE_DRAIN_GRACE_S": "5",
        },
    )
    try:
        api = s.wait_log("service ready")["api"]
        call = MediaCall(s)  # keeps the service draining instead of exiting
        s.proc.send_signal(signal.SIGTERM)
        s.wait_log("draining")
        reply = http("GET", f"{api}/readyz")
        call.hangup()
    finally:
        s.stop()
    assert reply.status == 503 and reply.json()["checks"]["sip"] is False
