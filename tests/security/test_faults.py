"""Faults around a capture (issue 13), through a real `masker serve`: the PSP hangs or
is down, the vault's disk is full.  Each time the capture fails visibly, nothing of
the card leaks, and the service goes on serving calls.  (That the card is wiped on
every such path, hold expiry and call end included, is proven in-process by
tests/integration/test_card_data_lifetime.py: another process's memory is not
inspectable here.)"""

from __future__ import annotations

import resource
import sqlite3
import time

import pytest

from masker.phones.service_process import free_port
from tests.support.api import KEYED_CARD, http
from tests.support.serve import MediaCall, Served
from tests.support.serve_api import (
    Feed,
    assert_no_card_data,
    call_of,
    handoffs,
    served_with_api,
)

pytestmark = pytest.mark.e2e


def _served(workdir, gateway_url: str, ca_file: str = "") -> Served:
    env = {"MASKER_GATEWAY_URL": gateway_url, "MASKER_GATEWAY_TIMEOUT_S": "1"}
    if ca_file:
        env["MASKER_GATEWAY_CA_FILE"] = ca_file
    return served_with_api(workdir, env)


def _take_payment(served: Served) -> tuple[MediaCall, str, Feed]:
    call = MediaCall(served)
    cid = call_of(served, call.user)
    feed = Feed(f"{served.api.replace('http', 'ws', 1)}/api/calls/{cid}/feed", served.key)
    reply = http(
        "POST",
        f"{served.api}/api/calls/{cid}/capture",
        served.key,
        {"amount": "9.99", "currency": "GBP", "reference": "INV-FAULT"},
    )
    assert reply.status == 201, reply.body
    call.key(KEYED_CARD)
    return call, cid, feed


def test_a_psp_that_hangs_fails_the_capture_visibly_while_other_calls_flow(tmp_path, psp):
    psp.behaviour = "slow:4"
    served = _served(tmp_path, psp.url, psp.tls.ca_file)
    try:
        call, cid, feed = _take_payment(served)
        try:
            t0 = time.monotonic()
            other = MediaCall(served)  # set up while the hand-off hangs
            other.key("12")
            other.hangup()
            failed = handoffs(feed.wait(lambda evs: handoffs(evs), "the failed hand-off"))[-1]
            assert time.monotonic() - t0 < 6
            status = http("GET", f"{served.api}/api/calls/{cid}/capture", served.key).json()
        finally:
            feed.close()
            call.hangup()
        assert (failed["status"], failed["retryable"], failed["reason"]) == (
            "failed",
            True,
            "timeout",
        )
        assert status["capture"]["state"] == "handoff_failed"
        assert_no_card_data(*feed.raw, *served.raw)
        assert served.alive()
    finally:
        served.stop()


def test_a_psp_that_is_down_fails_the_capture_visibly(tmp_path):
    served = _served(tmp_path, f"https://127.0.0.1:{free_port()}/charge")
    try:
        call, cid, feed = _take_payment(served)
        try:
            failed = handoffs(feed.wait(lambda evs: handoffs(evs), "the failed hand-off"))[-1]
        finally:
            feed.close()
            call.hangup()
        assert (failed["status"], failed["retryable"]) == ("failed", True)
        assert failed["reason"] in ("connection_error", "timeout")
        MediaCall(served).hangup()  # and the next call is served
        assert_no_card_data(*feed.raw, *served.raw)
    finally:
        served.stop()


def test_a_full_vault_disk_fails_the_capture_visibly_and_writes_no_partial_record(tmp_path):
    """The disk filling up is simulated with RLIMIT_FSIZE on the running service (set
    with prlimit after start, so start-up could write its keys): no file of it may grow
    past 1 KiB, so the vault's first write fails as on a full disk (EFBIG; CPython
    ignores SIGXFSZ)."""
    served = Served(tmp_path)  # automatic capture, no gateway: a keyed card is tokenised
    vault = tmp_path / "vault.sqlite"
    try:
        resource.prlimit(served.pid, resource.RLIMIT_FSIZE, (1024, 1024))
        since = len(served.lines)
        call = MediaCall(served)
        call.key(KEYED_CARD)
        failed = served.wait_log("capture.event", since=since, timeout=10, kind="error")
        assert failed["call"]
        call.hangup()
        other = MediaCall(served)  # the service keeps serving
        other.hangup()
        assert served.alive()
    finally:
        served.stop()
    assert_no_card_data(*served.raw)
    if vault.exists():
        with sqlite3.connect(vault) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            rows = (
                db.execute("SELECT COUNT(*) FROM vault").fetchone()[0] if "vault" in tables else 0
            )
        assert rows == 0
