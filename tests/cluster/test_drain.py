"""SIGTERM on a node: it answers OPTIONS and INVITE 503, the dispatcher takes it out
at once and new calls go to the others, and its own calls finish normally."""

from __future__ import annotations

import signal

from masker.phones.service_process import sip_options_ping
from tests.support.cluster import Cluster, ClusterCall
from tests.support.sip_client import HOST, SipEndpoint, sdp_offer


def _refusal(port: int) -> tuple[int, str]:
    """Status and X-Masker-Refused of a node's answer to a new INVITE sent to it."""
    ep = SipEndpoint("late")
    try:
        uri = f"sip:late@{HOST}:{port}"
        invite = ep.request("INVITE", uri, call_id="late-1", from_tag="l", body=sdp_offer(4000))
        ep.send_raw(invite, (HOST, port))
        resp = ep.expect(503)
        return resp.code, resp.header("X-Masker-Refused")
    finally:
        ep.close()


def test_a_draining_node_answers_503_gets_no_new_calls_and_finishes_its_own(
    tmp_path, pbx, postgres
):
    cluster = Cluster(
        tmp_path, pbx.port, n=2, postgres=postgres, env={"MASKER_SERVICE_DRAIN_GRACE_S": "30"}
    )
    calls: list[ClusterCall] = []
    try:
        calls += [ClusterCall(cluster, pbx) for _ in range(2)]
        mine = next(c for c in calls if c.node == 0)
        draining = cluster.nodes[0]
        draining.proc.send_signal(signal.SIGTERM)
        draining.wait_log("draining")
        assert sip_options_ping((HOST, draining.sip_port)) == 503
        assert _refusal(draining.sip_port) == (503, "draining")
        out_after = cluster.dispatcher.wait_state(draining.sip_port, active=False)

        calls += [ClusterCall(cluster, pbx) for _ in range(3)]
        assert [c.node for c in calls[2:]] == [1, 1, 1]

        mine.key("12")  # its media still runs through the draining node
        assert draining.alive()
        bye = mine.hangup(pbx)
        assert bye.source == (HOST, draining.sip_port)
        assert draining.proc.wait(10) == 0
        draining.wait_log("drained")
        assert out_after < 3.0
    finally:
        for call in calls:
            call.close()
        cluster.stop()
