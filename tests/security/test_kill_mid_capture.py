"""Faults the service must survive without losing or leaking card data.

A SIGKILL in the middle of a capture (the card half keyed, another already in
the vault), then a restart on the same files: the vault opens and passes
SQLite's integrity check with its records intact, no file the service wrote
holds any keyed digits in clear, the killed process's SIP and media ports are
free again within seconds (its media worker notices the service is gone and
exits: on a loaded box that takes more than the instant the service's own
ports take), and new calls work.
"""

from __future__ import annotations

import socket
import sqlite3
import time

import pytest

from tests.support.cards import files_holding
from tests.support.media import keyed_packets, send_paced
from tests.support.serve import MediaCall, Served
from tests.support.sip_client import HOST

FULL_CARD = "4111111111111111#1230#123#"
HALF_PAN = "5454545454"


#: How long the orphaned media worker may hold the calls' ports after the kill.
PORTS_BACK_S = 5.0


def _udp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _ports_come_back(ports: list[int], within: float = PORTS_BACK_S) -> bool:
    deadline = time.monotonic() + within
    while not all(_udp_port_free(p) for p in ports):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_a_service_killed_mid_capture_restarts_clean_with_no_card_data_on_disk(tmp_path):
    served = Served(tmp_path)
    try:
        done = MediaCall(served)
        send_paced(
            done.caller_rtp,
            (HOST, done.masker_caller_port),
            keyed_packets(FULL_CARD, inband=True, rfc4733=False),
        )
        rid = served.wait_log("call.invite", trunk_call_id=done.call_id)["call"]
        served.wait_log("capture.event", call=rid, kind="token", timeout=15)
        half = MediaCall(served)
        send_paced(
            half.caller_rtp,
            (HOST, half.masker_caller_port),
            keyed_packets(HALF_PAN, inband=True, rfc4733=False),
        )
        time.sleep(0.3)
        ports = [served.sip_port, half.masker_caller_port, half.masker_agent_port]
        served.proc.kill()
        served.proc.wait(10)
    finally:
        served.stop()

    assert files_holding(tmp_path, [FULL_CARD[:16].encode(), HALF_PAN.encode()]) == []
    assert _ports_come_back(ports)

    vault = sqlite3.connect(tmp_path / "vault.sqlite")
    try:
        assert vault.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        tables = [r[0] for r in vault.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert sum(vault.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables) >= 1
    finally:
        vault.close()

    restarted = Served(tmp_path)
    try:
        again = MediaCall(restarted)
        send_paced(
            again.caller_rtp,
            (HOST, again.masker_caller_port),
            keyed_packets(FULL_CARD, inband=True, rfc4733=False),
        )
        rid = restarted.wait_log("call.invite", trunk_call_id=again.call_id)["call"]
        restarted.wait_log("capture.event", call=rid, kind="token", timeout=15)
        again.hangup()
    finally:
        restarted.stop()
    assert files_holding(tmp_path, [FULL_CARD[:16].encode(), HALF_PAN.encode()]) == []
