"""PostgreSQL away: a node's calls go on untouched (the registry never waits for the
directory), what could not be published is counted, and the directory catches up
when the database is back."""

from __future__ import annotations

import time

import psycopg
import pytest

from masker.runtime.metrics import REGISTRY
from tests.support.api import TEST_PAN, http, make_jwt, payment_sessions
from tests.support.cluster_api import cluster_node, wait_until
from tests.support.postgres import postgres_available, running_postgres

pytestmark = pytest.mark.skipif(not postgres_available(), reason="Debian's postgresql missing")

CAPTURE = {"amount": "9.99", "currency": "GBP", "reference": "ORDER-9"}


def directory_view(dsn, cid):
    """The call's public view in the directory (None: no row, no table, no database)."""
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT public FROM cluster_calls WHERE call_id = %s", (cid,)
            ).fetchone()
    except psycopg.Error:
        return None
    return row[0] if row else None


def dropped():
    return REGISTRY.get_sample_value("masker_cluster_events_dropped_total")


def test_a_database_outage_never_stalls_a_call_and_the_directory_catches_up():
    with (
        running_postgres() as pg,
        payment_sessions() as factory,
        cluster_node(pg.dsn, "node-a", factory, queue_limit=5) as a,
    ):
        cid = a.api.call("agent-1")
        wait_until(lambda: directory_view(pg.dsn, cid), what="the call in the directory")
        before = dropped()
        pg.stop("immediate")
        started = time.monotonic()
        reply = http("POST", f"{a.api.url}/api/calls/{cid}/capture", make_jwt(), CAPTURE)
        a.api.key(cid, TEST_PAN[:12])
        took = time.monotonic() - started
        assert reply.status == 201
        assert took < 1.5  # the database's 2 s connect timeout is never paid by a call
        wait_until(lambda: dropped() > before, what="the lost events counted")
        pg.start()
        here = http("GET", f"{a.api.url}/api/calls/{cid}", make_jwt()).json()
        assert here["capture"]["fields"][0]["entered"] == 12
        wait_until(
            lambda: (directory_view(pg.dsn, cid) or {}).get("capture") == here["capture"],
            timeout=20,
            what="the directory to catch up",
        )


def test_a_database_restart_does_not_make_live_nodes_look_dead():
    with (
        running_postgres() as pg,
        payment_sessions() as factory,
        cluster_node(pg.dsn, "node-a", factory, node_dead_s=1.0) as a,
        cluster_node(pg.dsn, "node-b", factory, node_dead_s=1.0) as b,
    ):
        cid = a.api.call("agent-1")
        wait_until(lambda: directory_view(pg.dsn, cid), what="the call in the directory")
        pg.stop("fast")  # a clean restart: the directory keeps its rows
        time.sleep(2.0)  # longer than node_dead_s: every heartbeat is stale on return
        pg.start()
        for node in (a, b):
            wait_until(node.cluster.publisher.connected.is_set, timeout=15, what="reconnect")
        time.sleep(2.5)  # past node_dead_s + the reconnection pause: B judges now
        seen_by_b = http("GET", f"{b.api.url}/api/calls/{cid}", make_jwt()).json()
        assert seen_by_b["state"] == "connected" and seen_by_b["end_reason"] is None
