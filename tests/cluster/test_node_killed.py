"""SIGKILL of a node in the middle of a capture: the survivor's API (the desktops'
view) shows the dead node's call ended as lost, not stuck; new calls succeed on the
other node within 5 s, the card keyed into the dead node is nowhere on disk (its directory, the
other node's, the dispatcher's, PostgreSQL's data directory), and the vault goes on
tokenising cards (one PostgreSQL vault: the survivor's card in it once)."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from masker.phones.probe_call import api_calls
from masker.phones.service_process import ServiceProcess
from tests.support.cards import SCAN_PAN, files_holding
from tests.support.cluster import Cluster, ClusterCall
from tests.support.cluster_api import wait_until

FULL_CARD = "4111111111111111#1230#123#"
HALF_PAN = SCAN_PAN[:12]  # the capture is half way when the node dies


def view_of(node: ServiceProcess, agent: str) -> dict[str, Any]:
    """What `node`'s API (a desktop's view) shows of the call to `agent`, or {}."""
    calls = [c for c in api_calls(node.api_url, node.api_key) if c.get("agent") == agent]
    return calls[-1] if calls else {}


def test_after_sigkill_mid_capture_new_calls_succeed_within_5_s_and_no_card_is_on_disk(
    tmp_path, pbx, postgres
):
    cluster = Cluster(tmp_path, pbx.port, n=2, postgres=postgres)
    calls: list[ClusterCall] = []
    try:
        calls += [ClusterCall(cluster, pbx) for _ in range(2)]
        victim = next(c for c in calls if c.node == 0)
        dead = cluster.nodes[0]
        victim.key(HALF_PAN)
        dead.wait_log("capture.event", kind="progress", timeout=10)
        survivor = cluster.nodes[1]
        wait_until(
            lambda: view_of(survivor, victim.user).get("state") not in (None, "ended"),
            what="the survivor listing the other node's call",
        )
        dead.proc.kill()
        killed_at = time.monotonic()
        dead.proc.wait(10)

        first = ClusterCall(cluster, pbx, timeout=8)
        up_after = time.monotonic() - killed_at
        calls.append(first)
        calls += [ClusterCall(cluster, pbx) for _ in range(2)]
        assert [c.node for c in calls[2:]] == [1, 1, 1]
        assert up_after < 5.0
        wait_until(
            lambda: view_of(survivor, victim.user).get("end_reason") == "lost",
            timeout=15,
            what="the dead node's call shown lost",
        )

        calls[-1].key(FULL_CARD)
        cluster.nodes[1].wait_log("capture.event", kind="token", timeout=15)
    finally:
        for call in calls:
            call.close()
        cluster.stop()

    assert files_holding(tmp_path, [HALF_PAN.encode(), FULL_CARD[:16].encode()]) == []
    pg_root = postgres.datadir.parent  # its data, WAL and log, and the nodes' key store
    assert files_holding(pg_root, [HALF_PAN.encode(), FULL_CARD[:16].encode()]) == []
    with psycopg.connect(postgres.dsn) as db:  # one vault: the survivor's card, once
        assert db.execute("SELECT count(*) FROM vault WHERE last4 = '1111'").fetchone() == (1,)
