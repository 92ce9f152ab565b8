"""One API address for the desktops: Debian's nginx (deploy/nginx) in front of two
nodes' APIs sharing a call directory in a real PostgreSQL."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from tests.support.api import http, make_jwt, payment_sessions, ws_collect
from tests.support.cluster_api import cluster_node, running_nginx, wait_until
from tests.support.postgres import postgres_available, running_postgres

pytestmark = pytest.mark.skipif(
    not postgres_available()
    or shutil.which("nginx") is None
    and not shutil.which("/usr/sbin/nginx"),
    reason="Debian's postgresql or nginx missing",
)


@pytest.fixture(scope="module")
def cluster():
    with (
        running_postgres() as pg,
        payment_sessions() as factory,
        cluster_node(pg.dsn, "node-a", factory, trusted_proxies=("127.0.0.1",)) as a,
        cluster_node(pg.dsn, "node-b", factory, trusted_proxies=("127.0.0.1",)) as b,
        running_nginx(a, b) as url,
    ):
        yield a, b, url


def listed_ids(url, token):
    return {c["id"] for c in http("GET", f"{url}/api/calls", token).json()["calls"]}


def test_every_request_to_the_one_address_sees_the_calls_of_both_nodes(cluster):
    a, b, url = cluster
    on_a, on_b = a.api.call("agent-1"), b.api.call("agent-1")
    # both in the directory (a new call reaches it within the publisher's 0.5 s scan)
    wait_until(
        lambda: all({on_a, on_b} <= listed_ids(n.api.url, make_jwt()) for n in (a, b)),
        what="both calls on both nodes",
    )
    # least_conn spreads the requests over both nodes: each one answers the same
    for _ in range(6):
        assert {on_a, on_b} <= listed_ids(url, make_jwt())


def test_the_feed_through_the_one_address_follows_a_call_on_either_node(cluster):
    a, b, url = cluster
    for node in (a, b):
        cid = node.api.call("agent-1")
        wait_until(  # in the directory: whichever node nginx picks knows it
            lambda cid=cid: all(cid in listed_ids(n.api.url, make_jwt()) for n in (a, b)),
            what="the call on both nodes",
        )
        msgs = asyncio.run(
            ws_collect(
                url.replace("http://", "ws://") + f"/api/calls/{cid}/feed",
                make_jwt(),
                lambda m: any(x.get("state") == "ended" for x in m[1:]),
                on_open=lambda node=node, cid=cid: node.api.registry.end_call(cid),
            )
        )
        assert msgs[0]["type"] == "state" and msgs[-1]["type"] == "call", msgs


def test_the_one_address_steps_round_a_node_whose_api_is_down(cluster):
    a, _, _ = cluster
    with (
        payment_sessions() as factory,
        cluster_node(a.cluster.config.dsn, "node-c", factory) as c,
        running_nginx(a, c) as url,
    ):
        cid = a.api.call("agent-1")
        c.api.server.stop()  # node C's API is gone: connections to it are refused
        for _ in range(6):
            reply = http("GET", f"{url}/api/calls", make_jwt())
            assert reply.status == 200 and cid in {x["id"] for x in reply.json()["calls"]}
