"""One desktop view across two nodes sharing a call directory in a real PostgreSQL:
a call carried by node A is listed, followed and driven through node B's API, and
nothing of the card crosses between the nodes."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import psycopg
import pytest

from tests.support.api import (
    KEYED_CARD,
    TEST_CVV,
    TEST_EXPIRY,
    TEST_PAN,
    http,
    make_jwt,
    payment_sessions,
    ws_collect,
)
from tests.support.cluster_api import cluster_node, wait_until
from tests.support.desktop import card_data_found
from tests.support.postgres import postgres_available, running_postgres

pytestmark = pytest.mark.skipif(not postgres_available(), reason="Debian's postgresql missing")

CAPTURE = {"amount": "9.99", "currency": "GBP", "reference": "ORDER-7"}


@pytest.fixture(scope="module")
def postgres():
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def nodes(postgres):
    with (
        payment_sessions() as factory,
        cluster_node(postgres.dsn, "node-a", factory) as a,
        cluster_node(postgres.dsn, "node-b", factory) as b,
    ):
        yield a, b


def feed_url(node, cid):
    return node.api.url.replace("http://", "ws://") + f"/api/calls/{cid}/feed"


def listed(node, token, cid):
    reply = http("GET", f"{node.api.url}/api/calls", token)
    return next((c for c in reply.json()["calls"] if c["id"] == cid), None)


def test_a_call_on_node_a_is_listed_through_node_b(nodes):
    a, b = nodes
    cid = a.api.call("agent-7")
    call = wait_until(lambda: listed(b, make_jwt("agent-7"), cid), what="the call on B")
    assert call["agent"] == "agent-7" and call["state"] == "connected"
    assert listed(b, make_jwt("agent-8"), cid) is None  # another agent's call stays hidden
    assert listed(b, make_jwt("sup-1", "supervisor"), cid) is not None


def test_feed_events_of_a_call_on_node_a_arrive_through_node_b(nodes):
    a, b = nodes
    cid = a.api.call("agent-1")
    wait_until(lambda: listed(b, make_jwt(), cid), what="the call on B")

    def start_on_a():
        reply = http("POST", f"{a.api.url}/api/calls/{cid}/capture", make_jwt(), CAPTURE)
        assert reply.status == 201
        a.api.key(cid, TEST_PAN[:4])

    msgs = asyncio.run(
        ws_collect(
            feed_url(b, cid),
            make_jwt(),
            lambda m: sum(x.get("type") == "progress" for x in m) >= 4,
            on_open=start_on_a,
        )
    )
    assert msgs[0]["type"] == "state" and msgs[0]["call"]["id"] == cid
    progress = [m for m in msgs if m.get("type") == "progress"]
    assert [m["entered"] for m in progress] == [1, 2, 3, 4]


def test_the_sse_feed_of_a_call_on_node_a_streams_through_node_b(nodes):
    a, b = nodes
    cid = a.api.call("agent-1")
    wait_until(lambda: listed(b, make_jwt(), cid), what="the call on B")
    req = urllib.request.Request(
        f"{b.api.url}/api/calls/{cid}/events", headers={"Authorization": f"Bearer {make_jwt()}"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        first = next_sse(resp)
        a.api.registry.end_call(cid)
        second = next_sse(resp)
    assert first["type"] == "state" and first["call"]["id"] == cid
    assert second == {"type": "call", "state": "ended", "reason": "hangup"}


def next_sse(resp) -> dict:
    while True:
        line = resp.readline().decode()
        if line.startswith("data: "):
            return json.loads(line[6:])


def test_an_action_through_node_b_reaches_the_call_on_node_a(nodes):
    a, b = nodes
    cid = a.api.call("agent-1")
    wait_until(lambda: listed(b, make_jwt(), cid), what="the call on B")
    reply = http("POST", f"{b.api.url}/api/calls/{cid}/capture", make_jwt(), CAPTURE)
    assert reply.status == 201, reply.body
    assert a.api.registry.get_call(cid)["capture"]["state"] == "collecting"
    reply = http("DELETE", f"{b.api.url}/api/calls/{cid}/capture", make_jwt())
    assert reply.status == 200 and reply.json()["capture"]["state"] == "cancelled"


def test_an_action_through_node_b_is_refused_as_node_a_would_refuse_it(nodes):
    a, b = nodes
    cid = a.api.call("agent-1")
    wait_until(lambda: listed(b, make_jwt(), cid), what="the call on B")
    supervisor = make_jwt("sup-1", "supervisor")
    assert http("POST", f"{b.api.url}/api/calls/{cid}/capture", supervisor, CAPTURE).status == 403
    assert http("POST", f"{b.api.url}/api/calls/{cid}/capture", "nonsense", CAPTURE).status == 401


def test_no_card_data_crosses_between_the_nodes(nodes, postgres):
    a, b = nodes
    with psycopg.connect(postgres.dsn, autocommit=True) as spy:
        spy.execute("LISTEN masker_feed")
        cid = a.api.call("agent-1")
        wait_until(lambda: listed(b, make_jwt(), cid), what="the call on B")
        reply = http("POST", f"{b.api.url}/api/calls/{cid}/capture", make_jwt(), CAPTURE)
        assert reply.status == 201
        msgs = asyncio.run(
            ws_collect(
                feed_url(b, cid),
                make_jwt(),
                lambda m: any(x.get("type") == "handoff" for x in m),
                on_open=lambda: a.api.key(cid, KEYED_CARD),
                timeout=20,
            )
        )
        assert any(m.get("type") == "token" for m in msgs)  # the capture did complete
        wait_until(lambda: listed(b, make_jwt(), cid)["capture"]["state"] == "handed_off")
        notices = [n.payload for n in spy.notifies(timeout=0.5)]
        rows = spy.execute("SELECT row_to_json(c)::text FROM cluster_calls c").fetchall()
    crossed = {
        "relays": a.relay.text() + b.relay.text(),
        "notices": "\n".join(notices),
        "directory": "\n".join(r[0] for r in rows),
        "feed through B": "\n".join(map(str, msgs)),
    }
    assert a.relay.text() and notices and rows  # something did cross, each way
    for where, text in crossed.items():
        assert card_data_found(text, TEST_PAN, TEST_EXPIRY, TEST_CVV) == [], where


def test_node_b_marks_the_calls_of_a_silent_node_lost(nodes, postgres):
    _, b = nodes
    with payment_sessions() as factory, cluster_node(postgres.dsn, "node-c", factory) as c:
        cid = c.api.call("agent-1")
        wait_until(lambda: listed(b, make_jwt(), cid), what="the call on B")
        msgs = asyncio.run(
            ws_collect(
                feed_url(b, cid),
                make_jwt(),
                lambda m: any(x.get("state") == "ended" for x in m[1:]),
                on_open=c.stop_heartbeat,
                timeout=15,
            )
        )
        assert msgs[-1] == {"type": "call", "state": "ended", "reason": "lost"}
        call = listed(b, make_jwt(), cid)
        assert call["state"] == "ended" and call["end_reason"] == "lost"
        # what B answers for it now is what one node answers for an ended call
        reply = http("POST", f"{b.api.url}/api/calls/{cid}/capture", make_jwt(), CAPTURE)
        assert reply.status == 409 and reply.json()["error"]["code"] == "call_ended"


def test_an_action_for_a_node_whose_api_does_not_answer_is_503_through_node_b(nodes, postgres):
    _, b = nodes
    with payment_sessions() as factory, cluster_node(postgres.dsn, "node-e", factory) as e:
        cid = e.api.call("agent-1")
        wait_until(lambda: listed(b, make_jwt(), cid), what="the call on B")
        e.api.server.stop()  # still heartbeating, its API gone
        reply = http("POST", f"{b.api.url}/api/calls/{cid}/capture", make_jwt(), CAPTURE)
        assert reply.status == 503 and reply.json()["error"]["code"] == "node_unavailable"
