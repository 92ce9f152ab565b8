"""The directory's tables and their versioned migrations.

Its own version table (`cluster_schema_version`), apart from the vault's, so the two
evolve independently.  Nodes starting together migrate one at a time: the whole
migration runs under a transaction-scoped advisory lock, and each step is applied
only if the recorded version is below it.
"""

from __future__ import annotations

from typing import Any

#: pg_advisory_xact_lock key of the migration ("masker-cluster-schema" in short).
MIGRATION_LOCK = 0x6D63_5F73
#: pg_try_advisory_xact_lock key held by the one survivor reaping dead nodes.
REAPER_LOCK = 0x6D63_5F72

#: (version, SQL), applied in order; never edit a released step, add one.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE cluster_nodes (
            node_id      text PRIMARY KEY,
            api_url      text NOT NULL,
            heartbeat_at timestamptz NOT NULL DEFAULT now(),
            draining     boolean NOT NULL DEFAULT false
        );
        CREATE TABLE cluster_calls (
            call_id    text PRIMARY KEY,
            node_id    text NOT NULL,
            agent_id   text,
            state      text NOT NULL,
            end_reason text,
            ended      double precision,
            public     jsonb NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX cluster_calls_node ON cluster_calls (node_id) WHERE state <> 'ended';
        CREATE INDEX cluster_calls_agent ON cluster_calls (agent_id);
        """,
    ),
)

LATEST = MIGRATIONS[-1][0]


def migrate(conn: Any) -> int:
    """Bring the schema on `conn` (a psycopg connection) to LATEST; returns the version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS cluster_schema_version (version integer NOT NULL)")
        row = conn.execute("SELECT max(version) FROM cluster_schema_version").fetchone()
        current = row[0] if row and row[0] is not None else 0
        for version, sql in MIGRATIONS:
            if version > current:
                conn.execute(sql)
                conn.execute("INSERT INTO cluster_schema_version VALUES (%s)", (version,))
                current = version
    return int(current)
