"""A rolling restart of every node (SIGTERM drain, then start again, one at a time)
while load phones keep calls running drops no call: each draining node finishes its
calls, new ones go to the others, and the restarted node takes calls again."""

from __future__ import annotations

import signal

from masker.phones.lite import LitePhones, close_all
from tests.support.cluster import CallLoad, Cluster, dropped

HOLD_S = 2.0


def test_a_rolling_restart_of_every_node_with_calls_running_drops_no_call(tmp_path, postgres):
    phones = LitePhones(("127.0.0.1", 0), seed=11)
    cluster = Cluster(
        tmp_path, phones.uas_port, n=2, postgres=postgres,
        env={"MASKER_SERVICE_DRAIN_GRACE_S": "30"},
    )  # fmt: skip
    phones.service = cluster.addr
    load = CallLoad(phones, every_s=0.4, hold_s=HOLD_S)
    try:
        for i, node in enumerate(list(cluster.nodes)):
            node.wait_log("call.invite", timeout=10)  # it carries calls when it drains
            node.proc.send_signal(signal.SIGTERM)
            assert node.proc.wait(HOLD_S + 10) == 0
            node.wait_log("drained")
            restarted = cluster.restart(i)
            cluster.dispatcher.wait_state(restarted.sip_port, active=True)
        for node in cluster.nodes:
            node.wait_log("call.invite", timeout=10)  # the restarted nodes take calls
    finally:
        calls = load.stop()
        close_all(phones)
        cluster.stop()

    assert len(calls) >= 20
    assert dropped(calls, min_packets=int(HOLD_S / 0.02 * 0.8)) == []
