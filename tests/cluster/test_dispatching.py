"""Kamailio's dispatcher spreads new calls over the nodes, passes a call a node
refuses to the next one (and only such a call), and every in-dialog request of a
call reaches the node that carries it (from a trunk on UDP or TCP)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster, ClusterCall
from tests.support.edge import StreamEndpoint
from tests.support.sip_client import HOST, SipEndpoint, sdp_offer

DTMF_RELAY = "Signal=5\r\nDuration=160\r\n"


@pytest.fixture(scope="module")
def shared(tmp_path_factory, postgres) -> Iterator[tuple[Cluster, SipEndpoint]]:
    """Two nodes and their PBX for the tests that leave no call and no node behind."""
    pbx = SipEndpoint("pbx")
    cluster = Cluster(tmp_path_factory.mktemp("cluster"), pbx.port, n=2, postgres=postgres)
    yield cluster, pbx
    cluster.stop()
    pbx.close()


def test_calls_spread_over_the_nodes_and_info_and_bye_reach_the_node_of_their_dialog(shared):
    cluster, pbx = shared
    calls: list[ClusterCall] = []
    try:
        calls += [ClusterCall(cluster, pbx) for _ in range(4)]
        assert Counter(c.node for c in calls) == {0: 2, 1: 2}
        for call in calls:
            call.in_dialog("INFO", body=DTMF_RELAY, ctype="application/dtmf-relay")
            assert call.sip.expect(200, call_id=call.call_id).code == 200
        for call in calls:
            bye = call.hangup(pbx)
            assert bye.source == ("127.0.0.1", cluster.nodes[call.node].sip_port)
        for i, node in enumerate(cluster.nodes):
            infos = [ln for ln in node.log_lines if ln.get("event") == "sip.info"]
            assert len(infos) == 2, f"node{i} saw {len(infos)} INFO"
    finally:
        for call in calls:
            call.close()


def test_an_invite_a_full_node_refuses_goes_to_the_next_node(tmp_path, pbx):
    cluster = Cluster(tmp_path, pbx.port, n=2, env={"MASKER_MEDIA_MAX_CALLS": "1"})
    calls: list[ClusterCall] = []
    try:
        calls += [ClusterCall(cluster, pbx) for _ in range(2)]  # one on each: both full
        calls.pop().hangup(pbx)  # the second node is free again, the round robin at the first
        third = ClusterCall(cluster, pbx)
        calls.append(third)
        assert third.node != calls[0].node
        full = cluster.nodes[calls[0].node]
        assert full.wait_log("call.refused", reason="max_calls")
    finally:
        for call in calls:
            call.close()
        cluster.stop()


def test_a_503_from_the_pbx_is_the_callers_answer_and_no_other_node_is_tried(shared):
    """A proxy passes a 503 upstream as 500 (RFC 3261 16.7 step 6)."""
    cluster, pbx = shared
    caller = SipEndpoint("caller")
    try:
        uri = f"sip:busy@{HOST}:{cluster.addr[1]}"
        caller.send_raw(
            caller.request("INVITE", uri, call_id="busy-1", from_tag="b", body=sdp_offer(4000)),
            cluster.addr,
        )
        inv = pbx.expect("INVITE", user="busy")
        pbx.reply(inv, 503, to_tag="p")
        pbx.expect("ACK", call_id=inv.header("Call-ID"))
        assert caller.expect(500, call_id="busy-1").code == 500
        assert pbx.no_message(1.0)  # no INVITE from the other node
        assert set(cluster.dispatcher.states().values()) == {"AP"}
    finally:
        caller.close()


def test_a_trunk_on_tcp_reaches_a_node_on_udp_and_its_bye_follows_the_double_record_route(
    shared,
):
    cluster, pbx = shared
    trunk = StreamEndpoint.connect(cluster.addr[1], "TCP", user="trunk")
    try:
        uri = f"sip:tcpagent@{HOST}:{cluster.addr[1]};transport=tcp"
        trunk.send_raw(
            trunk.request("INVITE", uri, call_id="tcp-1", from_tag="t", body=sdp_offer(4000))
        )
        inv = pbx.expect("INVITE", user="tcpagent")
        pbx.reply(inv, 200, to_tag="p", body=sdp_offer(4100))
        ok = trunk.expect(200)
        routes = [r.strip() for h in ok.all("Record-Route") for r in h.split(",")][::-1]
        assert len(routes) == 2  # one for each transport of the proxy
        contact = ok.header("Contact").split("<")[1].split(">")[0]
        to_tag = ok.tag("To")
        for method, cseq in (("ACK", 1), ("BYE", 2)):
            trunk.send_raw(
                trunk.request(
                    method, contact, call_id="tcp-1", from_tag="t", to_tag=to_tag, cseq=cseq,
                    routes=routes,
                )
            )  # fmt: skip
        pbx.expect("ACK", call_id=inv.header("Call-ID"))
        bye = pbx.expect("BYE", call_id=inv.header("Call-ID"))
        pbx.reply(bye, 200)
        assert trunk.expect(200).method == "BYE"
    finally:
        trunk.close()
