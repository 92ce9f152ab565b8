"""Counters of the cluster layer (on the service's registry, served at /metrics).

Labels are fixed words; never a call id, an agent or anything a caller keyed.
"""

from __future__ import annotations

from prometheus_client import Counter

from masker.runtime.metrics import REGISTRY

EVENTS_DROPPED = Counter(
    "masker_cluster_events_dropped",
    "Feed events not published to the other nodes (queue full while PostgreSQL was slow or down).",
    registry=REGISTRY,
)
EVENTS_PUBLISHED = Counter(
    "masker_cluster_events_published",
    "Feed events published to the other nodes with NOTIFY.",
    registry=REGISTRY,
)
DATABASE_ERRORS = Counter(
    "masker_cluster_database_errors",
    "Failed directory operations, by which part of the cluster layer met them.",
    ["part"],  # publisher | listener | reader
    registry=REGISTRY,
)
CALLS_LOST = Counter(
    "masker_cluster_calls_lost",
    "Calls of dead nodes this node marked lost.",
    registry=REGISTRY,
)
FORWARDED = Counter(
    "masker_cluster_forwarded",
    "Desktop actions forwarded to the node carrying the call, by outcome.",
    ["result"],  # ok | unavailable
    registry=REGISTRY,
)
