"""PostgreSQL restarted while two nodes tokenise the same card at the same instant:
both captures end in a token once it is back (the vault store retries), and the
vault holds that card once, under one token."""

from __future__ import annotations

import threading
import time

import psycopg

from tests.support.cards import MASTERCARD
from tests.support.cluster import Cluster, ClusterCall

CARD = f"{MASTERCARD}#1230#123#"


def test_a_postgres_restart_mid_capture_delays_tokens_and_issues_one_per_card(
    tmp_path, pbx, postgres
):
    cluster = Cluster(tmp_path, pbx.port, n=2, postgres=postgres)
    calls: list[ClusterCall] = []
    try:
        calls += [ClusterCall(cluster, pbx) for _ in range(2)]
        assert {c.node for c in calls} == {0, 1}
        keying = [threading.Thread(target=c.key, args=(CARD,)) for c in calls]
        for t in keying:
            t.start()
        time.sleep(3.0)  # most of the card keyed; the last keys land while it is down
        postgres.stop("fast")
        time.sleep(2.5)
        postgres.start()
        for t in keying:
            t.join()
        for node in cluster.nodes:
            node.wait_log("capture.event", kind="token", timeout=30)
        retried = [
            ln for nd in cluster.nodes for ln in nd.log_lines if ln["event"] == "vault_retry"
        ]
    finally:
        for call in calls:
            call.close()
        cluster.stop()

    with psycopg.connect(postgres.dsn) as db:
        rows = db.execute(
            "SELECT count(*), count(DISTINCT token) FROM vault WHERE last4 = %s",
            (MASTERCARD[-4:],),
        ).fetchone()
    assert rows == (1, 1)
    assert retried, "no tokenisation met the restart"
