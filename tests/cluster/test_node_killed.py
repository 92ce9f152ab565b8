"""SIGKILL of a node in the middle of a capture: new calls succeed on the other node
within 5 s, the card keyed into the dead node is nowhere on disk (its directory, the
other node's, the dispatcher's, PostgreSQL's data directory), and the vault goes on
tokenising cards (one PostgreSQL vault: the survivor's card in it once)."""

from __future__ import annotations

import sqlite3
import time

import psycopg

from tests.support.cards import SCAN_PAN, files_holding
from tests.support.cluster import Cluster, ClusterCall, vault_env

FULL_CARD = "4111111111111111#1230#123#"
HALF_PAN = SCAN_PAN[:12]  # the capture is half way when the node dies


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
        dead.proc.kill()
        killed_at = time.monotonic()
        dead.proc.wait(10)

        first = ClusterCall(cluster, pbx, timeout=8)
        up_after = time.monotonic() - killed_at
        calls.append(first)
        calls += [ClusterCall(cluster, pbx) for _ in range(2)]
        assert [c.node for c in calls[2:]] == [1, 1, 1]
        assert up_after < 5.0

        calls[-1].key(FULL_CARD)
        cluster.nodes[1].wait_log("capture.event", kind="token", timeout=15)
    finally:
        for call in calls:
            call.close()
        cluster.stop()

    assert files_holding(tmp_path, [HALF_PAN.encode(), FULL_CARD[:16].encode()]) == []
    pg_root = postgres.datadir.parent  # its data, WAL and log, and the nodes' key store
    assert files_holding(pg_root, [HALF_PAN.encode(), FULL_CARD[:16].encode()]) == []
    if vault_env(postgres.dsn):  # one PostgreSQL vault: the survivor's card, once
        with psycopg.connect(postgres.dsn) as db:
            assert db.execute("SELECT count(*) FROM vault WHERE last4 = '1111'").fetchone() == (1,)
    else:  # each node on its own SQLite vault
        db = sqlite3.connect(tmp_path / "node0" / "vault.sqlite")
        try:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            db.close()
