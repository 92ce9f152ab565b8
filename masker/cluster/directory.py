"""The call directory in PostgreSQL: who owns which call, and what a desktop may see of it.

Plain functions over a psycopg connection (autocommit), so each thread uses its own
connection.  A row holds the call's public view (masker.api.views.public_call: masked
progress, brand, token, never card data) plus the columns the cluster itself queries
(owner, agent, state); `ended`/`end_reason`/`state` columns win over the stored view,
because the reaper changes only them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from masker.calls.registry import ENDED_RETENTION_S
from masker.cluster.notice import CHANNEL


@dataclass(frozen=True)
class Owner:
    """The node carrying a call, and whether the call still runs there."""

    node_id: str
    api_url: str
    ended: bool


def connect(dsn: str, timeout_s: float = 2.0) -> psycopg.Connection[Any]:
    """An autocommit connection that fails fast: a database outage must show as an
    error within seconds, never as a hung API request."""
    ms = int(timeout_s * 1000)
    return psycopg.connect(
        dsn,
        autocommit=True,
        connect_timeout=max(1, int(timeout_s)),
        options=f"-c statement_timeout={ms} -c lock_timeout={ms}",
        application_name="masker-cluster",
    )


def view_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The API `Call` of a directory row (its stored view with the live columns on top)."""
    view = dict(row["public"])
    view.update(id=row["call_id"], state=row["state"])
    if row["state"] == "ended":
        view.update(ended=row["ended"], end_reason=row["end_reason"])
    return view


def upsert_call(conn: psycopg.Connection[Any], node_id: str, view: Mapping[str, Any]) -> None:
    """Write one call's public view as owned by `node_id`; a row the reaper has already
    marked lost stays lost (the node it came from was declared dead)."""
    conn.execute(
        """
        INSERT INTO cluster_calls (call_id, node_id, agent_id, state, end_reason, ended, public)
        VALUES (%(id)s, %(node)s, %(agent)s, %(state)s, %(reason)s, %(ended)s, %(public)s)
        ON CONFLICT (call_id) DO UPDATE SET
            node_id = EXCLUDED.node_id, agent_id = EXCLUDED.agent_id, state = EXCLUDED.state,
            end_reason = EXCLUDED.end_reason, ended = EXCLUDED.ended, public = EXCLUDED.public,
            updated_at = now()
        WHERE cluster_calls.end_reason IS DISTINCT FROM 'lost'
        """,
        {
            "id": view["id"],
            "node": node_id,
            "agent": view.get("agent"),
            "state": view.get("state") or "unknown",
            "reason": view.get("end_reason"),
            "ended": view.get("ended"),
            "public": Jsonb(dict(view)),
        },
    )


def heartbeat(conn: psycopg.Connection[Any], node_id: str, api_url: str, draining: bool) -> None:
    conn.execute(
        """
        INSERT INTO cluster_nodes (node_id, api_url, heartbeat_at, draining)
        VALUES (%s, %s, now(), %s)
        ON CONFLICT (node_id) DO UPDATE SET
            api_url = EXCLUDED.api_url, heartbeat_at = now(), draining = EXCLUDED.draining
        """,
        (node_id, api_url, draining),
    )


def notify(conn: psycopg.Connection[Any], payloads: list[str]) -> None:
    """Publish payloads on the feed channel, in order, in one round trip."""
    if payloads:
        with conn.cursor() as cur:
            cur.executemany("SELECT pg_notify(%s, %s)", [(CHANNEL, p) for p in payloads])


def get_call(conn: psycopg.Connection[Any], call_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute(
            "SELECT call_id, state, end_reason, ended, public FROM cluster_calls"
            " WHERE call_id = %s",
            (call_id,),
        ).fetchone()
    return view_of(row) if row else None


def list_calls(conn: psycopg.Connection[Any], except_node: str) -> list[dict[str, Any]]:
    """Every listed call carried by other nodes (ended ones for a minute, as locally)."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(
            """
            SELECT call_id, state, end_reason, ended, public FROM cluster_calls
            WHERE node_id <> %s
              AND (state <> 'ended' OR updated_at > now() - make_interval(secs => %s))
            """,
            (except_node, ENDED_RETENTION_S),
        ).fetchall()
    return [view_of(r) for r in rows]


def owner(conn: psycopg.Connection[Any], call_id: str) -> Owner | None:
    row = conn.execute(
        "SELECT c.node_id, coalesce(n.api_url, ''), c.state = 'ended' FROM cluster_calls c"
        " LEFT JOIN cluster_nodes n USING (node_id) WHERE c.call_id = %s",
        (call_id,),
    ).fetchone()
    return Owner(row[0], row[1], bool(row[2])) if row else None


def abandon_own_calls(conn: psycopg.Connection[Any], node_id: str) -> list[tuple[str, str | None]]:
    """At start: calls a previous run of this node left unended died with it (`lost`)."""
    rows = conn.execute(
        """
        UPDATE cluster_calls SET state = 'ended', end_reason = 'lost',
            ended = extract(epoch FROM now()), updated_at = now()
        WHERE node_id = %s AND state <> 'ended' RETURNING call_id, agent_id
        """,
        (node_id,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


class SharedConnection:
    """One lazily (re)opened connection used from several threads in turn (the API's
    executor threads): a failed query drops it so the next use reconnects."""

    def __init__(self, dsn: str, timeout_s: float = 2.0) -> None:
        self._dsn = dsn
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    @contextmanager
    def use(self) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self._dsn, self._timeout_s)
            try:
                yield self._conn
            except psycopg.Error:
                self._drop()
                raise

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self.use() as conn:
            return fn(conn, *args)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._drop()
