"""[cluster] settings: off by default, complete when on, reachable from the environment."""

from __future__ import annotations

import pytest

from masker.errors import UserError
from masker.runtime.service_config import load_config

NODE = {
    "MASKER_CLUSTER_NODE_ID": "node-1",
    "MASKER_CLUSTER_DSN": "host=127.0.0.1 dbname=masker",
    "MASKER_CLUSTER_API_URL": "http://127.0.0.1:8081",
}


def test_a_single_node_needs_no_cluster_settings():
    assert load_config(env={}).cluster.node_id == ""


def test_cluster_settings_come_from_the_environment():
    cfg = load_config(env={**NODE, "MASKER_CLUSTER_NODE_DEAD_S": "3"}).cluster
    assert (cfg.node_id, cfg.api_url, cfg.heartbeat_s, cfg.node_dead_s) == (
        "node-1",
        "http://127.0.0.1:8081",
        1.0,
        3.0,
    )


@pytest.mark.parametrize(
    "change",
    [
        {"MASKER_CLUSTER_DSN": ""},
        {"MASKER_CLUSTER_API_URL": "127.0.0.1:8081"},
        {"MASKER_CLUSTER_HEARTBEAT_S": "5", "MASKER_CLUSTER_NODE_DEAD_S": "5"},
    ],
)
def test_an_incomplete_cluster_node_is_refused(change):
    with pytest.raises(UserError, match=r"\[cluster\]"):
        load_config(env={**NODE, **change})
