"""Calls of a dead node end on a survivor's watch, as `lost`.

Every node tries this after each heartbeat; the transaction-scoped advisory lock lets
one survivor at a time do it, and the others skip (no waiting).  "Dead" is judged on
the database's clock (heartbeat older than `node_dead_s`), so node clocks may differ.
The `lost` events are published in the same transaction: they are delivered exactly
when the rows change, to every node's feed subscribers of those calls.
"""

from __future__ import annotations

from typing import Any

import psycopg

from masker.calls.registry import ENDED_RETENTION_S
from masker.cluster.directory import notify
from masker.cluster.notice import encode
from masker.cluster.schema import REAPER_LOCK

LOST = "lost"


def lost_event() -> dict[str, Any]:
    """The feed event of a call whose node died (the shape of the registry's own end)."""
    return {"type": "call", "state": "ended", "reason": LOST}


def reap(conn: psycopg.Connection[Any], node_id: str, node_dead_s: float) -> list[str]:
    """Mark the live calls of nodes silent for `node_dead_s` ended/`lost`, publish that,
    and forget ended calls past their retention.  Returns the ids marked (empty when
    another survivor holds the lock)."""
    with conn.transaction():
        got = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (REAPER_LOCK,)).fetchone()
        if not got or not got[0]:
            return []
        rows = conn.execute(
            """
            UPDATE cluster_calls c SET state = 'ended', end_reason = 'lost',
                ended = extract(epoch FROM now()), updated_at = now()
            FROM cluster_nodes n
            WHERE n.node_id = c.node_id AND c.state <> 'ended' AND c.node_id <> %s
              AND n.heartbeat_at < now() - make_interval(secs => %s)
            RETURNING c.call_id, c.node_id
            """,
            (node_id, node_dead_s),
        ).fetchall()
        # published in the dead owner's name: every other node passes it to its desktops
        notify(conn, [encode(owner, cid, lost_event()) for cid, owner in rows])
        lost = [r[0] for r in rows]
        conn.execute(
            "DELETE FROM cluster_calls WHERE state = 'ended'"
            " AND updated_at < now() - make_interval(secs => %s)",
            (ENDED_RETENTION_S,),
        )
    return lost
